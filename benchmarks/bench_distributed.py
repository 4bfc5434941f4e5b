"""What data parallelism costs: the gradient all-reduce against the step, and ZeRO's memory.

Run under MPI (it is not part of run.py's suite):

    mpiexec -n 2 python benchmarks/bench_distributed.py [--steps 200] [--json out.json]

Per workload -- the 784-256-10 MLP of regime (e) (batch 64 per rank, MSE, Adam) and 1000 params
x 1024 elements (regime (b)'s arrays, grads given, Adam) -- it reports medians over ``--steps``
steps, every step started after a barrier so that rank skew is not counted:

* ``step``: one whole training step with ``DistributedOptimizer`` (MLP: zero_grad, forward,
  backward, step; 1000x1024: step), and its parts: ``allreduce`` (the error/layout agreement,
  packing, the bucketed ``Iallreduce`` and unpacking) and ``update`` (the wrapped step);
  ``allreduce / step`` is the figure the issue asks for.
* a bucket-size sweep of the all-reduce, against one blocking ``Allreduce`` of a ready flat
  buffer (the floor: no packing, no agreement);
* ZeRO-1: bytes of optimizer state on each rank with ``ZeroRedundancyOptimizer`` against the
  unsharded optimizer, its step time, and its param sync by one ``Ibcast`` per owner (what it
  uses) against one ``Allgatherv``.

Timings on a shared machine are noisy: read them as rough, and say how loaded it was.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# One thread per rank unless the caller says otherwise: ranks share the machine's cores, and a
# rank whose OpenMP/BLAS pool spans every core oversubscribes them (the step and all-reduce
# figures then measure the contention).  Read by OpenMP and the BLAS when they load, so it is
# set before numpy and fastoptim are imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from contenders import BATCH, MLP, mlp_data
from mpi4py import MPI

import fastoptim as fo
from fastoptim.distributed import (
    DEFAULT_BUCKET_SIZE,
    DistributedOptimizer,
    ZeroRedundancyOptimizer,
    broadcast_parameters,
)

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
BUCKETS = (64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20)


def mlp():
    weights, x, y = mlp_data()
    model = fo.nn.Sequential(fo.nn.Linear(MLP[0], MLP[1]), fo.nn.ReLU(),
                             fo.nn.Linear(MLP[1], MLP[2]))
    with fo.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(fo.from_numpy(w.copy()))
    rng = np.random.default_rng(RANK)     # every rank its own batch
    x = fo.from_numpy(rng.standard_normal((BATCH, MLP[0]), dtype=np.float32))
    y = fo.from_numpy(rng.standard_normal((BATCH, MLP[2]), dtype=np.float32))
    loss_fn = fo.nn.MSELoss()
    params = list(model.parameters())

    def grads():
        loss_fn(model(x), y).backward()
    return params, grads


def many():
    rng = np.random.default_rng(RANK)
    params = [fo.from_numpy(rng.standard_normal(1024, dtype=np.float32)).requires_grad_()
              for _ in range(1000)]
    gs = [fo.from_numpy(rng.standard_normal(1024, dtype=np.float32)) for _ in range(1000)]

    def grads():
        for p, g in zip(params, gs):
            p.grad = g
    return params, grads


WORKLOADS = {"mlp 784-256-10": mlp, "1000 x 1024": many}


def median_ms(xs):
    return float(np.median(xs)) * 1e3


def timed_steps(opt, grads, steps, parts=True):
    """Medians (ms) of the whole step and, with ``parts``, of its all-reduce."""
    spent = {"allreduce": []}
    if parts:
        inner = opt._allreduce

        def allreduce(plan, g):
            t = time.perf_counter()
            inner(plan, g)
            spent["allreduce"].append(time.perf_counter() - t)
        opt._allreduce = allreduce
    total = []
    for i in range(steps + 5):
        COMM.Barrier()
        t = time.perf_counter()
        opt.zero_grad()
        grads()
        opt.step()
        if i >= 5:
            total.append(time.perf_counter() - t)
    out = {"step": median_ms(total)}
    if parts:
        out["allreduce"] = median_ms(spent["allreduce"][5:])
        opt._allreduce = inner
    return out


def flat_allreduce(params, steps):
    n = sum(p.numel() for p in params)
    buf = np.ones(n, np.float32)
    ts = []
    for _ in range(steps + 5):
        COMM.Barrier()
        t = time.perf_counter()
        COMM.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        ts.append(time.perf_counter() - t)
    return median_ms(ts[5:])


def state_bytes(opt):
    return sum(v.numel() * v.element_size() for s in opt.state.values()
               for v in s.values() if isinstance(v, fo.Tensor))


def allgatherv_sync(z):
    """The alternative param sync: pack, one in-place Allgatherv, unpack."""
    flat = z._flat
    o = z._displs[RANK]
    for p in z._params_per_rank[RANK]:
        flat[o:o + p.numel()] = p.detach().numpy().reshape(-1)
        o += p.numel()
    COMM.Allgatherv(MPI.IN_PLACE, [flat, (z._counts, z._displs)])
    for r, ps in enumerate(z._params_per_rank):
        if r != RANK:
            o = z._displs[r]
            for p in ps:
                np.copyto(p.detach().numpy(), flat[o:o + p.numel()].reshape(tuple(p.shape)))
                o += p.numel()


def time_sync(fn, steps):
    ts = []
    for _ in range(steps + 5):
        COMM.Barrier()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return median_ms(ts[5:])


def run(name, make, steps):
    row = {"workload": name}
    params, grads = make()
    broadcast_parameters(params)
    row["numel"] = sum(p.numel() for p in params)
    # the step with and without data parallelism
    plain = fo.optim.Adam(params, lr=1e-3)
    row["single-process step"] = timed_steps_plain(plain, grads, steps)
    opt = DistributedOptimizer(fo.optim.Adam(params, lr=1e-3))
    r = timed_steps(opt, grads, steps)
    row.update({"step": r["step"], "allreduce": r["allreduce"],
                "allreduce / step": r["allreduce"] / r["step"]})
    row["flat Allreduce"] = flat_allreduce(params, steps)
    for b in BUCKETS:
        o = DistributedOptimizer(fo.optim.SGD(params, lr=0.0), bucket_size=b)
        row[f"allreduce, bucket {b >> 10} KiB"] = timed_steps(o, grads, steps)["allreduce"]
    # ZeRO-1
    z = ZeroRedundancyOptimizer(params, fo.optim.Adam, lr=1e-3)
    zopt = DistributedOptimizer(z)
    row["zero step"] = timed_steps(zopt, grads, steps, parts=False)["step"]
    row["state bytes, unsharded"] = state_bytes(opt.optimizer)
    row["state bytes per rank, zero"] = COMM.allgather(state_bytes(z.optim))
    row["zero sync, Ibcast per owner (used)"] = time_sync(z._sync_params, steps)
    row["zero sync, Allgatherv"] = time_sync(lambda: allgatherv_sync(z), steps)
    return row


def timed_steps_plain(opt, grads, steps):
    ts = []
    for i in range(steps + 5):
        t = time.perf_counter()
        opt.zero_grad()
        grads()
        opt.step()
        if i >= 5:
            ts.append(time.perf_counter() - t)
    return median_ms(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = [run(name, make, args.steps) for name, make in WORKLOADS.items()]
    if RANK == 0:
        print(f"{SIZE} ranks, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
              f"default bucket {DEFAULT_BUCKET_SIZE >> 10} KiB, {args.steps} steps, "
              f"medians in ms")
        for row in rows:
            print(f"\n== {row['workload']} ({row['numel']} float32 params)")
            for k, v in row.items():
                if k in ("workload", "numel"):
                    continue
                if isinstance(v, float):
                    v = f"{v:.1%}" if "/" in k else f"{v:.3f}"
                print(f"  {k:34s} {v}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"ranks": SIZE, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
