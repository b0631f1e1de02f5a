"""dmshift's AdamW does torch.optim.AdamW's arithmetic, saves the same state, and is cheap to build."""

import subprocess
import sys

import pytest
import torch

from dmshift.optim import AdamW


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


def _run(model, opt, steps, start=0, lr_of=lambda s: 1.0):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(steps + start, 16, 5, generator=gen)
    for s in range(start, start + steps):
        for g in opt.param_groups:
            g["lr"] = 0.01 * lr_of(s)
        loss = model(x[s]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_same_parameters_as_torch_adamw(decay):
    a, b = _model(0), _model(0)
    _run(a, AdamW(a.parameters(), lr=0.01, weight_decay=decay), 40, lr_of=lambda s: 1 - s / 50)
    _run(b, torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=decay), 40, lr_of=lambda s: 1 - s / 50)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_state_dict_round_trip_continues_exactly():
    a, b = _model(0), _model(0)
    opt_a = AdamW(a.parameters(), lr=0.01, weight_decay=0.1)
    _run(a, opt_a, 10)
    b.load_state_dict(a.state_dict())
    opt_b = AdamW(b.parameters(), lr=0.5, weight_decay=0.0)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.param_groups[0]["weight_decay"] == 0.1
    _run(a, opt_a, 10, start=10)
    _run(b, opt_b, 10, start=10)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    st = opt_a.state_dict()
    assert set(st["state"][0]) == {"step", "exp_avg", "exp_avg_sq"} and float(st["state"][0]["step"]) == 20


def test_state_of_other_model_is_refused():
    opt = AdamW(_model(0).parameters())
    with pytest.raises(ValueError, match="does not match"):
        opt.load_state_dict(AdamW(torch.nn.Linear(2, 2).parameters()).state_dict())


@pytest.mark.parametrize("kw", [{"lr": -1.0}, {"betas": (0.9, 1.0)}, {"weight_decay": float("nan")}])
def test_bad_settings(kw):
    with pytest.raises(ValueError, match="parameter must be"):
        AdamW(_model(0).parameters(), **kw)


def test_building_does_not_import_the_compiler():
    code = ("import sys, torch; from dmshift.optim import AdamW; o = AdamW(torch.nn.Linear(2, 2).parameters()); "
            "torch.nn.Linear(2, 2)(torch.ones(1, 2)).sum().backward(); o.step(); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
