"""Tens of thousands of training iterations leave memory flat: no leak in the hot path.

Why: users train for days, so a leak of a few bytes per step becomes gigabytes. Each optimizer
class runs the classic loop on a tiny model (new input tensors, forward, MSE loss, backward,
step, ``state_dict()`` of the optimizer and the model every 100 iterations, ``zero_grad``) and,
after a warm-up, its growth is measured three ways:

- the resident set size over 20,000 iterations: what the user sees; bound 256 KiB. It is
  coarse: a leak first fills heap memory that is already resident (a C leak of 100 bytes per
  iteration grew it by only ~0.7 MiB of its 2 MB here), so it is not the sharp check;
- the bytes malloc has handed out and not taken back (glibc ``mallinfo2``: ``uordblks +
  hblkhd``, all arenas) over the same iterations: exact for C-level leaks (kernels, Cython
  buffers, numpy data); bound 64 KiB (3.3 bytes per iteration);
- tracemalloc's traced memory over 5,000 iterations: exact for Python objects and numpy data;
  bound 16 KiB (3.3 bytes per iteration).

The controls inject a leak of 100 bytes per iteration (malloc'd in C, and a Python object) and
check that the exact bounds fail it, so the bounds catch what they claim to.

Measured here (README "Reliability"), every class: RSS +0 bytes and malloc +0 to 80 bytes over
20,000 iterations, traced memory +216 to 248 bytes over 5,000 (constants, not per iteration);
the injected C leak grew malloc's count by 2.24 MB and RSS by only 0.78 MB.

FASTOPTIM_LEAK_LONG=1 runs 200,000 and 50,000 iterations instead (bounds scaled alike).

A steady step allocates nothing (benchmark regime (f), here for every described optimizer, two
of its table's configurations, float32 and float64): tracemalloc's peak during one step above
what was live before it stays under 16 KiB, where any temporary array of the 1 MiB param would
show (a control step that makes one fails the bound).
"""
import ctypes
import gc
import os
import sys
import tracemalloc

import pytest

import fastoptim
from fastoptim import nn, optim

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="RSS is read from /proc/self/statm")

LONG = os.environ.get("FASTOPTIM_LEAK_LONG") == "1"
RSS_ITERATIONS = 200_000 if LONG else 20_000
TRACED_ITERATIONS = 50_000 if LONG else 5_000
WARMUP = 2_000
RSS_BOUND = RSS_ITERATIONS * 256 * 1024 // 20_000         # 256 KiB per 20,000 iterations
MALLOC_BOUND = RSS_ITERATIONS * 64 * 1024 // 20_000       # 64 KiB per 20,000 iterations
TRACED_BOUND = TRACED_ITERATIONS * 16 * 1024 // 5_000     # 16 KiB per 5,000 iterations
LEAK = 100  # bytes per iteration the bounds must catch

OPTIMIZERS = {
    "SGD": {"lr": 1e-3, "momentum": 0.9},
    "Adam": {"lr": 1e-3, "amsgrad": True},
    "AdamW": {"lr": 1e-3},
    "RMSprop": {"lr": 1e-3, "centered": True, "momentum": 0.1},
    "Adagrad": {"lr": 1e-3},
    "Adadelta": {},
}


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


_LIBC = ctypes.CDLL(None)
_MALLINFO2 = getattr(_LIBC, "mallinfo2", None)  # glibc 2.33 and later
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _Mallinfo2
    _MALLINFO2.argtypes = []


def _malloced():
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


needs_mallinfo2 = pytest.mark.skipif(_MALLINFO2 is None, reason="needs glibc's mallinfo2")
_MEASURES = {"rss": _rss, "malloc": _malloced,
             "traced": lambda: tracemalloc.get_traced_memory()[0]}


def _loop(model, opt, n, hook=None, every=100):
    for i in range(n):
        x, y = fastoptim.randn(16, 4), fastoptim.randn(16, 1)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if i % every == 0:
            opt.state_dict()
            model.state_dict()
        opt.zero_grad()
        if hook is not None:
            hook()


def _growth(name, measures, iterations, hook=None):
    """{measure: memory growth over ``iterations`` after a warm-up} for measures of _MEASURES
    read around one loop."""
    fastoptim.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = getattr(optim, name)(model.parameters(), **OPTIMIZERS[name])
    traced = "traced" in measures
    if traced:
        tracemalloc.start()
    try:
        _loop(model, opt, WARMUP // 4 if traced else WARMUP, hook)
        gc.collect()
        before = {m: _MEASURES[m]() for m in measures}
        _loop(model, opt, iterations, hook)
        gc.collect()
        after = {m: _MEASURES[m]() for m in measures}
    finally:
        if traced:
            tracemalloc.stop()
    return {m: after[m] - before[m] for m in measures}


def _check_flat(name, bounds, iterations):
    growth = _growth(name, list(bounds), iterations)
    print(f"{name}: growth over {iterations} iterations, bytes: {growth}")
    for measure, bound in bounds.items():
        assert growth[measure] < bound, (f"{measure} grew {growth[measure]} bytes over "
                                         f"{iterations} iterations")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_rss_and_malloc_are_flat(name):
    bounds = {"rss": RSS_BOUND}
    if _MALLINFO2 is not None:
        bounds["malloc"] = MALLOC_BOUND
    _check_flat(name, bounds, RSS_ITERATIONS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_traced_memory_is_flat(name):
    _check_flat(name, {"traced": TRACED_BOUND}, TRACED_ITERATIONS)


@needs_mallinfo2
def test_malloc_bound_catches_a_100_byte_c_leak():
    _LIBC.malloc.restype = ctypes.c_void_p
    _LIBC.malloc.argtypes = [ctypes.c_size_t]
    growth = _growth("SGD", ["malloc", "rss"], RSS_ITERATIONS, hook=lambda: _LIBC.malloc(LEAK))
    print(f"a 100-byte C leak per iteration: growth over {RSS_ITERATIONS} iterations: {growth}")
    assert growth["malloc"] >= MALLOC_BOUND, growth


def test_traced_bound_catches_a_100_byte_python_leak():
    kept = []
    payload = LEAK - sys.getsizeof(b"")  # a bytes object of LEAK bytes in all
    growth = _growth("SGD", ["traced"], TRACED_ITERATIONS,
                     hook=lambda: kept.append(bytes(payload)))
    assert sys.getsizeof(kept[0]) == LEAK
    assert growth["traced"] >= TRACED_BOUND, growth


# ---- a steady step allocates nothing (benchmark regime (f), for every described optimizer) ---

ALLOC_NUMEL = 1 << 18          # 1 MiB of float32: any array a step made would show
ALLOC_BOUND = 16 * 1024        # the settings tuple, the call's Python frames


def _steady_peak(cls, kwargs, dtype, hook=None):
    """Peak bytes traced during one steady step (step 5) above what was live before it, of a
    group of one large param and a few small ones (and a 0-dim one), all with grads; ``hook``:
    a step pre-hook to register (the control's)."""
    import numpy as np
    rng = np.random.default_rng(0)
    shapes = [(ALLOC_NUMEL,), (3, 4), (), (7,)]
    ps = [fastoptim.from_numpy(rng.standard_normal(s).astype(dtype)).requires_grad_()
          for s in shapes]
    for p in ps:
        p.grad = fastoptim.from_numpy(rng.standard_normal(p.shape).astype(dtype))
    opt = getattr(optim, cls)(ps, **kwargs)
    if hook is not None:
        opt.register_step_pre_hook(hook)
    for _ in range(4):
        opt.step()
    gc.collect()
    tracemalloc.start()
    try:
        opt.step()                # tracemalloc's own first-use allocations
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        opt.step()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _alloc_cases():
    from optim_table import TABLE

    from fastoptim.optim._descriptions import BY_NAME
    return [(BY_NAME[n].cls, kw) for n, row in TABLE.items() for kw in row["class"][:2]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls,kwargs", _alloc_cases(),
                         ids=[f"{c}-{i % 2}" for i, (c, _) in enumerate(_alloc_cases())])
def test_a_steady_step_allocates_nothing(cls, kwargs, dtype):
    peak = _steady_peak(cls, kwargs, dtype)
    assert peak < ALLOC_BOUND, f"{cls}({kwargs}): a steady step allocated {peak} bytes at its peak"


def test_the_allocation_bound_catches_a_temporary_array():
    # the control: a step that makes one temporary array the size of the large param fails it
    import numpy as np

    def hook(opt, args, kwargs):
        np.ones(ALLOC_NUMEL, np.float32).sum()

    assert _steady_peak("SGD", {"lr": 0.1}, "float32", hook) >= ALLOC_NUMEL * 4
