"""dmshift: task-specific clustering learnt from side information.

The core method is Differentiable Mean Shift (:class:`DMSClustering`); peers share its
interface. Every estimator takes feature vectors and side information (partial labels
``y`` with -1 for unknown, and/or ``pairs`` of ``(i, j, same)``) and returns labels with
``NOISE = -1`` for points no cluster claims.
"""

from ._version import __version__
from .constants import NOISE, UNLABELLED
from .constraints import SideInfo
from .estimators import (DDCClustering, DMSClustering, KCLClustering, L2CClustering, MCLClustering, MeanShift,
                         MMDCClustering)

__all__ = ["DMSClustering", "KCLClustering", "MCLClustering", "DDCClustering", "MMDCClustering", "L2CClustering",
           "MeanShift", "SideInfo", "NOISE", "UNLABELLED", "__version__"]
