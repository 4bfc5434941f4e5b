"""DistributedOptimizer and the broadcasts, under mpiexec -n 2 / -n 3 (see _common.py)."""

import numpy as np
from _common import (
    RANK,
    SIZE,
    arrays,
    assert_close,
    done,
    expect_raise,
    model,
    same_on_all_ranks,
    train,
)

import fastoptim as fo
from fastoptim.distributed import (
    DistributedError,
    DistributedOptimizer,
    ZeroRedundancyOptimizer,
    broadcast_optimizer_state,
    broadcast_parameters,
)

OPTIMIZERS = [
    ("SGD momentum", fo.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("SGD nesterov wd", fo.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True,
                                       "weight_decay": 0.01}),
    ("Adam", fo.optim.Adam, {"lr": 0.01}),
    ("Adam amsgrad", fo.optim.Adam, {"lr": 0.01, "amsgrad": True}),
    ("AdamW", fo.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    ("Adagrad", fo.optim.Adagrad, {"lr": 0.1}),
    ("Adadelta", fo.optim.Adadelta, {"lr": 1.0}),
    ("RMSprop", fo.optim.RMSprop, {"lr": 0.01, "momentum": 0.5}),
]
STEPS = 6


def reference(cls, kwargs, steps=STEPS):
    m = model()
    train(m, cls(m.parameters(), **kwargs), steps, local=False)
    return arrays(m)


# 1. N ranks on their slices == one process on the whole batch, for several optimizers,
#    bucket sizes (tiny: grads span buckets) and with ZeRO underneath
for name, cls, kwargs in OPTIMIZERS:
    want = reference(cls, kwargs)
    for bucket in (None, 64, 1000):
        m = model()
        extra = {} if bucket is None else {"bucket_size": bucket}
        opt = DistributedOptimizer(cls(m.parameters(), **kwargs), **extra)
        train(m, opt, STEPS, local=True)
        assert_close(arrays(m), want, what=f"{name}, bucket {bucket}")
        same_on_all_ranks(arrays(m), f"{name}, bucket {bucket}")
    m = model()
    opt = DistributedOptimizer(ZeroRedundancyOptimizer(m.parameters(), cls, **kwargs))
    train(m, opt, STEPS, local=True)
    assert_close(arrays(m), want, what=f"{name} over ZeRO")
    same_on_all_ranks(arrays(m), f"{name} over ZeRO")

# 2. op="sum" with a sum loss is the single-process sum loss
want = None
m = model()
train(m, fo.optim.SGD(m.parameters(), lr=0.01), 3, local=False, reduction="sum")
want = arrays(m)
m = model()
train(m, DistributedOptimizer(fo.optim.SGD(m.parameters(), lr=0.01), op="sum"), 3,
      local=True, reduction="sum")
assert_close(arrays(m), want, what="op=sum")

# 3. a grad present on some ranks only counts as zeros elsewhere; None everywhere is skipped
p = fo.zeros(3, dtype=fo.float64, requires_grad=True)
q = fo.zeros(2, dtype=fo.float64, requires_grad=True)
opt = DistributedOptimizer(fo.optim.SGD([p, q], lr=1.0))
if RANK == 0:
    p.grad = fo.from_numpy(np.array([3.0, 6.0, 9.0]))
opt.step()
assert_close([p.detach().numpy()], [-np.array([3.0, 6.0, 9.0]) / SIZE], what="partial grads")
assert p.grad is not None and q.grad is None
same_on_all_ranks([p.detach().numpy()], "partial grads")
# a non-contiguous grad is reduced too (it is replaced by a contiguous one)
w = fo.zeros(2, 3, dtype=fo.float64, requires_grad=True)
opt = DistributedOptimizer(fo.optim.SGD([w], lr=1.0))
g = np.arange(6.0).reshape(3, 2) * (RANK + 1)
w.grad = fo.from_numpy(g).t()
opt.step()
mean = np.arange(6.0).reshape(3, 2).T * (SIZE + 1) / 2
assert_close([w.detach().numpy()], [-mean], what="non-contiguous grad")

# 4. ranks with different parameters all raise ValueError (nobody blocks)
a = fo.zeros(4 if RANK == SIZE - 1 else 3, dtype=fo.float64, requires_grad=True)
a.grad = fo.ones_like(a)
opt = DistributedOptimizer(fo.optim.SGD([a], lr=1.0))
e = expect_raise(opt.step, ValueError, "layout mismatch")
assert "disagree" in str(e), e

# 5. broadcast_parameters / broadcast_optimizer_state: every rank ends equal to the root
root = SIZE - 1
m = model(seed=RANK)                      # different weights on every rank
opt = fo.optim.Adam(m.parameters(), lr=0.01 * (RANK + 1))
if RANK == root:                          # only the root has state
    train(m, opt, 2, local=False)
broadcast_parameters(m.state_dict(), root=root)
broadcast_optimizer_state(opt, root=root)
same_on_all_ranks(arrays(m), "broadcast_parameters")
assert opt.param_groups[0]["lr"] == 0.01 * (root + 1)
state = [opt.state[p_][k].detach().numpy().copy() for p_ in m.parameters()
         for k in ("exp_avg", "exp_avg_sq")]
same_on_all_ranks(state, "broadcast_optimizer_state")
assert all(float(opt.state[p_]["step"]) == 2.0 for p_ in m.parameters())
broadcast_parameters(list(m.named_parameters()), root=0)   # (name, tensor) pairs
e = expect_raise(lambda: broadcast_parameters(m.parameters(), root=SIZE), ValueError,
                 "bad root")
z = ZeroRedundancyOptimizer(model().parameters(), fo.optim.SGD, lr=0.1)
expect_raise(lambda: broadcast_optimizer_state(z), TypeError, "broadcast of a ZeRO state")

# 6. the wrapper is an Optimizer: LR schedulers, state_dict, hooks, add_param_group
m = model()
inner = fo.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
opt = DistributedOptimizer(inner)
sched = fo.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
train(m, opt, 1, local=True)
sched.step()
assert inner.param_groups[0]["lr"] == 0.05
assert opt.state_dict()["param_groups"][0]["lr"] == 0.05
calls = []
opt.register_step_post_hook(lambda o, a, k: calls.append(1))
train(m, opt, 1, local=True)
assert calls == [1]
extra = fo.zeros(2, dtype=fo.float64, requires_grad=True)
opt.add_param_group({"params": [extra], "lr": 1.0})
extra.grad = fo.from_numpy(np.full(2, float(RANK)))
opt.step()
assert_close([extra.detach().numpy()], [-np.full(2, (SIZE - 1) / 2)], what="add_param_group")
try:
    DistributedOptimizer(inner, op="max")
except ValueError as e:
    assert "'max'" in str(e)
else:
    raise AssertionError("op='max' accepted")
assert isinstance(DistributedError("x"), RuntimeError)

done("data_parallel")
