"""The collective building blocks of ``fastoptim.distributed``: agreeing on errors, moving
tensors in flat per-dtype buffers, and moving state dicts.

Why it exists: every collective in this package is preceded by an *agreement* -- one tiny
``Allreduce`` of an error flag (and a digest of what the ranks are about to exchange). If any
rank failed before the collective, or the ranks disagree on the layout, every rank raises
instead of entering a collective that the failed rank will never join (which would block the
others forever). The failing rank re-raises its own exception; the others raise
``DistributedError`` naming the failed ranks and their messages.

State dicts and parameter lists are moved as a *skeleton* (the nested dicts/lists with each
array replaced by an ``_ArrayRef`` saying its dtype and shape; small, pickled) plus one flat
buffer per dtype (raw ``Bcast``/``Gatherv``: no pickling of the bulk data).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from mpi4py import MPI

import fastoptim
from fastoptim import Tensor

__all__ = ["DistributedError"]


class DistributedError(RuntimeError):
    """Raised on every rank whose peers failed inside a collective operation of
    ``fastoptim.distributed`` (the failing rank re-raises its own exception)."""


def _world(comm):
    return MPI.COMM_WORLD if comm is None else comm


def _check_root(comm, root, name="root"):
    size = comm.Get_size()
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < size:
        raise ValueError(f"{name} must be a rank in [0, {size}), got {root!r}")


def _digest(obj: Any) -> int:
    """A 62-bit digest of ``repr(obj)`` that is the same in every process (``hash`` of a str
    is salted per process)."""
    return int.from_bytes(hashlib.blake2b(repr(obj).encode(), digest_size=8).digest(),
                          "little") >> 2


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _agree(comm, error: BaseException | None, what: str, digest: int = 0) -> bool:
    """Collective. Raise on every rank if any rank passes an ``error``; otherwise return whether
    every rank passed the same ``digest``.

    One ``Allreduce(MAX)`` of ``[failed, digest, -digest]``: the ranks agree on the digest iff
    max(digest) == min(digest). Only on failure is there a second collective (an ``allgather``
    of the messages), which every rank enters since every rank has seen the flag.
    """
    flags = np.array([error is not None, digest, -digest], dtype=np.int64)
    comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
    if flags[0]:
        messages = comm.allgather(None if error is None else _describe(error))
        if error is not None:
            raise error
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        raise DistributedError(
            f"{what} failed on rank{'s' if len(failed) > 1 else ''} "
            + ", ".join(str(r) for r, _ in failed)
            + " (this is rank " + str(comm.Get_rank()) + "): "
            + "; ".join(f"rank {r}: {m}" for r, m in failed)
        )
    return bool(flags[1] == -flags[2])


def _raise_disagreement(comm, mine: Any, what: str, describe) -> None:
    """Collective, after ``_agree`` returned False: gather every rank's ``mine`` and raise on
    every rank a ValueError that says which ranks differ from rank 0 and how."""
    everyone = comm.allgather(mine)
    differ = [r for r, x in enumerate(everyone) if x != everyone[0]]
    r = differ[0]
    raise ValueError(
        f"{what}: the ranks disagree on {describe}; rank {r} has {everyone[r]!r} where "
        f"rank 0 has {everyone[0]!r} (differing ranks: {differ})"
    )


# ---------------------------------------------------------------------------- tensors

def _view(t: Tensor) -> np.ndarray:
    """The numpy view of a Tensor's memory (writes through to the Tensor); ``force`` only
    skips the requires-grad refusal (cheaper than ``detach()``, which makes a Tensor)."""
    return t.numpy(force=True)


def _tensor_list(params) -> list[Tensor]:
    """``params`` as a list of Tensors: an iterable of Tensors, of (name, Tensor) pairs, or a
    dict of them (a module's ``state_dict()``), in the given order."""
    if isinstance(params, Tensor):
        raise TypeError("params must be an iterable of Tensors, a dict of Tensors or "
                        "(name, Tensor) pairs, not a single Tensor")
    if isinstance(params, dict):
        params = list(params.values())
    out = []
    for i, p in enumerate(params):
        if isinstance(p, tuple) and len(p) == 2:
            p = p[1]
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] must be a fastoptim Tensor, got {type(p).__name__}")
        out.append(p)
    return out


def _bcast_arrays(comm, arrays: list[np.ndarray], root: int) -> None:
    """Broadcast ``arrays`` (same shapes and dtypes on every rank) from ``root`` in place:
    one flat buffer and one ``Bcast`` per dtype."""
    by_dtype: dict[str, list[np.ndarray]] = {}
    for a in arrays:
        by_dtype.setdefault(a.dtype.str, []).append(a)
    for dtype in sorted(by_dtype):
        group = by_dtype[dtype]
        flat = np.empty(sum(a.size for a in group), dtype=np.dtype(dtype))
        me = comm.Get_rank() == root
        offset = 0
        if me:
            for a in group:
                flat[offset:offset + a.size].reshape(a.shape)[...] = a
                offset += a.size
        comm.Bcast(flat, root=root)
        if not me:
            offset = 0
            for a in group:
                np.copyto(a, flat[offset:offset + a.size].reshape(a.shape))
                offset += a.size


# ---------------------------------------------------------------------------- state dicts

class _ArrayRef:
    """Stands for array ``index`` of a skeleton's array list (``tensor``: rebuild as a Tensor)."""

    __slots__ = ("index", "dtype", "shape", "tensor")

    def __init__(self, index, dtype, shape, tensor):
        self.index, self.dtype, self.shape, self.tensor = index, dtype, shape, tensor

    def __reduce__(self):
        return (_ArrayRef, (self.index, self.dtype, self.shape, self.tensor))

    def __repr__(self):
        return f"_ArrayRef({self.index}, {self.dtype!r}, {self.shape}, {self.tensor})"


def _flatten(obj: Any) -> tuple[Any, list[np.ndarray]]:
    """``(skeleton, arrays)``: ``obj`` with every Tensor and numpy array replaced by an
    ``_ArrayRef``; dicts (any mapping type becomes a plain dict), lists and tuples are walked."""
    arrays: list[np.ndarray] = []

    def walk(x):
        if isinstance(x, (Tensor, np.ndarray)):
            a = np.ascontiguousarray(_view(x) if isinstance(x, Tensor) else x)
            arrays.append(a)
            return _ArrayRef(len(arrays) - 1, a.dtype.str, a.shape, isinstance(x, Tensor))
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(walk(v) for v in x)
        return x

    return walk(obj), arrays


def _refs(skeleton: Any) -> list[_ArrayRef]:
    out = []

    def walk(x):
        if isinstance(x, _ArrayRef):
            out.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(skeleton)
    out.sort(key=lambda r: r.index)
    return out


def _unflatten(skeleton: Any, arrays: list[np.ndarray]) -> Any:
    def walk(x):
        if isinstance(x, _ArrayRef):
            a = arrays[x.index]
            return fastoptim.from_numpy(a) if x.tensor else a
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(walk(v) for v in x)
        return x

    return walk(skeleton)


def _empty_arrays(skeleton: Any) -> list[np.ndarray]:
    return [np.empty(r.shape, dtype=np.dtype(r.dtype)) for r in _refs(skeleton)]


def _bcast_tree(comm, obj: Any, root: int) -> Any:
    """Collective: ``obj`` from ``root`` on every rank (the skeleton pickled, arrays raw)."""
    if comm.Get_rank() == root:
        skeleton, arrays = _flatten(obj)
    else:
        skeleton, arrays = None, None
    skeleton = comm.bcast(skeleton, root=root)
    if comm.Get_rank() != root:
        arrays = _empty_arrays(skeleton)
    _bcast_arrays(comm, arrays, root)
    return _unflatten(skeleton, arrays)


def _gather_tree(comm, obj: Any, root: int) -> list[Any] | None:
    """Collective: every rank's ``obj``, in rank order, on ``root`` (None elsewhere). The
    skeletons are gathered pickled; the arrays with one ``Gatherv`` per dtype."""
    skeleton, arrays = _flatten(obj)
    counts: dict[str, int] = {}
    for a in arrays:
        counts[a.dtype.str] = counts.get(a.dtype.str, 0) + a.size
    dtypes = sorted(set().union(*comm.allgather(sorted(counts))))
    skeletons = comm.gather(skeleton, root=root)
    me = comm.Get_rank() == root
    flats: dict[str, list[np.ndarray]] = {}
    for dtype in dtypes:
        mine = [a.reshape(-1) for a in arrays if a.dtype.str == dtype]
        send = np.concatenate(mine) if mine else np.empty(0, dtype=np.dtype(dtype))
        sizes = comm.gather(send.size, root=root)
        if me:
            displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
            recv = np.empty(int(sum(sizes)), dtype=np.dtype(dtype))
            comm.Gatherv(send, [recv, (sizes, displs)], root=root)
            flats[dtype] = [recv[d:d + s] for d, s in zip(displs, sizes)]
        else:
            comm.Gatherv(send, None, root=root)
    if not me:
        return None
    out = []
    for rank, skel in enumerate(skeletons):
        offsets = dict.fromkeys(dtypes, 0)
        rebuilt = []
        for ref in _refs(skel):
            flat = flats[ref.dtype][rank]
            n = int(np.prod(ref.shape, dtype=np.int64))
            o = offsets[ref.dtype]
            rebuilt.append(flat[o:o + n].reshape(ref.shape))
            offsets[ref.dtype] = o + n
        out.append(_unflatten(skel, rebuilt))
    return out
