"""asv benchmarks of fastoptim: the same contenders as ``benchmarks/run.py``, for history.

Why it exists: ``run.py`` answers "does this commit meet the targets, and did it regress
against that saved run?"; asv answers "how did each figure move over the commits?", with the
ecosystem's tool (``asv run``, ``asv continuous main HEAD``, ``asv publish``), as numpy and
pandas keep theirs.  Nothing here re-implements a contender: every benchmark is built by
``contenders.build`` from the same seeded arrays, hyperparameters (``optimizers.py``) and modes
as the suite's rows.

Three kinds, at one thread (the machine's other core stays free for the rest of the system;
the suite's 2-thread rows stay run.py's):

- ``time_*``: asv times one call of one contender (a ``step()``, or an iteration of (d) / (e)),
  each contender in asv's own fresh process.  Absolute times: they move with the machine.
- ``peakmem_*``: the peak RSS of a process that built regime (f)'s one 16M-element param and
  ran a steady-state ``step()``; a step that starts allocating temporaries shows up here.
- ``track_*``: the suite's ratio figures (``report.figures``; the ``*_frac`` ones inverted,
  since asv reads every rise as a regression) of a full-mode row measured the suite's way
  (``regimes.run_task``: every contender in its own forked processes, rounds alternating, see
  ``isolated.py``), and regime (f)'s bytes.  These are the numbers history
  should follow: ratios of timings taken side by side need no absolute speed, so they drift
  far less between machines than ``time_*``; each regime's rows are measured once per asv run
  (``setup_cache``), then each figure is one ``track_*`` value per optimizer.
"""

import importlib.util
import math
import os
import sys

THREADS = 1
# One thread for every library, before NumPy (and its BLAS, which fastoptim's matmuls use) is
# loaded, as run.py's workers do; asv.conf.json sets the same variables for its environments.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
if importlib.util.find_spec("fastoptim") is None:   # asv --python=same in a built checkout
    sys.path.insert(0, ROOT)

# The environment before fastoptim is imported (it sets OMP_WAIT_POLICY): the suite's torch
# processes start from it, as run.py's do.
LAUNCH_ENV = dict(os.environ)

import contenders as cn  # noqa: E402
from optimizers import SPECS  # noqa: E402

OPTIMIZERS = [s.name for s in SPECS]
MODE = cn.MODES["full"]       # the sizes the targets are set for
HAS_TORCH = importlib.util.find_spec("torch") is not None
CONTENDERS = ["fastoptim", "torch:fused", "torch:foreach", "torch:forloop"]
SLOW = 600                    # seconds: a regime's rows, or a 16M-element setup, under load


def _contender(regime, optimizer, name):
    """The suite's contender ``name`` of row (regime, optimizer), warmed up; asv skips the
    combinations the suite does not have (NotImplementedError from setup)."""
    if name not in dict(cn.names(regime, optimizer, MODE, HAS_TORCH)):
        raise NotImplementedError(f"({regime}) {optimizer} has no contender {name}")
    cn.set_threads(cn.library(name), THREADS)
    c = cn.build(regime, optimizer, name, MODE)
    for _ in range(max(MODE.warmup, 1)):
        c.fn()
    return c


# ---- time_*: one contender's call ----------------------------------------------------------

class TimeStepLarge:
    """(a): ``step()`` on one 16M-element float32 param; ``roofline`` is the memory limit."""
    params = [OPTIMIZERS, CONTENDERS + ["roofline"]]
    param_names = ["optimizer", "contender"]
    timeout = SLOW

    def setup(self, optimizer, contender):
        self.fn = _contender("a", optimizer, contender).fn

    def time_step(self, optimizer, contender):
        self.fn()


class TimeStepMany:
    """(b) 1000 params of 1024 elements in one group, (c) one group per param; ``flat`` is
    the same elements in one param."""
    params = [["b", "c"], OPTIMIZERS, CONTENDERS + ["flat"]]
    param_names = ["regime", "optimizer", "contender"]
    timeout = SLOW

    def setup(self, regime, optimizer, contender):
        self.fn = _contender(regime, optimizer, contender).fn

    def time_step(self, regime, optimizer, contender):
        self.fn()


class TimeTraining:
    """(d) the seed's Linear(10, 1) loop and (e) the 784-256-10 MLP step, one iteration."""
    params = [["d", "e"], OPTIMIZERS, CONTENDERS]
    param_names = ["regime", "optimizer", "contender"]
    timeout = SLOW

    def setup(self, regime, optimizer, contender):
        self.fn = _contender(regime, optimizer, contender).fn

    def time_iteration(self, regime, optimizer, contender):
        self.fn()


# ---- peakmem_*: regime (f) ----------------------------------------------------------------

class PeakMemStep:
    """Peak RSS of a process holding (f)'s 16M-element param, its grad and state, over one
    steady-state ``step()`` (after three)."""
    params = [OPTIMIZERS, ["fastoptim", "torch"]]
    param_names = ["optimizer", "library"]
    timeout = SLOW

    def setup(self, optimizer, library):
        import importlib
        if library == "torch" and not HAS_TORCH:
            raise NotImplementedError("torch is not installed")
        lib = importlib.import_module(library)
        cn.set_threads(library, THREADS)
        spec = cn.spec_of(optimizer)
        (p,), (g,) = cn.data(1, MODE.f_numel)
        self.opt = getattr(lib.optim, spec.cls)(cn.params(lib, [p], [g]), **spec.kwargs)
        for _ in range(3):
            self.opt.step()

    def peakmem_step(self, optimizer, library):
        self.opt.step()


# ---- track_*: the suite's figures ---------------------------------------------------------

def _figures(regime):
    """{optimizer: {figure name: value}} of one regime's full-mode rows, measured the suite's
    way (one process per contender, alternating rounds)."""
    import regimes
    import report

    ctx = regimes.Context(MODE, THREADS, regimes.TIMED, LAUNCH_ENV)
    regimes.set_threads(THREADS)
    out = {}
    try:
        for reg, opt in regimes.tasks([regime], OPTIMIZERS):
            row = regimes.run_task(reg, opt, ctx)
            out[opt] = {f["name"]: f["value"] for f in report.figures(row, "full")}
    finally:
        ctx.close()
    return out


def _get(cache, optimizer, name):
    """A figure's value, NaN when the row has no such figure (no torch; not this optimizer)."""
    return cache.get(optimizer, {}).get(name, math.nan)


def _inverse(cache, optimizer, name):
    """1 / a higher-is-better fraction: asv takes every rise for a regression, so the suite's
    ``*_frac`` figures are tracked as times over the yardstick's (lower is better)."""
    v = _get(cache, optimizer, name)
    return 1.0 / v if v else math.nan


class TrackLarge:
    """(a) figures: time / the roofline's (1 / roofline_frac), time / torch's fastest."""
    params = [OPTIMIZERS]
    param_names = ["optimizer"]
    timeout = SLOW

    def setup_cache(self):
        return _figures("a")
    setup_cache.timeout = SLOW

    def track_roofline_time(self, cache, optimizer):
        return _inverse(cache, optimizer, "roofline_frac")
    track_roofline_time.unit = "ratio (lower is better)"

    def track_torch_time(self, cache, optimizer):
        return _get(cache, optimizer, "torch_time")
    track_torch_time.unit = "ratio (lower is better)"


class TrackOneGroup:
    """(b) figures: time / one flat param's (1 / flat_frac) with 1000 params in one group."""
    params = [OPTIMIZERS]
    param_names = ["optimizer"]
    timeout = SLOW

    def setup_cache(self):
        return _figures("b")
    setup_cache.timeout = SLOW

    def track_flat_time(self, cache, optimizer):
        return _inverse(cache, optimizer, "flat_frac")
    track_flat_time.unit = "ratio (lower is better)"

    def track_torch_time(self, cache, optimizer):
        return _get(cache, optimizer, "torch_time")
    track_torch_time.unit = "ratio (lower is better)"


class TrackManyGroups:
    """(c) figures: time / one flat param's (1 / flat_frac) with one group per param."""
    params = [OPTIMIZERS]
    param_names = ["optimizer"]
    timeout = SLOW

    def setup_cache(self):
        return _figures("c")
    setup_cache.timeout = SLOW

    def track_flat_time(self, cache, optimizer):
        return _inverse(cache, optimizer, "flat_frac")
    track_flat_time.unit = "ratio (lower is better)"


class TrackLoop:
    """(d) figure: the seed's loop, time / torch's fastest (lower is better)."""
    params = [OPTIMIZERS]
    param_names = ["optimizer"]
    timeout = SLOW

    def setup_cache(self):
        return _figures("d")
    setup_cache.timeout = SLOW

    def track_torch_time(self, cache, optimizer):
        return _get(cache, optimizer, "torch_time")
    track_torch_time.unit = "ratio (lower is better)"


class TrackMLP:
    """(e) figures: the MLP step against torch's fastest and its fused=True; ``fwd+bwd``: the
    step without the optimizer."""
    params = [OPTIMIZERS + [cn.FWDBWD]]
    param_names = ["optimizer"]
    timeout = SLOW

    def setup_cache(self):
        return _figures("e")
    setup_cache.timeout = SLOW

    def track_torch_time(self, cache, optimizer):
        return _get(cache, optimizer, "torch_time")
    track_torch_time.unit = "ratio (lower is better)"

    def track_torch_fused_time(self, cache, optimizer):
        return _get(cache, optimizer, "torch_fused_time")
    track_torch_fused_time.unit = "ratio (lower is better)"


class TrackMemory:
    """(f) figures, machine-independent: bytes a steady-state step allocates above the live
    arrays (tracemalloc; target <= 64 KiB) and resident bytes it adds (target <= 1 MiB)."""
    params = [OPTIMIZERS]
    param_names = ["optimizer"]
    timeout = SLOW

    def setup_cache(self):
        return _figures("f")
    setup_cache.timeout = SLOW

    def track_traced_extra(self, cache, optimizer):
        return _get(cache, optimizer, "traced_extra")
    track_traced_extra.unit = "bytes (lower is better)"

    def track_rss_extra(self, cache, optimizer):
        return _get(cache, optimizer, "rss_extra")
    track_rss_extra.unit = "bytes (lower is better)"
