"""The fused pairwise path against the unfused reference, and the dispatch between them.

* The reference (tiled, in-place) path is checked against the naive per-pair forward on CPU.
* The Triton kernel runs on CPU under Triton's interpreter (``TRITON_INTERPRET=1``, in a
  subprocess because Triton reads it at import) on tiny shapes, and on the GPU when there
  is one. Tolerances on confidences in [0, 1]: fp32 1e-5, tf32 5e-3, bf16 2e-2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from dmshift.kernels import ConcatKernel, SubtractKernel
from dmshift.kernels import fused
from dmshift.meanshift import find_centers

SRC = str(Path(__file__).resolve().parents[2] / "src")
TOL = {"fp32": 1e-5, "tf32": 5e-3, "bf16": 2e-2}


def _kernel(cls, d, hidden, activation="relu", seed=0):
    torch.manual_seed(seed)
    return cls(d, hidden, activation=activation).eval()


@pytest.mark.parametrize("cls", [SubtractKernel, ConcatKernel])
@pytest.mark.parametrize("hidden", [(24, 12), (16,), (), (20, 12, 8)])
@pytest.mark.parametrize("budget", [2**12, 2**16, 2**24])
def test_reference_path_matches_naive_forward(cls, hidden, budget):
    k = _kernel(cls, 10, hidden)
    X = torch.randn(53, 10)
    C = torch.randn(7, 10)
    with torch.no_grad():
        H = k.pairwise(k.embed_points(X), k.embed_centers(C), memory_budget=budget)  # (7, 53)
        naive = torch.sigmoid(k.naive_logit(X[None, :, :], C[:, None, :]))  # (7, 53)
    torch.testing.assert_close(H, naive, atol=1e-6, rtol=1e-5)


def test_reference_path_with_gradients_and_gelu():
    k = _kernel(SubtractKernel, 6, (8, 4), activation="gelu")
    X, C = torch.randn(20, 6), torch.randn(3, 6)
    H = k.pairwise(k.embed_points(X), k.embed_centers(C))
    H.sum().backward()  # the grad-enabled path stays differentiable
    assert k.first.weight.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(k.pairwise(k.embed_points(X), k.embed_centers(C)), H.detach())


def test_supports_rejects_what_the_kernel_cannot_do():
    px = torch.zeros(4, 8)
    relu2 = _kernel(SubtractKernel, 5, (8, 4))
    assert not fused.supports(_kernel(SubtractKernel, 5, (8, 4), activation="gelu"), px)
    assert not fused.supports(_kernel(SubtractKernel, 5, (8, 4, 2)), px)
    assert not fused.supports(_kernel(SubtractKernel, 5, ()), px)
    assert not fused.supports(relu2, px.double())
    if not fused.interpreting():  # CPU tensors only under the interpreter
        assert not fused.supports(relu2, px)
    with torch.enable_grad():
        assert not fused.supports(relu2, px.requires_grad_())


def test_resolve_precision_follows_torch_setting():
    before = torch.get_float32_matmul_precision()
    try:
        for setting, expect in [("highest", "fp32"), ("high", "tf32"), ("medium", "bf16")]:
            torch.set_float32_matmul_precision(setting)
            assert fused.resolve_precision("auto") == expect
    finally:
        torch.set_float32_matmul_precision(before)
    assert fused.resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="'precision' parameter"):
        fused.resolve_precision("fp8")


def test_dispatch_uses_fused_path_only_where_allowed(monkeypatch):
    calls = []

    def fake(kernel, px, qc, *, precision, out=None):
        calls.append(precision)
        return torch.zeros(qc.shape[0], px.shape[0])

    monkeypatch.setattr(fused, "supports", lambda kernel, px: True)
    monkeypatch.setattr(fused, "fused_pairwise", fake)
    k = _kernel(SubtractKernel, 5, (8, 4))
    px, qc = torch.randn(9, 8), torch.randn(3, 8)
    with torch.no_grad():
        k.pairwise(px, qc)  # default: CUDA only, so the reference path on CPU
        assert calls == []
        big = k.bytes_per_pair(px)
        k.use_fused = True
        k.precision = "bf16"
        assert k.pairwise(px, qc).abs().sum() == 0 and calls == ["bf16"]
        assert k.bytes_per_pair(px) < big  # tiles grow when no intermediates are stored
        k.use_fused = False
        k.pairwise(px, qc)
        assert calls == ["bf16"]


_INTERPRETER_SCRIPT = textwrap.dedent("""
    import numpy as np, torch
    from dmshift.kernels import SubtractKernel, ConcatKernel
    from dmshift.kernels import fused
    from dmshift.meanshift import find_centers
    assert fused.interpreting()
    TOL = {"fp32": 1e-5, "tf32": 1e-5, "bf16": 2e-2}  # the interpreter does tf32 in fp32
    torch.manual_seed(0)
    cases = [(SubtractKernel, 12, (24, 20), 5, 37, {"BLOCK_N": 16, "BLOCK_K": 16, "CENTERS": 2}),
             (ConcatKernel, 9, (40, 300), 3, 21, {"BLOCK_N": 16, "BLOCK_K": 32, "CENTERS": 4}),
             (SubtractKernel, 7, (20,), 4, 18, {"BLOCK_N": 32, "BLOCK_K": 16, "CENTERS": 1})]
    with torch.no_grad():
        for cls, d, hidden, M, n, cfg in cases:
            k = cls(d, hidden).eval()
            X = torch.randn(n, d)
            px, qc = k.embed_points(X), k.embed_centers(X[:M] + 0.1)
            ref = k.pairwise(px, qc)
            for prec in ("fp32", "tf32", "bf16"):
                out = fused.fused_pairwise(k, px, qc, precision=prec, config=dict(cfg))
                err = float((out - ref).abs().max())
                assert err <= TOL[prec], (cls.__name__, hidden, prec, err)
            # strided output rows and the dispatch through LearnedKernel.pairwise
            big = torch.full((M, n + 5), -1.0)
            fused.fused_pairwise(k, px, qc, precision="fp32", out=big[:, :n], config=dict(cfg))
            assert float((big[:, :n] - ref).abs().max()) <= 1e-5 and bool((big[:, n:] == -1).all())
        # mean shift end to end: same converged inlier sets through either path
        k = SubtractKernel(6, (16, 8)).eval()
        X = torch.cat([torch.randn(20, 6) * 0.3 + 2, torch.randn(20, 6) * 0.3 - 2])
        k.init_distance_prior(X)
        px, qx = k.embed_points(X), k.embed_centers(X)
        seeds = np.array([0, 7, 25, 33])
        k.use_fused = False
        a = find_centers(k, px, qx, seeds)
        k.use_fused, k.precision = True, "fp32"
        b = find_centers(k, px, qx, seeds)
        assert (a.fingerprint == b.fingerprint).all() and (a.count == b.count).all()
        torch.testing.assert_close(a.qc, b.qc, atol=1e-4, rtol=1e-4)
    print("ok")
""")


@pytest.mark.skipif(not fused.available(), reason="Triton is not installed")
def test_triton_kernel_under_interpreter_matches_reference():
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _INTERPRETER_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


needs_gpu = pytest.mark.skipif(not (torch.cuda.is_available() and fused.available()),
                               reason="the fused kernel's GPU test needs CUDA and Triton")


@needs_gpu
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
@pytest.mark.parametrize("hidden", [(392, 196), (64,)])
def test_fused_matches_reference_on_gpu(precision, hidden):
    torch.manual_seed(0)
    k = SubtractKernel(784, hidden).cuda().eval()
    X = torch.randn(3000, 784, device="cuda") * 0.05
    k.init_distance_prior(X)
    with torch.no_grad():
        px, qc = k.embed_points(X), k.embed_centers(X[:257])
        k.use_fused = False
        ref = k.pairwise(px, qc)
        k.use_fused = None
        out = fused.fused_pairwise(k, px, qc, precision=precision)
    assert float((out - ref).abs().max()) <= TOL[precision]
    assert float(((out > 0.5) != (ref > 0.5)).float().mean()) <= 1e-3


@needs_gpu
def test_fused_dispatch_on_gpu_keeps_mean_shift_results():
    torch.manual_seed(0)
    k = SubtractKernel(32, (64, 32)).cuda().eval()
    X = torch.cat([torch.randn(500, 32, device="cuda") * 0.3 + s for s in (-2.0, 0.0, 2.0)])
    k.init_distance_prior(X)
    with torch.no_grad():
        px, qx = k.embed_points(X), k.embed_centers(X)
        seeds = np.arange(0, 1500, 50)
        k.use_fused = False
        a = find_centers(k, px, qx, seeds)
        k.use_fused, k.precision = None, "fp32"
        b = find_centers(k, px, qx, seeds)
    assert (a.count == b.count).mean() >= 0.95


def test_works_without_triton():
    script = textwrap.dedent("""
        import sys
        sys.modules["triton"] = None  # import triton now raises ImportError
        sys.modules["triton.language"] = None
        import torch
        from dmshift.kernels import SubtractKernel, fused
        assert not fused.available() and not fused.interpreting()
        k = SubtractKernel(5, (8, 4)).eval()
        k.use_fused = True  # asks for the fused path; falls back to the reference
        with torch.no_grad():
            assert k.pairwise(torch.randn(3, 8), torch.randn(2, 8)).shape == (2, 3)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def _wrong_then_count(calls, wrong: bool):
    """A stand-in for fused_pairwise: the reference path's confidences, off by 0.5 when ``wrong``."""
    from dmshift.kernels.base import PairwiseKernel

    def fake(kernel, px, qc, *, precision, out=None, config=None):
        calls.append(config)
        ref = PairwiseKernel.pairwise(kernel, px, qc)
        return ref + 0.5 if wrong else ref
    return fake


def test_automatic_fused_path_checks_itself_and_falls_back_with_a_warning(monkeypatch):
    from dmshift.kernels import base
    calls = []
    monkeypatch.setattr(fused, "_CHECKED", {})
    monkeypatch.setattr(fused, "supports", lambda kernel, px: True)
    monkeypatch.setattr(fused, "fused_pairwise", _wrong_then_count(calls, wrong=True))
    monkeypatch.setattr(base, "_fused_by_default", lambda px: True)  # as for a CUDA tensor
    k = _kernel(SubtractKernel, 5, (8, 4))
    px, qc = torch.randn(300, 8), torch.randn(13, 8)
    with torch.no_grad():
        k.use_fused = False
        ref = k.pairwise(px, qc)
        k.use_fused = None
        with pytest.warns(RuntimeWarning, match=r"failed its self-check .*differ from the unfused path's by up to 0\.5"):
            out = k.pairwise(px, qc)
        torch.testing.assert_close(out, ref)
        n_checked = len(calls)
        assert n_checked >= 1
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once per process: no second warning, no second check
            torch.testing.assert_close(k.pairwise(px, qc), ref)
        assert len(calls) == n_checked
        assert k.bytes_per_pair(px) == 3 * 4 * 8  # the tiles are sized for the unfused path again


def test_automatic_fused_path_is_used_once_it_agrees(monkeypatch):
    from dmshift.kernels import base
    calls = []
    monkeypatch.setattr(fused, "_CHECKED", {})
    monkeypatch.setattr(fused, "supports", lambda kernel, px: True)
    monkeypatch.setattr(fused, "fused_pairwise", _wrong_then_count(calls, wrong=False))
    monkeypatch.setattr(base, "_fused_by_default", lambda px: True)
    k = _kernel(SubtractKernel, 5, (8, 4))
    px, qc = torch.randn(300, 8), torch.randn(13, 8)
    import warnings
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        k.pairwise(px, qc)
        n_checked = len(calls) - 1  # the check's launches, then the call itself
        k.pairwise(px, qc)
    assert n_checked >= 1 and len(calls) == n_checked + 2
    assert fused._CHECKED == {("cpu", fused.resolve_precision("auto"), (8, 4)): True}


def test_self_check_counts_a_failed_launch_as_a_disagreement(monkeypatch):
    monkeypatch.setattr(fused, "_CHECKED", {})

    def broken(kernel, px, qc, *, precision, out=None, config=None):
        raise RuntimeError("no kernel image is available for execution on the device")
    monkeypatch.setattr(fused, "fused_pairwise", broken)
    k = _kernel(SubtractKernel, 5, (8,))
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="failed with RuntimeError: no kernel image"):
        assert not fused.self_check(k, torch.randn(20, 8), torch.randn(3, 8), "fp32")
    assert fused.failed_check(k, torch.randn(2, 8), "fp32")
