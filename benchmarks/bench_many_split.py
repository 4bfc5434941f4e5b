"""Where does regime (b)'s extra time go: the glue (collection) or the kernel (the C call)?

Regime (b) is N params of M float32 elements in one group; its yardstick is the same optimizer
on ONE N*M-element tensor ("flat").  A steady class step is ``group_step`` (re-check the run's
StepCache, collect the pointer arrays) followed by the kernels.  This times the two halves
apart, ``group_step(..., run=False)`` and then ``cache.run()``, on the benchmark's own data
and layout (``contenders.params``: each param and grad a separate ``copy()``, allocated
alternately), on the same tensors as rows of two buffers ("views": consecutive tensors
adjacent in memory, as flat is), and on the flat tensor.  Everything runs in one process,
interleaved, min of ``--repeats`` rounds of 5 steps.  The split is only a split: at several
threads a class step may run as one region (team mode) whose collection overlaps the other
threads' wake-up, which ``run=False`` does not.  Each round starts with one untimed step, so
that all three columns are taken after the case's own previous step (the first step after
another case's costs more, its data having been evicted).

The default sizes' working set (12-20 MB) is a large part of a 32 MiB last-level cache, so
which of it survives between steps decides much of the time: back-to-back steps of one case run
partly from the cache, and the flat tensor and adjacent views (numpy's large buffers, on huge
pages: physically contiguous, every cache set used evenly) keep more of it than separate 4 KiB
heap allocations.  ``--flush MIB`` writes that much before every timed step, so that every
step starts from memory, as in training, where the forward and backward run in between.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_many_split.py [--optimizers adam,sgd]
[--n 1000] [--m 1024] [--repeats 30] [--flush 64]`` (the thread count is the runtime's).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contenders as cn  # noqa: E402

import fastoptim as fo  # noqa: E402
from fastoptim._C import _optim  # noqa: E402
from fastoptim.optim import _step  # noqa: E402
from fastoptim.optim._descriptions import BY_NAME  # noqa: E402


class Case:
    def __init__(self, name, spec, tensors):
        d = BY_NAME[spec.name]
        self.name, self.plan, self.settings = name, _step.plan(d), _step._settings_getter(d)
        self.opt = getattr(fo.optim, spec.cls)(tensors, **spec.kwargs)
        for _ in range(3):
            self.opt.step()
        self.group, self.cache = self.opt.param_groups[0], _optim.StepCache()
        self.best = {"step": 1e9, "glue": 1e9, "kernel": 1e9}

    def round(self, flush, k=5):
        pc, g, st = time.perf_counter, self.group, self.opt.state
        self.opt.step()      # untimed: the first step after another case's pays its evictions
        step = glue = kernel = 0.0
        for _ in range(k):
            if flush is not None:
                flush += 1.0
            t0 = pc()
            self.opt.step()
            step += pc() - t0
        step /= k
        for _ in range(k):
            if flush is not None:
                flush += 1.0
            a = pc()
            if not _optim.group_step(self.plan, self.settings(g), g["params"], st, self.cache,
                                     False):
                raise RuntimeError(f"{self.name}: the steady step declined")
            b = pc()
            self.cache.run()
            kernel += pc() - b
            glue += b - a
        for key, v in (("step", step), ("glue", glue / k), ("kernel", kernel / k)):
            self.best[key] = min(self.best[key], v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizers", default="sgd,adam,adagrad,adamax")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--flush", type=int, default=0, metavar="MIB",
                    help="write this many MiB before every timed step (more than the last-level "
                         "cache: every step starts from memory, as after a forward and backward)")
    args = ap.parse_args()
    flush = np.ones(args.flush << 18, np.float32) if args.flush else None
    print(f"threads {_optim._get_num_threads()}  "
          f"load {os.getloadavg()[0]:.2f}  flush {args.flush} MiB  "
          f"(min of {args.repeats} rounds of 5 steps, us)")
    ps, gs = cn.data(args.n, args.m)
    for name in args.optimizers.split(","):
        spec = cn.spec_of(name)
        cases = [Case("separate", spec, cn.params(fo, ps, gs)),
                 Case("views", spec, cn.shared_params(fo, np.stack(ps), np.stack(gs))),
                 Case("flat", spec, cn.params(fo, [np.concatenate(ps)], [np.concatenate(gs)]))]
        for _ in range(args.repeats):
            for c in cases:
                c.round(flush)
        flat = cases[-1].best["step"]
        for c in cases:
            b = c.best
            print(f"{name:9s} {c.name:9s} step {b['step'] * 1e6:8.1f}  glue {b['glue'] * 1e6:7.1f}"
                  f"  kernel {b['kernel'] * 1e6:8.1f}  flat_frac {flat / b['step'] * 100:5.1f}%")


if __name__ == "__main__":
    main()
