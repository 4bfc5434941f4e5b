"""LBFGS against torch 2.13 (same iterates, state dicts both ways, messages) and its compiled
vector work (``fastoptim._C._lbfgs``: axpy, gather, pair, direction, add_grad) against the
NumPy twins (``_reference_lbfgs``) over dtypes, sizes and history lengths."""

import copy

import numpy as np
import pytest

import fastoptim
from fastoptim._C import _lbfgs
from fastoptim._C._lbfgs import axpy
from fastoptim.optim import LBFGS
from fastoptim.optim import _reference_lbfgs as ref
from fastoptim.optim._descriptions import WHOLE_STEP

try:
    import torch
except ImportError:  # pragma: no cover - CI installs torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the oracle) is not installed")
# float64: 4 steps (up to 80 iterations) to 1e-10. float32: one step at 1e-4 -- the scalars
# follow torch's float32 promotion, but float32 dots and reductions sum in BLAS's/numpy's order,
# not MKL's, and L-BFGS amplifies those ulps over the iterations.
TOL = {np.float64: 1e-10, np.float32: 1e-4}
STEPS = {np.float64: 4, np.float32: 1}


def fo_dtype(dt):
    return fastoptim.float32 if np.dtype(dt) == np.float32 else fastoptim.float64


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosen_problem(lib, dtype):
    x0 = np.array([-1.5, 2.0], dtype)
    if lib == "torch":
        x = torch.tensor(x0, requires_grad=True)
    else:
        x = fastoptim.tensor(x0, dtype=fo_dtype(dtype), requires_grad=True)
    return [x], lambda: rosenbrock(x)


def lsq_problem(lib, dtype):
    """Least squares ``mean((X W + b - Y)^2)``, two params (matrix and vector)."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((20, 6)).astype(dtype), rng.standard_normal((20, 3)).astype(dtype)
    W0, b0 = rng.standard_normal((6, 3)).astype(dtype), np.zeros(3, dtype)
    if lib == "torch":
        X, Y = torch.tensor(X), torch.tensor(Y)
        W, b = torch.tensor(W0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    else:
        fd = fo_dtype(dtype)
        X, Y = fastoptim.tensor(X, dtype=fd), fastoptim.tensor(Y, dtype=fd)
        W = fastoptim.tensor(W0, dtype=fd, requires_grad=True)
        b = fastoptim.tensor(b0, dtype=fd, requires_grad=True)
    return [W, b], lambda: ((X @ W + b - Y) ** 2).mean()


PROBLEMS = {"rosenbrock": rosen_problem, "lsq": lsq_problem}
CONFIGS = [
    {},
    {"line_search_fn": "strong_wolfe"},
    {"history_size": 3, "max_iter": 7},
    {"history_size": 3, "max_iter": 7, "line_search_fn": "strong_wolfe", "lr": 0.5},
]


def make(lib, problem, dtype, kwargs):
    params, loss_fn = PROBLEMS[problem](lib, dtype)
    opt = (torch.optim.LBFGS if lib == "torch" else LBFGS)(params, **kwargs)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return opt, params, closure


def values(params):
    return [np.array(p.detach().numpy(), copy=True) for p in params]


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", CONFIGS,
                         ids=lambda k: "-".join(map(str, k.values())) or "default")
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_iterates_match_torch(problem, kwargs, dtype):
    fo, fp, fc = make("fo", problem, dtype, kwargs)
    th, tp, tc = make("torch", problem, dtype, kwargs)
    for _ in range(STEPS[dtype]):
        lf, lt = fo.step(fc), th.step(tc)
        np.testing.assert_allclose(float(lf), float(lt.detach()), rtol=TOL[dtype], atol=TOL[dtype])
        for a, b in zip(values(fp), values(tp)):
            np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype])
    sf, st = fo.state[fp[0]], th.state[tp[0]]
    assert set(sf) == set(st)
    if dtype == np.float64:  # float32 may stop an iteration earlier or later (tolerance_change)
        for k in ("n_iter", "func_evals"):
            assert sf[k] == st[k]
        assert len(sf["old_dirs"]) == len(st["old_dirs"])


def to_torch(obj):
    """Our state dict with every fastoptim Tensor through torch.as_tensor (recursively)."""
    if isinstance(obj, fastoptim.Tensor):
        return torch.as_tensor(np.array(obj.numpy(), copy=True))
    if isinstance(obj, dict):
        return {k: to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_torch(v) for v in obj]
    return obj


@needs_torch
@pytest.mark.parametrize("kwargs", [CONFIGS[2], CONFIGS[3]], ids=["fixed", "wolfe"])
@pytest.mark.parametrize("direction", ["torch->fo", "fo->torch"])
def test_state_dict_resumes_in_the_other_library(direction, kwargs):
    fo, fp, fc = make("fo", "lsq", np.float64, kwargs)
    th, tp, tc = make("torch", "lsq", np.float64, kwargs)
    fo.step(fc)
    th.step(tc)
    if direction == "torch->fo":
        sd = copy.deepcopy(th.state_dict())
        fo2, fp2, fc2 = make("fo", "lsq", np.float64, kwargs)
        for p, v in zip(fp2, values(tp)):
            p._np[...] = v
        fo2.load_state_dict(sd)
        resumed, rp, rc, oracle, op, oc = fo2, fp2, fc2, th, tp, tc
    else:
        sd = to_torch(copy.deepcopy(fo.state_dict()))
        th2, tp2, tc2 = make("torch", "lsq", np.float64, kwargs)
        with torch.no_grad():
            for p, v in zip(tp2, values(fp)):
                p.copy_(torch.as_tensor(v))
        th2.load_state_dict(sd)
        resumed, rp, rc, oracle, op, oc = th2, tp2, tc2, fo, fp, fc
    for _ in range(3):
        resumed.step(rc)
        oracle.step(oc)
        for a, b in zip(values(rp), values(op)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@needs_torch
def test_state_dict_layout_matches_torch():
    fo, fp, fc = make("fo", "lsq", np.float64, CONFIGS[2])
    th, tp, tc = make("torch", "lsq", np.float64, CONFIGS[2])
    fo.step(fc)
    th.step(tc)
    sf, st = fo.state_dict(), th.state_dict()
    assert sf["param_groups"] == st["param_groups"]
    assert list(sf["state"]) == list(st["state"]) == [0]
    a, b = sf["state"][0], st["state"][0]
    described = {w.cls: w for w in WHOLE_STEP}["LBFGS"].state
    assert list(a) == list(b) == list(described)
    for k in ("d", "prev_flat_grad", "H_diag"):
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-10, atol=1e-12)
    for k in ("old_dirs", "old_stps", "ro"):
        assert len(a[k]) == len(b[k])
        for x, y in zip(a[k], b[k]):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-10, atol=1e-12)
    assert len(a["al"]) == len(b["al"])
    assert a["prev_loss"] == pytest.approx(b["prev_loss"], rel=1e-12)
    assert (a["n_iter"], a["func_evals"]) == (b["n_iter"], b["func_evals"])


def test_defaults_and_messages():
    p = fastoptim.tensor(np.zeros(3), requires_grad=True)
    opt = LBFGS([p])
    assert opt.defaults == {"lr": 1, "max_iter": 20, "max_eval": 25, "tolerance_grad": 1e-7,
                            "tolerance_change": 1e-9, "history_size": 100,
                            "line_search_fn": None}
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1$"):
        LBFGS([p], lr=-1)
    with pytest.raises(ValueError, match=r"^Tensor lr must be 1-element$"):
        LBFGS([p], lr=fastoptim.tensor(np.ones(2)))
    q = fastoptim.tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"^LBFGS doesn't support per-parameter options "
                                         r"\(parameter groups\)$"):
        LBFGS([{"params": [p]}, {"params": [q]}])
    opt = LBFGS([p], line_search_fn="backtracking")

    def closure():
        opt.zero_grad()
        loss = ((p - 1.0) ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match=r"^only 'strong_wolfe' is supported$"):
        opt.step(closure)
    with pytest.raises(TypeError):
        opt.step()


@needs_torch
def test_messages_are_torchs():
    tp = torch.zeros(3, requires_grad=True)
    fp = fastoptim.tensor(np.zeros(3), requires_grad=True)
    for kwargs in ({"lr": -1.0}, {"lr": -0.5}):
        with pytest.raises(ValueError) as et:
            torch.optim.LBFGS([tp], **kwargs)
        with pytest.raises(ValueError) as ef:
            LBFGS([fp], **kwargs)
        assert str(et.value) == str(ef.value)


def test_optimum_stops_at_once():
    """max|g| <= tolerance_grad: one closure call, no state but the counters (torch's rule)."""
    p = fastoptim.tensor(np.ones(4), requires_grad=True)
    opt = LBFGS([p])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = ((p - 1.0) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert len(calls) == 1
    assert opt.state[p] == {"func_evals": 1, "n_iter": 0}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 1001])
def test_axpy_matches_twin(n, dtype):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    x0 = x.copy()
    want = ref.axpy(-0.37, x, y)
    got = axpy(-0.37, x, y.copy())
    # fused vs unfused: within an ulp or two of the terms' magnitude
    bound = 2 * np.finfo(dtype).eps * (np.abs(y) + np.abs(0.37 * x))
    assert np.all(np.abs(got.astype(np.float64) - want) <= bound)
    np.testing.assert_array_equal(x, x0)  # input not mutated


def test_axpy_rejects_bad_input():
    a = np.zeros(4)
    with pytest.raises(TypeError, match="float32 or float64"):
        axpy(1.0, a.astype(np.float32), a)
    with pytest.raises(ValueError, match="4 elements but y has 3"):
        axpy(1.0, a, np.zeros(3))
    with pytest.raises(ValueError, match="share memory"):
        axpy(1.0, a, a)
    with pytest.raises(ValueError, match="C-contiguous"):
        axpy(1.0, np.zeros(8)[::2], a)
    with pytest.raises(TypeError, match="numpy arrays"):
        axpy(1.0, [0.0], a)


SIZES = [0, 1, 7, 1001, 65539]   # empty, one, odd (a tail shorter than the lanes), large
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def _history(rng, n, hist, dtype):
    dirs = [rng.standard_normal(n).astype(dtype) for _ in range(hist)]
    stps = [(y + 0.1 * rng.standard_normal(n)).astype(dtype) for y in dirs]
    ro = [dtype(1.0) / (y.dot(s) if n else dtype(1.0)) for y, s in zip(dirs, stps)]
    return dirs, stps, ro


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_gather_matches_twin(n, dtype):
    rng = np.random.default_rng(n)
    numels = [n // 3, 0, 3, n - n // 3]
    grads = [rng.standard_normal(k).astype(dtype).reshape(-1, 1) if k else
             np.zeros((0, 2), dtype) for k in numels]
    grads[2] = None   # a param without a grad: zeros
    total = sum(numels)
    got, want = np.full(total, np.nan, dtype), np.full(total, np.nan, dtype)
    m_got = _lbfgs.gather(grads, numels, got)
    m_want = ref.gather(grads, numels, want)
    np.testing.assert_array_equal(got, want)
    assert m_got == m_want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_pair_matches_twin(n, dtype):
    rng = np.random.default_rng(n + 1)
    g, prev, d = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    before = [a.copy() for a in (g, prev, d)]
    y, s, y2, s2 = (np.empty(n, dtype) for _ in range(4))
    ys, yy = _lbfgs.pair(g, prev, d, 0.3, y, s)
    ys2, yy2 = ref.pair(g, prev, d, 0.3, y2, s2)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(s, s2)
    assert ys == pytest.approx(ys2, rel=RTOL[dtype], abs=RTOL[dtype])
    assert yy == pytest.approx(yy2, rel=RTOL[dtype], abs=RTOL[dtype])
    assert dtype(ys) == ys and dtype(yy) == yy   # rounded to the dtype
    for a, b in zip((g, prev, d), before):
        np.testing.assert_array_equal(a, b)   # inputs not mutated


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hist", [0, 1, 3, 10])
@pytest.mark.parametrize("n", SIZES)
def test_direction_matches_twin(n, hist, dtype):
    rng = np.random.default_rng(n + hist)
    g = rng.standard_normal(n).astype(dtype)
    dirs, stps, ro = _history(rng, n, hist, dtype)
    h = dtype(0.7)
    al, al2 = np.zeros(hist + 2, dtype), np.zeros(hist + 2, dtype)
    d, d2 = np.empty(n, dtype), np.empty(n, dtype)
    gtd = _lbfgs.direction(g, dirs, stps, ro, float(h), d, al)
    gtd2 = ref.direction(g, dirs, stps, ro, float(h), d2, al2)
    rtol = RTOL[dtype] * (1 + hist)
    scale = max(1.0, float(np.abs(d2).max())) if n else 1.0
    np.testing.assert_allclose(d, d2, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(al, al2, rtol=rtol, atol=rtol * scale)
    assert gtd == pytest.approx(gtd2, rel=rtol, abs=rtol * scale * max(n, 1))
    if hist == 0:   # the first iteration's d = -g (times H), exactly
        np.testing.assert_array_equal(d, -g * h)


def test_direction_is_torchs_recursion():
    """The twin against torch's own loop (float64, torch's ops on torch tensors)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    n, hist = 301, 4
    g = rng.standard_normal(n)
    dirs, stps, ro = _history(rng, n, hist, np.float64)
    d, al = np.empty(n), np.zeros(hist)
    gtd = _lbfgs.direction(g, dirs, stps, ro, 0.7, d, al)
    tg = torch.tensor(g)
    td = [torch.tensor(v) for v in dirs]
    ts = [torch.tensor(v) for v in stps]
    tro = [torch.tensor(r) for r in ro]
    tal = [None] * hist
    q = tg.neg()
    for i in range(hist - 1, -1, -1):
        tal[i] = ts[i].dot(q) * tro[i]
        q.add_(td[i], alpha=-tal[i])
    r = torch.mul(q, torch.tensor(0.7, dtype=torch.float64))
    for i in range(hist):
        be_i = td[i].dot(r) * tro[i]
        r.add_(ts[i], alpha=tal[i] - be_i)
    np.testing.assert_allclose(d, r.numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(al, [float(a) for a in tal], rtol=1e-13, atol=1e-13)
    assert gtd == pytest.approx(float(tg.dot(r)), rel=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_add_grad_matches_twin(n, dtype):
    rng = np.random.default_rng(n + 2)
    shapes = [(n // 2,), (0,), (n - n // 2, 1)]
    params = [rng.standard_normal(sh).astype(dtype) for sh in shapes]
    params2 = [p.copy() for p in params]
    d = rng.standard_normal(n).astype(dtype)
    m = _lbfgs.add_grad(params, d, -0.37)
    m2 = ref.add_grad(params2, d, -0.37)
    assert m == m2
    for a, b in zip(params, params2):
        bound = 2 * np.finfo(dtype).eps * (np.abs(b) + 1)
        assert np.all(np.abs(a.astype(np.float64) - b) <= bound)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 37])
def test_kernels_max_is_torchs_with_inf_and_nan(n, dtype):
    """max|v| as torch's abs().max(): an inf is the max, a NaN anywhere wins (the fast pass
    drops NaN and rescans when it saw a non-finite value)."""
    for bad, want in ((np.inf, np.inf), (-np.inf, np.inf), (np.nan, np.nan)):
        for pos in (0, n // 2, n - 1):
            g = np.arange(n, dtype=dtype) - 5
            g[pos] = bad
            if bad is np.nan:
                g[(pos + 1) % n] = np.inf   # NaN beats inf, in any order
            got = _lbfgs.gather([g], [n], np.empty(n, dtype))
            np.testing.assert_equal(got, want)
            np.testing.assert_equal(got, ref.gather([g], [n], np.empty(n, dtype)))
            np.testing.assert_equal(_lbfgs.add_grad([np.zeros(n, dtype)], g, 1.0), want)
    big = np.full(n, np.finfo(dtype).max, dtype)   # d * t overflows: inf, not NaN
    assert _lbfgs.add_grad([np.zeros(n, dtype)], big, 4.0) == np.inf
    assert _lbfgs.gather([None], [2], np.empty(2)) == 0.0


def test_kernels_reject_bad_input():
    n = 8
    g, d, y, s = (np.zeros(n) for _ in range(4))
    with pytest.raises(TypeError, match="direction: d has dtype float32, expected float64"):
        _lbfgs.direction(g, [], [], [], 1.0, d.astype(np.float32), np.zeros(1))
    with pytest.raises(ValueError, match=r"direction: dirs\[0\] has 7 elements, expected 8"):
        _lbfgs.direction(g, [np.zeros(7)], [np.zeros(8)], [1.0], 1.0, d, np.zeros(1))
    with pytest.raises(ValueError, match=r"direction: d and direction: stps\[0\] overlap"):
        _lbfgs.direction(g, [y], [d], [1.0], 1.0, d, np.zeros(1))
    with pytest.raises(ValueError, match="one entry per pair"):
        _lbfgs.direction(g, [y], [s], [], 1.0, d, np.zeros(1))
    with pytest.raises(ValueError, match="at least 1 elements"):
        _lbfgs.direction(g, [y], [s], [1.0], 1.0, d, np.zeros(0))
    with pytest.raises(ValueError, match="pair: y and pair: g overlap"):
        _lbfgs.pair(g, d, d, 1.0, g, s)
    with pytest.raises(ValueError, match="pair: prev must be C-contiguous"):
        _lbfgs.pair(g, np.zeros(2 * n)[::2], d, 1.0, y, s)
    ro = np.zeros(n)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="pair: s is read-only"):
        _lbfgs.pair(g, d, d, 1.0, y, ro)
    with pytest.raises(ValueError, match="gather: flat has 8 elements, expected 7"):
        _lbfgs.gather([np.zeros(7)], [7], g)
    with pytest.raises(ValueError, match=r"gather: grads\[0\] has 6 elements, expected 7"):
        _lbfgs.gather([np.zeros(6)], [7], np.zeros(7))
    with pytest.raises(TypeError, match="gather: flat must be float32 or float64, got int64"):
        _lbfgs.gather([], [], np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"add_grad: d has 8 elements, expected 4"):
        _lbfgs.add_grad([np.zeros(4)], d, 1.0)
    with pytest.raises(ValueError, match=r"add_grad: params\[0\] and add_grad: d overlap"):
        _lbfgs.add_grad([d], d, 1.0)
    with pytest.raises(TypeError, match=r"add_grad: params\[0\] must be a numpy array"):
        _lbfgs.add_grad([[0.0]], np.zeros(1), 1.0)
    # the names of list entries past the first (formatted only when a check fails)
    with pytest.raises(ValueError, match=r"^direction: d and direction: dirs\[1\] overlap"):
        _lbfgs.direction(g, [y, d], [s, np.zeros(n)], [1.0, 1.0], 1.0, d, np.zeros(2))
    with pytest.raises(ValueError, match=r"^gather_pair: y and gather_pair: grads\[1\] overlap"):
        _lbfgs.gather_pair([np.zeros(4), y[:4]], [4, 4], g, d, s, 1.0, y, np.zeros(n), None)
    with pytest.raises(TypeError, match=r"^add_grad: params\[1\] has dtype float32, "
                                         r"expected float64"):
        _lbfgs.add_grad([np.zeros(4), np.zeros(4, np.float32)], d, 1.0)


@pytest.mark.parametrize("kwargs", [CONFIGS[2], CONFIGS[3]], ids=["fixed", "wolfe"])
def test_state_tensors_are_never_written_after_a_step(kwargs):
    """torch's history and d are fresh tensors each step: one kept from an
    earlier state (no deepcopy) keeps its values while the optimizer recycles its vectors."""
    fo, fp, fc = make("fo", "lsq", np.float64, kwargs)
    kept = []
    for _ in range(4):
        fo.step(fc)
        st = fo.state[fp[0]]
        tensors = [st["d"], st["prev_flat_grad"], *st["old_dirs"], *st["old_stps"]]
        kept.append([(t, t.numpy().copy()) for t in tensors])
    for snapshot in kept:
        for t, v in snapshot:
            np.testing.assert_array_equal(t.numpy(), v)


def test_mixed_dtypes_and_empty_params_raise():
    a = fastoptim.tensor(np.zeros(2, np.float32), requires_grad=True)
    b = fastoptim.tensor(np.zeros(2, np.float64), requires_grad=True)
    opt = LBFGS([a, b])

    def closure():
        opt.zero_grad()
        loss = (a.sum() + b.sum()) ** 2
        loss.backward()
        return loss

    with pytest.raises(TypeError, match="same dtype.*float32 and float64"):
        opt.step(closure)
    e = fastoptim.tensor(np.zeros(0), requires_grad=True)
    opt = LBFGS([e])
    with pytest.raises(RuntimeError, match=r"^max\(\): Expected reduction dim"):
        opt.step(lambda: e.sum())


def _segments(rng, n, dtype):
    """Grads whose segments cross gather_pair's 1024-element blocks at odd places, one None."""
    numels = [n // 3, 0, 3 if n >= 3 else 0, n - n // 3 - (3 if n >= 3 else 0)]
    grads = [rng.standard_normal(k).astype(dtype).reshape(-1, 1) if k else
             np.zeros((0, 2), dtype) for k in numels]
    grads[2] = None
    return grads, numels


@pytest.mark.parametrize("with_q", [True, False], ids=["q", "no-q"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES + [2048, 3 * 1024 + 17])
def test_gather_pair_is_gather_then_pair_bit_for_bit(n, dtype, with_q):
    """The fused pass gives exactly what gather, pair and the recursion's first pass give one
    after the other (same lanes, same order), and the twin's values within the dots' rounding."""
    rng = np.random.default_rng(n + 3)
    grads, numels = _segments(rng, n, dtype)
    prev, d = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    before = [a.copy() for a in (prev, d)] + [g.copy() for g in grads if g is not None]
    flat, y, s, q = (np.full(n, np.nan, dtype) for _ in range(4))
    gmax, ys, yy, sq = _lbfgs.gather_pair(grads, numels, flat, prev, d, -0.3, y, s,
                                          q if with_q else None)
    flat2, y2, s2 = (np.empty(n, dtype) for _ in range(3))
    assert gmax == _lbfgs.gather(grads, numels, flat2)
    assert (ys, yy) == _lbfgs.pair(flat2, prev, d, -0.3, y2, s2)
    for a, b in ((flat, flat2), (y, y2), (s, s2)):
        np.testing.assert_array_equal(a, b)
    if with_q:
        np.testing.assert_array_equal(q, -flat2)
        # the recursion over this one pair, from q and s.q, is the recursion from scratch
        al, al2 = np.zeros(1, dtype), np.zeros(1, dtype)
        d_fused, d_plain = q, np.empty(n, dtype)
        ro = [1.0 / ys if ys else 1.0]
        gtd = _lbfgs.direction(flat2, [y2], [s2], ro, 0.7, d_fused, al, sq)
        gtd2 = _lbfgs.direction(flat2, [y2], [s2], ro, 0.7, d_plain, al2)
        assert gtd == gtd2
        np.testing.assert_array_equal(d_fused, d_plain)
        np.testing.assert_array_equal(al, al2)
    else:
        np.testing.assert_array_equal(q, np.full(n, np.nan, dtype))   # q untouched
        assert sq == 0.0
    want = [np.empty(n, dtype) for _ in range(4)]
    w = ref.gather_pair(grads, numels, want[0], prev, d, -0.3, want[1], want[2],
                        want[3] if with_q else None)
    for a, b in zip((flat, y, s), want):
        np.testing.assert_array_equal(a, b)
    assert gmax == w[0]
    for got, exp in zip((ys, yy, sq), w[1:]):
        assert got == pytest.approx(exp, rel=RTOL[dtype], abs=RTOL[dtype] * max(n, 1))
    after = [a for a in (prev, d)] + [g for g in grads if g is not None]
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)   # inputs not mutated


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hist", [1, 3, 10])
@pytest.mark.parametrize("n", [1, 7, 1001, 5000])
def test_direction_from_q_is_the_same_recursion(n, hist, dtype):
    """direction(..., sq) skips the first pass (d already -g, s.q known): the same d, al, gtd."""
    rng = np.random.default_rng(n * hist)
    g = rng.standard_normal(n).astype(dtype)
    dirs, stps, ro = _history(rng, n, hist, dtype)
    # q = -g and sq = s_{m-1}.q from gather_pair (s = stps[-1] * 1: the same vector)
    q, s = np.empty(n, dtype), np.empty(n, dtype)
    _, _, _, sq = _lbfgs.gather_pair([g], [n], np.empty(n, dtype), g, stps[-1], 1.0,
                                     np.empty(n, dtype), s, q)
    np.testing.assert_array_equal(s, stps[-1])
    d, d2 = q, np.empty(n, dtype)
    al, al2 = np.zeros(hist, dtype), np.zeros(hist, dtype)
    gtd = _lbfgs.direction(g, dirs, stps, ro, 0.7, d, al, sq)
    gtd2 = _lbfgs.direction(g, dirs, stps, ro, 0.7, d2, al2)
    np.testing.assert_array_equal(d, d2)
    np.testing.assert_array_equal(al, al2)
    assert gtd == gtd2


def test_gather_pair_rejects_bad_input():
    n = 8
    f, p, d, y, s, q = (np.zeros(n) for _ in range(6))
    g = [np.ones(n)]
    with pytest.raises(ValueError, match="gather_pair: y and gather_pair: d overlap"):
        _lbfgs.gather_pair(g, [n], f, p, d, 1.0, d, s, q)
    with pytest.raises(ValueError, match="gather_pair: s and gather_pair: q overlap"):
        _lbfgs.gather_pair(g, [n], f, p, d, 1.0, y, s, s)
    with pytest.raises(ValueError, match=r"gather_pair: flat and gather_pair: grads\[0\] overlap"):
        _lbfgs.gather_pair([f], [n], f, p, d, 1.0, y, s, q)
    with pytest.raises(ValueError, match="gather_pair: q has 7 elements, expected 8"):
        _lbfgs.gather_pair(g, [n], f, p, d, 1.0, y, s, np.zeros(7))
    with pytest.raises(TypeError, match="gather_pair: prev has dtype float32, expected float64"):
        _lbfgs.gather_pair(g, [n], f, p.astype(np.float32), d, 1.0, y, s, q)
    with pytest.raises(ValueError, match="gather_pair: flat has 8 elements, expected 7"):
        _lbfgs.gather_pair([np.zeros(7)], [7], f, p, d, 1.0, y, s, q)


def test_reclaim_returns_memory_nobody_else_reaches():
    """reclaim pops the entry, and hands back its storage only when the list slot was the sole
    way to reach it: not when the Tensor, its array, a numpy() view or a Tensor view is held."""
    def entry():
        return [fastoptim.from_numpy(np.arange(5.0))]

    lst = entry()
    addr = lst[0]._np.__array_interface__["data"][0]   # (holding the owner would be a holder)
    got = _lbfgs.reclaim(lst, 0)
    assert got is not None and lst == []
    assert got.__array_interface__["data"][0] == addr and got.flags.owndata
    np.testing.assert_array_equal(got, np.arange(5.0))
    lst = [fastoptim.tensor(np.arange(3.0))]   # a tensor whose array owns its data
    assert _lbfgs.reclaim(lst, 0) is not None
    holders = {
        "the tensor": lambda t: t,
        "numpy()": lambda t: t.numpy(),
        "np.asarray": lambda t: np.asarray(t),
        "a tensor view": lambda t: t[1:],
        "a reshape": lambda t: t.reshape(5, 1),
        "a memoryview": lambda t: memoryview(t.numpy()),
    }
    for name, hold in holders.items():
        lst = entry()
        kept = hold(lst[0])
        assert _lbfgs.reclaim(lst, 0) is None, name
        assert lst == []
        del kept
    lst = [np.zeros(3), None, fastoptim.from_numpy(np.zeros(4)[::2])]
    assert _lbfgs.reclaim(lst, 0) is None   # not a Tensor
    assert _lbfgs.reclaim(lst, 0) is None
    assert _lbfgs.reclaim(lst, 0).shape == (4,)   # a strided view's whole owner (size: caller's)
    with pytest.raises(IndexError, match="index 0 out of range for a list of 0"):
        _lbfgs.reclaim(lst, 0)


def bench_like(dtype=np.float64, **kwargs):
    """The benchmark's shape of run, small: tolerances off, a history that fills and turns."""
    kwargs = {"history_size": 3, "max_iter": 7, "tolerance_grad": -1.0,
              "tolerance_change": -1.0, "lr": 0.05, **kwargs}
    return make("fo", "lsq", dtype, kwargs)


def _storage_addresses(st):
    """Where the memory of the state's flat vectors starts (their owners' data pointers)."""
    owners = [t._np if t._np.base is None else t._np.base
              for t in [st["d"], st["prev_flat_grad"], *st["old_dirs"], *st["old_stps"]]]
    return {a.__array_interface__["data"][0] for a in owners}


@pytest.mark.parametrize("dtype", DTYPES)
def test_steady_steps_allocate_no_vectors(dtype):
    """Once the history is full, the oldest pair's buffers take the newest (a ring) and the
    state's previous d/prev_flat_grad are reused: no new flat vector, step after step."""
    fo, fp, fc = bench_like(dtype)
    fo.step(fc)
    fo.step(fc)
    made = fo._vectors.made
    buffers = set()
    for _ in range(5):
        fo.step(fc)
        st = fo.state[fp[0]]
        buffers |= _storage_addresses(st)
        del st   # (a reference kept to a state vector would keep it from the ring)
    assert fo._vectors.made == made
    assert len(buffers) <= 2 * 3 + 2 + 6   # the history, d, prev_flat_grad and the spares


@needs_torch
@pytest.mark.parametrize("kwargs", [{}, {"line_search_fn": "strong_wolfe"}],
                         ids=["fixed", "wolfe"])
def test_ring_iterates_match_torch(kwargs):
    """The bench-like run (history full from the first step on, every later pair evicting a
    recycled one) against torch, float64 to 1e-10, over 6 steps."""
    fo, fp, fc = bench_like(**kwargs)
    th, tp, tc = make("torch", "lsq", np.float64, {
        "history_size": 3, "max_iter": 7, "tolerance_grad": -1.0, "tolerance_change": -1.0,
        "lr": 0.05, **kwargs})
    for _ in range(6):
        fo.step(fc)
        th.step(tc)
        for a, b in zip(values(fp), values(tp)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    sf, st = fo.state[fp[0]], th.state[tp[0]]
    for k in ("old_dirs", "old_stps"):
        for x, y in zip(sf[k], st[k], strict=True):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-10, atol=1e-12)


HOLDS = {
    "tensor": lambda t: t,
    "numpy": lambda t: t.numpy(),
    "tensor view": lambda t: t[0:],
    "array": lambda t: np.asarray(t),
}


@pytest.mark.parametrize("hold", sorted(HOLDS))
def test_held_state_vectors_keep_their_values(hold):
    """A state vector held in any way (the Tensor, its numpy() view, a Tensor view, an array
    made from it) keeps its values while the optimizer recycles every other vector."""
    fo, fp, fc = bench_like()
    fo.step(fc)
    kept = []
    for _ in range(4):
        fo.step(fc)
        st = fo.state[fp[0]]
        for t in [st["d"], st["prev_flat_grad"], *st["old_dirs"], *st["old_stps"]]:
            kept.append((HOLDS[hold](t), t.numpy().copy()))
    made = fo._vectors.made
    for _ in range(3):
        fo.step(fc)
    assert fo._vectors.made > made   # (what is held cannot be reused: new vectors instead)
    for h, v in kept:
        np.testing.assert_array_equal(np.asarray(h).reshape(-1), v)


@needs_torch
def test_state_after_a_raising_closure_is_torchs():
    """The closure raises mid-step: the history lists hold what torch's do (popped and
    appended in place), and the next step goes on as torch's."""
    runs = {}
    for lib in ("fo", "torch"):
        opt, params, closure = make(lib, "lsq", np.float64, {
            "history_size": 3, "max_iter": 7, "tolerance_grad": -1.0, "tolerance_change": -1.0,
            "lr": 0.05})
        opt.step(closure)
        calls = [0]

        def failing(calls=calls, closure=closure):
            calls[0] += 1
            if calls[0] == 5:
                raise KeyError("boom")
            return closure()

        with pytest.raises(KeyError):
            opt.step(failing)
        opt.step(closure)
        runs[lib] = (opt, params)
    (fo, fp), (th, tp) = runs["fo"], runs["torch"]
    for a, b in zip(values(fp), values(tp)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    sf, st = fo.state[fp[0]], th.state[tp[0]]
    assert (sf["n_iter"], sf["func_evals"]) == (st["n_iter"], st["func_evals"])
    for k in ("old_dirs", "old_stps", "ro"):
        assert len(sf[k]) == len(st[k])
