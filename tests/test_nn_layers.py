"""fastoptim.nn's layers beyond Linear against torch.nn: activations (C kernels vs their NumPy
twins and torch), Dropout, Flatten/Unflatten, Embedding, LayerNorm, BatchNorm1d (running
statistics, train/eval), the containers and nn.init.

Why: tutorials build models from exactly these; each must give torch's numbers, gradients,
state-dict keys and reprs."""
import math

import numpy as np
import pytest

import fastoptim as fo
import fastoptim.nn.functional as F
from fastoptim import _reference as ref
from fastoptim import nn

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _torch():
    return pytest.importorskip("torch")


def _close(got, want, dtype=np.float32):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               **TOL[dtype])


ACTS = [  # name, fastoptim module, torch module name + kwargs, twin kind, param
    ("leaky_relu", dict(negative_slope=0.2), "LeakyReLU", "leaky_relu", 0.2),
    ("leaky_relu_default", {}, "LeakyReLU", "leaky_relu", 0.01),
    ("elu", dict(alpha=0.7), "ELU", "elu", 0.7),
    ("gelu", {}, "GELU", "gelu", 0.0),
    ("gelu_tanh", dict(approximate="tanh"), "GELU", "gelu_tanh", 0.0),
    ("silu", {}, "SiLU", "silu", 0.0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 1001])
@pytest.mark.parametrize("case", ACTS, ids=[a[0] for a in ACTS])
def test_activation_twin_and_torch(dtype, n, case):
    _, kw, tname, kind, p = case
    torch = _torch()
    x = (np.random.default_rng(n).standard_normal(n) * 3).astype(dtype)
    g = np.random.default_rng(n + 1).standard_normal(n).astype(dtype)
    a = fo.tensor(x, requires_grad=True)
    y = getattr(nn, tname)(**kw)(a)
    _close(y.detach().numpy(), ref.activation(kind, x.astype(np.float64), p), dtype)
    y.backward(fo.tensor(g))
    b = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn, tname)(**kw)(b)
    yt.backward(torch.tensor(g))
    # float32 tanh-GELU cancels in 1 + tanh(inner) for x < -4: torch's vectorised tanh and
    # libm's differ there by a few 1e-6 absolute (torch returns 0, libm 2e-6), noise of the
    # float32 formula itself, hence atol 1e-5 for float32
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == np.float32 else TOL[dtype]
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **tol)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
    assert y.grad_fn.name() == yt.grad_fn.name()
    assert repr(getattr(nn, tname)(**kw)) == repr(getattr(torch.nn, tname)(**kw))


def test_activation_inplace_and_errors():
    x = fo.tensor([-1.0, 2.0])
    assert F.leaky_relu(x, 0.5, inplace=True) is x and x.tolist() == [-0.5, 2.0]
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh."):
        F.gelu(x, approximate="bad")


def test_dropout_train_eval_and_seed():
    torch = _torch()
    x = fo.ones(1000, 10)
    d = nn.Dropout(0.3)
    fo.manual_seed(0)
    y = d(x)
    kept = (y.numpy() != 0).mean()
    assert abs(kept - 0.7) < 0.03
    np.testing.assert_allclose(np.unique(y.numpy()), [0.0, 1 / 0.7], rtol=1e-6)
    fo.manual_seed(0)
    assert np.array_equal(d(x).numpy(), y.numpy())
    d.eval()
    assert d(x) is x
    assert repr(d) == repr(torch.nn.Dropout(0.3))
    a = fo.ones(4, 4, requires_grad=True)
    out = nn.Dropout(0.5)(a)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), out.detach().numpy())
    assert nn.Dropout(1.0)(fo.ones(3)).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got "
                                         "1.5"):
        nn.Dropout(1.5)


def test_flatten_unflatten():
    torch = _torch()
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for args in ((), (0,), (1, 2), (0, -2)):
        assert nn.Flatten(*args)(fo.tensor(x)).shape == torch.nn.Flatten(*args)(
            torch.tensor(x)).shape
    u = nn.Unflatten(1, (3, 2))
    assert u(fo.zeros(2, 6)).shape == (2, 3, 2)
    assert nn.Unflatten(-1, (2, -1))(fo.zeros(2, 6)).shape == (2, 2, 3)
    assert repr(u) == repr(torch.nn.Unflatten(1, (3, 2)))
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten())


def test_embedding_dense_grad_and_padding():
    torch = _torch()
    fo_e = nn.Embedding(6, 3, padding_idx=1)
    t_e = torch.nn.Embedding(6, 3, padding_idx=1)
    assert np.all(fo_e.weight.detach().numpy()[1] == 0)
    with torch.no_grad():
        t_e.weight.copy_(torch.tensor(fo_e.weight.detach().numpy()))
    idx = np.array([[0, 1, 2], [2, 5, 1]])
    y = fo_e(fo.tensor(idx))
    yt = t_e(torch.tensor(idx))
    _close(y.detach().numpy(), yt.detach().numpy())
    g = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    y.backward(fo.tensor(g))
    yt.backward(torch.tensor(g))
    _close(fo_e.weight.grad.numpy(), t_e.weight.grad.numpy())
    assert repr(fo_e) == repr(t_e)
    assert list(fo_e.state_dict()) == list(t_e.state_dict())


@pytest.mark.parametrize("shape,norm", [((4, 6), 6), ((2, 3, 5), (5,)), ((2, 3, 5), (3, 5)),
                                        ((1, 1), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm(shape, norm, dtype):
    torch = _torch()
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    ln = nn.LayerNorm(norm, dtype=fo.float32 if dtype == np.float32 else fo.float64)
    tl = torch.nn.LayerNorm(norm, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    with torch.no_grad():
        w = np.random.default_rng(1).standard_normal(tuple(tl.weight.shape)).astype(dtype)
        tl.weight.copy_(torch.tensor(w))
        tl.bias.fill_(0.3)
    ln.load_state_dict({"weight": w, "bias": np.full(w.shape, 0.3, dtype)})
    a = fo.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    y, yt = ln(a), tl(b)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else TOL[dtype]
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **tol)
    g = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    y.backward(fo.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
    np.testing.assert_allclose(ln.weight.grad.numpy(), tl.weight.grad.numpy(), **tol)
    assert repr(ln) == repr(tl)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(8, 4), (5, 4, 3)])
def test_batch_norm_train_eval_running_stats(momentum, shape):
    torch = _torch()
    bn = nn.BatchNorm1d(4, momentum=momentum)
    tb = torch.nn.BatchNorm1d(4, momentum=momentum)
    rng = np.random.default_rng(0)
    for step in range(3):
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        a = fo.tensor(x, requires_grad=True)
        b = torch.tensor(x, requires_grad=True)
        y, yt = bn(a), tb(b)
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        y.sum().backward() if step else (y * y).sum().backward()
        yt.sum().backward() if step else (yt * yt).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-4)
    for k in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(bn, k).numpy(), getattr(tb, k).numpy(), rtol=1e-5,
                                   atol=1e-6)
    assert bn.num_batches_tracked.item() == tb.num_batches_tracked.item() == 3
    np.testing.assert_allclose(bn.weight.grad.numpy(), tb.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-4)
    bn.eval()
    tb.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(bn(fo.tensor(x)).detach().numpy(),
                               tb(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert list(bn.state_dict()) == list(tb.state_dict())
    assert repr(bn) == repr(tb)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(4)(fo.randn(1, 4))


def test_containers():
    torch = _torch()
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 3 and isinstance(ml[-1], nn.Linear) and len(ml[1:]) == 2
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    tml = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)])
    assert repr(ml) == repr(tml)
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.Tanh()})
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]
    pl = nn.ParameterList([nn.Parameter(fo.zeros(2)), fo.ones(3)])
    assert len(pl) == 2 and isinstance(pl[1], nn.Parameter) and pl[1].requires_grad
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])

        def forward(self, x):
            for m in self.layers:
                x = m(x)
            return x
    assert Net()(fo.randn(2, 3)).shape == (2, 3)
    assert len(list(Net().parameters())) == 4


def test_init_functions():
    torch = _torch()
    w = fo.empty(30, 20)
    for fn, kw in ((nn.init.xavier_uniform_, {}), (nn.init.xavier_normal_, dict(gain=2.0)),
                   (nn.init.kaiming_uniform_, dict(nonlinearity="relu")),
                   (nn.init.kaiming_normal_, dict(mode="fan_out"))):
        fn(w, **kw)
        assert np.isfinite(w.numpy()).all() and w.numpy().std() > 0
    bound = math.sqrt(6 / 50)
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= bound
    nn.init.orthogonal_(w)
    q = w.numpy().astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(20), atol=1e-5)
    nn.init.trunc_normal_(w, std=0.5, a=-1.0, b=1.0)
    assert np.abs(w.numpy()).max() <= 1.0 and 0.3 < w.numpy().std() < 0.5
    nn.init.eye_(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(30, 20))
    nn.init.sparse_(w, 0.5)
    assert ((w.numpy() == 0).sum(0) >= 15).all()
    assert nn.init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain(
        "leaky_relu", 0.2)
