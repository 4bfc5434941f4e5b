"""The element-wise ops tutorials reach for (sin ... erf, softplus, pow with a tensor exponent,
maximum/minimum): kernels against their NumPy twins, and values, dtypes, gradients and grad_fn
names against torch.

Why: each is a C kernel through the op table (fo_unary / fo_binary and their backwards), so it
must agree with its slow twin in fastoptim/_reference.py over dtypes and sizes (0, 1, odd,
large), and with torch 2.13 wherever torch is importable.
"""
import numpy as np
import pytest

import fastoptim as fo
from fastoptim import _reference as ref


def _torch():
    return pytest.importorskip("torch")


# name -> (reference op, domain of the inputs)
UNARY = {
    "sin": (ref.SIN, "any"), "cos": (ref.COS, "any"), "tan": (ref.TAN, "small"),
    "asin": (ref.ASIN, "unit"), "acos": (ref.ACOS, "unit"), "atan": (ref.ATAN, "any"),
    "sinh": (ref.SINH, "any"), "cosh": (ref.COSH, "any"), "exp2": (ref.EXP2, "any"),
    "expm1": (ref.EXPM1, "any"), "log1p": (ref.LOG1P, "pos"), "log2": (ref.LOG2, "pos"),
    "log10": (ref.LOG10, "pos"), "sign": (ref.SIGN, "any"), "floor": (ref.FLOOR, "any"),
    "ceil": (ref.CEIL, "any"), "round": (ref.ROUND, "any"), "trunc": (ref.TRUNC, "any"),
    "reciprocal": (ref.RECIPROCAL, "pos"), "rsqrt": (ref.RSQRT, "pos"),
    "square": (ref.SQUARE, "any"), "erf": (ref.ERF, "any"),
}


def _data(domain, n, dt, seed=0):
    rng = np.random.default_rng(seed)
    if domain == "unit":
        x = rng.uniform(-0.95, 0.95, n)
    elif domain == "pos":
        x = rng.uniform(0.1, 4.0, n)
    elif domain == "small":
        x = rng.uniform(-1.2, 1.2, n)
    else:
        x = rng.uniform(-3.0, 3.0, n)
    return x.astype(dt)


def _close(a, b, dt):
    rtol = 2e-6 if dt == np.float32 else 1e-13
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_unary_kernel_matches_its_twin(name, dt, n):
    op, domain = UNARY[name]
    x = _data(domain, n, dt)
    t = fo.from_numpy(x.copy()).requires_grad_()
    y = getattr(t, name)()
    _close(y.detach().numpy(), ref.unary(op, x), dt)
    g = _data("any", n, dt, seed=1)
    y.backward(fo.from_numpy(g))
    _close(t.grad.numpy(), ref.unary_backward(op, g, x, y.detach().numpy()), dt)
    assert y.dtype == t.dtype and t.grad.dtype == t.dtype


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_matches_torch(name):
    torch = _torch()
    _, domain = UNARY[name]
    x = _data(domain, 33, np.float32, seed=2)
    a = fo.from_numpy(x.copy()).requires_grad_()
    b = torch.from_numpy(x.copy()).requires_grad_()
    ya, yb = getattr(fo, name)(a), getattr(torch, name)(b)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=2e-6, atol=1e-7)
    assert ya.grad_fn.name() == yb.grad_fn.name()
    (ya * ya).sum().backward()
    (yb * yb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_on_integer_tensors_types_as_torch(name):
    torch = _torch()
    x = np.array([-3, 0, 2, 5], dtype=np.int64)
    if UNARY[name][1] in ("pos", "unit"):
        x = np.array([1, 2, 3], dtype=np.int64) if UNARY[name][1] == "pos" else np.array([0])
    ya, yb = getattr(fo.from_numpy(x), name)(), getattr(torch.from_numpy(x), name)()
    assert str(ya.dtype).split(".")[-1] == str(yb.dtype).split(".")[-1]
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=2e-6)


def test_special_values_match_torch():
    torch = _torch()
    x = np.array([np.nan, 0.0, -0.0, 2.5, -2.5, 0.5, 1.5, -1.2, np.inf, -np.inf],
                 dtype=np.float32)
    for name in ["sign", "round", "floor", "ceil", "trunc", "erf", "atan", "exp2", "expm1",
                 "square", "reciprocal"]:
        ya = getattr(fo.from_numpy(x.copy()), name)().numpy()
        yb = getattr(torch.from_numpy(x.copy()), name)().numpy()
        np.testing.assert_array_equal(np.signbit(ya) | np.isnan(ya),
                                      np.signbit(yb) | np.isnan(yb), err_msg=name)
        np.testing.assert_allclose(ya, yb, rtol=2e-6, err_msg=name)


def test_round_decimals_is_refused_by_name():
    with pytest.raises(NotImplementedError, match=r"round\(decimals=...\) is not supported"):
        fo.ones(2).round(decimals=2)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 1.0)])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_softplus_kernel_and_torch(beta, threshold, dt):
    x = np.array([-30.0, -1.0, 0.0, 0.7, 1.9, 2.1, 15.0, 30.0], dtype=dt)
    t = fo.from_numpy(x.copy()).requires_grad_()
    y = fo.nn.functional.softplus(t, beta=beta, threshold=threshold)
    _close(y.detach().numpy(), ref.unary(ref.SOFTPLUS, x, beta, threshold), dt)
    y.sum().backward()
    _close(t.grad.numpy(), ref.unary_backward(ref.SOFTPLUS, np.ones_like(x), x,
                                              y.detach().numpy(), beta, threshold), dt)
    torch = _torch()
    b = torch.from_numpy(x.copy()).requires_grad_()
    yb = torch.nn.functional.softplus(b, beta=beta, threshold=threshold)
    yb.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), yb.detach().numpy(), rtol=2e-6)
    np.testing.assert_allclose(t.grad.numpy(), b.grad.numpy(), rtol=2e-6)
    assert y.grad_fn.name() == yb.grad_fn.name()


BINARY = {"pow": ref.POW_T, "maximum": ref.MAXIMUM, "minimum": ref.MINIMUM}
SHAPES = [((5,), (5,)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (6,)), ((0, 3), (3,)),
          ((1,), (1,)), ((31, 33), (31, 33))]


def _bin(name, a, b):
    if name == "pow":
        return a.pow(b)
    return getattr(fo, name)(a, b)


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", SHAPES)
def test_binary_kernel_matches_its_twin(name, dt, shapes):
    rng = np.random.default_rng(4)
    a = rng.uniform(0.2, 2.0, shapes[0]).astype(dt)
    b = rng.uniform(-2.0, 2.0, shapes[1]).astype(dt)
    if name != "pow" and a.shape == b.shape:
        b.flat[::3] = a.flat[::3]   # exact ties: the gradient is split in halves
    ta = fo.from_numpy(a.copy()).requires_grad_()
    tb = fo.from_numpy(b.copy()).requires_grad_()
    y = _bin(name, ta, tb)
    _close(y.detach().numpy(), ref.binary(BINARY[name], a, b), dt)
    g = rng.standard_normal(y.shape).astype(dt)
    y.backward(fo.from_numpy(g))
    ga, gb = ref.binary_backward(BINARY[name], g, a, b)
    _close(ta.grad.numpy(), ga, dt)
    _close(tb.grad.numpy(), gb, dt)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_matches_torch(name):
    torch = _torch()
    a = np.array([[0.0, 2.0, -1.0, 1.5], [3.0, 0.5, 2.0, 2.0]], dtype=np.float32)
    b = np.array([0.0, 0.5, 2.0, 2.0], dtype=np.float32)
    fa, fb = fo.from_numpy(a.copy()).requires_grad_(), fo.from_numpy(b.copy()).requires_grad_()
    ta = torch.from_numpy(a.copy()).requires_grad_()
    tb = torch.from_numpy(b.copy()).requires_grad_()
    yf = _bin(name, fa, fb)
    yt = torch.pow(ta, tb) if name == "pow" else getattr(torch, name)(ta, tb)
    np.testing.assert_allclose(yf.detach().numpy(), yt.detach().numpy(), rtol=2e-6)
    assert yf.grad_fn.name() == yt.grad_fn.name()
    yf.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(fa.grad.numpy(), ta.grad.numpy(), rtol=2e-6, equal_nan=True)
    np.testing.assert_allclose(fb.grad.numpy(), tb.grad.numpy(), rtol=2e-6, equal_nan=True)


def test_maximum_minimum_propagate_nan_and_max_of_two_tensors():
    torch = _torch()
    a = np.array([np.nan, 1.0, 2.0], dtype=np.float32)
    b = np.array([0.0, np.nan, 1.0], dtype=np.float32)
    for name in ("maximum", "minimum"):
        mine = getattr(fo, name)(fo.from_numpy(a), fo.from_numpy(b)).numpy()
        theirs = getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        np.testing.assert_array_equal(mine, theirs)
    x = fo.tensor([1.0, 5.0], requires_grad=True)
    y = fo.tensor([3.0, 2.0], requires_grad=True)
    m = x.max(y)
    assert m.grad_fn.name() == "MaximumBackward0"
    m.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0] and y.grad.tolist() == [1.0, 0.0]


def test_pow_forms_and_dtypes():
    torch = _torch()
    for M in (fo, torch):
        i = M.tensor([2, 3])
        assert M.pow(i, i).tolist() == [4, 27] and M.pow(i, i).dtype == M.int64
        f = M.tensor([2.0, 3.0])
        assert M.pow(f, i).dtype == M.float32
        assert M.pow(2.0, f).tolist() == [4.0, 8.0]
        assert (f ** M.tensor([2.0, 0.5])).tolist()[0] == 4.0
        assert (2 ** f).tolist() == [4.0, 8.0]
        assert (i ** 2).tolist() == [4, 9] and (i ** 2).dtype == M.int64
        assert (i ** 0.5).dtype == M.float32
        j = M.tensor([2, 1, -1, -1, 3])
        assert M.pow(j, M.tensor([-1, -2, -3, -2, 2])).tolist() == [0, 1, -1, 1, 9]
        with pytest.raises(RuntimeError, match="^Integers to negative integer powers are not "
                                               "allowed.$"):
            i ** -1
