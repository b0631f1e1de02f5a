"""scikit-learn-facing estimators, one per file."""

from .ddc import DDCClustering
from .dms import DMSClustering
from .kcl import KCLClustering
from .l2c import L2CClustering
from .label_spreading import LabelSpreadingClustering
from .mcl import MCLClustering
from .meanshift import MeanShift
from .mmdc import MMDCClustering
from .ss_kmeans import SemiSupervisedKMeans

__all__ = ["DMSClustering", "KCLClustering", "MCLClustering", "DDCClustering", "MMDCClustering",
           "L2CClustering", "MeanShift", "LabelSpreadingClustering",
           "SemiSupervisedKMeans"]
