"""What does one ``scheduler.step()`` cost at 100 param groups, next to torch's?

Issue 12's speed bullet: a scheduler step costs no more than a few microseconds for 100 groups.
For every scheduler class (the 16 of ``torch.optim.lr_scheduler`` and ``swa_utils.SWALR``), in
a typical configuration, on SGD (momentum) and, where the scheduler writes momentum, on Adam,
this builds the same optimizer (100 groups of one 1-element param) and scheduler in fastoptim
and in torch, steps both past their first steps, then times ``step()`` interleaved (fastoptim
sample, torch sample, ...; each sample ``--steps`` steps; min over ``--repeats`` samples) and
prints µs per step for both and their ratio.  Wall-clock timing is noisy under load: the load
(``os.getloadavg``) is printed with the table.

``--callgrind`` prints instead the instruction count per step of fastoptim's step (load-
independent): it re-runs this script under ``valgrind --tool=callgrind --dump-before=getppid``
and, around each case's steps, calls ``os.getppid()`` (libc's getppid: a dump marker), so each
case's dump holds exactly its ``--steps`` steps plus the ``for`` loop; the loop's own cost is
measured on an empty loop the same way and subtracted.

LambdaLR and MultiplicativeLR call the user's Python lambdas once per group per step: their
cost is mostly those calls (a Python frame each), in torch as here.  So for these two the table
splits the step (both modes): "callables alone" is the same lambda called as many times (once
per group, with an int epoch) in a plain Python loop, and "glue" is the step minus that, the
part that is ours.  (The plain loop's own iteration, a few dozen instructions per call, counts
in "callables alone": the glue is if anything understated by that much.)

Run: ``PYTHONPATH=. python benchmarks/bench_schedulers.py [--groups 100] [--repeats 30]
[--steps 200] [--callgrind] [case ...]``.
"""
import argparse
import glob
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402

import fastoptim  # noqa: E402
from fastoptim.optim import lr_scheduler as FS  # noqa: E402
from fastoptim.optim import swa_utils as FSWA  # noqa: E402


def _decay(epoch):
    return 0.999 ** epoch


def _mult(epoch):
    return 0.9999


# name -> (optimizer kind, builder(lib_sched_module, swa_module, opt)); the builder is the same
# call for both libraries (only the module differs).  Large periods keep the timed steps in the
# schedule's steady state (no phase ends inside a run).
CASES = {
    "StepLR": ("sgd", lambda S, W, o: S.StepLR(o, step_size=30, gamma=0.5)),
    "MultiStepLR": ("sgd", lambda S, W, o: S.MultiStepLR(o, milestones=[30, 80], gamma=0.5)),
    "ConstantLR": ("sgd", lambda S, W, o: S.ConstantLR(o, factor=0.5, total_iters=10**7)),
    "LinearLR": ("sgd", lambda S, W, o: S.LinearLR(o, start_factor=0.1, total_iters=10**7)),
    "ExponentialLR": ("sgd", lambda S, W, o: S.ExponentialLR(o, gamma=0.99999)),
    "PolynomialLR": ("sgd", lambda S, W, o: S.PolynomialLR(o, total_iters=10**7, power=2.0)),
    "CosineAnnealingLR": ("sgd", lambda S, W, o: S.CosineAnnealingLR(o, T_max=10**6)),
    "CosineAnnealingWarmRestarts": (
        "sgd", lambda S, W, o: S.CosineAnnealingWarmRestarts(o, T_0=1000, T_mult=2)),
    "LambdaLR": ("sgd", lambda S, W, o: S.LambdaLR(o, lr_lambda=_decay)),
    "MultiplicativeLR": ("sgd", lambda S, W, o: S.MultiplicativeLR(o, lr_lambda=_mult)),
    "ChainedScheduler": ("sgd", lambda S, W, o: S.ChainedScheduler(
        [S.ExponentialLR(o, gamma=0.99999), S.StepLR(o, step_size=30, gamma=0.5)])),
    "SequentialLR": ("sgd", lambda S, W, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=10**6)],
        milestones=[5])),
    "ReduceLROnPlateau": ("sgd", lambda S, W, o: S.ReduceLROnPlateau(o, patience=10)),
    "CyclicLR SGD": ("sgd", lambda S, W, o: S.CyclicLR(o, base_lr=0.001, max_lr=0.1,
                                                       step_size_up=10**6)),
    "CyclicLR Adam": ("adam", lambda S, W, o: S.CyclicLR(o, base_lr=0.001, max_lr=0.1,
                                                         step_size_up=10**6)),
    "CyclicLR exp_range": ("sgd", lambda S, W, o: S.CyclicLR(
        o, base_lr=0.001, max_lr=0.1, step_size_up=10**6, mode="exp_range", gamma=0.99999)),
    "OneCycleLR SGD": ("sgd", lambda S, W, o: S.OneCycleLR(o, max_lr=0.1, total_steps=10**7)),
    "OneCycleLR Adam": ("adam", lambda S, W, o: S.OneCycleLR(o, max_lr=0.1, total_steps=10**7)),
    "SWALR": ("sgd", lambda S, W, o: W.SWALR(o, swa_lr=0.05, anneal_epochs=10**7)),
    "SWALR linear": ("sgd", lambda S, W, o: W.SWALR(o, swa_lr=0.05, anneal_epochs=10**7,
                                                    anneal_strategy="linear")),
}
PYTHON_CALLABLES = {"LambdaLR", "MultiplicativeLR", "CyclicLR exp_range"}
# the cases whose step is mostly the user's callables: each lambda, to time alone
CALLABLES = {"LambdaLR": _decay, "MultiplicativeLR": _mult}


def _callables_alone(case, n):
    """The user's part of ``case``'s step: its lambda called once per group, in a plain loop,
    with an int epoch (as the scheduler calls it)."""
    fns = [CALLABLES[case]] * n
    epoch = 25

    def run():
        for f in fns:
            f(epoch)
    return run


def _fo_opt(kind, n):
    groups = [{"params": [fastoptim.tensor(np.zeros(1, np.float32), requires_grad=True)],
               "lr": 0.01 * (1 + i % 7)} for i in range(n)]
    if kind == "adam":
        return fastoptim.optim.Adam(groups, lr=0.01)
    return fastoptim.optim.SGD(groups, lr=0.01, momentum=0.9)


def _torch_opt(torch, kind, n):
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": 0.01 * (1 + i % 7)}
              for i in range(n)]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.01)
    return torch.optim.SGD(groups, lr=0.01, momentum=0.9)


def _stepper(sched):
    if type(sched).__name__ == "ReduceLROnPlateau":
        metric = 1.0
        return lambda: sched.step(metric)
    return sched.step


def _build(case, lib, n, torch=None):
    kind, make = CASES[case]
    if lib == "fastoptim":
        opt = _fo_opt(kind, n)
        sched = make(FS, FSWA, opt)
    else:
        opt = _torch_opt(torch, kind, n)
        sched = make(torch.optim.lr_scheduler, torch.optim.swa_utils, opt)
    opt.step()          # (the call-order check of the first step)
    step = _stepper(sched)
    for _ in range(20):
        step()
    return step


def _time(step, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps * 1e6


def run_timing(cases, n, repeats, steps):
    import warnings

    import torch
    warnings.simplefilter("ignore")
    print(f"# load {os.getloadavg()}, {n} groups, min of {repeats} samples of {steps} steps")
    print(f"{'scheduler':30s} {'fastoptim us':>12s} {'torch us':>10s} {'ratio':>7s}")
    for case in cases:
        fo, th = _build(case, "fastoptim", n), _build(case, "torch", n, torch)
        alone = _callables_alone(case, n) if case in CALLABLES else None
        a = b = c = math.inf
        for _ in range(repeats):
            a = min(a, _time(fo, steps))
            b = min(b, _time(th, steps))
            if alone is not None:
                c = min(c, _time(alone, steps))
        mark = "  (user's Python callables)" if case in PYTHON_CALLABLES else ""
        print(f"{case:30s} {a:12.2f} {b:10.2f} {a / b:7.3f}{mark}", flush=True)
        if alone is not None:
            print(f"{'  callables alone':30s} {c:12.2f} {b - c:10.2f}   (torch's column: "
                  "torch's step minus them)")
            print(f"{'  glue (step - callables)':30s} {a - c:12.2f}", flush=True)
    print(f"# load {os.getloadavg()}")


def run_under_callgrind(cases, n, steps):
    """The child's side: for each case, a dump marker before and after its steps."""
    import warnings
    warnings.simplefilter("ignore")

    def noop():
        return None

    built = []
    for case in cases:
        built.append(_build(case, "fastoptim", n))
        if case in CALLABLES:
            built.append(_callables_alone(case, n))
    for step in [noop] + built:
        for _ in range(3):
            step()      # (warm the code paths)
        os.getppid()
        for _ in range(steps):
            step()
        os.getppid()


def callgrind(cases, n, steps):
    out = tempfile.mkdtemp(prefix="bench_sched_cg_")
    cmd = ["valgrind", "--tool=callgrind", "--dump-before=getppid",
           f"--callgrind-out-file={out}/cg.out", sys.executable, os.path.abspath(__file__),
           "--child", "--groups", str(n), "--steps", str(steps)] + list(cases)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    totals = []
    for path in sorted(glob.glob(f"{out}/cg.out.*"), key=lambda p: int(p.rsplit(".", 1)[1])):
        with open(path) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    totals.append(int(line.split()[1]))
                    break
    # dumps: 1 (start .. first marker), then per case: its steps, the gap to the next marker
    per = totals[1::2]
    loop = per[0] / steps
    print(f"# callgrind, {n} groups, {steps} steps per case; loop overhead {loop:.0f} instr/step "
          "subtracted")
    print(f"{'scheduler':30s} {'instr/step':>10s} {'instr/group':>11s}")
    per = iter(per[1:])
    for case in cases:
        k = next(per) / steps - loop
        print(f"{case:30s} {k:10.0f} {k / n:11.1f}")
        if case in CALLABLES:
            c = next(per) / steps - loop
            print(f"{'  callables alone':30s} {c:10.0f} {c / n:11.1f}")
            print(f"{'  glue (step - callables)':30s} {k - c:10.0f} {(k - c) / n:11.1f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cases", nargs="*")
    p.add_argument("--groups", type=int, default=100)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    cases = a.cases or list(CASES)
    for c in cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}; cases: {', '.join(CASES)}")
    if a.child:
        run_under_callgrind(cases, a.groups, a.steps)
    elif a.callgrind:
        callgrind(cases, a.groups, a.steps)
    else:
        run_timing(cases, a.groups, a.repeats, a.steps)


if __name__ == "__main__":
    main()
