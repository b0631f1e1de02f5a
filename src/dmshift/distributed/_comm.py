"""The process group as dmshift's sharded code uses it: sums, broadcasts, agreement, errors.

Every collective call of :mod:`dmshift.distributed` goes through :class:`Comm`, which

* does nothing when there is a single process (no process group is needed then);
* moves tensors to the CPU for gloo and to the current GPU for NCCL, and back;
* waits with a timeout, and turns a backend failure or a timeout into a
  :class:`DistributedError` that names the rank and the step it was in;
* runs local work inside :meth:`Comm.stage`, so that an exception on one rank becomes
  the same clear error on every rank instead of leaving the others blocked in their
  next collective call.

It holds no clustering logic.
"""

from __future__ import annotations

import datetime
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["Comm", "DistributedError", "ShardLayout", "DEFAULT_TIMEOUT", "split_rows"]

#: Timeout used by :func:`~dmshift.distributed.init_from_env` and by a :class:`Comm` that is given none.
DEFAULT_TIMEOUT = datetime.timedelta(minutes=10)

#: bytes of an error message exchanged between ranks
_MSG_BYTES = 1024


class DistributedError(RuntimeError):
    """A rank failed, timed out or stopped answering; raised on every rank that notices."""


def split_rows(n: int, parts: int) -> np.ndarray:
    """Bounds (parts + 1,) of ``parts`` contiguous, balanced row ranges of ``n`` rows."""
    base, extra = divmod(n, parts)
    sizes = np.full(parts, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate(([0], np.cumsum(sizes)))


@dataclass(frozen=True)
class ShardLayout:
    """How the global rows are split over ranks: rank r holds rows ``offsets[r]:offsets[r + 1]``."""

    sizes: tuple[int, ...]
    rank: int

    @property
    def n_total(self) -> int:
        return int(sum(self.sizes))

    @property
    def offset(self) -> int:
        return int(sum(self.sizes[:self.rank]))

    @property
    def n_local(self) -> int:
        return int(self.sizes[self.rank])


def _as_timedelta(timeout) -> datetime.timedelta | None:
    if timeout is None or isinstance(timeout, datetime.timedelta):
        return timeout
    return datetime.timedelta(seconds=float(timeout))


class Comm:
    """Collective calls over ``group`` (the default group when None; one process when none exists).

    Parameters
    ----------
    group : ProcessGroup, optional
    timeout : float (seconds) or timedelta, optional
        Longest wait for one collective call. None uses the group's own timeout (set by
        ``init_process_group(timeout=...)``). Gradient reduction inside
        DistributedDataParallel always uses the group's timeout.
    """

    def __init__(self, group=None, timeout=None):
        self.timeout = _as_timedelta(timeout)
        self.seconds = 0.0  # wall time spent in collective calls (waiting included)
        self.calls = 0
        if dist.is_available() and dist.is_initialized():
            self.group = group
            self.rank = dist.get_rank(group)
            self.world_size = dist.get_world_size(group)
            self.backend = str(dist.get_backend(group))
        else:
            if group is not None:
                raise ValueError("A process group was given but torch.distributed is not initialised; "
                                 "call torch.distributed.init_process_group first.")
            self.group, self.rank, self.world_size, self.backend = None, 0, 1, None

    @property
    def initialized(self) -> bool:
        """Is there a process group (possibly of one process)?"""
        return self.backend is not None

    # ------------------------------------------------------------------ plumbing
    def _comm_device(self, t: torch.Tensor) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu") if self.backend == "gloo" else t.device

    def _wait(self, what: str, start):
        t0 = time.perf_counter()
        try:
            work = start()
            if work is not None:
                work.wait() if self.timeout is None else work.wait(timeout=self.timeout)
        except Exception as exc:
            raise DistributedError(
                f"rank {self.rank} of {self.world_size}: {what!r} failed while waiting for the other ranks "
                f"({type(exc).__name__}: {exc}). Another rank has probably failed, been stopped, or is "
                "running different code or input; see its own error.") from exc
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1

    def all_reduce(self, t: torch.Tensor, what: str, op=None) -> torch.Tensor:
        """Sum (or ``op``) of ``t`` over ranks, returned on ``t``'s device; ``t`` is not modified."""
        if not self.initialized or self.world_size == 1:
            return t
        buf = t.detach().to(self._comm_device(t), copy=True).contiguous()
        self._wait(what, lambda: dist.all_reduce(buf, op=op or dist.ReduceOp.SUM, group=self.group, async_op=True))
        return buf.to(t.device)

    def reduce_to0(self, t: torch.Tensor, what: str) -> torch.Tensor:
        """Sum of ``t`` over ranks on rank 0 (other ranks get meaningless values)."""
        if not self.initialized or self.world_size == 1:
            return t
        buf = t.detach().to(self._comm_device(t), copy=True).contiguous()
        dst = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        self._wait(what, lambda: dist.reduce(buf, dst=dst, group=self.group, async_op=True))
        return buf.to(t.device)

    def broadcast(self, t: torch.Tensor, what: str) -> torch.Tensor:
        """Rank 0's ``t`` on every rank (same shape and dtype needed everywhere)."""
        if not self.initialized or self.world_size == 1:
            return t
        buf = t.detach().to(self._comm_device(t), copy=True).contiguous()
        src = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        self._wait(what, lambda: dist.broadcast(buf, src=src, group=self.group, async_op=True))
        return buf.to(t.device)

    def all_gather(self, t: torch.Tensor, what: str) -> torch.Tensor:
        """(world_size, *t.shape): every rank's ``t`` (same shape needed everywhere)."""
        if not self.initialized or self.world_size == 1:
            return t[None]
        buf = t.detach().to(self._comm_device(t), copy=True).contiguous()
        out = [torch.empty_like(buf) for _ in range(self.world_size)]
        self._wait(what, lambda: dist.all_gather(out, buf, group=self.group, async_op=True))
        return torch.stack(out).to(t.device)

    def broadcast_array(self, a: np.ndarray | None, size: int, dtype, what: str) -> np.ndarray:
        """Rank 0's NumPy array ``a`` of ``size`` elements on every rank."""
        if not self.initialized or self.world_size == 1:
            return np.asarray(a)
        t = torch.as_tensor(np.asarray(a)) if self.rank == 0 else torch.zeros(size, dtype=dtype)
        return self.broadcast(t.reshape(size).to(dtype), what).numpy()

    # ------------------------------------------------------------------ agreement
    def check(self, what: str, error: BaseException | None) -> None:
        """Raise on every rank if ``error`` is set on any rank (one collective call)."""
        if not self.initialized or self.world_size == 1:
            if error is not None:
                raise error
            return
        msg = np.zeros(_MSG_BYTES + 1, dtype=np.uint8)
        if error is not None:
            text = f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:_MSG_BYTES]
            msg[0] = 1
            msg[1:1 + len(text)] = np.frombuffer(text, dtype=np.uint8)
        table = self.all_gather(torch.from_numpy(msg), what).numpy()
        failed = np.flatnonzero(table[:, 0])
        if failed.size == 0:
            return
        lines = [f"rank {r}: " + table[r, 1:].tobytes().rstrip(b"\0").decode("utf-8", "replace") for r in failed]
        exc = DistributedError(f"{what!r} failed on {failed.size} of {self.world_size} ranks:\n  " + "\n  ".join(lines))
        raise exc from error

    @contextmanager
    def stage(self, what: str):
        """Run local work; if it raises on any rank, every rank raises (one collective call).

        With a single process the original exception propagates unchanged.
        """
        try:
            yield
        except Exception as exc:
            self.check(what, exc)
            raise
        self.check(what, None)

    def layout(self, shape: tuple, what: str, *, n_features: int | None = None) -> ShardLayout:
        """Exchange local ``(n, d)`` shapes; every rank raises the same ValueError on disagreement."""
        shape = tuple(int(s) for s in shape)
        mine = torch.tensor(shape if len(shape) == 2 else (-1, -1), dtype=torch.int64)
        table = self.all_gather(mine, f"{what} (shapes)").numpy()
        desc = ", ".join(f"rank {r}: ({a}, {b})" if a >= 0 else f"rank {r}: not 2-D" for r, (a, b) in enumerate(table))
        if (table[:, 0] < 0).any():
            raise ValueError(f"{what}: every rank needs a 2-D array of points; got {desc}.")
        if np.unique(table[:, 1]).size > 1:
            raise ValueError(f"{what}: ranks disagree on the number of features; got {desc}.")
        if n_features is not None and table[0, 1] != n_features:
            raise ValueError(f"{what}: the model expects {n_features} features; got {desc}.")
        if (table[:, 0] < 1).any():
            raise ValueError(f"{what}: every rank needs at least one point; got {desc}.")
        return ShardLayout(sizes=tuple(int(v) for v in table[:, 0]), rank=self.rank)

    def require_same(self, what: str, values) -> None:
        """Every rank raises the same ValueError unless all ranks pass equal ``values``."""
        mine = torch.as_tensor(np.asarray(values, dtype=np.float64))
        table = self.all_gather(mine, f"{what} (agreement)").numpy()
        differ = [r for r in range(self.world_size) if not np.array_equal(table[r], table[0])]
        if differ:
            raise ValueError(f"{what}: ranks {differ} were given different data from rank 0 "
                             "(every rank must pass the same training set).")
