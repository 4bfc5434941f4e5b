"""Does ``step()`` release the GIL? Two Python threads stepping two optimizers at once.

Two Adam optimizers each own a big disjoint param (``--numel`` float32 elements, default 2Mi:
28 bytes/element of memory traffic per step). Times, interleaved and best of ``--repeats``:

- one:     optimizer A alone, ``--steps`` steps;
- serial:  A then B, ``--steps`` steps each, in one thread;
- threads: A and B in two threads at once, ``--steps`` steps each.

If ``step()`` holds the GIL through its kernel, ``threads`` takes as long as ``serial`` (2x
``one``); if it releases it and two cores are free, ``threads`` takes about as long as ``one``
(ratio near 1; memory bandwidth shared by two cores keeps it above 1). The process's CPU time
over the wall time of the threaded run is also printed (best of the repeats): above 1.0, both
threads were computing at the same moment, which a GIL held through the kernel forbids; this
shows the release even on a busy machine where no second core is free. The kernels' own OpenMP
threads would use both cores by themselves, so the script runs them single-threaded: it sets
OMP_NUM_THREADS=1 (and the BLAS counts) before importing fastoptim, unless already set.

Run: ``python benchmarks/bench_threads.py [--numel 2097152] [--steps 20] [--repeats 7]``.
On a machine shared with other work the figures are noisy: run it when it is quiet.
"""
import argparse
import json
import os
import sys
import threading
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fastoptim  # noqa: E402
from fastoptim import nn, optim  # noqa: E402


def _optimizer(numel, seed):
    rng = np.random.default_rng(seed)
    p = nn.Parameter(fastoptim.from_numpy(rng.standard_normal(numel).astype(np.float32)))
    p.grad = fastoptim.from_numpy(rng.standard_normal(numel).astype(np.float32) * 1e-3)
    opt = optim.Adam([p], lr=1e-6)
    opt.step()  # state created: what follows is the steady state
    return opt


def _steps(opt, n, start=None):
    if start is not None:
        start.wait()
    for _ in range(n):
        opt.step()


def _time_one(a, steps):
    t = time.perf_counter()
    _steps(a, steps)
    return time.perf_counter() - t


def _time_serial(a, b, steps):
    t = time.perf_counter()
    _steps(a, steps)
    _steps(b, steps)
    return time.perf_counter() - t


def _time_threads(a, b, steps):
    start = threading.Barrier(3)
    threads = [threading.Thread(target=_steps, args=(opt, steps, start)) for opt in (a, b)]
    for t in threads:
        t.start()
    start.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu / wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--numel", type=int, default=2 << 20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    a, b = _optimizer(args.numel, 0), _optimizer(args.numel, 1)
    best = {"one": float("inf"), "serial": float("inf"), "threads": float("inf")}
    overlap = 0.0
    for _ in range(args.repeats):
        best["one"] = min(best["one"], _time_one(a, args.steps))
        best["serial"] = min(best["serial"], _time_serial(a, b, args.steps))
        wall, cpu_per_wall = _time_threads(a, b, args.steps)
        best["threads"] = min(best["threads"], wall)
        overlap = max(overlap, cpu_per_wall)
    result = {
        "numel": args.numel, "steps": args.steps, "repeats": args.repeats,
        "omp_num_threads": os.environ["OMP_NUM_THREADS"], "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "ms": {k: round(v * 1e3, 2) for k, v in best.items()},
        "threads_over_one": round(best["threads"] / best["one"], 2),
        "serial_over_one": round(best["serial"] / best["one"], 2),
        "threads_cpu_over_wall": round(overlap, 2),
    }
    print(f"{args.numel} float32 elements per optimizer, {args.steps} Adam steps each, "
          f"best of {args.repeats} (OMP_NUM_THREADS={result['omp_num_threads']}, "
          f"{result['cpus']} cpus, load {result['load_average']})")
    for k, v in result["ms"].items():
        print(f"  {k:8s} {v:9.2f} ms")
    print(f"  two threads / one optimizer alone: {result['threads_over_one']:.2f} "
          f"(1.0: the GIL is released and two cores run; 2.0: it is not)")
    print(f"  serial / one:                      {result['serial_over_one']:.2f}")
    print(f"  CPU time / wall time, two threads: {result['threads_cpu_over_wall']:.2f} "
          f"(above 1: both threads computed at once, which needs the GIL released; this holds "
          f"even when a busy machine leaves no core free for the ratio above)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
