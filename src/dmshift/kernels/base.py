"""What a mean-shift kernel is in dmshift: confidences K(x, c) in [0, 1], factorised.

A kernel splits into a *point role* and a *center role* embedding, both affine in their
input, and a function of their sum. Because the center role is affine, the embedding of
a weighted mean of points is the weighted mean of their embeddings, so mean shift can run
entirely in embedding space: each step costs one pass of the head over (center, point)
pairs and never re-embeds the points. This module holds the interface and the tiled
pairwise evaluation; it holds no training and no clustering.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PairwiseKernel", "LearnedKernel", "tile_sizes", "DEFAULT_MEMORY_BUDGET", "CPU_TILE_BYTES",
           "CPU_TILE_PAIRS"]

#: Default memory budget (bytes) for one tile of pairwise intermediate values.
DEFAULT_MEMORY_BUDGET = 256 * 2**20

#: Cap on one tile's intermediate values on the CPU: about a core's L2 cache, or
#: ``CPU_TILE_PAIRS`` pairs when those take more (wide kernels)
CPU_TILE_BYTES = 2**20
CPU_TILE_PAIRS = 4096


def tile_sizes(n_centers: int, n_points: int, bytes_per_pair: int, budget: int) -> tuple[int, int]:
    """Tile shape (centers, points) whose intermediate values fit in ``budget`` bytes."""
    pairs = max(1, budget // max(1, bytes_per_pair))
    tm = max(1, min(n_centers, int(math.sqrt(pairs))))
    tn = min(n_points, max(1, pairs // tm))
    if tn == n_points:  # spend the rest of the budget on centers
        tm = max(1, min(n_centers, pairs // max(1, n_points)))
    return tm, tn


def _fused_by_default(px: torch.Tensor) -> bool:
    """Is the fused path taken automatically (``use_fused=None``) for ``px``? For CUDA tensors."""
    return px.is_cuda


class PairwiseKernel(nn.Module):
    """Base class: confidences K(x, c) in [0, 1] through point/center embeddings.

    Subclasses define :meth:`embed_points`, :meth:`embed_centers` (affine maps) and
    :meth:`confidence_from` (a function of a point embedding and a center embedding,
    broadcasting over leading dimensions).
    """

    #: confidence above which a point counts as an inlier of a center
    inlier_threshold: float = 0.5

    def embed_points(self, x: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., h)
        raise NotImplementedError

    def embed_centers(self, x: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., h)
        raise NotImplementedError

    def confidence_from(self, px: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bytes_per_pair(self, px: torch.Tensor) -> int:
        """Bytes of intermediate values per (center, point) pair, for tiling."""
        return 4 * px.element_size() * px.shape[-1]

    def pairwise(self, px: torch.Tensor, qc: torch.Tensor, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """Confidences of every center for every point, tile by tile.

        Parameters
        ----------
        px : Tensor of shape (n, h)
            Point embeddings.
        qc : Tensor of shape (M, h)
            Center embeddings.

        Returns
        -------
        Tensor of shape (M, n)
        """
        M, n = qc.shape[0], px.shape[0]
        if out is None:
            out = torch.empty((M, n), dtype=px.dtype, device=px.device)
        bpp = self.bytes_per_pair(px)
        if px.device.type == "cpu":
            # tiles that stay in cache are several times faster than budget-sized ones, but
            # matrix products need enough rows to run at speed
            memory_budget = min(memory_budget, max(CPU_TILE_BYTES, CPU_TILE_PAIRS * bpp))
        tm, tn = tile_sizes(M, n, bpp, memory_budget)
        for i in range(0, M, tm):
            q = qc[i:i + tm, None, :]  # (tm, 1, h)
            for j in range(0, n, tn):
                out[i:i + tm, j:j + tn] = self._tile_confidence(px[None, j:j + tn, :], q)  # (tm, tn)
        return out

    def _tile_confidence(self, px: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        """Confidences of one tile, (1, tn, h) points and (tm, 1, h) centers -> (tm, tn)."""
        return self.confidence_from(px, qc)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """K(x, c) for broadcastable ``x`` (..., d) and ``c`` (..., d): the naive reference path."""
        return self.confidence_from(self.embed_points(x), self.embed_centers(c))


def _principal_directions(X: torch.Tensor, k: int, max_rows: int = 4096) -> torch.Tensor:
    """The at most ``k`` leading principal axes (k', N) of ``X`` (n, N), from at most ``max_rows`` of
    its rows (evenly spaced, no random draw); axes with no variance are left out."""
    step = max(1, X.shape[0] // max_rows)
    Xc = X[::step].double()
    Xc = Xc - Xc.mean(0)
    _, S, Vt = torch.linalg.svd(Xc, full_matrices=False)
    keep = int((S > 1e-9 * S[0].clamp_min(1e-300)).sum()) if S.numel() else 0
    return Vt[:min(k, keep)].to(X.dtype)


def _make_activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"The 'activation' parameter must be 'relu', 'gelu' or 'tanh'. Got {name!r} instead.")


def default_hidden_sizes(n_features: int, n_layers: int, width_cap: int | None = None) -> tuple[int, ...]:
    """Hidden widths N/2, N/4, ... (paper Table 1) for ``n_layers`` fully connected layers.

    ``n_layers`` counts the output layer, so 3 layers give (N/2, N/4). Widths are at least
    8 and at most ``width_cap`` (when given).
    """
    sizes = []
    w = n_features
    for _ in range(n_layers - 1):
        w = max(8, w // 2)
        sizes.append(min(w, width_cap) if width_cap else w)
    return tuple(sizes)


class LearnedKernel(PairwiseKernel):
    """A trainable kernel: an affine first layer split into point/center roles, then an MLP.

    ``hidden`` lists the fully connected widths before the output unit; an empty tuple is a
    single fully connected layer straight to the logit. The head applies the activation to
    the first layer's output, then the remaining layers, and a sigmoid.
    """

    def __init__(self, n_features: int, hidden: tuple[int, ...], activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        self.n_features = int(n_features)
        self.hidden = tuple(int(h) for h in hidden)
        self.first_width = self.hidden[0] if self.hidden else 1
        layers: list[nn.Module] = []
        if self.hidden:
            layers.append(_make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            for a, b in zip(self.hidden[:-1], self.hidden[1:]):
                layers += [nn.Linear(a, b), _make_activation(activation)]
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
            layers.append(nn.Linear(self.hidden[-1], 1))
        self.head = nn.Sequential(*layers)

    def logit_from(self, px: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        """Logits of K for broadcastable point (..., h) and center (..., h) embeddings."""
        pre = px + qc
        if not self.hidden:
            return pre[..., 0]
        return self.head(pre)[..., 0]

    def confidence_from(self, px: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit_from(px, qc))

    def bytes_per_pair(self, px: torch.Tensor) -> int:
        if self._fusable(px):
            return 16  # only the (M, n) output and its consumers' temporaries are materialised
        widest = max(self.hidden) if self.hidden else 1
        return 3 * px.element_size() * widest

    #: Precision of the fused GPU path: "auto" follows ``torch.get_float32_matmul_precision()``
    #: ("highest" -> "fp32", "high" -> "tf32", "medium" -> "bf16"); or "fp32", "tf32", "bf16".
    precision: str = "auto"
    #: Fused path (:mod:`dmshift.kernels.fused`): None uses it for CUDA tensors where it applies
    #: once it has passed its self-check in this process (:func:`~dmshift.kernels.fused.self_check`);
    #: True wherever it applies, unchecked (CPU tensors under Triton's interpreter too); False never.
    use_fused: bool | None = None

    def _fusable(self, px: torch.Tensor) -> bool:
        if self.use_fused is False or (self.use_fused is None and not _fused_by_default(px)):
            return False
        from .fused import failed_check, supports  # imports Triton only when the fused path may apply
        return supports(self, px) and not (self.use_fused is None and failed_check(self, px, self.precision))

    def reference_pairwise(self, px: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        """Confidences (M, n) by the tiled path of :class:`PairwiseKernel`, never the fused one: the
        reference :func:`dmshift.kernels.fused.self_check` compares the fused kernel with."""
        return PairwiseKernel.pairwise(self, px, qc)

    def pairwise(self, px: torch.Tensor, qc: torch.Tensor, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """Confidences (M, n) of centers ``qc`` (M, h) for points ``px`` (n, h).

        On CUDA, with Triton installed and a ReLU head of one or two hidden layers, this runs
        the fused kernel of :mod:`dmshift.kernels.fused` (no (M, n, h) intermediates) once it
        has passed its self-check; elsewhere the tiled path of :class:`PairwiseKernel`, which
        is also the reference.
        """
        if self._fusable(px):
            from . import fused
            if self.use_fused or fused.self_check(self, px, qc, self.precision):
                return fused.fused_pairwise(self, px, qc, precision=self.precision, out=out)
        return super().pairwise(px, qc, memory_budget=memory_budget, out=out)

    def _tile_confidence(self, px: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or self.training:
            return self.confidence_from(px, qc)
        # inference: one buffer per layer, activations in place, 2-D matrix products
        pre = px + qc  # (tm, tn, h)
        tm, tn = pre.shape[:2]
        z = pre.view(tm * tn, -1)
        if not self.hidden:
            return torch.sigmoid(z[:, 0]).view(tm, tn)
        for layer in self.head:
            if isinstance(layer, nn.ReLU):
                z = z.relu_()
            elif isinstance(layer, nn.Linear) and layer.out_features == 1:
                z = torch.addmv(layer.bias, z, layer.weight[0])[:, None]  # addmm is slow for one column
            elif isinstance(layer, nn.Linear):
                z = torch.addmm(layer.bias, z, layer.weight.T)
            else:
                z = layer(z)
        return z[:, 0].sigmoid_().view(tm, tn)

    def naive_logit(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Reference path: the layers of Table 1 applied to the materialised pair."""
        raise NotImplementedError

    def _first_weight(self) -> torch.Tensor:
        """The first fully connected layer's weight (h, N) acting on the pair representation."""
        return self.first.weight

    @torch.no_grad()
    def point_map(self) -> torch.Tensor:
        """The linear part of the point embedding as a matrix (N, h): ``embed_points(x) - embed_points(0)
        = x @ point_map()``. The space where this kernel's first layer tells points apart: the learnt
        graph of :mod:`dmshift.label_stage` looks for neighbours there."""
        p = next(self.parameters())
        eye = torch.eye(self.n_features, dtype=p.dtype, device=p.device)
        zero = torch.zeros(1, self.n_features, dtype=p.dtype, device=p.device)
        return self.embed_points(eye) - self.embed_points(zero)

    @torch.no_grad()
    def init_distance_prior(self, X: torch.Tensor, *, quantile: float = 0.02, sharpness: float = 4.0,
                            generator: torch.Generator | None = None, principal: bool = False) -> None:
        """Start as a classical distance kernel instead of an arbitrary function.

        First-layer rows come in pairs ``(w, -w)`` so that ``relu(u) + relu(-u) = |u|``; the
        following layers start non-negative and the output layer negative, so the initial
        logit is ``sharpness * (1 - g(x - c) / g_q)`` with ``g`` a non-negative, L1-like
        distance in a random projection and ``g_q`` its ``quantile`` over random pairs of
        ``X`` (n, N). The kernel thus begins as mean shift with a data-driven bandwidth
        and training reshapes it; without this, training sits for hundreds of steps on a
        plateau where every point gets the positive rate. With ``principal``, the projection's
        leading directions are the principal axes of ``X`` (random ones beyond its rank), so
        that the kernel starts as a distance in the data's main directions, not in random ones.
        """
        if not self.hidden:
            return
        W = self._first_weight()
        h = W.shape[0]
        half = h // 2
        if principal and half:
            axes = _principal_directions(X, half)  # (k, N), k <= half
            reps = W.shape[1] // axes.shape[1]  # a concat kernel's filters all compute x - c at first
            axes = axes.repeat(1, reps) / reps
            W[:axes.shape[0]] = axes * W[:half].norm(dim=1).mean()
        W[half:2 * half] = -W[:half]
        if h % 2:
            W[-1] = 0.0
        self.first.bias.zero_()
        linears = [m for m in self.head if isinstance(m, torch.nn.Linear)]
        for lin in linears[:-1]:
            lin.weight.uniform_(0.0, 2.0 / lin.in_features, generator=generator)
            lin.bias.zero_()
        last = linears[-1]
        last.weight.fill_(-1.0 / last.in_features)
        last.bias.zero_()
        n = X.shape[0]
        m = min(4096, n * n)
        i = torch.randint(0, n, (m,), generator=generator, device=X.device)
        j = torch.randint(0, n, (m,), generator=generator, device=X.device)
        g = -self.confidence_logit(X[i], X[j])  # (m,) >= 0
        g = g[i != j] if bool((i != j).any()) else g
        gq = float(torch.quantile(g.float(), quantile).clamp_min(1e-6))
        last.weight.mul_(sharpness / gq)
        last.bias.fill_(sharpness)

    def confidence_logit(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Logit of K for paired points ``x`` (..., N) and centers ``c`` (..., N)."""
        return self.logit_from(self.embed_points(x), self.embed_centers(c))
