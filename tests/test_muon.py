"""Muon against torch 2.13 (trajectories at bfloat16 level -- torch orthogonalises in bf16 --,
state dicts both ways, defaults, messages) and against its NumPy twin."""

import copy
import math

import numpy as np
import pytest

import fastoptim
from fastoptim.optim import Muon
from fastoptim.optim import _reference_muon as ref
from fastoptim.optim.muon import _zeropower_via_newtonschulz, muon

try:
    import torch
except ImportError:  # pragma: no cover - CI installs torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the oracle) is not installed")
SHAPES = [(32, 64), (48, 32), (1, 5), (17, 17)]
CONFIGS = [
    {},
    {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"},
    {"lr": 0.01, "momentum": 0.3, "weight_decay": 0.0, "adjust_lr_fn": "original", "ns_steps": 3},
]


def fo_dtype(dt):
    return fastoptim.float32 if np.dtype(dt) == np.float32 else fastoptim.float64


def adjusted(kw, shape):
    lr, fn = kw.get("lr", 1e-3), kw.get("adjust_lr_fn")
    a, b = shape
    return lr * (0.2 * math.sqrt(max(a, b)) if fn == "match_rms_adamw" else
                 math.sqrt(max(1, a / b)))


def run(lib, shape, dt, kw, steps, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape).astype(dt)
    if lib == "torch":
        p = torch.tensor(p0, requires_grad=True)
        opt = torch.optim.Muon([p], **kw)
    else:
        p = fastoptim.tensor(p0, dtype=fo_dtype(dt), requires_grad=True)
        opt = Muon([p], **kw)
    for _ in range(steps):
        g = rng.standard_normal(shape).astype(dt)
        p.grad = torch.tensor(g) if lib == "torch" else fastoptim.tensor(g, dtype=fo_dtype(dt))
        opt.step()
    return opt, p


@needs_torch
@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kw", CONFIGS, ids=["default", "adamw-rms", "original-3"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_trajectory_matches_torch_at_bf16_level(shape, kw, dt):
    """torch's orthogonalised update is bfloat16; ours emulates it over float32 BLAS, so a few
    elements land a bf16 ulp apart: the param may differ by ~1e-2 of each step's size."""
    steps = 5
    _, fp = run("fo", shape, dt, kw, steps)
    _, tp = run("torch", shape, dt, kw, steps)
    bound = 1e-2 * adjusted(kw, shape) * steps
    np.testing.assert_allclose(fp.detach().numpy(), tp.detach().numpy(), rtol=0, atol=bound)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kw", CONFIGS, ids=["default", "adamw-rms", "original-3"])
@pytest.mark.parametrize("shape", SHAPES + [(64, 200)], ids=str)
def test_matches_numpy_twin(shape, kw, dt):
    rng = np.random.default_rng(1)
    p = rng.standard_normal(shape).astype(dt)
    buf = np.zeros(shape, dt)
    p_ref, buf_ref = p.copy(), buf.copy()
    full = {"lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
            "ns_coefficients": (3.4445, -4.775, 2.0315), "ns_steps": 5, "eps": 1e-7,
            "adjust_lr_fn": None, **kw}
    work = {}
    for _ in range(3):
        g = rng.standard_normal(shape).astype(dt)
        muon([p], [g], [buf], _work=work, **full)
        p_ref, buf_ref = ref.muon_step(p_ref, g, buf_ref, full["lr"], full["weight_decay"],
                                       full["momentum"], full["nesterov"],
                                       full["ns_coefficients"], full["ns_steps"], full["eps"],
                                       full["adjust_lr_fn"])
    tol = 1e-12 if dt == np.float64 else 1e-6
    np.testing.assert_allclose(buf, buf_ref, rtol=tol, atol=tol)
    # a bf16 tie broken differently by the twin's float64 norm: at most a few bf16 ulps
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=3 * 2**-8 * adjusted(kw, shape))


def test_newton_schulz_is_orthogonalising_and_allocates_once():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((64, 128))
    work = {}
    o = _zeropower_via_newtonschulz(g, (3.4445, -4.775, 2.0315), 5, 1e-7, work)
    s = np.linalg.svd(o.astype(np.float64), compute_uv=False)
    assert 0.5 < s.min() and s.max() < 1.5  # Jordan's S' ~ U(0.5, 1.5)
    bufs = [id(b) for b in vars(work[(64, 128)]).values()]
    _zeropower_via_newtonschulz(g, (3.4445, -4.775, 2.0315), 5, 1e-7, work)
    assert [id(b) for b in vars(work[(64, 128)]).values()] == bufs
    assert np.all((o.view(np.uint32) & 0xFFFF) == 0)  # bfloat16 values


@needs_torch
@pytest.mark.parametrize("direction", ["torch->fo", "fo->torch"])
def test_state_dict_both_ways(direction):
    kw = CONFIGS[1]
    fo, fp = run("fo", (32, 64), np.float64, kw, 3)
    th, tp = run("torch", (32, 64), np.float64, kw, 3)
    assert set(fo.state_dict()["state"][0]) == set(th.state_dict()["state"][0]) \
        == {"momentum_buffer"}
    assert fo.state_dict()["param_groups"] == th.state_dict()["param_groups"]
    rng = np.random.default_rng(9)
    g = rng.standard_normal((32, 64))
    if direction == "torch->fo":
        p2 = fastoptim.tensor(tp.detach().numpy().copy(), dtype=fastoptim.float64,
                              requires_grad=True)
        o2 = Muon([p2], **kw)
        o2.load_state_dict(copy.deepcopy(th.state_dict()))
        p2.grad, tp.grad = fastoptim.tensor(g, dtype=fastoptim.float64), torch.tensor(g)
        o2.step()
        th.step()
        a, b = p2.detach().numpy(), tp.detach().numpy()
    else:
        sd = copy.deepcopy(fo.state_dict())
        sd["state"] = {k: {n: torch.as_tensor(v.numpy().copy()) for n, v in s.items()}
                       for k, s in sd["state"].items()}
        p2 = torch.tensor(fp.detach().numpy().copy(), requires_grad=True)
        o2 = torch.optim.Muon([p2], **kw)
        o2.load_state_dict(sd)
        p2.grad, fp.grad = torch.tensor(g), fastoptim.tensor(g, dtype=fastoptim.float64)
        o2.step()
        fo.step()
        a, b = p2.detach().numpy(), fp.detach().numpy()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-2 * adjusted(kw, (32, 64)))


def test_defaults_and_messages():
    p = fastoptim.tensor(np.zeros((2, 3)), requires_grad=True)
    assert Muon([p]).defaults == {
        "lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
        "ns_coefficients": (3.4445, -4.775, 2.0315), "eps": 1e-7, "ns_steps": 5,
        "adjust_lr_fn": None}
    cases = [({"lr": -1.0}, "Learning rate should be >= 0 but is: -1.0"),
             ({"momentum": -0.5}, "momentum should be >= 0 but is: -0.5"),
             ({"weight_decay": -0.1}, "weight decay should be >= 0 but is: -0.1"),
             ({"adjust_lr_fn": "x"}, "Adjust learning rate function x is not supported")]
    for kw, msg in cases:
        with pytest.raises(ValueError) as e:
            Muon([p], **kw)
        assert str(e.value) == msg
    v = fastoptim.tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"^Muon only supports 2D parameters whereas we found "
                                         r"a parameter with size: "):
        Muon([v])
    g = np.zeros((2, 3))
    with pytest.raises(ValueError, match="^Number of steps must be less than 100"):
        _zeropower_via_newtonschulz(g, (1, 2, 3), 100, 1e-7)
    with pytest.raises(ValueError, match="^Coefficients must be a tuple of exactly 3 values$"):
        _zeropower_via_newtonschulz(g, (1, 2), 5, 1e-7)
    with pytest.raises(RuntimeError, match="^Foreach is not supported for Muon yet$"):
        muon([], [], [], foreach=True, lr=1e-3, weight_decay=0.1, momentum=0.9, nesterov=True,
             ns_coefficients=(1, 2, 3), ns_steps=5, eps=1e-7, adjust_lr_fn=None)


@needs_torch
def test_messages_are_torchs():
    tp = torch.zeros((2, 3), requires_grad=True)
    fp = fastoptim.tensor(np.zeros((2, 3)), requires_grad=True)
    for kw in ({"lr": -1.0}, {"momentum": -1}, {"weight_decay": -2.0}, {"adjust_lr_fn": "y"}):
        with pytest.raises(ValueError) as et:
            torch.optim.Muon([tp], **kw)
        with pytest.raises(ValueError) as ef:
            Muon([fp], **kw)
        assert str(et.value) == str(ef.value)


@pytest.mark.parametrize("shape", [(64, 128), (96, 40), (17, 17), (1, 5)], ids=str)
def test_gram_is_exactly_symmetric(shape):
    """gram @ gram runs as gram @ gram.T (numpy's syrk, half the products): the same product
    only because X @ X.T comes back exactly symmetric, which this holds numpy to."""
    g = np.random.default_rng(3).standard_normal(shape)
    work = {}
    _zeropower_via_newtonschulz(g, (3.4445, -4.775, 2.0315), 5, 1e-7, work)
    w = work[(min(shape), max(shape))]
    assert np.array_equal(w.a, w.a.T) and np.array_equal(w.b, w.b.T)
