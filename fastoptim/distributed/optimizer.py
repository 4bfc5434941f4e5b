"""``DistributedOptimizer``: data-parallel training, Horovod's shape, over MPI.

Why it exists: N processes each run forward and backward on their own slice of the batch; before
the update, every gradient must be replaced by the average (or sum) over the ranks, and then each
rank takes the same step, so the replicas stay equal. With a mean loss and equal per-rank batch
sizes this is exactly the single-process step on the concatenated batch.

Design:

* It wraps any ``fastoptim.optim.Optimizer`` *instance* and uses only its public API
  (``param_groups``, ``state``, ``step``, ``zero_grad``, ``state_dict``, ``load_state_dict``,
  ``add_param_group``, the hook registrations): ``param_groups``/``state``/``defaults`` are the
  wrapped optimizer's own objects, so LR schedulers and checkpoints see no difference. It is an
  ``Optimizer`` (schedulers check that) but never runs ``Optimizer.__init__``; every public
  method is delegated, other attributes fall through to the wrapped optimizer.
* Gradients travel in buckets: per dtype, the grads are laid end to end in one persistent flat
  buffer cut into chunks of ``bucket_size`` bytes (a large grad spans several chunks). Each chunk
  is packed and handed to a non-blocking ``Iallreduce``; the next chunk is packed while the last
  one is reduced; then the chunks are waited for in order and unpacked (divided by N for
  ``op="average"``). The layout (the "plan") is cached per (shapes, dtypes, which grads exist).
  Packing and unpacking a float32/float64 bucket is one C call (``fastoptim._C._pack``: a
  piece per tensor, checked and copied at C speed); other dtypes go piece by piece with numpy
  (the kernels' twin).
* Errors: ``step`` runs the closure and checks the grads, then one tiny ``Allreduce`` of
  ``[error flag, digest of the layout]`` precedes the gradient collectives, and another follows
  the wrapped ``step``. If any rank raised, every rank raises (the failing rank its own
  exception, the others ``DistributedError``), instead of a rank waiting forever in a
  collective the failed rank never joins. After such an error the replicas may differ (a step
  may have been applied on some ranks): restore from a checkpoint, or ``broadcast_parameters``
  and ``broadcast_optimizer_state`` from one rank.
* A param whose grad is None on every rank is skipped (the wrapped step skips it too). If it has
  a grad on some ranks only, the missing grads count as zeros and every rank gets the reduced
  grad (so the replicas still step alike). Ranks with different parameter shapes or dtypes all
  raise ValueError.

Limitation: the closure is evaluated once, before the all-reduce, and the wrapped ``step`` is
called without it; an optimizer that re-evaluates the closure inside ``step`` (L-BFGS) would see
unreduced gradients, so it gets no closure and raises its own error on every rank.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from mpi4py import MPI

import fastoptim
from fastoptim._C._pack import KERNEL_DTYPES, Pieces, pack_numpy, unpack_numpy
from fastoptim._sharding import bucket_pieces
from fastoptim.optim import Optimizer

from ._collectives import _agree, _digest, _raise_disagreement, _view, _world

__all__ = ["DEFAULT_BUCKET_SIZE", "DistributedOptimizer"]

# Bytes per all-reduce bucket. benchmarks/bench_distributed.py's sweep (mpiexec -n 2, 2 cores,
# loaded): 64-256 KiB cost up to 2x, 1-4 MiB were equal within the noise; 1 MiB keeps several
# buckets in flight for models of a few MiB. See the README's distributed section.
DEFAULT_BUCKET_SIZE = 1 << 20

_OPS = ("average", "sum")


class _Plan:
    """The bucket layout for one (layout, present) pair.

    ``layout`` is ``((shape, numpy dtype), ...)`` per param, ``present`` which params take part
    (have a grad on some rank). ``buckets`` is a list of ``(buffer, pieces, kernel)``:
    ``buffer`` a slice of one dtype's flat buffer, ``pieces`` ``(param index, lo, hi)`` laid end
    to end in it (``buffer[o:o + hi - lo] <-> flat grad[lo:hi]``), ``kernel`` their
    ``_pack.Pieces`` (the C layout, made once here) for float32/float64, else None.
    """

    def __init__(self, layout: tuple, present: tuple, bucket_size: int) -> None:
        self.layout, self.present = layout, present
        self.digest = _digest((layout, present))
        self.buckets: list[tuple[np.ndarray, list[tuple[int, int, int]], Pieces | None]] = []
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, ((_, dtype), here) in enumerate(zip(layout, present)):
            if here:
                by_dtype.setdefault(dtype, []).append(i)
        for dtype in sorted(by_dtype, key=str):
            members = by_dtype[dtype]
            sizes = [int(np.prod(layout[i][0], dtype=np.int64)) for i in members]
            total = sum(sizes)
            if total == 0:
                continue
            flat = np.empty(total, dtype=np.dtype(dtype))
            chunk = max(1, bucket_size // flat.itemsize)
            for start, stop, pieces in bucket_pieces(sizes, chunk):
                pieces = [(members[k], lo, hi) for k, lo, hi in pieces]
                buf = flat[start:stop]
                kernel = Pieces(buf, pieces) if buf.dtype in KERNEL_DTYPES else None
                self.buckets.append((buf, pieces, kernel))


class DistributedOptimizer(Optimizer):
    r"""Wrap ``optimizer`` so that ``step()`` first all-reduces every gradient over ``comm``.

    Args:
        optimizer (Optimizer): any fastoptim optimizer, built on this rank's parameters.
        comm (mpi4py.MPI.Comm, optional): the ranks that train together (default
            ``MPI.COMM_WORLD``).
        op (str): ``"average"`` (default: grads are divided by the number of ranks) or
            ``"sum"``.
        bucket_size (int): bytes per all-reduce bucket (default ``DEFAULT_BUCKET_SIZE``).

    Every rank must build it on the same parameters (same order, shapes and dtypes), start
    from the same values (``broadcast_parameters``) and call ``step`` the same number of times.
    ``step``, ``state_dict`` and the rest behave as the wrapped optimizer's; ``step`` is
    collective.

    Example::

        >>> opt = DistributedOptimizer(fastoptim.optim.Adam(model.parameters(), lr=1e-3))
        >>> broadcast_parameters(model.state_dict(), root=0)
        >>> for x, y in my_shard_of_the_data:
        ...     opt.zero_grad()
        ...     loss_fn(model(x), y).backward()
        ...     opt.step()
    """

    def __init__(self, optimizer: Optimizer, comm=None, op: str = "average",
                 bucket_size: int = DEFAULT_BUCKET_SIZE) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastoptim.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if op not in _OPS:
            raise ValueError(f"op must be one of {list(_OPS)}, got {op!r}")
        if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size < 1:
            raise ValueError(f"bucket_size must be a positive int (bytes), got {bucket_size!r}")
        d = self.__dict__
        d["optimizer"] = optimizer
        d["comm"] = _world(comm)
        d["op"] = op
        d["bucket_size"] = bucket_size
        d["_plan"] = None

    # ------------------------------------------------------------ the wrapped optimizer's face
    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value):
        self.optimizer.param_groups = value

    @property
    def state(self):
        return self.optimizer.state

    @state.setter
    def state(self, value):
        self.optimizer.state = value

    @property
    def defaults(self):
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value):
        self.optimizer.defaults = value

    def __getattr__(self, name: str) -> Any:
        # only reached for names not found normally: the wrapped optimizer's extras
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __reduce_ex__(self, protocol):
        raise TypeError("DistributedOptimizer holds an MPI communicator and cannot be pickled "
                        "or copied; save its state_dict() instead")

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, op={self.op!r})"

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's ``state_dict()`` (the same on every rank)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The wrapped optimizer's ``load_state_dict`` (local: call it on every rank)."""
        self.optimizer.load_state_dict(state_dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """The wrapped optimizer's ``add_param_group`` (call it on every rank alike)."""
        self.optimizer.add_param_group(param_group)

    def register_step_pre_hook(self, hook: Callable):
        return self.optimizer.register_step_pre_hook(hook)

    def register_step_post_hook(self, hook: Callable):
        return self.optimizer.register_step_post_hook(hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        return self.optimizer.register_state_dict_pre_hook(hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        return self.optimizer.register_state_dict_post_hook(hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        return self.optimizer.register_load_state_dict_pre_hook(hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        return self.optimizer.register_load_state_dict_post_hook(hook, prepend)

    # ------------------------------------------------------------ the step
    def step(self, closure: Callable | None = None):
        """Collective: run ``closure`` (if given), all-reduce the grads, step the wrapped
        optimizer. Returns the closure's loss. If any rank raises, every rank raises."""
        comm = self.comm
        loss = None
        error = None
        grads = plan = None
        try:
            if closure is not None:
                with fastoptim.enable_grad():
                    loss = closure()
            grads = self._local_grads()
            plan = self._plan_for(grads[0], grads[1])
        except Exception as e:  # noqa: BLE001 - agreed on below, then re-raised
            error = e
        if comm.Get_size() == 1:
            if error is not None:
                raise error
            self.optimizer.step()
            return loss
        if not _agree(comm, error, "DistributedOptimizer.step", 0 if plan is None else
                      plan.digest):
            grads = self._reconcile(grads)
            plan = self._plan_for(grads[0], grads[1])
        self._allreduce(plan, grads)
        # a wrapped ZeroRedundancyOptimizer leaves its param all-gather to us, after the
        # one agreement below (see ZeroRedundancyOptimizer._deferred_sync)
        deferred = getattr(self.optimizer, "_deferred_sync", None)
        try:
            if deferred is None:
                self.optimizer.step()
            else:
                with deferred():
                    self.optimizer.step()
        except Exception as e:  # noqa: BLE001
            error = e
        _agree(comm, error, "DistributedOptimizer.step")
        if deferred is not None:
            self.optimizer._sync_params()
        return loss

    def _plan_for(self, layout: tuple, present: tuple) -> _Plan:
        plan = self._plan
        if plan is None or plan.present != present or plan.layout != layout:
            plan = self.__dict__["_plan"] = _Plan(layout, present, self.bucket_size)
        return plan

    def _local_grads(self):
        """``(layout, present, params, views)`` of this rank: per param (in group order,
        each once) its (shape, dtype), whether it has a grad, and the grad's numpy view."""
        params = list(dict.fromkeys(p for g in self.optimizer.param_groups for p in g["params"]))
        layout, present, views = [], [], []
        for p in params:
            g = p.grad
            v = _view(p if g is None else g)
            layout.append((v.shape, v.dtype))
            present.append(g is not None)
            views.append(None if g is None else v)
        return tuple(layout), tuple(present), params, views

    def _reconcile(self, grads):
        """The ranks' digests differ: same layout but grads missing on some ranks (take the
        union: a missing grad counts as zeros), or different layouts (raise everywhere)."""
        layout, present, params, views = grads
        everyone = self.comm.allgather((layout, present))
        if any(lay != layout for lay, _ in everyone):
            _raise_disagreement(self.comm, layout, "DistributedOptimizer.step",
                                "the parameters' (shape, dtype)")
        union = tuple(any(col) for col in zip(*(pr for _, pr in everyone)))
        return layout, union, params, views

    def _allreduce(self, plan: _Plan, grads) -> None:
        layout, present, params, views = grads
        # sources (read) and targets (written), per param: the grad itself when it is
        # contiguous; otherwise a new array that becomes the param's grad at the end. A missing
        # source (no grad on this rank) packs as zeros.
        srcs: list[np.ndarray | None] = [None] * len(views)
        dsts: list[np.ndarray | None] = [None] * len(views)
        replace = []
        for i, (v, here) in enumerate(zip(views, present)):
            if not here:
                continue
            if v is not None and v.flags.c_contiguous:
                srcs[i] = dsts[i] = v
                continue
            shape, dtype = layout[i]
            srcs[i] = None if v is None else np.ascontiguousarray(v)
            dsts[i] = new = np.empty(shape, dtype=np.dtype(dtype))
            replace.append((params[i], new))
        flat_srcs = [None if a is None else a.reshape(-1) for a in srcs] if \
            any(kernel is None for _, _, kernel in plan.buckets) else None
        comm = self.comm
        requests = []
        for buf, pieces, kernel in plan.buckets:
            if kernel is not None:
                kernel.pack(srcs)
            else:
                pack_numpy(buf, pieces, flat_srcs)
            requests.append(comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM))
            MPI.Request.Testall(requests)  # drive the reductions already in flight
        divisor = comm.Get_size() if self.op == "average" else 1
        flat_dsts = [None if a is None else a.reshape(-1) for a in dsts] if \
            flat_srcs is not None else None
        for (buf, pieces, kernel), request in zip(plan.buckets, requests):
            request.Wait()
            if kernel is not None:
                kernel.unpack(dsts, divisor)
            else:
                unpack_numpy(buf, pieces, flat_dsts, divisor)
        for p, new in replace:
            p.grad = fastoptim.from_numpy(new)
