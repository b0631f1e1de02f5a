"""``KCLClustering``: clustering learnt from pairwise constraints by the KL-divergence contrastive loss.

Hsu & Kira, "Neural network-based clustering using pairwise constraints" (2016). A network
with a softmax over ``n_clusters`` outputs is trained so that the output distributions
of a same pair agree and those of a different pair diverge by at least ``margin``
(:func:`dmshift.losses.kcl_loss`, eqs. 1-5). ``n_clusters`` is an upper bound: outputs
that no point needs stay empty (§3.2.2), and ``n_clusters_`` counts the ones used.
Batches, backbones, training and restarts come from :mod:`._pairwise` and :mod:`._softmax`.
"""

from __future__ import annotations

from ..losses import kcl_loss
from ._pairwise import PairwiseClustering, check_margin

__all__ = ["KCLClustering"]


class KCLClustering(PairwiseClustering):
    """KCL: a softmax clustering network trained from partial labels and/or pairs.

    Parameters
    ----------
    n_clusters : int, default=10
        Softmax outputs: an upper bound on the number of clusters.
    hidden : tuple of int or None, default=None
        Vectors: widths of the MLP body (None: 200-200-500). Images: widths of the fully
        connected layers after the two convolutions (None: the paper's 500).
    input_shape : (H, W) or (C, H, W), optional
        Set it when the rows of ``X`` are flattened images: the body becomes the paper's
        LeNet (20 and 50 5x5 filters with batch norm, 2x2 max pooling). None: vectors.
    margin : float, default=2.0
        Hinge margin of the KL divergence for different pairs (eq. 2).
    n_init : int, default=1
        Random restarts; the one with the lowest pairwise loss on fixed batches is kept (§3.1).
    max_steps : int, default=2000
        Training steps (mini-batches) per restart.
    batch_size : int, default=100
        Points per mini-batch: ``batch_size // 2`` known relations are drawn and every
        known pair among their end points enters the loss.
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
    schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule; "cosine" decays it to 0 over ``max_steps``, which steadies
        the final model.
    on_conflict : {"raise", "majority"}, default="raise"
        What to do with contradictory side information (e.g. noisy pairs), see
        :meth:`dmshift.SideInfo.build`.
    standardize : bool or {"feature", "global", "image", "none"}, default=True
        Centre and scale the inputs in float64: True divides each feature by its standard
        deviation for vectors and uses one mean and standard deviation over all pixels for
        images ("image"); "feature", "global" (one RMS scale) and False ("none") as named;
        see :mod:`dmshift.scaling`.
    time_limit : float or None, default=None
        Seconds of training per restart after which training stops.
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
        Cluster of each training point: argmax of the softmax, numbered by decreasing size.
    n_clusters_ : int
        Outputs chosen by at least one training point.
    nets_ : list of torch.nn.Module
        The trained network (one).
    run_scores_ : ndarray of shape (n_init,)
        Pairwise loss of each restart on the scoring batches.
    best_run_ : int
    training_ : dict
        Steps, stop reason, seconds and loss history of the kept run.
    side_info_ : dict
        Summary of the side information used.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from dmshift.estimators.kcl import KCLClustering
    >>> X, y = make_blobs(300, centers=3, random_state=0)
    >>> y_partial = y.copy(); y_partial[50:] = -1
    >>> km = KCLClustering(n_clusters=10, max_steps=200, random_state=0).fit(X, y_partial)
    >>> km.n_clusters_
    3
    """

    def __init__(self, *, n_clusters=10, hidden=None, input_shape=None, margin=2.0, n_init=1, max_steps=2000,
                 batch_size=100, lr=1e-3, weight_decay=0.0, schedule="constant", on_conflict="raise",
                 standardize=True, time_limit=None, verbose=False, device="auto", random_state=None,
                 checkpoint_dir=None, checkpoint_every=100):
        self.n_clusters = n_clusters
        self.hidden = hidden
        self.input_shape = input_shape
        self.margin = margin
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

    def _check_params(self):
        super()._check_params()
        check_margin(self.margin)

    def _pair_loss(self, logits, same):
        return kcl_loss(logits, same, margin=float(self.margin))
