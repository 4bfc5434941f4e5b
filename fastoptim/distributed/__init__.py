"""``fastoptim.distributed``: data-parallel training and ZeRO-1 sharded optimizer state over MPI.

Why it exists: to train one model on many processes (on one machine or many) with MPI, the
engine of numeric clusters, through mpi4py. It is an optional extra: ``import fastoptim`` never
imports mpi4py; this package needs it (``pip install "fastoptim[distributed]"`` brings mpi4py
and the ``mpich`` wheel). Launch with ``mpiexec -n 4 python -m mpi4py train.py`` (``-m mpi4py``
makes an uncaught exception on one rank abort the whole job instead of leaving the others
waiting).

* ``broadcast_parameters`` / ``broadcast_optimizer_state``: make every rank start equal.
* ``DistributedOptimizer``: wrap any optimizer; ``step`` all-reduces the grads in buckets.
* ``ZeroRedundancyOptimizer``: each rank keeps the optimizer state of its shard only.

Every collective here is preceded by an agreement on an error flag: if one rank raises inside
one of these calls, every rank raises (``DistributedError`` on the others) rather than block.
"""

try:
    from mpi4py import MPI  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "fastoptim.distributed needs mpi4py and an MPI library; install them with "
        'pip install "fastoptim[distributed]"'
    ) from e

from fastoptim._sharding import partition_parameters  # noqa: E402

from ._collectives import DistributedError  # noqa: E402
from .broadcast import broadcast_optimizer_state, broadcast_parameters  # noqa: E402
from .optimizer import DEFAULT_BUCKET_SIZE, DistributedOptimizer  # noqa: E402
from .zero import ZeroRedundancyOptimizer  # noqa: E402

__all__ = [
    "DEFAULT_BUCKET_SIZE",
    "DistributedError",
    "DistributedOptimizer",
    "ZeroRedundancyOptimizer",
    "broadcast_optimizer_state",
    "broadcast_parameters",
    "partition_parameters",
]
