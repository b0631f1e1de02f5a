"""dmshift: task-specific clustering learnt from side information.

The core method is Differentiable Mean Shift (:class:`DMSClustering`); peers share its
interface. Every estimator takes feature vectors and side information (partial labels
``y`` with -1 for unknown, and/or ``pairs`` of ``(i, j, same)``) and returns labels with
``NOISE = -1`` for points no cluster claims.

The estimators (and with them PyTorch and scikit-learn) are imported when first used, so
``import dmshift`` and the ``dmshift`` command's ``--help`` start quickly.
"""

import logging as _logging

from ._lazy import attach as _attach
from ._version import __version__
from .constants import NOISE, UNLABELLED

__all__ = ["DMSClustering", "KCLClustering", "MCLClustering", "DDCClustering", "MMDCClustering", "L2CClustering",
           "MeanShift", "SideInfo", "NOISE", "UNLABELLED", "__version__"]

# the library logs to the "dmshift" logger and leaves handlers to the program using it
_logging.getLogger("dmshift").addHandler(_logging.NullHandler())

__getattr__, __dir__ = _attach(__name__, {
    "SideInfo": ".constraints",
    "DMSClustering": ".estimators.dms",
    "KCLClustering": ".estimators.kcl",
    "MCLClustering": ".estimators.mcl",
    "DDCClustering": ".estimators.ddc",
    "MMDCClustering": ".estimators.mmdc",
    "L2CClustering": ".estimators.l2c",
    "MeanShift": ".estimators.meanshift",
}, globals())
