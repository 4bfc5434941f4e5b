"""A rank that raises OUTSIDE fastoptim.distributed while the others wait in a collective:
under ``python -m mpi4py`` the uncaught exception aborts the whole job (exit code != 0) instead
of leaving the others blocked. The pytest side checks that the job ends, with an error."""

from _common import RANK, SIZE, model, train

import fastoptim as fo
from fastoptim.distributed import DistributedOptimizer

m = model()
opt = DistributedOptimizer(fo.optim.SGD(m.parameters(), lr=0.1))
train(m, opt, 1, local=True)
if RANK == SIZE - 1:
    raise RuntimeError("rank failed outside the optimizer")
train(m, opt, 1, local=True)   # the other ranks wait here for the failed one
print(f"UNREACHABLE rank {RANK}", flush=True)
