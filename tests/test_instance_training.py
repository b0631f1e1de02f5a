"""Kernel training (``dmshift.instance_training``) and the DMS loss, on tiny data."""

import numpy as np
import torch

from dmshift.constraints import SideInfo
from dmshift.instance_training import KernelSpec, TrainingParams, build_kernel, train_kernel
from dmshift.losses import dms_loss


def test_dms_loss_is_the_mean_bce_over_labelled_points():
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    tgt = torch.tensor([[1.0, 0.0, -1.0]])
    expected = (np.log1p(np.exp(-0.5)) + np.log1p(np.exp(-1.0))) / 2
    assert abs(float(dms_loss(logits, tgt)) - expected) < 1e-6
    # a part of a batch is normalised by the whole batch's count
    assert abs(float(dms_loss(logits, tgt, torch.cat([tgt, tgt]))) - expected / 2) < 1e-6
    balanced = float(dms_loss(logits, tgt, balance="balanced"))
    assert abs(balanced - expected) < 1e-6  # one positive, one negative: the same


def test_build_kernel_is_seeded_and_train_kernel_returns_a_record():
    X = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    spec = KernelSpec(hidden=(4, 2))
    a, hidden = build_kernel(X, spec, 0, torch.device("cpu"))
    b, _ = build_kernel(X, spec, 0, torch.device("cpu"))
    assert hidden == (4, 2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    y = np.where(np.arange(60) % 3 == 0, (X[:, 0] > 0).long().numpy(), -1)
    params = TrainingParams(batch_size=4, instance_size=(10, 12), max_steps=3, validation_fraction=0.25,
                            eval_every=1)
    out = train_kernel(a, X, SideInfo.build(60, y=y), np.random.default_rng(0), 0, torch.device("cpu"), params)
    assert out.record["steps"] == 3 and out.record["n_val_points"] == 5 and out.record["best_val_score"] is not None
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
