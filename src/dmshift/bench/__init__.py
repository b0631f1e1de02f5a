"""Reproduction harness for the experiments of the DMS paper (§4): ``dmshift bench``.

Each experiment (:data:`EXPERIMENTS`: ``table3``, ``table2``, ``table4``, ``ablation``, ``fig5``,
``threshold``, ``seeds``) clusters its data sets with DMS at the library defaults and with
the baselines and peers, under one protocol (:mod:`dmshift.bench.protocol`): partial labels on a
random 5% of the points, scores (ACC, NMI, AMI, clusters, noise) on the other 95% only,
several random seeds, and writes ``bench-<experiment>.md`` and ``.csv`` stamped with the
command, commit and machine (:mod:`dmshift.bench.report`). It is not a tuning tool: no
parameter is chosen per data set.

Run it as ``dmshift bench EXPERIMENT [options]`` or ``dmshift.bench.main(argv)``.
"""

from .._lazy import attach as _attach

__all__ = ["main", "EXPERIMENTS", "Split", "random_split", "restricted_split", "score"]

__getattr__, __dir__ = _attach(__name__, {
    "main": "._main",
    "EXPERIMENTS": ".experiments",
    "Split": ".protocol",
    "random_split": ".protocol",
    "restricted_split": ".protocol",
    "score": ".protocol",
}, globals())
