"""ZeroRedundancyOptimizer under mpiexec -n 2 / -n 3 (see _common.py): sharding, state dicts
(consolidated, re-sharded, per-rank), uneven and empty shards."""

import copy
import io

import numpy as np
from _common import (
    COMM,
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
from fastoptim._sharding import partition_parameters
from fastoptim.distributed import (
    DistributedError,
    DistributedOptimizer,
    ZeroRedundancyOptimizer,
)


def zero_model(cls=fo.optim.Adam, seed=0, **kwargs):
    m = model(seed)
    z = ZeroRedundancyOptimizer(m.parameters(), cls, **(kwargs or {"lr": 0.01}))
    return m, z, DistributedOptimizer(z)


def state_tensors(opt):
    return [v.detach().numpy().copy() for p in opt.state for v in opt.state[p].values()]


# 1. each rank holds state only for its shard; the shards cover every param once; ~1/N memory
m, z, opt = zero_model()
train(m, opt, 2, local=True)
params = list(m.parameters())
pos = {id(p): i for i, p in enumerate(params)}
mine = {pos[id(p)] for p in z.optim.state}
assert mine == {pos[id(p)] for p in z.local_params}, (mine, RANK)
everyone = COMM.allgather(sorted(mine))
assert sorted(i for s in everyone for i in s) == list(range(len(params))), everyone
expected = partition_parameters(z.param_groups, SIZE)[RANK][0]["params"]
assert [pos[id(p)] for p in z.local_params] == [pos[id(p)] for p in expected]
full_m = model()
full = fo.optim.Adam(full_m.parameters(), lr=0.01)
train(full_m, full, 1, local=False)
total = sum(v.numel() * v.element_size() for s in full.state.values() for v in s.values())
per_rank = COMM.allgather(z.local_state_bytes())
assert sum(per_rank) == total, (per_rank, total)
assert not z.state, "the wrapper itself keeps no state"

# 2. consolidate -> a single-process optimizer loads it and continues exactly as the ranks do
m, z, opt = zero_model()
train(m, opt, 3, local=True)
expect_raise(z.state_dict, RuntimeError, "state_dict before consolidation")
to = SIZE - 1
z.consolidate_state_dict(to=to)
if RANK == to:
    sd = z.state_dict()
    assert sorted(sd["state"]) == list(range(len(list(m.parameters())))), sd["state"].keys()
    single_m = model()
    with fo.no_grad():
        for p, v in zip(single_m.parameters(), arrays(m)):
            p.copy_(fo.from_numpy(v))
    single = fo.optim.Adam(single_m.parameters(), lr=0.5)
    single.load_state_dict(sd)
    assert single.param_groups[0]["lr"] == 0.01
    train(single_m, single, 3, local=False, start=3)
    want = arrays(single_m)
else:
    expect_raise(z.state_dict, RuntimeError, "state_dict off the target rank")
    want = None
want = COMM.bcast(want, root=to)
train(m, opt, 3, local=True, start=3)
assert_close(arrays(m), want, what="consolidate -> single-process load")

# 3. a full state dict (from one process) loads into ZeRO, re-sharded, and training continues
ref_m = model()
ref = fo.optim.Adam(ref_m.parameters(), lr=0.02, amsgrad=True)
train(ref_m, ref, 2, local=False)
start = arrays(ref_m)
sd = copy.deepcopy(ref.state_dict())  # state_dict() holds the live tensors
train(ref_m, ref, 3, local=False, start=2)
m, z, opt = zero_model(lr=0.5, amsgrad=True)
with fo.no_grad():
    for p, v in zip(m.parameters(), start):
        p.copy_(fo.from_numpy(v))
z.load_state_dict(sd)
assert z.param_groups[0]["lr"] == 0.02 and z.optim.param_groups[0]["lr"] == 0.02
assert set(z.optim.state) == set(z.local_params)
train(m, opt, 3, local=True, start=2)
assert_close(arrays(m), arrays(ref_m), what="full load re-shards")
# ... and a bad dict raises everywhere, leaving the shards as they were
before = state_tensors(z.optim)
bad = {"state": sd["state"], "param_groups": sd["param_groups"] + sd["param_groups"]}
expect_raise(lambda: z.load_state_dict(bad), ValueError, "bad full dict")
bad = {"state": dict(sd["state"]), "param_groups": sd["param_groups"]}
if RANK == SIZE - 1:   # this rank's load fails: the others undo theirs
    bad["state"] = {k: {**v, "exp_avg": fo.zeros(1, 1, dtype=fo.float64)}
                    for k, v in bad["state"].items()}
expect_raise(lambda: z.load_state_dict(bad),
             ValueError if RANK == SIZE - 1 else DistributedError, "one rank fails to load")
assert_close(state_tensors(z.optim), before, tol=0.0, what="undone load")

# 4. sharded round trip: every rank saves its shard, a new optimizer loads it, same trajectory
m, z, opt = zero_model(fo.optim.Adagrad, lr=0.1)
train(m, opt, 3, local=True)
shard = z.sharded_state_dict()
assert shard["zero"]["rank"] == RANK and sorted(shard["state"]) == sorted(shard["zero"]["params"])
buf = io.BytesIO()
fo.save({"model": m.state_dict(), "optim": shard}, buf)
buf.seek(0)
ckpt = fo.load(buf)
train(m, opt, 3, local=True, start=3)
want = arrays(m)
m2, z2, opt2 = zero_model(fo.optim.Adagrad, seed=5, lr=0.7)
m2.load_state_dict(ckpt["model"])
z2.load_sharded_state_dict(ckpt["optim"])
assert z2.param_groups[0]["lr"] == 0.1
train(m2, opt2, 3, local=True, start=3)
assert_close(arrays(m2), want, what="sharded round trip")
# a shard from another rank is refused on every rank
other = COMM.sendrecv(shard, dest=(RANK + 1) % SIZE, source=(RANK - 1) % SIZE)
expect_raise(lambda: z2.load_sharded_state_dict(other), ValueError, "someone else's shard")
expect_raise(lambda: z2.load_sharded_state_dict(ckpt["optim"]["state"]), ValueError,
             "not a shard")

# 5. uneven sizes, more ranks than params (a rank with nothing), several groups, a frozen-ish
#    param without grad, add_param_group, an LR scheduler
def uneven(seed):
    rng = np.random.default_rng(seed)
    shapes = [(5,), (3, 2), (1,), (4,), (2, 2)]
    return [fo.from_numpy(rng.standard_normal(s)).requires_grad_() for s in shapes]


def grads(ps, step):
    rng = np.random.default_rng(100 + step)
    gs = [rng.standard_normal((SIZE,) + tuple(p.shape)) for p in ps]
    for p, g in zip(ps, gs):
        p.grad = fo.from_numpy(g[RANK].copy())
    return [g.mean(axis=0) for g in gs]


def run_groups(make, ps, steps, local):
    opt = make([{"params": ps[:3], "lr": 0.05}, {"params": ps[3:], "lr": 0.2,
                                                  "momentum": 0.5}])
    sched = fo.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    for s in range(steps):
        gs = grads(ps, s)
        if not local:
            for p, g in zip(ps, gs):
                p.grad = fo.from_numpy(g)
        ps[2].grad = None            # never has a grad: never stepped, no state
        opt.step()
        sched.step()
    return opt


ref_ps = uneven(3)
run_groups(lambda g: fo.optim.SGD(g, lr=0.1), ref_ps, 4, local=False)
ps = uneven(3)
opt = run_groups(lambda g: DistributedOptimizer(
    ZeroRedundancyOptimizer(g, fo.optim.SGD, lr=0.1)), ps, 4, local=True)
assert_close([p.detach().numpy() for p in ps], [p.detach().numpy() for p in ref_ps],
             what="uneven groups")
z = opt.optimizer
counts = COMM.allgather(len(z.local_params))
assert sum(counts) == 5 and (SIZE < 5 or 0 in counts), counts
assert ps[2] not in z.optim.state
new = fo.zeros(3, dtype=fo.float64, requires_grad=True)
owners_before = {id(p): r for r, g in enumerate(z._partition_cache) for p in g[0]["params"]}
opt.add_param_group({"params": [new], "lr": 1.0, "momentum": 0.0})
owners_after = {id(p): r for r, g in enumerate(z._partition_cache) for p in g[0]["params"]}
assert owners_before == owners_after, "add_param_group moved a param"
new.grad = fo.from_numpy(np.full(3, float(RANK)))
for p in ps:
    p.grad = None
opt.step()
assert_close([new.detach().numpy()], [-np.full(3, (SIZE - 1) / 2)], what="added group")
same_on_all_ranks([p.detach().numpy() for p in ps + [new]], "added group")

# 6. a rank with no params at all: 2 params over SIZE (3) ranks; state dicts still work
tiny = [fo.zeros(4, dtype=fo.float64, requires_grad=True),
        fo.zeros(2, dtype=fo.float64, requires_grad=True)]
z = ZeroRedundancyOptimizer(tiny, fo.optim.Adam, lr=0.1)
if SIZE > 2:
    assert (len(z.local_params) == 0) == (RANK >= 2), (RANK, z.local_params)
for s in range(3):
    for p in tiny:
        p.grad = fo.from_numpy(np.full(tuple(p.shape), float(s + 1)))
    z.step()
same_on_all_ranks([p.detach().numpy() for p in tiny], "empty rank")
ref = [fo.zeros(4, dtype=fo.float64, requires_grad=True),
       fo.zeros(2, dtype=fo.float64, requires_grad=True)]
ro = fo.optim.Adam(ref, lr=0.1)
for s in range(3):
    for p in ref:
        p.grad = fo.from_numpy(np.full(tuple(p.shape), float(s + 1)))
    ro.step()
assert_close([p.detach().numpy() for p in tiny], [p.detach().numpy() for p in ref],
             what="empty rank")
z.consolidate_state_dict(0)
if RANK == 0:
    assert sorted(z.state_dict()["state"]) == [0, 1]
shard = z.sharded_state_dict()
z.load_sharded_state_dict(shard)

# 7. constructor checks (torch's messages)
for bad, err in ((fo.zeros(2), TypeError), ([], ValueError)):
    try:
        ZeroRedundancyOptimizer(bad, fo.optim.SGD, lr=0.1)
    except err:
        pass
    else:
        raise AssertionError(f"{bad!r} accepted")
try:
    ZeroRedundancyOptimizer([fo.zeros(2), fo.zeros(2, dtype=fo.float64)], fo.optim.SGD, lr=0.1)
except ValueError as e:
    assert "same dense type" in str(e)
else:
    raise AssertionError("mixed dtypes accepted")

done("zero")
