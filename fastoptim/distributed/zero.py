"""``ZeroRedundancyOptimizer``: ZeRO stage 1 (sharded optimizer state), torch's shape, on MPI.

Why it exists: in data-parallel training every rank holds the whole optimizer state (Adam: two
arrays the size of the model), which is pure redundancy. ZeRO-1 gives each rank the state of
about 1/N of the parameters: each rank steps only its shard with a local optimizer (``.optim``,
as in torch), then the updated parameters are all-gathered so every replica is whole again.

Design, following ``torch.distributed.optim.ZeroRedundancyOptimizer``:

* Partition: ``fastoptim._sharding.partition_parameters`` (torch's sorted greedy, by size). The
  local optimizer is ``optimizer_class(<this rank's groups>, **defaults)``: one group per global
  group (some possibly empty), so hyperparameters line up; the global ``param_groups`` are kept
  in sync with the local ones around every step (LR schedulers act on the global ones).
* Param sync: the parameters are laid out rank after rank in one flat buffer (a copy of the
  params on every rank); each rank packs its shard at its offset, one ``Ibcast`` per owner
  fills the rest, and each rank unpacks the others' shards. (``Allgatherv`` does the same in one
  call, but measured 10-20x slower with the mpich wheel: benchmarks/bench_distributed.py.)
* Gradients are NOT reduced here (torch leaves that to DDP): wrap it,
  ``DistributedOptimizer(ZeroRedundancyOptimizer(...))``, so grads are all-reduced first.
* State dicts: ``consolidate_state_dict(to)`` gathers every shard on rank ``to`` (one pickled
  skeleton and one ``Gatherv`` per dtype), after which ``state_dict()`` there is a standard full
  state dict that a single-process optimizer of ``optimizer_class`` loads. ``load_state_dict``
  takes such a full dict on every rank and keeps only this rank's shard (any world size: that is
  the re-sharding path). ``sharded_state_dict()`` / ``load_sharded_state_dict()`` save and load
  only this rank's shard (global param indices, plus the partition, checked on load), avoiding
  the full copy on one rank (pytorch#68181).
* Errors: as in ``DistributedOptimizer``, every collective is preceded by an agreement on an
  error flag, so a rank that raises makes every rank raise. ``load_state_dict`` and
  ``load_sharded_state_dict`` are collective for that reason (call them on every rank); if a
  peer failed to load, the local optimizer is put back as it was.
"""

from __future__ import annotations

import contextlib
from itertools import chain
from typing import Any, Callable

import numpy as np
from mpi4py import MPI

from fastoptim import Tensor
from fastoptim._sharding import partition_parameters
from fastoptim.optim import Optimizer

from ._collectives import (
    _agree,
    _check_root,
    _digest,
    _gather_tree,
    _raise_disagreement,
    _view,
    _world,
)

__all__ = ["ZeroRedundancyOptimizer"]


def _sync_param_groups(src: list[dict], dst: list[dict]) -> None:
    """Copy every setting but ``params`` from ``src[i]`` to ``dst[i]`` (torch's helper)."""
    if len(src) != len(dst):
        raise AssertionError("Mismatch between number of source and destination parameter groups")
    for s, d in zip(src, dst):
        for k, v in s.items():
            if k != "params":
                d[k] = v


def _state_bytes(optimizer: Optimizer) -> int:
    """Bytes held by the Tensors and arrays in ``optimizer.state``."""
    total = 0
    for s in optimizer.state.values():
        for v in (s.values() if isinstance(s, dict) else ()):
            if isinstance(v, Tensor):
                total += v.numel() * v.element_size()
            elif isinstance(v, np.ndarray):
                total += v.nbytes
    return total


class ZeroRedundancyOptimizer(Optimizer):
    r"""Shard the state of ``optimizer_class`` over the ranks of ``comm`` (ZeRO-1).

    Args:
        params (iterable): Tensors or param-group dicts, the same on every rank.
        optimizer_class (type): the local optimizer's class (any fastoptim optimizer).
        comm (mpi4py.MPI.Comm, optional): default ``MPI.COMM_WORLD``.
        **defaults: passed to ``optimizer_class``.

    ``.optim`` is this rank's optimizer (its state is this rank's shard). The constructor,
    ``step``, ``consolidate_state_dict``, ``load_state_dict`` and ``load_sharded_state_dict``
    are collective: call them on every rank. All params must have the same dtype (as torch).
    Step hooks registered on this object (not on ``.optim``) run outside the error agreement
    when it is used alone: a hook that raises on one rank only leaves the others waiting
    (``python -m mpi4py`` then aborts the job); inside a ``DistributedOptimizer`` they are
    covered.
    """

    def __init__(self, params, optimizer_class: type, comm=None, **defaults: Any) -> None:
        params = self._verify_and_init_params(params)
        self._verify_same_dense_param_type()
        self.initialized = False
        Optimizer.__init__(self, params, defaults)
        self.comm = _world(comm)
        self.world_size: int = self.comm.Get_size()
        self.rank: int = self.comm.Get_rank()
        self._optim_defaults = defaults
        self._optimizer_class = optimizer_class
        self._consolidated: dict | None = None
        self._defer_sync = False
        self._partition()
        # collective: a rank whose local optimizer refuses its shard (bad defaults, an empty
        # shard its class rejects) must not leave the others waiting in their first step
        error = None
        try:
            self.optim: Optimizer = optimizer_class(self._partition_cache[self.rank], **defaults)
            _sync_param_groups(self.optim.param_groups, self.param_groups)
        except Exception as e:  # noqa: BLE001 - agreed on below, then re-raised
            error = e
        if self.world_size > 1:
            _agree(self.comm, error, "ZeroRedundancyOptimizer()")
        elif error is not None:
            raise error
        self.initialized = True

    # ------------------------------------------------------------ checks (torch's messages)
    def _verify_and_init_params(self, params: Any) -> list:
        if isinstance(params, Tensor):
            raise TypeError("`params` argument should be an iterable of Tensors, but got "
                            + params.type())
        try:
            all_params = list(params)
        except TypeError as e:
            raise TypeError("`params` argument should be an iterable of Tensors or dicts, but "
                            f"got {type(params).__name__}") from e
        if len(all_params) == 0:
            raise ValueError("ZeroRedundancyOptimizer got an empty parameter list")
        if all(isinstance(p, Tensor) for p in all_params):
            self._all_params = all_params
        elif all(isinstance(p, dict) for p in all_params):
            groups = []
            for group in all_params:
                if "params" not in group:
                    raise ValueError("Each parameter group passed-in via `params` must have a "
                                     "'params' key mapping to the parameters in the group")
                group = dict(group)  # the caller's dict is left alone; a generator is read once
                group_params = group["params"]
                group["params"] = ([group_params] if isinstance(group_params, Tensor)
                                   else list(group_params))
                groups.append(group)
            all_params = groups
            self._all_params = list(chain.from_iterable(g["params"] for g in groups))
        else:
            raise TypeError("`params` argument should be an iterable of Tensors or dicts")
        return all_params

    def _verify_same_dense_param_type(self) -> None:
        for p in self._all_params:
            if not isinstance(p, Tensor):
                raise TypeError("ZeroRedundancyOptimizer can only optimize Tensors, but one of "
                                f"the params is {type(p).__name__}")
        typename = self._all_params[0].type()
        for p in self._all_params[1:]:
            if p.type() != typename:
                raise ValueError("ZeroRedundancyOptimizer only supports using the same dense "
                                 f"type for all parameters but got both {typename} and "
                                 f"{p.type()}")

    # ------------------------------------------------------------ partition
    def _partition(self) -> None:
        """(Re)compute the partition and the all-gather layout from ``param_groups``."""
        self._partition_cache = partition_parameters(self.param_groups, self.world_size)
        self._index_to_param = list(chain.from_iterable(g["params"] for g in self.param_groups))
        self._param_to_index = {p: i for i, p in enumerate(self._index_to_param)}
        self._param_to_rank = {p: r for r, groups in enumerate(self._partition_cache)
                               for g in groups for p in g["params"]}
        # params rank after rank (each rank's in its local optimizer's order)
        self._params_per_rank = [list(chain.from_iterable(g["params"] for g in groups))
                                 for groups in self._partition_cache]
        counts = [sum(p.numel() for p in ps) for ps in self._params_per_rank]
        self._counts = counts
        self._displs = [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])]
        dtype = _view(self._index_to_param[0]).dtype
        self._flat = np.empty(sum(counts), dtype=dtype)
        # checked in step's agreement: ranks whose partitions differ (add_param_group on some
        # ranks only) would otherwise enter mismatched broadcasts
        self._layout_digest = _digest((counts, [tuple(p.shape) for p in self._index_to_param]))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group on every rank (call it on all ranks alike); earlier params keep their
        owner, this rank's share of the new group joins ``.optim``."""
        super().add_param_group(param_group)
        if self.initialized:
            self._partition()
            groups = self._partition_cache[self.rank]
            if len(groups) == len(self.optim.param_groups) + 1:
                self.optim.add_param_group(groups[-1])

    @property
    def local_params(self) -> list[Tensor]:
        """The params this rank owns (steps and holds state for)."""
        return self._params_per_rank[self.rank]

    def local_state_bytes(self) -> int:
        """Bytes of optimizer state held on this rank."""
        return _state_bytes(self.optim)

    # ------------------------------------------------------------ the step
    def step(self, closure: Callable | None = None):
        """Collective: step this rank's shard, then all-gather the updated params. The
        closure, if given, goes to the local optimizer's ``step`` (it runs on every rank)."""
        if self._defer_sync:
            # inside a DistributedOptimizer's step: it agrees on errors once for both of us
            # and then calls _sync_params (see _deferred_sync)
            return self._local_step(closure)
        loss = None
        error = None
        try:
            loss = self._local_step(closure)
        except Exception as e:  # noqa: BLE001 - agreed on below, then re-raised
            error = e
        if self.world_size > 1:
            if not _agree(self.comm, error, "ZeroRedundancyOptimizer.step",
                          self._layout_digest):
                _raise_disagreement(self.comm, self._counts, "ZeroRedundancyOptimizer.step",
                                    "the params (elements per rank)")
            self._sync_params()
        elif error is not None:
            raise error
        return loss

    def _local_step(self, closure):
        _sync_param_groups(self.param_groups, self.optim.param_groups)
        loss = self.optim.step() if closure is None else self.optim.step(closure)
        _sync_param_groups(self.optim.param_groups, self.param_groups)
        return loss

    @contextlib.contextmanager
    def _deferred_sync(self):
        """While open, ``step`` only steps the local shard: a DistributedOptimizer wrapping
        us then runs ONE error agreement after our whole ``step`` (hooks included) and calls
        ``_sync_params`` itself. Two agreements (ours inside ``step``, its own after) would
        not pair up across ranks when a rank fails in a step hook, outside our ``step`` body.
        """
        self._defer_sync = True
        try:
            yield
        finally:
            self._defer_sync = False

    def _sync_params(self) -> None:
        """Collective: every owner's updated shard to every rank, one ``Ibcast`` per owner of
        its slice of the flat buffer (measured against one ``Allgatherv``, which MPICH ran
        10-20x slower here: benchmarks/bench_distributed.py)."""
        flat = self._flat
        offset = self._displs[self.rank]
        for p in self._params_per_rank[self.rank]:
            n = p.numel()
            flat[offset:offset + n].reshape(tuple(p.shape))[...] = _view(p)
            offset += n
        requests = [self.comm.Ibcast(flat[lo:lo + n], root=r)
                    for r, (lo, n) in enumerate(zip(self._displs, self._counts)) if n]
        MPI.Request.Waitall(requests)
        for r, ps in enumerate(self._params_per_rank):
            if r == self.rank:
                continue
            offset = self._displs[r]
            for p in ps:
                n = p.numel()
                np.copyto(_view(p), flat[offset:offset + n].reshape(tuple(p.shape)))
                offset += n

    # ------------------------------------------------------------ state dicts
    def _global_shard(self) -> dict[int, Any]:
        """This rank's state, keyed by global param index (from ``.optim.state_dict()``)."""
        local = self.optim.state_dict()
        params = self._params_per_rank[self.rank]
        return {self._param_to_index[params[k]]: v for k, v in local["state"].items()}

    def _global_groups(self) -> list[dict[str, Any]]:
        _sync_param_groups(self.optim.param_groups, self.param_groups)
        packed, start = [], 0
        for g in self.param_groups:
            packed.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": list(range(start, start + len(g["params"])))})
            start += len(g["params"])
        return packed

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Collective: gather every rank's shard on rank ``to``; ``state_dict()`` there then
        returns the full state dict."""
        error = None
        shard = None
        try:
            _check_root(self.comm, to, "to")
            shard = self._global_shard()
        except Exception as e:  # noqa: BLE001
            error = e
        _agree(self.comm, error, "ZeroRedundancyOptimizer.consolidate_state_dict")
        shards = _gather_tree(self.comm, shard, to)
        if shards is None:
            self._consolidated = None
            return
        state: dict[int, Any] = {}
        for s in shards:
            state.update(s)
        self._consolidated = dict(sorted(state.items()))

    def state_dict(self) -> dict[str, Any]:
        """The full state dict consolidated on this rank by the last
        ``consolidate_state_dict`` (hyperparameters as of now, state as of then)."""
        if self._consolidated is None:
            raise RuntimeError(
                "Optimizer state has not been consolidated on this rank. "
                f"Please call `consolidate_state_dict(to={self.rank})` on "
                "all ranks beforehand if you meant to save the global state.")
        return {"state": dict(self._consolidated), "param_groups": self._global_groups()}

    def sharded_state_dict(self) -> dict[str, Any]:
        """This rank's shard (local, no communication): ``state`` keyed by global param index,
        the full ``param_groups``, and ``zero``: the partition it belongs to."""
        return {
            "state": self._global_shard(),
            "param_groups": self._global_groups(),
            "zero": {"world_size": self.world_size, "rank": self.rank,
                     "params": [self._param_to_index[p] for p in self.local_params]},
        }

    def _local_dict(self, state: dict, saved_groups: list[dict]) -> dict[str, Any]:
        """A state dict for ``.optim``: this rank's entries of the global ``state``, with the
        saved hyperparameters."""
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"])
               for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        local_state, groups, k = {}, [], 0
        for saved, mine in zip(saved_groups, self._partition_cache[self.rank]):
            indices = []
            for p in mine["params"]:
                gi = self._param_to_index[p]
                if gi in state:
                    local_state[k] = state[gi]
                indices.append(k)
                k += 1
            groups.append({**{key: v for key, v in saved.items() if key != "params"},
                           "params": indices})
        return {"state": local_state, "param_groups": groups}

    def _load_local(self, build: Callable[[], dict], what: str) -> None:
        """Collective: load ``build()`` into ``.optim`` on every rank, or on none."""
        error = None
        before = None
        try:
            local = build()
            before = self.optim.state_dict()  # live tensors: loading never mutates them
            self.optim.load_state_dict(local)
        except Exception as e:  # noqa: BLE001
            error = e
        if self.world_size == 1:
            if error is not None:
                raise error
        else:
            try:
                _agree(self.comm, error, what)
            except Exception:
                if error is None:
                    self.optim.load_state_dict(before)  # a peer failed: undo ours
                raise
        _sync_param_groups(self.optim.param_groups, self.param_groups)
        self._consolidated = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Collective: load a full state dict (from ``state_dict()`` after consolidation, or
        from any single-process optimizer of ``optimizer_class`` on the same params), keeping
        this rank's shard."""
        self._load_local(lambda: self._local_dict(state_dict["state"],
                                                  state_dict["param_groups"]),
                         "ZeroRedundancyOptimizer.load_state_dict")

    def load_sharded_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Collective: load this rank's ``sharded_state_dict()``, saved with the same world size
        and partition (to change the world size, go through a full state dict)."""
        def build():
            zero = state_dict.get("zero")
            if not isinstance(zero, dict):
                raise ValueError("not a sharded state dict (no 'zero' entry): use "
                                 "load_state_dict for a full state dict")
            expected = {"world_size": self.world_size, "rank": self.rank,
                        "params": [self._param_to_index[p] for p in self.local_params]}
            for key, value in expected.items():
                if zero.get(key) != value:
                    raise ValueError(f"sharded state dict was saved with {key}="
                                     f"{zero.get(key)!r}, but this rank has {key}={value!r}")
            return self._local_dict(state_dict["state"], state_dict["param_groups"])
        self._load_local(build, "ZeroRedundancyOptimizer.load_sharded_state_dict")

    def __reduce_ex__(self, protocol):
        raise TypeError("ZeroRedundancyOptimizer holds an MPI communicator and cannot be "
                        "pickled or copied; save sharded_state_dict() or the consolidated "
                        "state_dict() instead")

    def __repr__(self) -> str:
        return (f"ZeroRedundancyOptimizer(rank {self.rank} of {self.world_size}, "
                f"{len(self.local_params)} of {len(self._index_to_param)} params, "
                f"optim={self.optim!r})")
