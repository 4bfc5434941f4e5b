"""Rough timings of LBFGS and Muon against torch 2.13 (separate from run.py's regimes).

* Muon: one ``step()`` on a single 1024x1024 and a 4096x1024 float32 param (five Newton-Schulz
  iterations), fastoptim against ``torch.optim.Muon``; median of ``--repeat`` steps.
* LBFGS: per-iteration overhead on the 784-256-10 MLP of regime (e) (ReLU, MSE, batch 64,
  float32, history 10): the time of ``step(closure)`` with ``max_iter=20`` (no line search,
  tolerances off) minus the time of its closure calls, divided by the iterations; median over
  ``--repeat`` steps, after two warm steps (the first fills the history: its vectors are new).
  The closure calls subtracted are those of the same step, each timed where it runs (the
  closure is wrapped): the figure is the optimizer's own time.  The older definition --
  subtract ``evals x`` the median of the closure timed alone, in a loop of its own -- is printed
  too ("vs closure alone"); it also counts as the optimizer's the closure's slowdown inside a
  step (its weights and activations evicted from the caches by the history, its grads freshly
  allocated), which swings with the machine's load and is the same work for both libraries.

Floor: ``lbfgs_floor`` times, in the same run, the memory traffic of one iteration of ours at
the machine's streaming speed: the benchmark suite's roofline kernel (``fastoptim._C._bench``,
one trivial pass per call that reads its ``reads`` and reads and writes its ``writes``) called
once per pass our iteration makes, over the same arrays -- the gather and pair pass (grads,
``prev_flat_grad``, ``d`` read; ``g``, ``y``, ``s``, ``q`` written), the two-loop recursion's
2m passes (each reads one or two history vectors and reads and writes ``d``: every pair is read
twice, as the order of the dots requires -- ``be_0`` needs all of ``r``, so loop 1's last pass
and loop 2's first cannot share a pass) and ``_add_grad`` (``d`` read, params read and written).
It has no Python, no dispatch and no arithmetic to speak of: what no implementation of this
order of operations can beat on this machine.  Both libraries' overheads are printed as
multiples of it.  The roofline kernel runs on ``--threads`` OpenMP threads (ours run on one).

Threads: ``--threads T`` (default 1) is every library's count: torch's
(``torch.set_num_threads``) and NumPy's BLAS, which does fastoptim's Muon products and reads its
count once, when numpy loads -- so OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS are
set before anything imports numpy (they were not before: numpy's BLAS ran on every core against
torch's one thread).  The counts each library reports are printed.

Usage: ``python benchmarks/bench_lbfgs_muon.py [--repeat N] [--threads T]``.
"""

import argparse
import os
import statistics
import sys
import time

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _median_time(fn, repeat):
    fn()  # warm
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_muon(lib, shape, repeat):
    import numpy as np

    rng = np.random.default_rng(0)
    p0, g0 = rng.standard_normal(shape, np.float32), rng.standard_normal(shape, np.float32)
    if lib == "torch":
        import torch
        p = torch.tensor(p0, requires_grad=True)
        p.grad = torch.tensor(g0)
        opt = torch.optim.Muon([p])
    else:
        import fastoptim
        p = fastoptim.tensor(p0, requires_grad=True)
        p.grad = fastoptim.tensor(g0)
        opt = fastoptim.optim.Muon([p])
    return _median_time(opt.step, repeat)


def bench_lbfgs(lib, repeat, iters=20):
    """``(own, alone, step, closure)`` in seconds: the per-iteration overhead as the step's time
    minus its own closure calls, and as the step's time minus ``evals x`` the closure timed
    alone; the median step, and the median closure timed alone."""
    import numpy as np

    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((64, 784), np.float32)
    y0 = rng.standard_normal((64, 10), np.float32)
    if lib == "torch":
        import torch as m
    else:
        import fastoptim as m
    m.manual_seed(0)
    model = m.nn.Sequential(m.nn.Linear(784, 256), m.nn.ReLU(), m.nn.Linear(256, 10))
    x, y = m.tensor(x0), m.tensor(y0)
    loss_fn = m.nn.MSELoss()
    opt = m.optim.LBFGS(model.parameters(), lr=1e-4, max_iter=iters, max_eval=10 * iters,
                        tolerance_grad=-1.0, tolerance_change=-1.0, history_size=10)

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    inside = [0.0, 0]   # this step's closure time and calls

    def timed_closure():
        t0 = time.perf_counter()
        loss = closure()
        inside[0] += time.perf_counter() - t0
        inside[1] += 1
        return loss

    t_closure = _median_time(closure, repeat * 5)
    own, alone, steps = [], [], []
    for k in range(repeat + 2):
        inside[:] = [0.0, 0]
        t0 = time.perf_counter()
        opt.step(timed_closure)
        t_step = time.perf_counter() - t0
        if k >= 2:   # two warm steps: the history fills in the first
            steps.append(t_step)
            own.append((t_step - inside[0]) / iters)
            alone.append((t_step - inside[1] * t_closure) / iters)
    med = statistics.median
    return med(own), med(alone), med(steps), t_closure


def lbfgs_floor(repeat, m=10):
    """The median time of one iteration's passes at the roofline (see the module docstring):
    ``(seconds, bytes streamed)`` for the 784-256-10 MLP's flat vector with a full history of
    ``m`` pairs, float32."""
    import numpy as np

    from fastoptim._C import _bench

    n = 784 * 256 + 256 + 256 * 10 + 10
    isz = 4
    slot = [0]

    def vec():   # staggered as _Vectors places them (320 bytes further into the page each)
        buf = np.ones(n + 4160 // isz, np.float32)
        want = (slot[0] * 320) % 4096
        slot[0] += 1
        start = (want - buf.__array_interface__["data"][0]) % 4096 // isz
        return buf[start:start + n]

    dirs = [vec() for _ in range(m)]
    stps = [vec() for _ in range(m)]
    grad, prev, d, g, y, s, q, p = (vec() for _ in range(8))
    roof = _bench.roofline

    def iteration():
        roof([grad, prev, d], [g, y, s, q])          # gather_pair
        for i in range(m - 1, 0, -1):               # loop 1
            roof([dirs[i], stps[i - 1]], [d])
        roof([dirs[0]], [d])                        # its last axpy, the H_diag scale, y_0 . r
        for i in range(m - 1):                      # loop 2
            roof([stps[i], dirs[i + 1]], [d])
        roof([stps[m - 1], g], [d])                 # the last axpy with g . d
        roof([d], [p])                              # _add_grad

    # vectors moved, a read-and-write counted as two: gather_pair 3 + 4 * 2, the recursion
    # (m - 1) * 4 + 3 + (m - 1) * 4 + 4, _add_grad 1 + 2
    vectors = 11 + (m - 1) * 4 + 3 + (m - 1) * 4 + 4 + 3
    return _median_time(iteration, repeat * 5), vectors * n * isz


def _blas_threads():
    """The thread count numpy's OpenBLAS reports (its own C entry), or '?' elsewhere."""
    import ctypes
    import glob

    import numpy as np

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "scipy_openblas*", "lib",
                                  "libscipy_openblas*.so*"))
    libs += glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs",
                                   "libscipy_openblas*.so*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return fn()
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["muon", "lbfgs"], default=None)
    ap.add_argument("--muon-shapes", default="1024x1024,4096x1024")
    ap.add_argument("--torch-muon-repeat", type=int, default=1,
                    help="torch's bf16 CPU matmuls are slow (~80 s a 1024x1024 step here)")
    args = ap.parse_args()
    if "numpy" in sys.modules:
        raise RuntimeError("bench_lbfgs_muon: numpy was imported before its threads were set")
    for var in _THREAD_VARS:
        os.environ[var] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    from fastoptim._C import _optim
    _optim._set_num_threads(args.threads)
    print(f"threads: torch {torch.get_num_threads()}, fastoptim OpenMP "
          f"{_optim._get_num_threads()}, numpy BLAS {_blas_threads()} ({args.threads} asked)")
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.muon_shapes.split(",")]
    for shape in shapes if args.only != "lbfgs" else []:
        tf = bench_muon("fo", shape, args.repeat)
        tt = bench_muon("torch", shape, args.torch_muon_repeat)
        print(f"Muon {shape[0]}x{shape[1]}: fastoptim {tf * 1e3:.1f} ms, torch {tt * 1e3:.1f} ms,"
              f" ratio {tf / tt:.2f}")
    if args.only == "muon":
        return
    floor0, nbytes = lbfgs_floor(args.repeat)
    (of, af, sf, cf) = bench_lbfgs("fo", args.repeat)
    (ot, at, st, ct) = bench_lbfgs("torch", args.repeat)
    floor1, _ = lbfgs_floor(args.repeat)
    floor = min(floor0, floor1)
    print(f"LBFGS 784-256-10 per-iteration overhead: fastoptim {of * 1e6:.0f} us "
          f"(step {sf * 1e3:.2f} ms, closure alone {cf * 1e6:.0f} us), torch {ot * 1e6:.0f} us "
          f"(step {st * 1e3:.2f} ms, closure alone {ct * 1e6:.0f} us), ratio {of / ot:.2f}; "
          f"vs closure alone: fastoptim {af * 1e6:.0f} us, torch {at * 1e6:.0f} us, "
          f"ratio {af / at:.2f}")
    print(f"LBFGS floor (one iteration's {nbytes / 1e6:.1f} MB at the roofline, "
          f"{args.threads} thread(s)): {floor * 1e6:.0f} us ({nbytes / floor / 1e9:.1f} GB/s; "
          f"before/after the steps {floor0 * 1e6:.0f}/{floor1 * 1e6:.0f} us); fastoptim "
          f"{of / floor:.2f}x it, torch {ot / floor:.2f}x it")


if __name__ == "__main__":
    main()
