"""The benchmark regimes (a)-(f): what is timed, on which arrays, against what.

Why it exists: each regime is a question about fastoptim's speed (or memory) with a yardstick
measured in the same process, with the same threads, at the same moment.  A regime function takes
one optimizer ``Spec`` and a ``Context`` and returns a row: the per-contender medians (``times``)
or memory figures, plus the sizes it used.  Ratios and pass/fail marks are derived later, from
rows alone (``report.py``), so a saved JSON can be re-reported and compared.

Contender names: ``fastoptim``; ``torch:fused`` / ``torch:foreach`` / ``torch:forloop`` (every
CPU implementation torch has; the report takes the fastest); ``numpy`` (the NumPy twin of the
kernel); and the yardsticks ``roofline`` (regime a) and ``flat`` (regimes b, c).
"""

import gc
import os
import tracemalloc
from dataclasses import dataclass

import numpy as np
from optimizers import BY_NAME, SPECS, torch_variants, twin_step
from timing import Contender, interleaved

import fastoptim as fo
from fastoptim._C import _bench

try:
    import torch
except ImportError:   # the suite runs without torch; the figures against it are then missing
    torch = None


@dataclass(frozen=True)
class Mode:
    a_numel: int        # (a) elements of the one big param
    b_count: int        # (b), (c) number of params ...
    b_numel: int        # ... and elements of each
    f_numel: int        # (f) elements of the param whose step's memory is measured
    warmup: int
    repeats: int
    sample_s: float     # target duration of one timing sample (fast calls are batched)
    slow_repeats: int   # samples of the NumPy twin on large arrays
    settle_s: float     # pause between torch and fastoptim samples when threads > 1 (timing.py)


MODES = {
    "full": Mode(16 << 20, 1000, 1024, 16 << 20, 2, 11, 0.025, 3, 0.15),
    "quick": Mode(4 << 20, 1000, 1024, 4 << 20, 1, 3, 0.004, 1, 0.15),
    "smoke": Mode(1 << 15, 20, 256, 1 << 15, 1, 1, 0.0, 1, 0.0),
}

REGIMES = {
    "a": "one large float32 param (16M elements; 4M in --quick)",
    "b": "1000 params x 1024 elements, one group",
    "c": "1000 params x 1024 elements, one group per param",
    "d": "nn.Linear(10, 1) + MSE, full iteration (randn x2, fwd, loss, zero_grad, bwd, step)",
    "e": "784-256-10 MLP (ReLU, MSE, batch 64), training step; 'fwd+bwd' row: no step",
    "f": "extra memory of one steady-state step (step >= 4): tracemalloc and RSS peaks",
}

FWDBWD = "fwd+bwd"   # the optimizer-free task of regime (e)


@dataclass
class Context:
    mode: Mode
    threads: int


def tasks(regimes, optimizers):
    """The (regime, optimizer) pairs a worker runs, in order (also sizes the progress bar)."""
    out = []
    for r in regimes:
        out += [(r, o) for o in optimizers]
        if r == "e":
            out.append((r, FWDBWD))
    return out


def set_threads(n):
    """Give fastoptim's OpenMP runtime and torch the same thread count (BLAS threads come from
    the worker's environment, set by run.py before anything is imported)."""
    from fastoptim._C import _optim

    _optim._set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def thread_check():
    """What each library will actually use, recorded with every run."""
    from fastoptim._C import _optim

    out = {"fastoptim_omp": _optim._get_num_threads()}
    if torch is not None:
        out["torch"] = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        out[var] = os.environ.get(var)
    return out


# ---- building the contenders ---------------------------------------------------------------

def _data(count, numel, seed=0):
    """``count`` (param, grad) float32 pairs of ``numel`` elements: the values every contender
    starts from (each gets its own copies)."""
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(numel, dtype=np.float32) for _ in range(count)]
    gs = [rng.standard_normal(numel, dtype=np.float32) for _ in range(count)]
    return ps, gs


def _fo_params(ps, gs):
    out = []
    for p, g in zip(ps, gs):
        t = fo.nn.Parameter(fo.from_numpy(p.copy()))
        t.grad = fo.from_numpy(g.copy())
        out.append(t)
    return out


def _torch_params(ps, gs):
    out = []
    for p, g in zip(ps, gs):
        t = torch.nn.Parameter(torch.from_numpy(p.copy()))
        t.grad = torch.from_numpy(g.copy())
        out.append(t)
    return out


def _step_contenders(spec, ps, gs, per_param_groups=False):
    """fastoptim and every torch variant stepping their own copies of (ps, gs)."""
    def groups(params):
        return [{"params": [p]} for p in params] if per_param_groups else params

    opt = getattr(fo.optim, spec.cls)(groups(_fo_params(ps, gs)), **spec.kwargs)
    out = [Contender("fastoptim", opt.step)]
    if torch is not None:
        for variant, extra in torch_variants(spec).items():
            topt = getattr(torch.optim, spec.cls)(groups(_torch_params(ps, gs)),
                                                  **spec.kwargs, **extra)
            out.append(Contender(f"torch:{variant}", topt.step))
    return out


def _flat_contender(spec, ps, gs):
    """fastoptim on one param holding all of (ps, gs) end to end: the (b)/(c) yardstick."""
    flat = _fo_params([np.concatenate(ps)], [np.concatenate(gs)])
    return Contender("flat", getattr(fo.optim, spec.cls)(flat, **spec.kwargs).step)


def _time(ctx, contenders):
    m = ctx.mode
    return interleaved(contenders, m.warmup, m.repeats, m.sample_s,
                       m.settle_s if ctx.threads > 1 else 0.0)


# ---- the regimes ---------------------------------------------------------------------------

def regime_a(spec, ctx):
    n = ctx.mode.a_numel
    (p,), (g,) = _data(1, n)
    contenders = _step_contenders(spec, [p], [g])
    # The roofline touches what the step touches: g read; param and each state array updated.
    reads = [g.copy()]
    writes = [p.copy()] + [np.zeros_like(p) for _ in spec.state]
    contenders.append(Contender("roofline", lambda: _bench.roofline(reads, writes)))
    contenders.append(Contender("numpy", twin_step(spec, [p.copy()], [g.copy()]),
                                ctx.mode.slow_repeats))
    return {"times": _time(ctx, contenders), "sizes": {"numel": n}}


def regime_b(spec, ctx, per_param_groups=False):
    m = ctx.mode
    ps, gs = _data(m.b_count, m.b_numel)
    contenders = _step_contenders(spec, ps, gs, per_param_groups)
    contenders.append(_flat_contender(spec, ps, gs))
    if not per_param_groups:
        contenders.append(Contender("numpy", twin_step(spec, [p.copy() for p in ps],
                                                       [g.copy() for g in gs]),
                                    max(m.slow_repeats, m.repeats // 2)))
    return {"times": _time(ctx, contenders),
            "sizes": {"params": m.b_count, "numel": m.b_numel}}


def regime_c(spec, ctx):
    return regime_b(spec, ctx, per_param_groups=True)


def _linear_loop(lib, spec, extra):
    """The seed's loop on ``lib`` (fastoptim or torch): one call = one full iteration."""
    lib.manual_seed(0)
    model = lib.nn.Linear(10, 1)
    criterion = lib.nn.MSELoss()
    opt = getattr(lib.optim, spec.cls)(model.parameters(), **spec.kwargs, **extra)
    randn = lib.randn

    def iteration():
        x = randn(10)
        target = randn(1)
        outputs = model(x)
        loss = criterion(outputs, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return iteration


def regime_d(spec, ctx):
    contenders = [Contender("fastoptim", _linear_loop(fo, spec, {}))]
    if torch is not None:
        contenders += [Contender(f"torch:{v}", _linear_loop(torch, spec, extra))
                       for v, extra in torch_variants(spec).items()]
    return {"times": _time(ctx, contenders), "sizes": {"in": 10, "out": 1}}


MLP = (784, 256, 10)
BATCH = 64


def _mlp(lib, weights, x, y):
    model = lib.nn.Sequential(lib.nn.Linear(MLP[0], MLP[1]), lib.nn.ReLU(),
                              lib.nn.Linear(MLP[1], MLP[2]))
    with lib.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(lib.from_numpy(w.copy()))
    return model, lib.from_numpy(x.copy()), lib.from_numpy(y.copy()), lib.nn.MSELoss()


def _mlp_data():
    rng = np.random.default_rng(1)
    shapes = [(MLP[1], MLP[0]), (MLP[1],), (MLP[2], MLP[1]), (MLP[2],)]
    weights = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]
    x = rng.standard_normal((BATCH, MLP[0]), dtype=np.float32)
    y = rng.standard_normal((BATCH, MLP[2]), dtype=np.float32)
    return weights, x, y


def _mlp_step(lib, spec, extra, data):
    model, x, y, criterion = _mlp(lib, *data)
    if spec is None:       # forward + backward alone
        def fwdbwd():
            model.zero_grad()
            criterion(model(x), y).backward()
        return fwdbwd
    opt = getattr(lib.optim, spec.cls)(model.parameters(), **spec.kwargs, **extra)

    def step():
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()
    return step


def regime_e(spec, ctx):
    data = _mlp_data()
    contenders = [Contender("fastoptim", _mlp_step(fo, spec, {}, data))]
    if torch is not None:
        variants = torch_variants(spec) if spec is not None else {"default": {}}
        contenders += [Contender(f"torch:{v}", _mlp_step(torch, spec, extra, data))
                       for v, extra in variants.items()]
    return {"times": _time(ctx, contenders),
            "sizes": {"layers": list(MLP), "batch": BATCH}}


def _proc_status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


def _rss_peak_during(fn):
    """Extra resident memory at the peak of ``fn()``: VmHWM after minus VmRSS before, with the
    high-water mark reset first (Linux >= 4.0: write 5 to clear_refs).  None where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    before = _proc_status("VmRSS")
    fn()
    hwm = _proc_status("VmHWM")
    return None if before is None or hwm is None else max(0, hwm - before)


def _traced_peak_during(fn):
    """Peak bytes allocated (and traced: Python objects and NumPy buffers) during ``fn()``, above
    what was live before it."""
    tracemalloc.start()
    try:
        fn()                              # tracemalloc's own first-use allocations
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return max(0, tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()


def regime_f(spec, ctx):
    n = ctx.mode.f_numel
    (p,), (g,) = _data(1, n)
    params = _fo_params([p], [g])
    opt = getattr(fo.optim, spec.cls)(params, **spec.kwargs)
    for _ in range(3):
        opt.step()
    gc.collect()
    mem = {"live_bytes": (2 + len(spec.state)) * n * p.itemsize,
           "fastoptim_traced": _traced_peak_during(opt.step),
           "fastoptim_rss": _rss_peak_during(opt.step)}
    del opt, params
    if torch is not None:
        tparams = _torch_params([p], [g])
        topt = getattr(torch.optim, spec.cls)(tparams, **spec.kwargs)
        for _ in range(3):
            topt.step()
        gc.collect()
        mem["torch_rss"] = _rss_peak_during(topt.step)
    return {"memory": mem, "sizes": {"numel": n}}


RUNNERS = {"a": regime_a, "b": regime_b, "c": regime_c, "d": regime_d, "e": regime_e,
           "f": regime_f}


def run_task(regime, optimizer, ctx):
    """One row of results."""
    spec = None if optimizer == FWDBWD else BY_NAME[optimizer]
    gc.collect()
    row = {"regime": regime, "optimizer": optimizer, "threads": ctx.threads}
    row.update(RUNNERS[regime](spec, ctx))
    gc.collect()
    return row


OPTIMIZER_NAMES = [s.name for s in SPECS]
