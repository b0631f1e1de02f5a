"""scikit-learn-facing estimators, one per file."""

from .dms import DMSClustering

__all__ = ["DMSClustering"]
