"""Kernels K(x, c) in [0, 1]: learned (subtract, concat) and analytic (Gaussian, flat)."""

from .base import DEFAULT_MEMORY_BUDGET, LearnedKernel, PairwiseKernel, default_hidden_sizes
from .concat import ConcatKernel
from .gaussian import FlatKernel, GaussianKernel
from .subtract import SubtractKernel

__all__ = [
    "PairwiseKernel", "LearnedKernel", "SubtractKernel", "ConcatKernel", "GaussianKernel", "FlatKernel",
    "default_hidden_sizes", "make_kernel", "DEFAULT_MEMORY_BUDGET",
]

KERNELS = {"subtract": SubtractKernel, "concat": ConcatKernel}


def make_kernel(kind: str, n_features: int, hidden: tuple[int, ...], **kwargs) -> "LearnedKernel":
    """Build a learned kernel by name."""
    if kind not in KERNELS:
        raise ValueError(f"The 'kernel' parameter must be one of {sorted(KERNELS)}. Got {kind!r} instead.")
    return KERNELS[kind](n_features, hidden, **kwargs)
