"""AdamW for dmshift's training loop, without the import cost of :mod:`torch.optim`.

Every :class:`torch.optim.Optimizer` imports PyTorch's compiler stack (``torch._dynamo``)
the first time it is built: 1.2-1.7 s of CPU on the reference machine, a sixth of a default
DMS fit on digits. :class:`AdamW` does the same arithmetic as ``torch.optim.AdamW`` with
its defaults on the CPU (the single-tensor path: decoupled decay, then the bias-corrected
Adam step), keeps its state under the same names (``step``, ``exp_avg``, ``exp_avg_sq``)
and has the parts of the optimiser interface the training loop and checkpoints use:
``param_groups``, ``step``, ``zero_grad``, ``state_dict`` and ``load_state_dict``.
"""

from __future__ import annotations

import torch

__all__ = ["AdamW"]


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
    lr : float
    betas : (float, float)
    eps : float
    weight_decay : float
        Decoupled: each step multiplies the parameters by ``1 - lr * weight_decay``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        params = list(params)
        if not params:
            raise ValueError("The 'params' parameter must hold at least one parameter. Got none instead.")
        for name, v in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay)):
            if not v >= 0.0:
                raise ValueError(f"The '{name}' parameter must be a float >= 0. Got {v!r} instead.")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"The 'betas' parameter must be two floats in [0, 1). Got {betas!r} instead.")
        self.param_groups = [{"params": params, "lr": float(lr), "betas": tuple(float(b) for b in betas),
                              "eps": float(eps), "weight_decay": float(weight_decay)}]
        self.state: dict[torch.Tensor, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {"step": torch.tensor(0.0),
                                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                             "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
                state["step"] += 1
                if decay != 0:
                    p.mul_(1 - lr * decay)
                grad, exp_avg, exp_avg_sq = p.grad, state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = state["step"].item()
                correction2_sqrt = (1 - beta2 ** step) ** 0.5
                denom = (exp_avg_sq.sqrt() / correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1 ** step))

    def state_dict(self) -> dict:
        """Parameters by their position, as ``torch.optim`` writes them."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: dict(st) for p, st in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)):
            raise ValueError("The optimiser state does not match the model's parameters.")
        by_index = {}
        for g, mine in zip(groups, self.param_groups):
            for i, p in zip(g["params"], mine["params"]):
                by_index[int(i)] = p
            for key in ("lr", "eps", "weight_decay"):
                mine[key] = float(g[key])
            mine["betas"] = tuple(float(b) for b in g["betas"])
            if "initial_lr" in g:
                mine["initial_lr"] = float(g["initial_lr"])
        self.state = {}
        for i, st in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[p] = {k: (torch.tensor(float(v)) if k == "step"  # the step count lives on the CPU
                                 else v.to(device=p.device, dtype=p.dtype).clone()) for k, v in st.items()}
