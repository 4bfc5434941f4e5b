"""A rank that raises inside a collective call makes every rank raise, and nobody blocks
(under mpiexec -n 2 / -n 3; see _common.py). After each error, training goes on normally:
the ranks are still in step with each other's collectives."""

import numpy as np
from _common import RANK, SIZE, done, expect_raise, model, same_on_all_ranks, train

import fastoptim as fo
from fastoptim.distributed import (
    DistributedError,
    DistributedOptimizer,
    ZeroRedundancyOptimizer,
    broadcast_optimizer_state,
    broadcast_parameters,
)

BAD = SIZE - 1   # the rank that fails


class Boom(Exception):
    pass


def check_message(e, what):
    if RANK != BAD:
        assert isinstance(e, DistributedError), e
        assert f"rank {BAD}: Boom: {what}" in str(e), str(e)
        assert f"failed on rank {BAD}" in str(e), str(e)


def closure_that_fails_on(rank, m, what):
    def closure():
        loss = fo.nn.MSELoss()(m(fo.ones(2, 7, dtype=fo.float64)), fo.zeros(2, 3,
                                                                       dtype=fo.float64))
        loss.backward()
        if RANK == rank:
            raise Boom(what)
        return loss
    return closure


for make in (lambda m: DistributedOptimizer(fo.optim.Adam(m.parameters(), lr=0.01)),
             lambda m: DistributedOptimizer(
                 ZeroRedundancyOptimizer(m.parameters(), fo.optim.Adam, lr=0.01))):
    # 1. in the closure, before any gradient collective
    m = model()
    opt = make(m)
    e = expect_raise(lambda m=m, opt=opt: opt.step(closure_that_fails_on(BAD, m, "closure")),
                     Boom if RANK == BAD else DistributedError, "closure")
    check_message(e, "closure")

    # 2. inside the wrapped optimizer's step (after the all-reduce)
    def hook(optimizer, args, kwargs):
        if RANK == BAD:
            raise Boom("inner step")
    handle = opt.register_step_pre_hook(hook)
    train(m, opt, 0, local=True)
    e = expect_raise(lambda m=m, opt=opt: train(m, opt, 1, local=True),
                     Boom if RANK == BAD else DistributedError, "inner step")
    check_message(e, "inner step")
    handle.remove()

    # 3. a step applied on some ranks only leaves the replicas apart: resynchronise from
    #    rank 0 (a ZeRO shard's state lives on one rank only: the params suffice), train on
    broadcast_parameters(m.parameters())
    if not isinstance(opt.optimizer, ZeroRedundancyOptimizer):
        broadcast_optimizer_state(opt)
    train(m, opt, 2, local=True)
    same_on_all_ranks([p.detach().numpy() for p in m.parameters()], "after errors")

# 4. ZeRO's own step (its local optimizer raises on one rank) and an invalid hyperparameter
m = model()
z = ZeroRedundancyOptimizer(m.parameters(), fo.optim.SGD, lr=0.1)
z.optim.register_step_pre_hook(lambda o, a, k: (_ for _ in ()).throw(Boom("local step"))
                               if RANK == BAD else None)
e = expect_raise(z.step, Boom if RANK == BAD else DistributedError, "ZeRO step")
check_message(e, "local step")
m = model()
opt = DistributedOptimizer(fo.optim.SGD(m.parameters(), lr=0.1))
if RANK == BAD:
    opt.param_groups[0]["momentum"] = "fast"   # this rank's step will fail
e = expect_raise(lambda: train(m, opt, 1, local=True),
                 TypeError if RANK == BAD else DistributedError, "bad hyperparameter")
opt.param_groups[0]["momentum"] = 0

# 5. broadcast_optimizer_state where a non-root rank cannot load the root's state
m = model()
opt = fo.optim.Adam(m.parameters(), lr=0.01)
if RANK == 0:
    train(m, opt, 1, local=False)
if RANK == BAD:
    opt.load_state_dict = lambda sd: (_ for _ in ()).throw(Boom("load"))
e = expect_raise(lambda: broadcast_optimizer_state(opt, root=0),
                 Boom if RANK == BAD else DistributedError, "broadcast load")
check_message(e, "load")

# 6. consolidate with a bad target: everyone raises the same ValueError
z = ZeroRedundancyOptimizer(model().parameters(), fo.optim.SGD, lr=0.1)
expect_raise(lambda: z.consolidate_state_dict(to=SIZE), ValueError, "bad target")
z.consolidate_state_dict(to=0)
assert np.isfinite(sum(float(p.sum()) for p in model().parameters()))

# 7. a local optimizer that refuses its shard on one rank: the constructor raises everywhere
def picky(params, **kwargs):
    if RANK == BAD:
        raise Boom("constructor")
    return fo.optim.SGD(params, **kwargs)


e = expect_raise(lambda: ZeroRedundancyOptimizer(model().parameters(), picky, lr=0.1),
                 Boom if RANK == BAD else DistributedError, "constructor")
check_message(e, "constructor")

# 8. a param group added on one rank only: the next step raises ValueError everywhere
for wrapped in (False, True):
    m = model()
    z = ZeroRedundancyOptimizer(m.parameters(), fo.optim.SGD, lr=0.1)
    opt = DistributedOptimizer(z) if wrapped else z
    if RANK == BAD:
        opt.add_param_group({"params": [fo.zeros(3, requires_grad=True, dtype=fo.float64)]})
    e = expect_raise(lambda opt=opt, m=m: train(m, opt, 1, local=True), ValueError,
                     "add_param_group on one rank")
    assert "disagree" in str(e), e

done("errors")
