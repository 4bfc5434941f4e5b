"""LBFGS against torch 2.13 (same iterates, state dicts both ways, messages) and its compiled
vector work (``_lbfgs.axpy``, ``lbfgs._two_loop``) against the NumPy twin."""

import copy

import numpy as np
import pytest

import fastoptim
from fastoptim._C._lbfgs import axpy
from fastoptim.optim import LBFGS
from fastoptim.optim import _reference_lbfgs as ref
from fastoptim.optim._descriptions import WHOLE_STEP
from fastoptim.optim.lbfgs import _two_loop

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,hist", [(1, 1), (9, 3), (500, 10), (3, 0)])
def test_two_loop_matches_twin(n, hist, dtype):
    rng = np.random.default_rng(n + hist)
    g = rng.standard_normal(n).astype(dtype)
    dirs = [rng.standard_normal(n).astype(dtype) for _ in range(hist)]
    stps = [(y + 0.1 * rng.standard_normal(n)).astype(dtype) for y in dirs]
    ro = [dtype(1.0) / y.dot(s) for y, s in zip(dirs, stps)]
    h = dtype(0.7)
    want, want_al = ref.lbfgs_direction(g, dirs, stps, ro, h)
    al = [None] * (hist + 2)
    got = _two_loop(g, dirs, stps, ro, h, al)
    rtol = 1e-12 if dtype == np.float64 else 2e-4
    scale = max(1.0, float(np.abs(want).max())) if n else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)
    for a, b in zip(al, want_al):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
