"""Start every rank equal: broadcast parameters and optimizer state from one rank.

Why it exists: data-parallel ranks must begin from identical parameters (each process
initialises its model from its own random state) and, when resuming, identical optimizer state.
Horovod's ``broadcast_parameters`` / ``broadcast_optimizer_state`` shape.

Parameters are copied in place (the Tensors stay the same objects), one flat buffer and one
``Bcast`` per dtype. The optimizer state goes through the public ``state_dict()`` /
``load_state_dict()``: the root's dict is sent as a pickled skeleton plus raw per-dtype buffers,
and every other rank loads it (hyperparameters included). Both are collective, and agree on
errors (and on the parameters' shapes and dtypes) before moving anything.
"""

from __future__ import annotations

from fastoptim.optim import Optimizer

from ._collectives import (
    _agree,
    _bcast_arrays,
    _bcast_tree,
    _check_root,
    _digest,
    _raise_disagreement,
    _tensor_list,
    _view,
    _world,
)

__all__ = ["broadcast_optimizer_state", "broadcast_parameters"]


def broadcast_parameters(params, root: int = 0, comm=None) -> None:
    """Collective: overwrite ``params`` on every rank with ``root``'s values, in place.

    Args:
        params: an iterable of Tensors (``model.parameters()``), of (name, Tensor) pairs, or a
            dict of Tensors (``model.state_dict()``: buffers included), in the same order on
            every rank.
        root (int): the rank whose values win.
        comm (mpi4py.MPI.Comm, optional): default ``MPI.COMM_WORLD``.

    Raises ValueError on every rank if the ranks' shapes or dtypes differ.
    """
    comm = _world(comm)
    error, views, layout = None, [], ()
    try:
        _check_root(comm, root)
        views = [_view(p) for p in _tensor_list(params)]
        layout = tuple((v.shape, v.dtype.str) for v in views)
    except Exception as e:  # noqa: BLE001 - agreed on below, then re-raised
        error = e
    if not _agree(comm, error, "broadcast_parameters", _digest(layout)):
        _raise_disagreement(comm, layout, "broadcast_parameters", "the tensors' (shape, dtype)")
    _bcast_arrays(comm, views, root)


def broadcast_optimizer_state(optimizer: Optimizer, root: int = 0, comm=None) -> None:
    """Collective: load ``root``'s ``optimizer.state_dict()`` into ``optimizer`` on every other
    rank (state and hyperparameters). A ``ZeroRedundancyOptimizer`` is refused: its ranks hold
    different shards by design (use its ``consolidate_state_dict`` / ``load_state_dict``)."""
    from .zero import ZeroRedundancyOptimizer

    comm = _world(comm)
    error, state = None, None
    try:
        _check_root(comm, root)
        inner = getattr(optimizer, "optimizer", optimizer)  # a DistributedOptimizer's
        if isinstance(inner, ZeroRedundancyOptimizer):
            raise TypeError("broadcast_optimizer_state: a ZeroRedundancyOptimizer's ranks hold "
                            "different shards; use consolidate_state_dict() and "
                            "load_state_dict() instead")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastoptim.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if comm.Get_rank() == root:
            state = optimizer.state_dict()
    except Exception as e:  # noqa: BLE001
        error = e
    _agree(comm, error, "broadcast_optimizer_state")
    state = _bcast_tree(comm, state, root)
    error = None
    try:
        if comm.Get_rank() != root:
            optimizer.load_state_dict(state)
    except Exception as e:  # noqa: BLE001
        error = e
    _agree(comm, error, "broadcast_optimizer_state")
