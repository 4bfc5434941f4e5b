"""Small torch-style training scripts, run unchanged on fastoptim and on torch with the same data.

Why: "import fastoptim as torch" must run the code tutorials write (raw tensors, autograd, a
hand-written update with -=) to torch's loss.  Each script is a function of the module M it
runs on; the data and initial values come from NumPy so both libraries start identically.
Written for this suite (not copied from anywhere), in the style of PyTorch's beginner
tutorials.
"""
import math

import numpy as np
import pytest

import fastoptim as fo


def polynomial_fit_of_sin(M, steps=400):
    """A cubic a + b x + c x^2 + d x^3 fitted to sin(x) on [-pi, pi], SGD by hand."""
    x = M.from_numpy(np.linspace(-math.pi, math.pi, 200).astype(np.float32))
    y = M.sin(x)
    init = np.array([0.1, -0.2, 0.05, 0.01], dtype=np.float32)
    a, b, c, d = (M.tensor(float(v), requires_grad=True) for v in init)
    lr = 1e-5
    for _ in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with M.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
            c -= lr * c.grad
            d -= lr * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    return loss.item()


def linear_regression_sgd(M, steps=100):
    """y = x w + b learned with p -= lr * p.grad and grad.zero_()."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((128, 4)).astype(np.float32)
    ys = (xs @ np.array([[0.5], [-1.0], [2.0], [0.1]], dtype=np.float32) - 0.3).astype(
        np.float32)
    x, y = M.from_numpy(xs), M.from_numpy(ys)
    w = M.zeros(4, 1, requires_grad=True)
    b = M.zeros(1, requires_grad=True)
    for _ in range(steps):
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        with M.no_grad():
            w -= 0.05 * w.grad
            b -= 0.05 * b.grad
            w.grad.zero_()
            b.grad.zero_()
    return loss.item()


def two_layer_net_raw_tensors(M, steps=200):
    """x -> relu(x w1) w2 with raw tensors and autograd (the "tensors and autograd" example)."""
    rng = np.random.default_rng(1)
    x = M.from_numpy(rng.standard_normal((64, 10)).astype(np.float32))
    y = M.from_numpy(rng.standard_normal((64, 2)).astype(np.float32))
    w1 = M.from_numpy((rng.standard_normal((10, 16)) * 0.3).astype(np.float32)).requires_grad_()
    w2 = M.from_numpy((rng.standard_normal((16, 2)) * 0.3).astype(np.float32)).requires_grad_()
    lr = 1e-3
    for _ in range(steps):
        y_pred = (x @ w1).clamp(min=0) @ w2
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with M.no_grad():
            w1 -= lr * w1.grad
            w2 -= lr * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return loss.item()


def custom_function_net(M, steps=150):
    """A net whose activation is a custom autograd.Function, x / (1 + |x|) with a hand-written
    derivative 1 / (1 + |x|)^2; batches of rows taken with index tensors, SGD by hand."""

    class Softsign(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            d = 1 + x.abs()
            ctx.save_for_backward(d)
            return x / d

        @staticmethod
        def backward(ctx, grad_output):
            (d,) = ctx.saved_tensors
            return grad_output / (d * d)

    rng = np.random.default_rng(2)
    xs = rng.standard_normal((96, 3)).astype(np.float32)
    ys = np.sin(xs @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    x, y = M.from_numpy(xs), M.from_numpy(ys)
    w1 = M.from_numpy((rng.standard_normal((3, 8)) * 0.5).astype(np.float32)).requires_grad_()
    b1 = M.zeros(8, requires_grad=True)
    w2 = M.from_numpy((rng.standard_normal((8, 1)) * 0.5).astype(np.float32)).requires_grad_()
    batches = [M.tensor(rng.permutation(96)[:32]) for _ in range(steps)]
    for idx in batches:
        xb, yb = x[idx], y.index_select(0, idx)
        loss = ((Softsign.apply(xb @ w1 + b1) @ w2 - yb) ** 2).mean()
        loss.backward()
        with M.no_grad():
            for p in (w1, b1, w2):
                p -= 0.2 * p.grad
                p.grad.zero_()
    with M.no_grad():
        return (((Softsign.apply(x @ w1 + b1) @ w2) - y) ** 2).mean().item()


SCRIPTS = [polynomial_fit_of_sin, linear_regression_sgd, two_layer_net_raw_tensors,
           custom_function_net]


@pytest.fixture(autouse=True)
def _grad_mode_on():
    # a script starts in grad mode, as a fresh process does
    with fo.enable_grad():
        yield


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda f: f.__name__)
def test_script_trains(script):
    first = script(fo, steps=1)
    last = script(fo)
    assert last < 0.5 * first


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda f: f.__name__)
def test_script_matches_torchs_loss(script):
    torch = pytest.importorskip("torch")
    ours, theirs = script(fo), script(torch)
    assert np.isfinite(ours) and np.isfinite(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
