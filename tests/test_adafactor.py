"""Adafactor: the C kernel against its NumPy twin (dtypes, sizes 0/1/odd/large, 0-D to 3-D
params, thread counts), and the class and functional against torch 2.13 (20-step trajectories
over torch's own test configs, state dicts both ways mid-run, grads None on some steps, two
groups), torch's messages, and checks that leave everything unchanged when they fail."""

import copy
import inspect

import numpy as np
import pytest

import fastoptim
from fastoptim._C import _adafactor, _optim
from fastoptim.optim import Adafactor
from fastoptim.optim._adafactor import adafactor
from fastoptim.optim._descriptions import WHOLE_STEP
from fastoptim.optim._reference_adafactor import adafactor as twin

try:
    import torch
except ImportError:  # pragma: no cover - CI installs torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the oracle) is not installed")

# torch's common_optimizers.py configs for Adafactor, plus an explicit eps1 and a Tensor lr
CONFIGS = [
    {},
    {"weight_decay": 0.1, "lr": 0.01},
    {"weight_decay": 0.1, "maximize": True},
    {"beta2_decay": -1.0},
    {"d": 1.5},
    {"eps": (1e-6, 1e-2), "lr": 0.05},
]
CONFIG_IDS = ["default", "wd", "maximize", "beta2_decay", "d", "eps"]
SHAPES = [(5, 7), (3, 4, 6), (9,), (), (1, 1), (1, 5), (6, 1), (2, 1, 3, 4)]
FUNCTIONAL = [
    {"d": 1.0, "lr": 0.01, "beta2_decay": -0.8, "weight_decay": 0.0, "eps1": None, "eps2": 1e-3,
     "maximize": False},
    {"d": 1.5, "lr": 0.05, "beta2_decay": -1.0, "weight_decay": 0.1, "eps1": 1e-5,
     "eps2": 1e-2, "maximize": True},
    # a tiny d clips every step; a large lr takes the lerp's other branch only at t = 1
    {"d": 1.0, "lr": 0.5, "beta2_decay": -0.3, "weight_decay": 0.5, "eps1": 1e-30,
     "eps2": 0.0, "maximize": False},
]
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-10},
       np.float32: {"rtol": 1.3e-6, "atol": 1e-5}}   # torch's own float32 tolerance


def _tensor(a):
    return fastoptim.from_numpy(np.array(a, copy=True))


def _state_arrays(shape, dt):
    if len(shape) > 1:
        return (np.zeros(shape[:-1] + (1,), dt), np.zeros(shape[:-2] + (1, shape[-1]), dt),
                None)
    return None, None, np.zeros(shape, dt)


def _lists(shapes, dt, seed):
    rng = np.random.default_rng(seed)
    params = [np.array(rng.standard_normal(s), dtype=dt) for s in shapes]
    rows, cols, vars_ = zip(*(_state_arrays(s, dt) for s in shapes)) if shapes else ((), (), ())
    steps = [np.zeros((), np.float32) for _ in shapes]
    return params, list(rows), list(cols), list(vars_), steps


def _run_both(shapes, dt, kw, n_steps=3, seed=0):
    """The kernel (through the functional) and the twin over the same lists; returns both."""
    rng = np.random.default_rng(seed + 1)
    a = _lists(shapes, dt, seed)
    b = copy.deepcopy(a)
    for _ in range(n_steps):
        grads = [np.array(rng.standard_normal(s) * 3, dtype=dt) for s in shapes]
        kept = [g.copy() for g in grads]
        adafactor(a[0], grads, *a[1:], **kw)
        assert all(np.array_equal(g, k) for g, k in zip(grads, kept))   # grads only read
        twin(b[0], grads, *b[1:], **kw)
    return a, b


def _assert_close(a, b, dt):
    for la, lb in zip(a, b):
        for x, y in zip(la, lb):
            if x is None:
                assert y is None
                continue
            np.testing.assert_allclose(x, y, **TOL[dt])


# ---- the kernel against its twin --------------------------------------------------------------

@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kw", FUNCTIONAL, ids=["default", "maximize", "clipped"])
def test_kernel_matches_twin(kw, dt):
    shapes = [(1,), (), (1, 1), (7, 13), (3, 5, 9), (13, 7), (2, 3, 1, 17), (1001,)]
    a, b = _run_both(shapes, dt, kw)
    _assert_close(a, b, dt)
    assert all(float(s) == 3.0 for s in a[4])


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1100, 600), (600_001,), (3, 400, 500)], ids=str)
def test_kernel_matches_twin_on_large_params(shape, dt):
    """Above the OpenMP threshold: the blocked, threaded sums give the twin's numbers."""
    a, b = _run_both([shape], dt, FUNCTIONAL[1], n_steps=2)
    _assert_close(a, b, dt)


@pytest.mark.parametrize("shape", [(1100, 600), (600_001,), (3, 400, 500), (7, 13)], ids=str)
def test_thread_count_does_not_change_results(shape):
    old = _optim._get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            _optim._set_num_threads(n)
            results.append(_run_both([shape], np.float32, FUNCTIONAL[0], n_steps=2)[0])
    finally:
        _optim._set_num_threads(old)
    for other in results[1:]:
        for la, lb in zip(results[0], other):
            for x, y in zip(la, lb):
                assert (x is None and y is None) or np.array_equal(x, y)


def test_empty_group_and_mixed_dtypes():
    adafactor([], [], [], [], [], [], **FUNCTIONAL[0])
    # one call over a float64 and a float32 param: one kernel call per dtype
    rng = np.random.default_rng(3)
    p = [rng.standard_normal((4, 5)), rng.standard_normal(6).astype(np.float32)]
    q = copy.deepcopy(p)
    st = [_state_arrays((4, 5), np.float64), _state_arrays((6,), np.float32)]
    st2 = copy.deepcopy(st)
    g = [rng.standard_normal((4, 5)), rng.standard_normal(6).astype(np.float32)]
    steps, steps2 = [np.zeros((), np.float32) for _ in p], [np.zeros((), np.float32) for _ in p]
    kw = dict(FUNCTIONAL[0], eps1=1e-7)
    adafactor(p, g, [s[0] for s in st], [s[1] for s in st], [s[2] for s in st], steps, **kw)
    twin(q, g, [s[0] for s in st2], [s[1] for s in st2], [s[2] for s in st2], steps2, **kw)
    for x, y in zip(p, q):
        np.testing.assert_allclose(x, y, **TOL[np.float32])


# ---- against torch ----------------------------------------------------------------------------

def _make(lib, shapes, dt, kw, seed=0, groups=None):
    rng = np.random.default_rng(seed)
    inits = [rng.standard_normal(s).astype(dt) for s in shapes]
    if lib == "torch":
        ps = [torch.tensor(x.copy(), requires_grad=True) for x in inits]
        cls = torch.optim.Adafactor
    else:
        ps = [fastoptim.nn.Parameter(_tensor(x)) for x in inits]
        cls = Adafactor
    if groups is None:
        kwt = dict(kw)
        if lib == "torch" and isinstance(kwt.get("lr"), np.ndarray):
            kwt["lr"] = torch.tensor(kwt["lr"])
        opt = cls(ps, **kwt)
    else:
        opt = cls([{"params": ps[:2], **groups[0]}, {"params": ps[2:], **groups[1]}], **kw)
    return ps, opt


def _grads(lib, ps, dt, rng, skip=()):
    for i, p in enumerate(ps):
        g = rng.standard_normal(tuple(p.shape)).astype(dt)
        if i in skip:
            p.grad = None
        else:
            p.grad = torch.tensor(g) if lib == "torch" else _tensor(g)


def _np(x):
    return x.detach().numpy() if torch is not None and isinstance(x, torch.Tensor) else x._np


def _trajectory(lib, shapes, dt, kw, n_steps=20, groups=None, none_every=3):
    ps, opt = _make(lib, shapes, dt, kw, groups=groups)
    rng = np.random.default_rng(7)
    for t in range(n_steps):
        # grads None on some steps: param t % len(ps) every none_every-th step
        skip = (t % len(ps),) if t % none_every == 1 else ()
        _grads(lib, ps, dt, rng, skip)
        opt.step()
    return ps, opt


def _compare(tp, topt, fp, fopt, dt):
    for t, f in zip(tp, fp):
        np.testing.assert_allclose(_np(f), _np(t), **TOL[dt])
        ts, fs = topt.state[t], fopt.state[f]
        assert list(fs) == list(ts)
        for k in ts:
            np.testing.assert_allclose(_np(fs[k]), _np(ts[k]), **TOL[dt])
            if k == "step":
                assert fs[k].dtype == fastoptim.float32 and tuple(fs[k].shape) == ()


@needs_torch
@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kw", CONFIGS, ids=CONFIG_IDS)
def test_trajectory_matches_torch(kw, dt):
    tp, topt = _trajectory("torch", SHAPES, dt, kw)
    fp, fopt = _trajectory("fastoptim", SHAPES, dt, kw)
    _compare(tp, topt, fp, fopt, dt)


@needs_torch
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_two_groups_match_torch(dt):
    groups = [{"lr": 0.05, "weight_decay": 0.2}, {"d": 2.0, "eps": (1e-4, 1e-2),
                                                   "maximize": True}]
    tp, topt = _trajectory("torch", SHAPES, dt, {}, groups=groups)
    fp, fopt = _trajectory("fastoptim", SHAPES, dt, {}, groups=groups)
    _compare(tp, topt, fp, fopt, dt)


@needs_torch
def test_tensor_lr_and_foreach_match_torch():
    tp, topt = _trajectory("torch", SHAPES, np.float64, {"foreach": True})
    fp, fopt = _trajectory("fastoptim", SHAPES, np.float64, {"foreach": True})
    _compare(tp, topt, fp, fopt, np.float64)
    ps, opt = _make("fastoptim", [(3, 4)], np.float64, {"lr": fastoptim.tensor([0.02])})
    tps, topt = _make("torch", [(3, 4)], np.float64, {"lr": torch.tensor([0.02])})
    for _ in range(3):
        rng = np.random.default_rng(1)
        _grads("fastoptim", ps, np.float64, rng)
        rng = np.random.default_rng(1)
        _grads("torch", tps, np.float64, rng)
        opt.step()
        topt.step()
    # torch's step size becomes a float32 0-dim tensor with a Tensor lr (min(lr, ...) keeps
    # it); ours stays in double: equal to float32 rounding of the step
    np.testing.assert_allclose(_np(ps[0]), _np(tps[0]), rtol=1e-6)


def _to_torch_state(sd):
    sd = copy.deepcopy(sd)
    for st in sd["state"].values():
        for k, v in st.items():
            st[k] = torch.tensor(np.array(v._np))
    return sd


@needs_torch
@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("direction", ["torch_to_fastoptim", "fastoptim_to_torch"])
def test_state_dict_mid_run_both_ways(direction, dt):
    kw = {"weight_decay": 0.1, "lr": 0.02}
    tp, topt = _trajectory("torch", SHAPES, dt, kw, n_steps=10)
    fp, fopt = _trajectory("fastoptim", SHAPES, dt, kw, n_steps=10)
    if direction == "torch_to_fastoptim":
        fp2, fopt2 = _make("fastoptim", SHAPES, dt, kw)
        for f, t in zip(fp2, tp):
            f._np[...] = _np(t)
        fopt2.load_state_dict(topt.state_dict())
        tp2, topt2 = tp, topt
    else:
        tp2, topt2 = _make("torch", SHAPES, dt, kw)
        with torch.no_grad():
            for t, f in zip(tp2, fp):
                t.copy_(torch.tensor(_np(f)))
        topt2.load_state_dict(_to_torch_state(fopt.state_dict()))
        fp2, fopt2 = fp, fopt
    assert fopt2.state_dict()["param_groups"] == [
        {k: v for k, v in g.items()} for g in fopt2.state_dict()["param_groups"]]
    rng_t, rng_f = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(10):
        _grads("torch", tp2, dt, rng_t)
        _grads("fastoptim", fp2, dt, rng_f)
        topt2.step()
        fopt2.step()
    _compare(tp2, topt2, fp2, fopt2, dt)


@needs_torch
def test_state_dict_layout_is_torchs():
    tp, topt = _trajectory("torch", SHAPES, np.float32, {}, n_steps=2)
    fp, fopt = _trajectory("fastoptim", SHAPES, np.float32, {}, n_steps=2)
    ts, fs = topt.state_dict(), fopt.state_dict()
    assert fs["param_groups"] == ts["param_groups"]
    assert list(fs["state"]) == list(ts["state"])
    for k in ts["state"]:
        assert list(fs["state"][k]) == list(ts["state"][k])
        for key in ts["state"][k]:
            assert tuple(fs["state"][k][key].shape) == tuple(ts["state"][k][key].shape)
    described = {w.cls: w for w in WHOLE_STEP}["Adafactor"].state
    assert {k for st in fs["state"].values() for k in st} == set(described)


# ---- torch's surface --------------------------------------------------------------------------

@needs_torch
def test_signatures_and_defaults_are_torchs():
    ours = inspect.signature(Adafactor.__init__).parameters
    theirs = inspect.signature(torch.optim.Adafactor.__init__).parameters
    assert list(ours) == list(theirs)
    for n, p in theirs.items():
        assert ours[n].kind == p.kind and ours[n].default == p.default, n
    ours = inspect.signature(adafactor).parameters
    theirs = inspect.signature(torch.optim._adafactor.adafactor).parameters
    assert [n for n in ours if not n.startswith("_")] == list(theirs)
    for n, p in theirs.items():
        assert ours[n].kind == p.kind and ours[n].default == p.default, n
    p = fastoptim.nn.Parameter(fastoptim.ones(2))
    tp = torch.nn.Parameter(torch.ones(2))
    g = Adafactor([p]).param_groups[0]
    tg = torch.optim.Adafactor([tp]).param_groups[0]
    assert {k: v for k, v in g.items() if k != "params"} == \
        {k: v for k, v in tg.items() if k != "params"}


BAD = [
    ({"lr": -1.0}, "Learning rate should be >= 0 but is: -1.0"),
    ({"beta2_decay": 0.5}, "beta2_decay should be <= 0 but is: 0.5"),
    ({"eps": (-1e-30, 1e-3)}, "epsilon1 should be >= 0 but is: -1e-30"),
    ({"eps": (None, -1.0)}, "epsilon2 should be >= 0 but is: -1.0"),
    ({"d": 0.5}, "Clipping threshold d should be >= 1 but is: 0.5"),
    ({"weight_decay": -0.1}, "weight_decay should be >= 0 but is: -0.1"),
]


@pytest.mark.parametrize(("kw", "msg"), BAD, ids=[m.split(" ")[0] for _, m in BAD])
def test_constructor_messages_are_torchs(kw, msg):
    with pytest.raises(ValueError) as ours:
        Adafactor([fastoptim.nn.Parameter(fastoptim.ones(2))], **kw)
    assert str(ours.value) == msg
    if torch is not None:
        with pytest.raises(ValueError) as theirs:
            torch.optim.Adafactor([torch.nn.Parameter(torch.ones(2))], **kw)
        assert str(theirs.value) == msg
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        Adafactor([fastoptim.nn.Parameter(fastoptim.ones(2))], lr=fastoptim.ones(2))


def test_empty_param_raises_torchs_error_and_changes_nothing():
    ps = [fastoptim.nn.Parameter(fastoptim.ones(3)), fastoptim.nn.Parameter(fastoptim.ones(0, 4))]
    for p in ps:
        p.grad = fastoptim.ones(*p.shape)
    opt = Adafactor(ps)
    with pytest.raises(ZeroDivisionError, match="float division by zero"):
        opt.step()
    assert not opt.state and np.array_equal(ps[0]._np, np.ones(3))


def test_functional_errors_name_the_argument_and_change_nothing():
    kw = FUNCTIONAL[0]
    p, r, c, v, s = _lists([(4, 5), (3,)], np.float64, 0)
    before = copy.deepcopy((p, r, c, v, s))
    g = [np.ones((4, 5)), np.ones(3)]
    cases = [
        ((p, g, [np.zeros((4, 2)), None], c, v, s), ValueError, r"row_vars\[0\] has shape"),
        ((p, g, r, c, v, [s[0], np.zeros(1, np.float32)]), ValueError, r"state_steps\[1\]"),
        ((p, [g[0], np.ones(3, np.float32)], r, c, v, s), TypeError, r"grads\[1\] has dtype"),
        ((p, g, r, c, [np.zeros((4, 5)), v[1]], s), ValueError, r"variances\[0\] must be None"),
        ((p, g, [r[0], np.zeros(3)], c, v, s), ValueError, r"row_vars\[1\] and col_vars\[1\]"),
        ((p, [g[0]], r, c, v, s), ValueError, "grads has 1 entries but params has 2"),
        ((p, [p[0], g[1]], r, c, v, s), ValueError, r"params\[0\] and grads\[0\] overlap"),
        ((p, g, r, c, [None, p[0].reshape(-1)[:3]], s), ValueError, "overlap in memory"),
        ((p, [np.ones((4, 10))[:, ::2], g[1]], r, c, v, s), ValueError, "C-contiguous"),
    ]
    for args, err, msg in cases:
        with pytest.raises(err, match=msg):
            adafactor(*args, **kw)
        for x, y in zip((p, r, c, v, s), before):
            for a, b in zip(x, y):
                assert (a is None and b is None) or np.array_equal(a, b)
    ro = p[1].copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\] is read-only"):
        adafactor([p[0], ro], g, r, c, v, s, **kw)
    with pytest.raises(RuntimeError, match="singleton tensors"):
        adafactor(p, g, r, c, v, [0.0, 0.0], **kw)
    with pytest.raises(AssertionError, match="Grad scaling"):
        adafactor(p, g, r, c, v, s, grad_scale=np.ones(()), **kw)


def test_loading_a_bad_state_raises_and_changes_nothing():
    p = fastoptim.nn.Parameter(fastoptim.ones(3, 4))
    p.grad = fastoptim.ones(3, 4)
    opt = Adafactor([p])
    opt.step()
    sd = opt.state_dict()
    before = copy.deepcopy(sd)
    bad_shape = copy.deepcopy(sd)
    bad_shape["state"][0]["row_var"] = fastoptim.zeros(3, 4)
    bad_keys = copy.deepcopy(sd)
    bad_keys["state"][0]["variance"] = bad_keys["state"][0].pop("row_var")
    for bad, msg in ((bad_shape, "row_var' of shape"), (bad_keys, "expects"),
                     ({"state": {0: object()}, "param_groups": sd["param_groups"]}, "type")):
        with pytest.raises(ValueError, match=msg):
            opt.load_state_dict(bad)
        for k, v in before["state"][0].items():
            assert np.array_equal(opt.state[p][k]._np, v._np)
    opt.load_state_dict(sd)
    opt.step()
    assert float(opt.state[p]["step"]) == 2.0


def test_a_steady_step_reuses_its_work_buffer():
    p = fastoptim.nn.Parameter(fastoptim.ones(300, 200))
    p.grad = fastoptim.ones(300, 200)
    opt = Adafactor([p])
    opt.step()
    work = opt._cache.work
    opt.step()
    assert opt._cache.work is work
    assert _adafactor.step([], [], [], [], [], [], lr=0.1, beta2_decay=-0.8, eps1=1e-3,
                           eps2=1e-3, d=1.0, weight_decay=0.0, maximize=False,
                           work=work) is work
