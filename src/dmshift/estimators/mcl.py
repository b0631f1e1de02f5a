"""``MCLClustering``: clustering learnt from pairwise constraints by the meta classification likelihood.

Hsu, Lv, Schlosser, Odom & Kira, "Multi-class classification without multi-class labels"
(ICLR 2019), the KCL authors' later pairwise loss. With ``s_ij = sum_k p_ik p_jk`` the
probability that points i and j share a cluster, a same pair costs ``-log s_ij`` and a
different pair ``-log(1 - s_ij)`` (:func:`dmshift.losses.mcl_loss`). Everything else
(backbones, batches, training, restarts, prediction) is shared with
:class:`~dmshift.estimators.kcl.KCLClustering`.
"""

from __future__ import annotations

from ..losses import mcl_loss
from ._pairwise import PairwiseClustering

__all__ = ["MCLClustering"]


class MCLClustering(PairwiseClustering):
    """MCL: a softmax clustering network trained from partial labels and/or pairs.

    Parameters
    ----------
    n_clusters : int, default=10
        Softmax outputs: an upper bound on the number of clusters.
    hidden : tuple of int or None, default=None
        Vectors: widths of the MLP body (None: 200-200-500). Images: widths of the fully
        connected layers after the two convolutions (None: 500).
    input_shape : (H, W) or (C, H, W), optional
        Set it when the rows of ``X`` are flattened images (LeNet body); None: vectors.
    n_init : int, default=1
        Random restarts; the one with the lowest pairwise loss on fixed batches is kept.
    max_steps : int, default=2000
    batch_size : int, default=100
        Points per mini-batch (``batch_size // 2`` known relations and their end points).
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule; "cosine" decays it to 0 over ``max_steps``, which steadies
        the final model.
    on_conflict : {"raise", "majority"}, default="raise"
    standardize : bool or {"feature", "global", "image", "none"}, default=True
        Centre and scale the inputs in float64: True divides each feature by its standard
        deviation for vectors and uses one mean and standard deviation over all pixels for
        images ("image"); "feature", "global" (one RMS scale) and False ("none") as named;
        see :mod:`dmshift.scaling`.
    time_limit : float or None, default=None
    verbose : bool, default=False
    device : str, default="auto"
    random_state : int, RandomState or None, default=None
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints (see :mod:`dmshift.checkpoint`); ``fit(...,
        resume=True)`` continues from them.
    checkpoint_every : int, default=100
        Training steps between checkpoints.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    n_clusters_ : int
        Outputs chosen by at least one training point.
    nets_ : list of torch.nn.Module
    run_scores_ : ndarray of shape (n_init,)
    best_run_ : int
    training_ : dict
    side_info_ : dict

    See Also
    --------
    dmshift.estimators.kcl.KCLClustering : the same model with the KL-divergence loss.
    """

    def __init__(self, *, n_clusters=10, hidden=None, input_shape=None, n_init=1, max_steps=2000, batch_size=100,
                 lr=1e-3, weight_decay=0.0, schedule="constant", on_conflict="raise", standardize=True,
                 time_limit=None, verbose=False, device="auto", random_state=None, checkpoint_dir=None,
                 checkpoint_every=100):
        self.n_clusters = n_clusters
        self.hidden = hidden
        self.input_shape = input_shape
        self.n_init = n_init
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.on_conflict = on_conflict
        self.standardize = standardize
        self.time_limit = time_limit
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every

    def _pair_loss(self, logits, same):
        return mcl_loss(logits, same)
