"""Tests of the optimizer kernels: C (through fastoptim.optim.functional) against the NumPy twins
(fastoptim.optim._reference), against torch 2.13 when it is importable, and against the golden
values of the reference notes; plus thread-count independence, validation errors (raised before
anything is written), no mutation of inputs, and no leaks.

One table (OPTIMIZERS: tests/optim_table.py's rows and the descriptions) drives the numeric
tests: each optimizer with several hyperparameter sets covering its flags.
"""

import gc
import re
import sys
import tracemalloc

import numpy as np
import pytest
from optim_table import TABLE, state_kinds

import fastoptim
from fastoptim._C import _optim
from fastoptim.optim import _reference as ref
from fastoptim.optim import functional as fun
from fastoptim.optim._descriptions import BY_NAME
from fastoptim.optim._step import plan

ADAM, SGD = plan(BY_NAME["adam"]), plan(BY_NAME["sgd"])   # the glue's call plans

# ---- the table ---------------------------------------------------------------------------------
# name -> (how each state list after params/grads is made, hyperparameter sets): the sets are
# tests/optim_table.py's "functional" rows; the state kinds come from the descriptions
# (optim_table.state_kinds): "zeros", "none" (SGD's lazily created buffers), "iav" (Adagrad's
# initial accumulator), "step".  A hyperparameter set may carry "initial_accumulator_value"
# (Adagrad's constructor argument, used to fill the state, not passed to the functional) and
# "init_steps" (start the step counters at different values per tensor).

OPTIMIZERS = {name: (state_kinds(name), row["functional"]) for name, row in TABLE.items()}

CASES = [(name, k) for name, (_, hps) in OPTIMIZERS.items() for k in range(len(hps))]
CASE_IDS = [f"{name}-{k}" for name, k in CASES]

# One call updates all tensors of a group: empty, scalar-like, odd and mid sizes, 0-dim; and a
# group large enough that the OpenMP path runs (FO_OMP_MIN_ELEMS is 524288 in total).
SMALL_GROUP = [(0,), (1,), (7,), (1000,), ()]
LARGE_GROUP = [(600_003,), (3,), (70, 13)]
N_STEPS = 20

TOL_TWIN = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}
TOL_TORCH = {np.float32: {"rtol": 1.3e-6, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-10}}


def _hyper(name, k):
    hp = dict(OPTIMIZERS[name][1][k])
    iav = hp.pop("initial_accumulator_value", 0.0)
    init_steps = hp.pop("init_steps", None)
    hp.pop("init_lr", None)
    return hp, iav, init_steps


def _init_lr(name, k):
    """The lr a first state made from it holds (Rprop's step sizes, ASGD's eta)."""
    row = OPTIMIZERS[name][1][k]
    return row.get("init_lr", row.get("lr"))


def _make(name, k, shapes, dtype, seed=0):
    """Params and state for one group, deterministic in seed."""
    rng = np.random.default_rng(seed)
    hp, iav, init_steps = _hyper(name, k)
    params = _grads(rng, shapes, dtype)
    state = []
    for kind in OPTIMIZERS[name][0]:
        if kind == "none":
            state.append([None] * len(shapes))
        elif kind == "zeros":
            state.append([np.zeros(s, dtype) for s in shapes])
        elif kind == "iav":
            state.append([np.full(s, iav, dtype) for s in shapes])
        elif kind == "lr":
            state.append([np.full(s, _init_lr(name, k), dtype) for s in shapes])
        elif kind.startswith("scalar:"):
            init = kind.split(":")[1]
            value = _init_lr(name, k) if init == "lr" else float(init)
            state.append([np.array(value, np.float32) for _ in shapes])
        else:
            steps = init_steps or (0,) * len(shapes)
            state.append([np.array(steps[i % len(steps)], np.float32)
                          for i in range(len(shapes))])
    return params, state, hp


def _grads(rng, shapes, dtype):
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]


def _run(impl, name, k, shapes, dtype, n_steps=N_STEPS, seed=0):
    """Run n_steps of optimizer `name` with `impl` (a module: fun or ref); return all arrays."""
    params, state, hp = _make(name, k, shapes, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    f = getattr(impl, name)
    for _ in range(n_steps):
        f(params, _grads(rng, shapes, dtype), *state, **hp)
    flat = list(params)
    for lst in state:
        flat.extend(x for x in lst if x is not None)
    return flat


def _assert_all_close(got, want, tol):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        np.testing.assert_allclose(a, b, err_msg=f"array {i}", **tol)


# ---- C kernel vs NumPy twin ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_kernel_matches_twin_small_group(name, k, dtype):
    got = _run(fun, name, k, SMALL_GROUP, dtype)
    want = _run(ref, name, k, SMALL_GROUP, dtype)
    _assert_all_close(got, want, TOL_TWIN[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_kernel_matches_twin_large_group(name, k, dtype):
    got = _run(fun, name, k, LARGE_GROUP, dtype)
    want = _run(ref, name, k, LARGE_GROUP, dtype)
    _assert_all_close(got, want, TOL_TWIN[dtype])


# A group of mixed sizes: odd, power-of-two and one-past sizes, empty and 0-dim tensors, large
# ones between small ones.
MIXED_GROUP = [(255,), (256,), (0,), (257,), (1024,), (8192,), (8193,), (1,), (16384,),
               (16385,), (3000,), (), (40_000,), (511,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_mixed_size_group_matches_twin_and_single_calls(name, k, dtype):
    """Every element of a group of mixed sizes is updated once, as the twin does, and to the
    bit as when each tensor is stepped by a call of its own."""
    got = _run(fun, name, k, MIXED_GROUP, dtype, n_steps=4)
    want = _run(ref, name, k, MIXED_GROUP, dtype, n_steps=4)
    _assert_all_close(got, want, TOL_TWIN[dtype])
    params, state, hp = _make(name, k, MIXED_GROUP, dtype)
    single = [([p.copy()], [[None if x[i] is None else x[i].copy()] for x in state])
              for i, p in enumerate(params)]
    f = getattr(fun, name)
    rng = np.random.default_rng(5)
    for _ in range(4):
        grads = _grads(rng, MIXED_GROUP, dtype)
        f(params, grads, *state, **hp)
        for i, (ps, st) in enumerate(single):
            f(ps, [grads[i]], *st, **hp)
    for i, (ps, st) in enumerate(single):
        assert params[i].tobytes() == ps[0].tobytes(), (i, MIXED_GROUP[i])
        for lst, one in zip(state, st, strict=True):
            assert lst[i] is None or lst[i].tobytes() == one[0].tobytes(), (i, MIXED_GROUP[i])


@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_mixed_dtype_group(name, k):
    """A group may mix float32 and float64 params: one C call per dtype, same results."""
    params, state, hp = _make(name, k, [(5,), (6,), (7,)], np.float64)
    params[1] = params[1].astype(np.float32)
    for lst in state:
        if lst[1] is not None and lst[1].dtype == np.float64:
            lst[1] = lst[1].astype(np.float32)
    twin_params = [p.copy() for p in params]
    twin_state = [[x if x is None else x.copy() for x in lst] for lst in state]
    rng = np.random.default_rng(3)
    for _ in range(5):
        grads = [np.asarray(rng.standard_normal(p.shape), p.dtype) for p in params]
        getattr(fun, name)(params, grads, *state, **hp)
        getattr(ref, name)(twin_params, grads, *twin_state, **hp)
    for p, q in zip(params, twin_params, strict=True):
        np.testing.assert_allclose(p, q, **TOL_TWIN[p.dtype.type])


# ---- against torch ------------------------------------------------------------------------------

def _torch_optimizer(torch, name, k, tparams):
    """torch's class over tparams with the functional's hyperparameters, put where the
    description says a group keeps each (``beta1`` in ``betas[0]``)."""
    hp, iav, _ = _hyper(name, k)
    d = BY_NAME[name]
    fixed = dict(d.fixed)
    kw, tuples = {}, {}
    for h in d.hyper:
        if h.name in fixed or h.name not in hp:
            continue
        if h.index is None:
            kw[h.group_key] = hp[h.name]
        else:
            tuples.setdefault(h.group_key, {})[h.index] = hp[h.name]
    kw.update({key: tuple(v[i] for i in sorted(v)) for key, v in tuples.items()})
    if d.fill_from is not None:
        kw[d.fill_from] = iav
    if "lr" not in kw and _init_lr(name, k) is not None:
        kw["lr"] = _init_lr(name, k)
    return getattr(torch.optim, d.cls)(tparams, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_matches_torch(name, k, dtype):
    torch = pytest.importorskip("torch")
    _, _, init_steps = _hyper(name, k)
    if init_steps is not None:
        pytest.skip("torch's optimizers start every step counter at 0")
    shapes = SMALL_GROUP
    params, state, hp = _make(name, k, shapes, dtype)
    tparams = [torch.tensor(p.copy()) for p in params]
    opt = _torch_optimizer(torch, name, k, tparams)
    rng = np.random.default_rng(1)
    for _ in range(N_STEPS):
        grads = _grads(rng, shapes, dtype)
        for tp, g in zip(tparams, grads, strict=True):
            tp.grad = torch.tensor(g.copy())
        opt.step()
        getattr(fun, name)(params, grads, *state, **hp)
    for i, (p, tp) in enumerate(zip(params, tparams, strict=True)):
        np.testing.assert_allclose(p, tp.detach().numpy(), err_msg=f"param {i}",
                                   **TOL_TORCH[dtype])
    if name != "sgd":
        for i, tp in enumerate(tparams):
            assert float(state[-1][i]) == float(opt.state[tp]["step"]), i


# ---- golden values (reference §1.7, torch 2.13, float64) -----------------------------------------

GOLDEN_P0 = [1.0, -2.0, 0.5]
GOLDEN_GRADS = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.2], [-0.4, 0.0, 1.5]]
_ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
         "maximize": False}
_SGD = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
        "maximize": False}
_RMS = {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False,
        "maximize": False}
_ADAG = {"weight_decay": 0.0, "lr_decay": 0.0, "eps": 1e-10, "maximize": False}
_ADAD = {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0, "maximize": False}
GOLDEN = [
    ("sgd", {**_SGD, "lr": 0.1}, [0.98, -1.93, 0.17]),
    ("sgd", {**_SGD, "lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
     [0.87826328869, -1.76998607738, -0.144790247405]),
    ("sgd", {**_SGD, "lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True},
     [1.12305, -2.2626, 1.4186]),
    ("adam", {**_ADAM, "lr": 0.1}, [0.810325966358, -1.82414232285, 0.265802039312]),
    ("adam", {**_ADAM, "lr": 0.1, "weight_decay": 0.1, "amsgrad": True},
     [0.782983779079, -1.7846241918, 0.262981733572]),
    ("adamw", {**_ADAM, "lr": 0.1, "weight_decay": 1e-2},
     [0.80760916945, -1.81839100571, 0.264562703662]),
    ("adamw", {**_ADAM, "lr": 0.1, "weight_decay": 0.5, "maximize": True},
     [1.03328382906, -1.87871843432, 0.650172218187]),
    ("rmsprop", {**_RMS, "lr": 0.01}, [0.942391082224, -1.92886752068, 0.349807080373]),
    ("rmsprop", {**_RMS, "lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1},
     [0.71557907154, -1.72999620958, 0.18190048322]),
    ("adagrad", {**_ADAG, "lr": 0.1}, [0.942109726485, -1.92873478856, 0.350141455197]),
    ("adagrad", {**_ADAG, "lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1, "iav": 0.1},
     [0.913619930953, -1.90159602455, 0.376536126404]),
    ("adadelta", dict(_ADAD), [0.998839180499, -1.9981861277, 0.49450910167]),
    ("adadelta", {**_ADAD, "lr": 0.5, "rho": 0.5, "weight_decay": 0.1, "maximize": True},
     [0.999902756707, -1.99966231516, 0.501258682588]),
]


@pytest.mark.parametrize("impl", [fun, ref], ids=["kernel", "twin"])
@pytest.mark.parametrize(("name", "hp", "want"), GOLDEN, ids=[f"{g[0]}-{i}"
                                                             for i, g in enumerate(GOLDEN)])
def test_golden_values(impl, name, hp, want):
    hp = dict(hp)
    iav = hp.pop("iav", 0.0)
    p = np.array(GOLDEN_P0)
    state = []
    for kind in OPTIMIZERS[name][0]:
        state.append([None] if kind == "none" else [np.array(0.0, np.float32)] if kind == "step"
                     else [np.full(3, iav if kind == "iav" else 0.0)])
    for g in GOLDEN_GRADS:
        getattr(impl, name)([p], [np.array(g)], *state, **hp)
    # The golden values are printed to 12 significant digits.
    np.testing.assert_allclose(p, want, rtol=1e-11, atol=1e-12)


# ---- threads ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_thread_count_does_not_change_results(name, k):
    old = _optim._get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            _optim._set_num_threads(n)
            results.append(_run(fun, name, k, LARGE_GROUP, np.float32, n_steps=3))
    finally:
        _optim._set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert np.array_equal(a, b)


# ---- inputs, layouts and kinds of arrays --------------------------------------------------------

@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_grads_are_not_mutated(name, k):
    params, state, hp = _make(name, k, [(4,), (9,)], np.float64)
    grads = _grads(np.random.default_rng(0), [(4,), (9,)], np.float64)
    for g in grads:
        g.flags.writeable = False      # read-only grads are accepted
    before = [g.copy() for g in grads]
    getattr(fun, name)(params, grads, *state, **hp)
    for g, b in zip(grads, before, strict=True):
        assert np.array_equal(g, b)


def test_shared_grad_array_is_allowed():
    params = [np.ones(3), np.ones(3)]
    g = np.full(3, 0.5)
    fun.sgd(params, [g, g], [None, None], lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False, maximize=False)
    np.testing.assert_array_equal(params[0], params[1])


@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_non_contiguous_params_and_state(name, k):
    """Strided params/state are updated through a contiguous copy that is written back."""
    base_params, base_state, hp = _make(name, k, [(6, 8)], np.float64)
    params = [np.zeros((8, 6)).T]
    params[0][...] = base_params[0]
    state = []
    for lst in base_state:
        if lst[0] is None or lst[0].ndim == 0:
            state.append([None if x is None else x.copy() for x in lst])
        else:
            arr = np.zeros((8, 6)).T
            arr[...] = lst[0]
            state.append([arr])
    rng = np.random.default_rng(5)
    for _ in range(3):
        g = rng.standard_normal((6, 16))[:, ::2]
        getattr(fun, name)(params, [g], *state, **hp)
        getattr(ref, name)(base_params, [g], *base_state, **hp)
    np.testing.assert_allclose(params[0], base_params[0], **TOL_TWIN[np.float64])
    for lst, base in zip(state, base_state, strict=True):
        if lst[0] is not None:
            np.testing.assert_allclose(lst[0], base[0], **TOL_TWIN[np.float64])


class FakeTensor:
    """Stands in for fastoptim.Tensor: all the functionals need is ``_np``."""

    def __init__(self, arr):
        self._np = arr


@pytest.mark.parametrize(("name", "k"), CASES, ids=CASE_IDS)
def test_tensor_like_elements(name, k, monkeypatch):
    monkeypatch.setattr(fastoptim, "from_numpy", FakeTensor, raising=False)
    params, state, hp = _make(name, k, [(3,), ()], np.float32)
    twin_params = [p.copy() for p in params]
    twin_state = [[x if x is None else x.copy() for x in lst] for lst in state]
    tparams = [FakeTensor(p) for p in params]
    tstate = [[x if x is None else FakeTensor(x) for x in lst] for lst in state]
    rng = np.random.default_rng(2)
    for _ in range(3):
        grads = _grads(rng, [(3,), ()], np.float32)
        getattr(fun, name)(tparams, [FakeTensor(g) for g in grads], *tstate, **hp)
        getattr(ref, name)(twin_params, grads, *twin_state, **hp)
    for tp, p in zip(tparams, twin_params, strict=True):
        np.testing.assert_allclose(tp._np, p, **TOL_TWIN[np.float32])
    if name == "sgd" and hp["momentum"] != 0:
        assert all(isinstance(b, FakeTensor) for b in tstate[0])


def test_sgd_creates_buffers_in_the_list():
    params = [np.ones(3), np.ones(2)]
    bufs = [None, np.zeros(2)]
    fun.sgd(params, [np.full(3, 2.0), np.full(2, 2.0)], bufs, lr=0.1, momentum=0.9,
            dampening=0.5, weight_decay=0.0, nesterov=False, maximize=False)
    np.testing.assert_array_equal(bufs[0], [2.0, 2.0, 2.0])   # a copy of the grad, no dampening
    np.testing.assert_array_equal(bufs[1], [1.0, 1.0])        # 0.9*0 + (1-0.5)*2


@pytest.mark.parametrize("lr", [0.1, np.array(0.1), np.array([0.1]), FakeTensor(np.array(0.1))])
def test_lr_may_be_a_one_element_array(lr):
    p = np.ones(3)
    fun.sgd([p], [np.ones(3)], [None], lr=lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False, maximize=False)
    np.testing.assert_allclose(p, 0.9)


def test_lr_with_many_elements_is_rejected():
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        fun.sgd([np.ones(3)], [np.ones(3)], [None], lr=np.array([0.1, 0.2]), momentum=0.0,
                dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)


def test_flags_for_signature_compatibility_are_accepted():
    p, m, v, s = np.ones(2), np.zeros(2), np.zeros(2), np.array(0.0, np.float32)
    fun.adam([p], [np.ones(2)], [m], [v], [], [s], foreach=True, capturable=False,
             differentiable=False, fused=True, has_complex=False, amsgrad=False, beta1=0.9,
             beta2=0.999, lr=0.1, weight_decay=0.0, eps=1e-8, maximize=False)
    fun.adagrad([p], [np.ones(2)], [m], [s], fused=None, has_sparse_grad=False, foreach=None,
                differentiable=False, has_complex=False, lr=0.1, weight_decay=0.0, lr_decay=0.0,
                eps=1e-10, maximize=False)
    assert float(s) == 2.0


# ---- validation: useful errors, nothing written --------------------------------------------------

def _adam_group(n=2, dtype=np.float32):
    rng = np.random.default_rng(0)
    shapes = [(3,), (4, 2)] + [(2,)] * (n - 2)
    return {
        "params": [np.asarray(rng.standard_normal(s), dtype) for s in shapes],
        "grads": [np.asarray(rng.standard_normal(s), dtype) for s in shapes],
        "exp_avgs": [np.full(s, 0.25, dtype) for s in shapes],
        "exp_avg_sqs": [np.full(s, 0.5, dtype) for s in shapes],
        "max_exp_avg_sqs": [np.full(s, 0.75, dtype) for s in shapes],
        "state_steps": [np.array(4.0, np.float32) for _ in shapes],
    }


def _readonly(a):
    a.flags.writeable = False
    return a


BAD_CALLS = [
    # (id, mutation of the group, exception, substrings of the message)
    ("param-dtype", lambda g: g["params"].__setitem__(1, np.zeros((4, 2), np.int32)),
     TypeError, ["params[1]", "int32", "float32 or float64"]),
    ("state-dtype", lambda g: g["exp_avgs"].__setitem__(0, np.zeros(3, np.float64)),
     TypeError, ["exp_avgs[0]", "float64", "float32", "params[0]"]),
    ("grad-dtype", lambda g: g["grads"].__setitem__(1, np.zeros((4, 2), np.float64)),
     TypeError, ["grads[1]", "float64"]),
    ("state-shape", lambda g: g["exp_avg_sqs"].__setitem__(1, np.zeros((2, 4), np.float32)),
     ValueError, ["exp_avg_sqs[1]", "(2, 4)", "(4, 2)"]),
    ("grad-size", lambda g: g["grads"].__setitem__(0, np.zeros(4, np.float32)),
     ValueError, ["grads[0]", "shape"]),
    ("list-length", lambda g: g["grads"].pop(), ValueError, ["len(grads)", "1", "2"]),
    ("steps-length", lambda g: g["state_steps"].pop(), ValueError, ["len(state_steps)"]),
    ("not-an-array", lambda g: g["grads"].__setitem__(0, [1.0, 2.0, 3.0]),
     TypeError, ["grads[0]", "numpy.ndarray", "list"]),
    ("state-noncontig", lambda g: g["exp_avgs"].__setitem__(1, np.zeros((2, 4), np.float32).T),
     ValueError, ["exp_avgs[1]", "C-contiguous"]),
    ("param-readonly", lambda g: g["params"].__setitem__(0, _readonly(np.zeros(3, np.float32))),
     ValueError, ["params[0]", "read-only"]),
    ("state-readonly",
     lambda g: g["max_exp_avg_sqs"].__setitem__(1, _readonly(np.zeros((4, 2), np.float32))),
     ValueError, ["max_exp_avg_sqs[1]", "read-only"]),
    ("step-dtype", lambda g: g["state_steps"].__setitem__(1, np.array(1.0)),
     TypeError, ["state_steps[1]", "float64", "float32"]),
    ("step-not-array", lambda g: g["state_steps"].__setitem__(0, 3.0),
     TypeError, ["state_steps[0]", "float"]),
    ("param-is-state", lambda g: g["exp_avgs"].__setitem__(0, g["params"][0]),
     ValueError, ["overlap", "params[0]", "exp_avgs[0]"]),
    ("grad-is-state", lambda g: g["grads"].__setitem__(1, g["exp_avg_sqs"][1]),
     ValueError, ["overlap", "grads[1]", "exp_avg_sqs[1]"]),
    ("param-views-param", lambda g: g["params"].__setitem__(0, g["params"][1].reshape(-1)[:3]),
     ValueError, ["overlap", "params[0]", "params[1]"]),
    ("steps-shared", lambda g: g["state_steps"].__setitem__(1, g["state_steps"][0]),
     ValueError, ["overlap", "state_steps[0]", "state_steps[1]"]),
    ("byte-swapped", lambda g: g["exp_avgs"].__setitem__(0, np.zeros(3, ">f4")),
     TypeError, ["exp_avgs[0]", "byte-swapped"]),
]


@pytest.mark.parametrize("n", [2, 20], ids=["stack", "heap"])
@pytest.mark.parametrize(("mutate", "exc", "words"), [b[1:] for b in BAD_CALLS],
                         ids=[b[0] for b in BAD_CALLS])
def test_bad_call_raises_and_writes_nothing(mutate, exc, words, n):
    group = _adam_group(n)
    mutate(group)
    snapshot = {k: [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in v]
                for k, v in group.items()}
    with pytest.raises(exc) as info:
        _optim.step(ADAM, (0.1, 0.9, 0.999, 1e-8, 0.1, True, False, False), group["params"],
                    group["grads"], (group["exp_avgs"], group["exp_avg_sqs"],
                                     group["max_exp_avg_sqs"]), group["state_steps"])
    msg = str(info.value)
    for w in words:
        assert w in msg, (w, msg)
    for key, arrays in group.items():
        for x, y in zip(arrays, snapshot[key], strict=True):
            if isinstance(x, np.ndarray):
                assert np.array_equal(x, y), (key, msg)


def test_bad_call_in_functional_writes_nothing():
    """Even the SGD functional, which creates buffers, leaves the caller's list alone."""
    bufs = [None, None]
    params = [np.ones(3), np.ones(2, np.float32)]
    grads = [np.ones(3), np.ones(2)]           # grads[1] has the wrong dtype
    with pytest.raises(TypeError, match=r"grads\[1\]"):
        fun.sgd(params, grads, bufs, lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0,
                nesterov=False, maximize=False)
    assert bufs == [None, None]
    np.testing.assert_array_equal(params[0], 1.0)


# ---- leaks -----------------------------------------------------------------------------------

def test_repeated_calls_do_not_leak():
    group = _adam_group(20)
    bad = _adam_group(20)
    bad["grads"][5] = np.zeros(7, np.float32)

    def step(g):
        fun.adam(g["params"], g["grads"], g["exp_avgs"], g["exp_avg_sqs"], g["max_exp_avg_sqs"],
                 g["state_steps"], amsgrad=True, beta1=0.9, beta2=0.999, lr=1e-3,
                 weight_decay=0.0, eps=1e-8, maximize=False)

    def loop(count):
        for _ in range(count):
            step(group)
            with pytest.raises(ValueError):
                step(bad)

    loop(200)     # warm up caches (interned strings, exception machinery)
    refs = [sys.getrefcount(x) for x in group["params"] + group["grads"]]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    loop(2000)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert [sys.getrefcount(x) for x in group["params"] + group["grads"]] == refs
    assert after - before < 20_000, after - before


# ---- the overlap check on large groups (radix-sorted keys) and its cache -------------------------

def _big_adam_group(n, size=3, dtype=np.float32, pool=None):
    """n params with amsgrad: 6 * n arrays.  With ``pool`` (a 1-D array), every array is a view
    of it at a shuffled slot, so neighbours in memory belong to unrelated lists and indices."""
    lists = ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs")
    if pool is None:
        group = {k: [np.full(size, 0.5, dtype) for _ in range(n)] for k in lists}
        group["state_steps"] = [np.array(1.0, np.float32) for _ in range(n)]
        return group
    slots = np.random.default_rng(n).permutation(len(lists) * n)
    group = {k: [pool[s * size:(s + 1) * size] for s in slots[j * n:(j + 1) * n]]
             for j, k in enumerate(lists)}
    group["state_steps"] = [np.array(1.0, np.float32) for _ in range(n)]
    return group


def _call_adam(group):
    _optim.step(ADAM, (0.1, 0.9, 0.999, 1e-8, 0.0, True, False, False), group["params"],
                group["grads"], (group["exp_avgs"], group["exp_avg_sqs"],
                                 group["max_exp_avg_sqs"]), group["state_steps"])


def _snapshot(group):
    return {k: [x.copy() for x in v] for k, v in group.items()}


def _assert_unchanged(group, snap):
    for k, arrays in group.items():
        for x, y in zip(arrays, snap[k], strict=True):
            assert np.array_equal(x, y), k


def _pooled(n=400, size=3):
    return _big_adam_group(n, size, pool=np.zeros(5 * n * size, np.float32))


def _set(group, key, i, x):
    group[key][i] = x


def _partial(group):
    """params[7] and exp_avgs[300] become views [2:5] and [0:3] of one buffer."""
    buf = np.zeros(10, np.float32)
    group["params"][7], group["exp_avgs"][300] = buf[2:5], buf[:3]


BIG_OVERLAPS = [
    # (id, mutation of a 2400-array group, substrings of the message)
    ("partial", _partial, ["overlap", "params[7]", "exp_avgs[300]"]),
    ("identical", lambda g: _set(g, "exp_avg_sqs", 399, g["exp_avg_sqs"][0]),
     ["overlap", "exp_avg_sqs[0]", "exp_avg_sqs[399]"]),
    ("state-is-param", lambda g: _set(g, "max_exp_avg_sqs", 123, g["params"][123]),
     ["overlap", "params[123]", "max_exp_avg_sqs[123]"]),
    ("state-is-other-param", lambda g: _set(g, "exp_avgs", 5, g["params"][250]),
     ["overlap", "params[250]", "exp_avgs[5]"]),
    ("grad-is-param", lambda g: _set(g, "grads", 42, g["params"][17]),
     ["overlap", "params[17]", "grads[42]"]),
    ("steps-shared", lambda g: _set(g, "state_steps", 333, g["state_steps"][2]),
     ["overlap", "state_steps[2]", "state_steps[333]"]),
    ("step-in-param", lambda g: _set(g, "state_steps", 9, g["params"][200][1:2]),
     ["overlap", "params[200]", "state_steps[9]"]),
]


@pytest.mark.parametrize("pooled", [False, True], ids=["separate", "pooled"])
@pytest.mark.parametrize(("mutate", "words"), [b[1:] for b in BIG_OVERLAPS],
                         ids=[b[0] for b in BIG_OVERLAPS])
def test_overlap_found_in_large_group(mutate, words, pooled):
    group = _pooled() if pooled else _big_adam_group(400)
    _call_adam(group)               # valid as built (and now cached)
    mutate(group)
    snap = _snapshot(group)
    with pytest.raises(ValueError) as info:
        _call_adam(group)
    msg = str(info.value)
    for w in words:
        assert w in msg, (w, msg)
    assert msg.endswith("every array that is updated in place must have its own storage")
    _assert_unchanged(group, snap)


def _overlaps_brute(spans):
    """Reference answer: does some pair overlap where at least one of the two is written?"""
    lo = np.array([s[0] for s in spans])
    hi = np.array([s[1] for s in spans])
    written = np.array([not s[2] for s in spans])
    both = (lo[:, None] < hi[None, :]) & (lo[None, :] < hi[:, None])
    np.fill_diagonal(both, False)
    return bool((both & (written[:, None] | written[None, :])).any())


@pytest.mark.parametrize("seed", range(6))
def test_overlap_check_agrees_with_brute_force(seed):
    """Random views of one buffer (mostly disjoint, a few colliding) against an O(n^2) check;
    a reported pair must really overlap."""
    rng = np.random.default_rng(seed)
    n = 700                                  # 2100 arrays: params, grads, momentum buffers
    pool = rng.standard_normal(3 * n * 4 + 8)
    starts = rng.permutation(3 * n) * 4
    starts[rng.integers(0, 3 * n, size=seed)] += rng.integers(-3, 4, size=seed) * 2
    starts = np.clip(starts, 0, len(pool) - 4)
    views = [pool[s:s + 4] for s in starts]
    params, grads, bufs = views[:n], views[n:2 * n], views[2 * n:]
    spans = [(s, s + 4, 1 <= j // n < 2) for j, s in enumerate(starts)]
    before = pool.copy()
    if _overlaps_brute(spans):
        with pytest.raises(ValueError, match="overlap in memory") as info:
            _optim.step(SGD, (0.1, 0.9, 0.0, 0.0, False, False), params, grads, (bufs,))
        np.testing.assert_array_equal(pool, before)
        names = {"params": params, "grads": grads, "momentum_buffers": bufs}
        ka, ia, kb, ib = re.match(r"sgd: (\w+)\[(\d+)\] and (\w+)\[(\d+)\] overlap",
                                  str(info.value)).groups()
        assert np.shares_memory(names[ka][int(ia)], names[kb][int(ib)])
        assert not ka == kb == "grads"
    else:
        _optim.step(SGD, (0.1, 0.9, 0.0, 0.0, False, False), params, grads, (bufs,))
        assert not np.array_equal(pool, before)


def test_large_group_may_share_grads():
    group = _big_adam_group(500)
    shared = np.full(3, 0.25, np.float32)
    group["grads"] = [shared] * 500
    other = _big_adam_group(500)
    other["grads"] = [shared.copy() for _ in range(500)]
    _call_adam(group)
    _call_adam(group)               # and again, through the cache
    _call_adam(other)
    _call_adam(other)
    for x, y in zip(group["params"], other["params"], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(shared, 0.25)


def test_overlap_cache_hit_then_changed_array_still_fails():
    _optim._overlap_cache_clear()
    group = _big_adam_group(400)
    _call_adam(group)
    assert _optim._overlap_cache_info() == (1, 6 * 400)
    _call_adam(group)                                    # hit: nothing new cached
    assert _optim._overlap_cache_info() == (1, 6 * 400)
    # the same number of spans of the same sizes, but a param and a state now share memory
    base = np.zeros(4, np.float32)
    group["params"][250], group["exp_avgs"][250] = base[:3], base[1:]
    snap = _snapshot(group)
    with pytest.raises(ValueError, match=r"params\[250\] and exp_avgs\[250\] overlap"):
        _call_adam(group)
    _assert_unchanged(group, snap)
    assert _optim._overlap_cache_info() == (1, 6 * 400)   # failures are not cached


def test_overlap_cache_key_covers_sizes():
    # The cache keys on pointers and numels: the same addresses one element longer (each array
    # now reaching into its neighbour) are a new question, not a hit.
    _optim._overlap_cache_clear()
    n, size = 100, 3
    pool = np.zeros(5 * n * size + 1, np.float32)
    group = _big_adam_group(n, size, pool=pool[:-1])
    _call_adam(group)
    _call_adam(group)                                    # cached
    base = pool.ctypes.data
    longer = {k: [pool[(x.ctypes.data - base) // 4:][:size + 1] for x in v]
              for k, v in group.items() if k != "state_steps"}
    longer["state_steps"] = group["state_steps"]
    snap = _snapshot(longer)
    with pytest.raises(ValueError, match="overlap in memory"):
        _call_adam(longer)
    _assert_unchanged(longer, snap)


def test_overlap_cache_memory_is_bounded():
    _optim._overlap_cache_clear()
    groups = [_big_adam_group(300, size=1) for _ in range(12)]
    for group in groups:
        _call_adam(group)
        entries, spans = _optim._overlap_cache_info()
        assert entries <= 8 and spans <= 1 << 18
    assert _optim._overlap_cache_info() == (8, 8 * 6 * 300)
    _optim._overlap_cache_clear()
    assert _optim._overlap_cache_info() == (0, 0)
