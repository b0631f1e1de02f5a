"""scikit-learn-facing estimators, one per file (each imported when first used)."""

from .._lazy import attach as _attach

__all__ = ["DMSClustering", "KCLClustering", "MCLClustering", "DDCClustering", "MMDCClustering",
           "L2CClustering", "MeanShift", "LabelSpreadingClustering",
           "SemiSupervisedKMeans"]

__getattr__, __dir__ = _attach(__name__, {
    "DDCClustering": ".ddc",
    "DMSClustering": ".dms",
    "KCLClustering": ".kcl",
    "L2CClustering": ".l2c",
    "LabelSpreadingClustering": ".label_spreading",
    "MCLClustering": ".mcl",
    "MeanShift": ".meanshift",
    "MMDCClustering": ".mmdc",
    "SemiSupervisedKMeans": ".ss_kmeans",
}, globals())
