"""Shared pieces of the MPI test scripts (run by tests/test_distributed.py under mpiexec).

Each script checks many cases on every rank and prints ``OK <script> rank <r>`` at the end; the
pytest side checks the exit code and that every rank printed it. A failed check raises (under
``python -m mpi4py``, that aborts the whole job, so nothing hangs).

The data-parallel cases are built so that the distributed run is exactly the single-process
run on the concatenated batch: float64, a mean loss, equal per-rank batch sizes, and the
single-process reference computed on every rank with the same initial weights.
"""

import numpy as np
from mpi4py import MPI

import fastoptim as fo

COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()
SIZE = COMM.Get_size()
PER_RANK = 4          # rows of the batch per rank
SIZES = (7, 5, 3)     # the MLP


def model(seed=0, sizes=SIZES):
    """A float64 MLP with weights from ``seed`` (the same on every rank)."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(fo.nn.Tanh())
        layers.append(fo.nn.Linear(a, b))
    m = fo.nn.Sequential(*layers)
    with fo.no_grad():
        for p in m.parameters():
            p.data = fo.from_numpy(rng.standard_normal(tuple(p.shape)) * 0.5)
    return m


def batch(step, sizes=SIZES):
    """The global batch of ``step`` (SIZE * PER_RANK rows) and this rank's slice of it."""
    rng = np.random.default_rng(1000 + step)
    x = rng.standard_normal((SIZE * PER_RANK, sizes[0]))
    y = rng.standard_normal((SIZE * PER_RANK, sizes[-1]))
    lo, hi = RANK * PER_RANK, (RANK + 1) * PER_RANK
    return (fo.from_numpy(x), fo.from_numpy(y)), (fo.from_numpy(x[lo:hi].copy()),
                                                 fo.from_numpy(y[lo:hi].copy()))


def train(m, opt, steps, local, reduction="mean", start=0):
    """``steps`` steps of ``opt`` on ``m``: the local slice (``local``) or the global batch."""
    loss_fn = fo.nn.MSELoss(reduction=reduction)
    for s in range(start, start + steps):
        full, mine = batch(s)
        x, y = mine if local else full
        opt.zero_grad()
        loss_fn(m(x), y).backward()
        opt.step()


def arrays(m):
    return [p.detach().numpy().copy() for p in m.parameters()]


def assert_close(a, b, tol=1e-12, what=""):
    for i, (u, v) in enumerate(zip(a, b)):
        err = float(np.max(np.abs(u - v))) if u.size else 0.0
        assert err <= tol, f"{what}: param {i} differs by {err:.3e} (> {tol}) on rank {RANK}"


def same_on_all_ranks(values, what):
    """Every rank holds bit-identical ``values`` (compared with rank 0's)."""
    ref = COMM.bcast(values, root=0)
    for i, (u, v) in enumerate(zip(ref, values)):
        assert np.array_equal(u, v), f"{what}: param {i} differs from rank 0 on rank {RANK}"


def expect_raise(fn, local_error, what):
    """``fn()`` must raise on every rank: ``local_error`` (a type) here, or DistributedError."""
    from fastoptim.distributed import DistributedError
    try:
        fn()
    except DistributedError as e:
        assert local_error is DistributedError, f"{what}: rank {RANK} got {e!r}"
        return e
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, local_error), f"{what}: rank {RANK} got {e!r}"
        return e
    raise AssertionError(f"{what}: rank {RANK} did not raise")


def done(name):
    COMM.Barrier()
    print(f"OK {name} rank {RANK}", flush=True)
