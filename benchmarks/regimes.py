"""The benchmark regimes (a)-(f): what is timed, on which arrays, against what.

Why it exists: each regime is a question about fastoptim's speed (or memory) with a yardstick
measured in the same run, with the same threads, at the same moment.  A row is one (regime,
optimizer) pair: the per-contender medians (``times``, with how they were taken) or memory
figures, plus the sizes it used.  Ratios and pass/fail marks are derived later, from rows alone
(``report.py``), so a saved JSON can be re-reported and compared.

The timed regimes (a)-(e) build their contenders with ``contenders.py`` and time them either
here, interleaved in this process (``timing.py``), or each in its own fresh processes, in
alternating rounds (``isolated.py``): ``Context.isolate`` says which regimes (``--isolate``).
"""

import gc
import os
import tracemalloc
from dataclasses import dataclass, field

import contenders as cn
from contenders import CLASSIFIER, EMA, FWDBWD, MODES, SCHEDULED, TIMED, Mode, params  # noqa: F401 - MODES: run.py's
from isolated import Zygote, time_isolated
from optimizers import SPECS
from timing import interleaved

import fastoptim as fo

try:
    import torch
except ImportError:   # the suite runs without torch; the figures against it are then missing
    torch = None


REGIMES = {
    # {numel}, {params}: filled with the sizes a run actually used (report.title)
    "a": "one large float32 param ({numel} elements)",
    "b": "{params} params x {numel} elements, one group",
    "c": "{params} params x {numel} elements, one group per param",
    "d": "nn.Linear(10, 1) + MSE, full iteration (randn x2, fwd, loss, zero_grad, bwd, step)",
    "e": "784-256-10 MLP (ReLU, MSE, batch 64), training step; 'fwd+bwd' row: no step; "
         "'adam+CrossEntropyLoss' row: classifier (class targets)",
    "f": "extra memory of one steady-state step (step >= 4): tracemalloc and RSS peaks",
    # torch model, fastoptim optimizer: both contenders step the same torch tensors
    "ta": "torch tensors: one large float32 param ({numel} elements), step only",
    "tb": "torch tensors: {params} params x {numel} elements, one group, step only",
    "tc": "torch tensors: {params} params x {numel} elements, one group per param, step only",
    "te": "torch tensors: the 784-256-10 MLP's params, step only",
}


@dataclass
class Context:
    mode: Mode
    threads: int
    isolate: tuple = ()          # regimes timed with isolated.py (one process per contender)
    env: dict = None             # environment of the zygotes (the worker's, as launched)
    zygotes: dict = field(default_factory=dict)

    def zygote(self, lib):
        if lib not in self.zygotes:
            self.zygotes[lib] = Zygote(lib, self.env if self.env is not None else os.environ)
        return self.zygotes[lib]

    def close(self):
        for z in self.zygotes.values():
            z.close()
        self.zygotes.clear()


def tasks(regimes, optimizers):
    """The (regime, optimizer) pairs a worker runs, in order (also sizes the progress bar)."""
    out = []
    for r in regimes:
        out += [(r, o) for o in optimizers if cn.spec_of(o).runs_in(r)]
        if r == "e":
            out.append((r, FWDBWD))
            if "adam" in optimizers:
                out.append((r, CLASSIFIER))
        if r == "d":   # the loop with a scheduler stepping every iteration, for its optimizer
            out += [(r, name) for name, (o, _, _) in SCHEDULED.items() if o in optimizers]
        if r == "b":
            out.append((r, EMA))
    return out


def set_threads(n):
    """Give fastoptim's OpenMP runtime and torch the same thread count (BLAS threads come from
    the worker's environment, set by run.py before anything is imported)."""
    cn.set_threads("fastoptim", n)
    if torch is not None:
        cn.set_threads("torch", n)


def thread_check():
    """What each library will actually use, recorded with every run."""
    from fastoptim._C import _optim

    out = {"fastoptim_omp": _optim._get_num_threads()}
    if torch is not None:
        out["torch"] = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        out[var] = os.environ.get(var)
    return out


# ---- the timed regimes (a)-(e) -------------------------------------------------------------

def regime_timed(regime, optimizer, ctx):
    """Time every contender of one row, in this process (interleaved) or each in its own
    processes (isolated)."""
    m = ctx.mode
    which = cn.names(regime, optimizer, m, torch is not None)
    if regime in ctx.isolate:
        zygotes = {lib: ctx.zygote(lib) for lib in {cn.library(n, regime) for n, _ in which}}
        times, how = time_isolated(zygotes, regime, optimizer, which, m, ctx.threads)
    else:
        built = [cn.build(regime, optimizer, name, m, cap) for name, cap in which]
        times = interleaved(built, m.warmup, m.repeats, m.sample_s,
                            m.settle_s if ctx.threads > 1 else 0.0)
        how = {"method": "interleaved"}
    return {"times": times, "sizes": cn.sizes(regime, m), "timing": how}


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
    (p,), (g,) = cn.data(1, n)
    fparams = params(fo, [p], [g])
    opt = getattr(fo.optim, spec.cls)(fparams, **spec.kwargs)
    for _ in range(3):
        opt.step()
    gc.collect()
    mem = {"live_bytes": (2 + len(spec.state)) * n * p.itemsize,
           "fastoptim_traced": _traced_peak_during(opt.step),
           "fastoptim_rss": _rss_peak_during(opt.step)}
    del opt, fparams
    if torch is not None:
        tparams = params(torch, [p], [g])
        topt = getattr(torch.optim, spec.cls)(tparams, **spec.kwargs)
        for _ in range(3):
            topt.step()
        gc.collect()
        mem["torch_rss"] = _rss_peak_during(topt.step)
    return {"memory": mem, "sizes": {"numel": n}}


RUNNERS = {**{r: regime_timed for r in TIMED}, "f": regime_f}


def run_task(regime, optimizer, ctx):
    """One row of results."""
    spec = cn.spec_of(optimizer)
    gc.collect()
    row = {"regime": regime, "optimizer": optimizer, "threads": ctx.threads}
    row.update(regime_f(spec, ctx) if regime == "f" else
               regime_timed(regime, optimizer, ctx))
    gc.collect()
    return row


OPTIMIZER_NAMES = [s.name for s in SPECS]
