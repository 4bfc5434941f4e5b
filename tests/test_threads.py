"""Several Python threads stepping disjoint optimizers at once give bit-identical results to
stepping them one after another.

Why: ``step()`` releases the GIL around big kernels (NOGIL_MIN_ELEMS = 4096 elements, in
_optim.pyx), so other threads run Python, including other optimizers' validation, collection and
the process-wide overlap-proof cache, while a kernel writes. The cache and the RNG are
process-global (grad mode is per thread, as in torch); this is what shows that disjoint
optimizers in threads do not disturb each other (README "Reliability" lists what is and is
not thread-safe). Every optimizer class,
float32 and float64, one big tensor (GIL released) and 40 mid-size ones (the overlap proof is
cached: more than SMALL_SPANS spans) and 70 (team mode). That big steps release the GIL at all is
shown by counting, not timing: another thread observes being run while a step is in progress.
Timing is in benchmarks/bench_threads.py, not here.
"""
import sys
import threading
import time

import numpy as np
import pytest

import fastoptim
from fastoptim import nn, optim

CONFIGS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"lr": 1e-3, "centered": True, "momentum": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.5}),
    ("Adadelta", {"weight_decay": 0.1}),
]
# 70 tensors of 8192 elements: team mode (>= TEAM_MIN_TENSORS = 64 tensors and >= 512Ki elements,
# when OpenMP has two threads or more), each Python thread opening its own parallel region.
LAYOUTS = {"one big tensor": [(120_000,), (3,)], "40 tensors": [(5000,)] * 40,
           "70 tensors": [(8192,)] * 70}
# team mode does not depend on the dtype: its layout runs in float32 only
LAYOUT_DTYPES = [(layout, dtype) for layout in LAYOUTS for dtype in (np.float32, np.float64)
                 if not (layout == "70 tensors" and dtype == np.float64)]
THREADS = 4
STEPS = 4


def _make(name, kwargs, shapes, dtype, seed):
    """An optimizer over its own params, and its grads for every step (numpy arrays)."""
    rng = np.random.default_rng(seed)
    params = [nn.Parameter(fastoptim.from_numpy(rng.standard_normal(s).astype(dtype)))
              for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(STEPS)]
    return getattr(optim, name)(params, **kwargs), params, grads


def _train(opt, params, grads, start=None):
    if start is not None:
        start.wait()
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = fastoptim.from_numpy(g)
        opt.step()
        opt.zero_grad()


def _in_threads(runs):
    """Train each (opt, params, grads) in its own thread, all released at once."""
    start = threading.Barrier(len(runs))
    errors = []

    def work(run):
        try:
            _train(*run, start=start)
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def _result(opt, params):
    out = [p.detach().numpy().tobytes() for p in params]
    for p in params:
        for _, value in sorted(opt.state[p].items()):
            out.append(value.detach().numpy().tobytes() if hasattr(value, "detach")
                       else repr(value))
    return out


@pytest.mark.parametrize("layout, dtype", LAYOUT_DTYPES,
                         ids=[f"{lay}-{np.dtype(d).name}" for lay, d in LAYOUT_DTYPES])
@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_threads_match_serial_bit_for_bit(name, kwargs, layout, dtype):
    shapes = LAYOUTS[layout]
    serial = []
    for seed in range(THREADS):
        opt, params, grads = _make(name, kwargs, shapes, dtype, seed)
        _train(opt, params, grads)
        serial.append(_result(opt, params))

    runs = [_make(name, kwargs, shapes, dtype, seed) for seed in range(THREADS)]
    _in_threads(runs)
    for seed, (opt, params, _) in enumerate(runs):
        assert _result(opt, params) == serial[seed], f"optimizer {seed} differs"
    assert serial[0] != serial[1]  # the control: the optimizers really hold different data


def test_more_threads_than_overlap_cache_slots_match_serial():
    """More groups stepping concurrently than the overlap cache has slots (8): its entries are
    replaced while other threads step, and every optimizer still gets the serial result."""
    name, kwargs = CONFIGS[1]
    shapes = LAYOUTS["40 tensors"]
    count = 12
    serial = []
    for seed in range(count):
        opt, params, grads = _make(name, kwargs, shapes, np.float32, seed)
        _train(opt, params, grads)
        serial.append(_result(opt, params))
    runs = [_make(name, kwargs, shapes, np.float32, seed) for seed in range(count)]
    _in_threads(runs)
    assert [_result(opt, params) for opt, params, _ in runs] == serial


def test_team_mode_ran():
    # The "70 tensors" layout is meant to take team mode; check it does on this machine.
    from fastoptim._C import _optim
    if _optim._get_num_threads() < 2:
        pytest.skip("OpenMP runs one thread here: no team mode")
    before = _optim._team_step_count()
    opt, params, grads = _make("Adam", {}, LAYOUTS["70 tensors"], np.float32, 0)
    _train(opt, params, grads)
    assert _optim._team_step_count() > before


def _steps_seen_by_another_thread(numel, steps=20):
    """How many of ``steps`` Adam steps over ``numel`` elements another Python thread ran
    during. With forced GIL switches made very rare (switch interval 100 s), the other thread
    can run while ``step()`` is in progress only if step itself releases the GIL: this counts
    observations, not time, so a busy machine delays it but cannot fake it."""
    opt, params, grads = _make("Adam", {}, [(numel,)], np.float32, 0)
    params[0].grad = fastoptim.from_numpy(grads[0][0])
    opt.step()  # state created
    state = {"in_step": False, "done": False, "seen": set(), "step": 0}

    def watch():
        while not state["done"]:
            if state["in_step"]:
                state["seen"].add(state["step"])
            time.sleep(0)  # releases the GIL: lets the stepping thread take it back

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    watcher = threading.Thread(target=watch)
    try:
        watcher.start()
        for k in range(steps):
            state["step"], state["in_step"] = k, True
            opt.step()
            state["in_step"] = False
            time.sleep(0.0005)  # the watcher runs here, not in a step
    finally:
        state["done"] = True
        watcher.join()
        sys.setswitchinterval(old)
    return len(state["seen"])


def test_big_step_releases_the_gil():
    # 4 Mi elements: tens of milliseconds per step, in which the watcher gets the GIL
    assert _steps_seen_by_another_thread(4 << 20) >= 1


def test_small_step_keeps_the_gil():
    # The control: below NOGIL_MIN_ELEMS (4096) the kernel runs with the GIL held, so the
    # watcher never runs inside a step: the probe has no false positives. (A step that releases
    # the GIL for a few microseconds can also show 0: the watcher wakes too late to see it.)
    assert _steps_seen_by_another_thread(1000) == 0


def test_grad_mode_is_per_thread_as_in_torch():
    # grad mode is a C thread-local (_tensor_autograd.pxi): another thread's no_grad() (or
    # optimizer.step()) must not stop this one recording
    inside, leave = threading.Event(), threading.Event()

    def other():
        with fastoptim.no_grad():
            inside.set()
            leave.wait()
    t = threading.Thread(target=other)
    t.start()
    inside.wait()
    try:
        enabled_here = fastoptim.is_grad_enabled()
        y = nn.Linear(2, 1)(fastoptim.randn(1, 2))
    finally:
        leave.set()
        t.join()
    assert enabled_here and y.requires_grad


def test_concurrent_no_grad_leaves_grad_mode_on():
    # Two threads entering and leaving no_grad() in interleaved order (as concurrent
    # optimizer.step() calls do) must leave every thread's grad mode as it found it: with one
    # process-wide mode, A enter, B enter, A exit, B exit left it off for the whole process.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with fastoptim.no_grad():
            a_in.set()
            b_in.wait()
        a_out.set()
        seen["a"] = fastoptim.is_grad_enabled()

    def b():
        a_in.wait()
        with fastoptim.no_grad():
            b_in.set()
            a_out.wait()
        seen["b"] = fastoptim.is_grad_enabled()
    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": True, "b": True}
    assert fastoptim.is_grad_enabled()
