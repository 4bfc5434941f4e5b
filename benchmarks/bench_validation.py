"""What does validating a large param group cost, next to the update itself?

Times ``_optim.step`` for Adam and SGD (momentum) on a group of N arrays of M float32
elements against the same N*M elements in one array, interleaved, and prints both medians and
their ratio.  The one-array call pays a constant few-microsecond validation; the N-array call pays
per-array checks plus the overlap proof, so the ratio is the price of validation (the kernel does
the same work either way).  A third line, N arrays of one element, shows the per-array overhead
with almost no arithmetic.  Where the module has an overlap cache, a "cold" line repeats the
first group with the cache cleared before every call (an optimizer's first step).

Run: ``python benchmarks/bench_validation.py [--n 1000] [--m 1024] [--repeats 15]``.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fastoptim._C import _optim
from fastoptim.optim._descriptions import BY_NAME
from fastoptim.optim._step import plan

ADAM, SGD = plan(BY_NAME["adam"]), plan(BY_NAME["sgd"])


def _arrays(n, m, rng):
    return [rng.standard_normal(m).astype(np.float32) for _ in range(n)]


def _adam_call(n, m, rng):
    ps, gs = _arrays(n, m, rng), _arrays(n, m, rng)
    ms = [np.zeros(m, np.float32) for _ in range(n)]
    vs = [np.zeros(m, np.float32) for _ in range(n)]
    steps = [np.zeros((), np.float32) for _ in range(n)]

    def run():
        _optim.step(ADAM, (1e-6, 0.9, 0.999, 1e-8, 0.0, False, False, False), ps, gs,
                    (ms, vs, None), steps)
    return run


def _sgd_call(n, m, rng):
    ps, gs = _arrays(n, m, rng), _arrays(n, m, rng)
    bufs = [np.zeros(m, np.float32) for _ in range(n)]

    def run():
        _optim.step(SGD, (1e-6, 0.9, 0.0, 0.0, False, False), ps, gs, (bufs,))
    return run


def _time(fns, repeats, number):
    """Median µs per call of each fn, samples interleaved so drift hits all alike."""
    samples = [[] for _ in fns]
    for fn in fns:
        fn()
    for r in range(repeats):
        order = list(range(len(fns)))
        order = order[r % len(order):] + order[:r % len(order)]
        for j in order:
            t0 = time.perf_counter_ns()
            for _ in range(number[j]):
                fns[j]()
            samples[j].append((time.perf_counter_ns() - t0) / number[j] / 1e3)
    return [sorted(s)[len(s) // 2] for s in samples]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="arrays per group")
    ap.add_argument("--m", type=int, default=1024, help="float32 elements per array")
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'op':>5} {'group':>14} {'µs/call':>9} {'1 array':>9} {'ratio':>6} "
          f"{'extra µs':>9}")
    for name, make in (("adam", _adam_call), ("sgd", _sgd_call)):
        for n, m in ((a.n, a.m), (a.n, 1)):
            many, one = make(n, m, rng), make(1, n * m, rng)
            reps = max(3, min(200, 20000 // max(1, n * m // 1000)))
            t_many, t_one = _time([many, one], a.repeats, [reps, reps])
            print(f"{name:>5} {f'{n} x {m}':>14} {t_many:9.1f} {t_one:9.1f} "
                  f"{t_many / t_one:6.2f} {t_many - t_one:9.1f}")
            if m == a.m and hasattr(_optim, "_overlap_cache_clear"):
                def cold(many=many):
                    _optim._overlap_cache_clear()
                    many()
                t_cold, t_one = _time([cold, one], a.repeats, [reps, reps])
                print(f"{name:>5} {f'{n} x {m} cold':>14} {t_cold:9.1f} {t_one:9.1f} "
                      f"{t_cold / t_one:6.2f} {t_cold - t_one:9.1f}")


if __name__ == "__main__":
    main()
