"""A fused GPU kernel for the learned kernels' pairwise confidences (Triton).

The unfused path (:meth:`PairwiseKernel.pairwise`) writes the (centers x points x h1)
first-layer activations to memory and reads them back for the second layer's matrix
product, so it is memory-bound. Here one program takes a block of points and a few
centers, forms ``a = relu(px + qc)`` chunk by chunk in registers, feeds it straight into
``a @ W2ᵀ`` on the tensor cores, and applies ``relu``, the output layer and the sigmoid
in the epilogue; only the (M, n) confidences reach memory.

Supported heads: ReLU, one or two hidden layers (``hidden=(h1,)`` or ``(h1, h2)``, the
paper's shape), in eval mode or without dropout. Anything else, or no Triton, or a tensor
that needs gradients, falls back to the unfused path, which is also the reference the
tests compare against. Precisions: ``"fp32"`` (IEEE), ``"tf32"`` and ``"bf16"``; the
first-layer sum is always formed in fp32 (it is a difference of two large embeddings) and
only its ReLU is rounded, and every matrix product accumulates in fp32.

The automatic path (``use_fused=None`` on a CUDA tensor) is taken only after the kernel
has checked itself once per process, device, precision and head shape
(:func:`self_check`): every launch configuration the autotuner may pick runs on a small
tile of the first call's data and is compared with the unfused path; where they disagree
(or the launch fails) a ``RuntimeWarning`` says so and the unfused path is used for the
rest of the process. ``use_fused=True`` skips the check.

Triton is optional (``pip install dmshift[gpu]``); this module imports without it and
:func:`supports` then says no. On a CPU tensor the kernel runs under Triton's interpreter
(NumPy, slow) when ``TRITON_INTERPRET=1`` was set before Triton was imported: that is
how it is tested without a GPU.
"""

from __future__ import annotations

import math
import os
import warnings

import torch
from torch import nn

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where Triton is absent
    triton = None
    tl = None

__all__ = ["available", "interpreting", "supports", "fused_pairwise", "resolve_precision", "self_check",
           "failed_check", "PRECISIONS"]

PRECISIONS = ("fp32", "tf32", "bf16")
_DOT_CODE = {"fp32": 0, "tf32": 1, "bf16": 2}
_FROM_TORCH = {"highest": "fp32", "high": "tf32", "medium": "bf16"}

#: the self-check's tile: points and centers (not multiples of any block size, so the masks are exercised)
CHECK_POINTS, CHECK_CENTERS = 203, 11
#: largest confidence difference from the unfused path that the self-check accepts, per precision
#: (fp32 and tf32 differ from the reference by summation order and tf32 rounding; bf16 rounds
#: the activations to 8 bits)
CHECK_TOLERANCE = {"fp32": 1e-4, "tf32": 5e-3, "bf16": 3e-2}
#: verdicts of :func:`self_check` in this process: (device, precision, hidden) -> agreed
_CHECKED: dict[tuple, bool] = {}


def available() -> bool:
    """Is Triton importable?"""
    return triton is not None


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> the precision matching ``torch.get_float32_matmul_precision()``."""
    if precision == "auto":
        return _FROM_TORCH.get(torch.get_float32_matmul_precision(), "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"The 'precision' parameter must be 'auto' or one of {PRECISIONS}. Got {precision!r} instead.")
    return precision


def _head_parts(kernel) -> tuple[nn.Linear, ...] | None:
    """The head's Linear layers when it is ReLU -> [Linear -> ReLU] -> Linear(., 1); else None."""
    hidden = getattr(kernel, "hidden", ())
    if len(hidden) not in (1, 2):
        return None
    layers = [m for m in kernel.head if not (isinstance(m, nn.Dropout) and not kernel.training)]
    if len(hidden) == 1:
        ok = len(layers) == 2 and isinstance(layers[0], nn.ReLU) and isinstance(layers[1], nn.Linear)
        return (layers[1],) if ok else None
    kinds = [nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    ok = len(layers) == 4 and all(isinstance(m, k) for m, k in zip(layers, kinds))
    return (layers[1], layers[3]) if ok else None


def supports(kernel, px: torch.Tensor) -> bool:
    """Can :func:`fused_pairwise` evaluate ``kernel`` on points ``px``?

    Needs Triton, a CUDA tensor (or Triton's interpreter for CPU tensors), float32 input,
    no gradient to track, and a ReLU head of one or two hidden layers.
    """
    if triton is None or px.dtype != torch.float32:
        return False
    if not (px.is_cuda or (px.device.type == "cpu" and interpreting())):
        return False
    if torch.is_grad_enabled() and (px.requires_grad or any(p.requires_grad for p in kernel.parameters())):
        return False
    return _head_parts(kernel) is not None


if triton is not None:

    def _pairwise_head(px_ptr, qc_ptr, w2_ptr, b2_ptr, w3_ptr, b3_ptr, out_ptr,
                       M, N, H1, H2, stride_px, stride_qc, stride_w2, stride_out,
                       BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_H2: tl.constexpr,
                       CENTERS: tl.constexpr, TWO_LAYERS: tl.constexpr, DOT: tl.constexpr,
                       UPCAST: tl.constexpr):
        """out[m, j] = sigmoid(w3 . relu(W2 relu(px[j] + qc[m]) + b2) + b3) for one (centers, points) block.

        One program: ``CENTERS`` consecutive centers x ``BLOCK_N`` points. The 1-D grid runs
        the center groups fastest, so programs that share a block of points run together
        and read it from L2. ``DOT``: 0 IEEE fp32, 1 tf32, 2 bf16 (W2 passed in bf16).
        ``UPCAST`` does bf16 products in fp32 after rounding (Triton's interpreter cannot
        multiply bf16 matrices); it is off on the GPU.
        """
        pid = tl.program_id(0)
        n_center_groups = (M + CENTERS - 1) // CENTERS
        pid_m = pid % n_center_groups
        pid_n = pid // n_center_groups
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
        n_ok = rn < N
        b3 = tl.load(b3_ptr)
        for c in range(CENTERS):
            m_raw = pid_m * CENTERS + c
            m = tl.minimum(m_raw, M - 1)  # past the end: recompute the last center, store nothing
            logit = tl.zeros((BLOCK_N,), dtype=tl.float32)
            if TWO_LAYERS:
                for h0 in range(0, H2, BLOCK_H2):
                    rh = h0 + tl.arange(0, BLOCK_H2)
                    h_ok = rh < H2
                    acc = tl.zeros((BLOCK_N, BLOCK_H2), dtype=tl.float32)
                    for k0 in range(0, H1, BLOCK_K):
                        rk = k0 + tl.arange(0, BLOCK_K)
                        k_ok = rk < H1
                        p = tl.load(px_ptr + rn[:, None] * stride_px + rk[None, :],
                                    mask=n_ok[:, None] & k_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_K) fp32
                        q = tl.load(qc_ptr + m * stride_qc + rk, mask=k_ok, other=0.0)  # (BLOCK_K,)
                        a = tl.maximum(p + q[None, :], 0.0)
                        w = tl.load(w2_ptr + rh[None, :] * stride_w2 + rk[:, None],
                                    mask=k_ok[:, None] & h_ok[None, :], other=0.0)  # (BLOCK_K, BLOCK_H2) = W2ᵀ
                        if DOT == 2:
                            if UPCAST:
                                acc += tl.dot(a.to(tl.bfloat16).to(tl.float32), w.to(tl.float32),
                                              input_precision="ieee")
                            else:
                                acc = tl.dot(a.to(tl.bfloat16), w, acc)
                        elif DOT == 1:
                            acc = tl.dot(a, w, acc, input_precision="tf32")
                        else:
                            acc = tl.dot(a, w, acc, input_precision="ieee")
                    b2 = tl.load(b2_ptr + rh, mask=h_ok, other=0.0)
                    w3 = tl.load(w3_ptr + rh, mask=h_ok, other=0.0)
                    z = tl.maximum(acc + b2[None, :], 0.0)  # (BLOCK_N, BLOCK_H2)
                    logit += tl.sum(z * w3[None, :], axis=1)
            else:
                for k0 in range(0, H1, BLOCK_K):
                    rk = k0 + tl.arange(0, BLOCK_K)
                    k_ok = rk < H1
                    p = tl.load(px_ptr + rn[:, None] * stride_px + rk[None, :],
                                mask=n_ok[:, None] & k_ok[None, :], other=0.0)
                    q = tl.load(qc_ptr + m * stride_qc + rk, mask=k_ok, other=0.0)
                    w3 = tl.load(w3_ptr + rk, mask=k_ok, other=0.0)
                    logit += tl.sum(tl.maximum(p + q[None, :], 0.0) * w3[None, :], axis=1)
            conf = 1.0 / (1.0 + tl.exp(-(logit + b3)))
            m_ok = tl.full((BLOCK_N,), m_raw, tl.int32) < M
            tl.store(out_ptr + m * stride_out + rn, conf, mask=n_ok & m_ok)

    _CONFIGS = [
        triton.Config({"BLOCK_N": bn, "BLOCK_K": bk, "CENTERS": c}, num_warps=w, num_stages=s)
        for bn, bk, c, w, s in [
            (64, 32, 4, 4, 3), (128, 32, 4, 8, 3), (64, 64, 4, 4, 3), (128, 64, 2, 8, 3),
            (128, 32, 8, 8, 4), (64, 32, 16, 4, 4), (32, 64, 8, 4, 3), (64, 64, 8, 4, 2),
        ]
    ]
    # TRITON_INTERPRET=1 (read when Triton is imported) turns these into NumPy emulations
    _fixed_kernel = triton.jit(_pairwise_head)
    _tuned_kernel = triton.autotune(configs=_CONFIGS, key=["H1", "H2", "BLOCK_H2", "TWO_LAYERS", "DOT"])(
        triton.jit(_pairwise_head))


def interpreting() -> bool:
    """Does Triton run kernels in its CPU interpreter (``TRITON_INTERPRET=1`` when it was imported)?"""
    if triton is None:
        return False
    knobs = getattr(triton, "knobs", None)  # Triton >= 3.4; older versions read the variable directly
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _check_key(kernel, px: torch.Tensor, precision: str) -> tuple:
    return (str(px.device), resolve_precision(precision), tuple(getattr(kernel, "hidden", ())))


def failed_check(kernel, px: torch.Tensor, precision: str = "auto") -> bool:
    """Has :func:`self_check` found the fused kernel wrong for this device, precision and head shape?"""
    return _CHECKED.get(_check_key(kernel, px, precision)) is False


@torch.no_grad()
def self_check(kernel, px: torch.Tensor, qc: torch.Tensor, precision: str = "auto") -> bool:
    """Does the fused kernel agree with the unfused path here? Checked once per process.

    The first call for a device, precision and head shape runs :func:`fused_pairwise` with
    each launch configuration the autotuner may choose on a tile of at most
    ``CHECK_POINTS`` points and ``CHECK_CENTERS`` centers of ``px`` (n, h) and ``qc``
    (M, h) and compares it with :meth:`PairwiseKernel.pairwise` (the reference); later
    calls return the verdict. A disagreement beyond ``CHECK_TOLERANCE``, a non-finite
    value or a failed launch gives a ``RuntimeWarning`` and False.
    """
    key = _check_key(kernel, px, precision)
    if key in _CHECKED:
        return _CHECKED[key]
    prec = key[1]
    p, q = px[:CHECK_POINTS].contiguous(), qc[:CHECK_CENTERS].contiguous()
    ref = kernel.reference_pairwise(p, q)  # (m, t) the unfused, tiled path
    tol = CHECK_TOLERANCE[prec]
    if interpreting() or triton is None:
        configs = [None]
    else:
        configs = [{**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in _CONFIGS]
    problem = None
    for cfg in configs:
        try:
            out = fused_pairwise(kernel, p, q, precision=prec, config=cfg)  # (m, t)
        except Exception as exc:  # a launch that fails on this GPU is a failed check, not a crash
            problem = f"it failed with {type(exc).__name__}: {exc}"
            break
        err = float((out.float() - ref.float()).abs().max()) if bool(torch.isfinite(out).all()) else math.inf
        if not err <= tol:
            problem = (f"its confidences differ from the unfused path's by up to {err:.3g} (tolerance {tol:g}"
                       + (f", launch configuration {cfg}" if cfg else "") + ")")
            break
    _CHECKED[key] = problem is None
    if problem is not None:
        warnings.warn(f"The fused GPU kernel (dmshift.kernels.fused) failed its self-check on {key[0]} at precision "
                      f"{prec!r} for a head of hidden sizes {key[2]}: {problem}. The unfused path is used instead for "
                      "the rest of this process; set the kernel's use_fused=False to choose it explicitly.",
                      RuntimeWarning, stacklevel=3)
    return _CHECKED[key]


def _next_pow2(v: int) -> int:
    return 1 << max(0, (int(v) - 1).bit_length())


@torch.no_grad()
def fused_pairwise(kernel, px: torch.Tensor, qc: torch.Tensor, *, precision: str = "auto",
                   out: torch.Tensor | None = None, config: dict | None = None) -> torch.Tensor:
    """Confidences (M, n) of ``kernel`` for center embeddings ``qc`` (M, h) and point embeddings ``px`` (n, h).

    Parameters
    ----------
    kernel : LearnedKernel
        A kernel for which :func:`supports` holds.
    px : Tensor of shape (n, h1), float32
    qc : Tensor of shape (M, h1), float32
    precision : {"auto", "fp32", "tf32", "bf16"}
    out : Tensor of shape (M, n), optional
        float32, row-major (rows may be strided).
    config : dict, optional
        ``{"BLOCK_N", "BLOCK_K", "CENTERS"}`` (and ``num_warps``, ``num_stages``) to bypass
        autotuning; CPU tensors (Triton's interpreter) use it or a small default.

    Returns
    -------
    Tensor of shape (M, n), float32
    """
    if triton is None:
        raise RuntimeError("the fused pairwise path needs Triton: pip install triton")
    parts = _head_parts(kernel)
    if parts is None:
        raise ValueError("the fused pairwise path supports ReLU heads with one or two hidden layers")
    prec = resolve_precision(precision)
    px = px.contiguous()
    qc = qc.to(px.dtype).contiguous()
    M, n = qc.shape[0], px.shape[0]
    H1 = px.shape[1]
    if out is None:
        out = torch.empty((M, n), dtype=torch.float32, device=px.device)
    if out.dtype != torch.float32 or out.stride(1) != 1:
        raise ValueError("out must be a float32 (M, n) tensor with unit stride along points")
    if M == 0 or n == 0:
        return out
    two = len(parts) == 2
    if two:
        lin2, lin3 = parts
        H2 = lin2.out_features
        w2 = lin2.weight.detach()  # (H2, H1)
        w2 = (w2.to(torch.bfloat16) if prec == "bf16" else w2.float()).contiguous()
        b2 = lin2.bias.detach().float().contiguous()
    else:
        (lin3,) = parts
        H2 = 1
        w2 = b2 = lin3.weight.detach().float().reshape(-1).contiguous()  # unused placeholders
    w3 = lin3.weight.detach().float().reshape(-1).contiguous()  # (H2,) or (H1,)
    b3 = lin3.bias.detach().float().reshape(1).contiguous()
    block_h2 = max(16, min(256, _next_pow2(H2)))
    args = (px, qc, w2, b2, w3, b3, out, M, n, H1, H2, px.stride(0), qc.stride(0), w2.stride(0), out.stride(0))
    consts = {"BLOCK_H2": block_h2, "TWO_LAYERS": two, "DOT": _DOT_CODE[prec], "UPCAST": interpreting()}
    if config is None and not interpreting():
        def grid(meta):
            return (triton.cdiv(M, meta["CENTERS"]) * triton.cdiv(n, meta["BLOCK_N"]),)
        _tuned_kernel[grid](*args, **consts)
        return out
    cfg = {"BLOCK_N": 16, "BLOCK_K": 16, "CENTERS": 2, **(config or {})}
    launch = {k: cfg.pop(k) for k in ("num_warps", "num_stages") if k in cfg}
    if interpreting():
        launch = {}
    grid = (triton.cdiv(M, cfg["CENTERS"]) * triton.cdiv(n, cfg["BLOCK_N"]),)
    _fixed_kernel[grid](*args, **consts, **cfg, **launch)
    return out
