"""Where should a matrix product leave fastoptim's plain C loop for BLAS (numpy.matmul)?

Times both paths on square-ish products of growing size, in the same run, and prints the
multiply-add count at which BLAS starts to win.  The result sets ``_BLAS_MIN_FLOPS`` in
``fastoptim/_C/_tensor.pyx``.  Run: ``python benchmarks/bench_matmul_threshold.py``.
"""
import time

import numpy as np

from fastoptim._C import _tensor


def _best(fn, reps=200):
    fn()
    ts = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            fn()
        ts.append((time.perf_counter_ns() - t0) / reps)
    return sorted(ts)[2]


def main():
    rng = np.random.default_rng(0)
    print(f"{'M x K x N':>16} {'MACs':>9} {'C loop ns':>10} {'BLAS ns':>10}  winner")
    crossover = None
    for m, k, n in [(1, 10, 1), (4, 8, 4), (8, 16, 8), (16, 16, 16), (16, 32, 16), (20, 20, 20),
                    (32, 32, 16), (32, 32, 32), (64, 32, 32), (64, 64, 64), (128, 64, 64)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        c_loop = _best(lambda a=a, b=b, out=out: _tensor._matmul_c(a, b, out))
        blas = _best(lambda a=a, b=b, out=out: np.matmul(a, b, out=out))
        macs = m * k * n
        win = "BLAS" if blas < c_loop else "C"
        if win == "BLAS" and crossover is None:
            crossover = macs
        print(f"{m:>4} x{k:>4} x{n:>4} {macs:>9} {c_loop:>10.0f} {blas:>10.0f}  {win}")
    print(f"BLAS first wins at ~{crossover} multiply-adds "
          f"(fastoptim uses {_tensor._blas_min_flops()})")


if __name__ == "__main__":
    main()
