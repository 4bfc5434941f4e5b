"""Every tensor kernel of csrc/fastoptim.h against its NumPy twin in fastoptim._reference.

Why: the twins are the documentation of what the kernels compute, so the two must agree.  Each
kernel is reached through the Tensor op that calls exactly that kernel, over dtypes (float32,
float64) x sizes (0, 1, odd, and large enough for the OpenMP paths) x layouts (same shape,
0-dim operand, row/column broadcast, non-contiguous inputs) x op parameters.  Every test also
checks that the op did not modify its inputs.  float64 must agree tightly; float32 within a few
ulp (reductions: within the rounding of a float accumulator).
"""
import numpy as np
import pytest

import fastoptim as fo
import fastoptim.nn.functional as F
from fastoptim import _reference as ref

DTYPES = [np.float32, np.float64]
SIZES = [0, 1, 7, 33, 600_003]   # 600_003 > FO_OMP_MIN_ELEMS: the parallel loops run
LARGE = 100_003


def _rtol(dt):
    return 4 * np.finfo(dt).eps if dt == np.float32 else 4e-15


def _close(actual, expected, dt, rtol=None, atol=None):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.dtype(dt), (actual.dtype, dt)
    tiny = np.finfo(dt).tiny * 16
    np.testing.assert_allclose(actual, expected, rtol=rtol or _rtol(dt),
                               atol=tiny if atol is None else atol, equal_nan=True)


def _data(shape, dt, seed, domain="any"):
    """Random data for `shape`: 'any' (signed), 'pos' (in [0.5, 2.5]), 'nonzero'."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if domain == "pos":
        x = 0.5 + 2.0 * rng.random(shape)
    elif domain == "nonzero":
        x = np.where(np.abs(x) < 0.1, 0.5, x)
    return np.asarray(x, dtype=dt)


def _layout(name, n, dt, seed, domain="any"):
    """(a, b) numpy arrays in one of the broadcasting layouts, built around size n."""
    if name == "same":
        return _data((n,), dt, seed, domain), _data((n,), dt, seed + 1, domain)
    if name == "scalar_b":
        return _data((n,), dt, seed, domain), _data((), dt, seed + 1, domain)
    if name == "scalar_a":
        return _data((), dt, seed, domain), _data((n,), dt, seed + 1, domain)
    if name == "row":       # [n, 3] (op) [3]
        return _data((n, 3), dt, seed, domain), _data((3,), dt, seed + 1, domain)
    if name == "col":       # [n, 1] (op) [n, 3]
        return _data((n, 1), dt, seed, domain), _data((n, 3), dt, seed + 1, domain)
    if name == "outer":     # [n, 1] (op) [1, 3]: both operands broadcast
        return _data((n, 1), dt, seed, domain), _data((1, 3), dt, seed + 1, domain)
    if name == "noncontig":  # a transposed, b a strided slice
        a = _data((3, n), dt, seed, domain).T
        b = _data((n, 6), dt, seed + 1, domain)[:, ::2]
        return a, b
    raise ValueError(name)


LAYOUTS = ["same", "scalar_b", "scalar_a", "row", "col", "outer", "noncontig"]
BINARY = {"add": (ref.ADD, lambda a, b: a + b), "sub": (ref.SUB, lambda a, b: a - b),
          "mul": (ref.MUL, lambda a, b: a * b), "div": (ref.DIV, lambda a, b: a / b)}


def _snap(*arrays):
    return [np.array(a, copy=True) for a in arrays]


def _unchanged(before, *arrays):
    for b, a in zip(before, arrays):
        np.testing.assert_array_equal(a, b)


# ---- fo_binary / fo_binary_backward ------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("opname", list(BINARY))
def test_binary_forward_backward(opname, dt, n, layout):
    op, fn = BINARY[opname]
    a, b = _layout(layout, n, dt, 10 + n, "nonzero" if op == ref.DIV else "any")
    before = _snap(a, b)
    ta = fo.from_numpy(a).requires_grad_()
    tb = fo.from_numpy(b).requires_grad_()
    out = fn(ta, tb)
    with np.errstate(all="ignore"):
        expected = ref.binary(op, a, b)
    _close(out.detach().numpy(), expected, dt)
    g = _data(expected.shape, dt, 99)
    out.backward(fo.from_numpy(g))
    with np.errstate(all="ignore"):
        ga, gb = ref.binary_backward(op, g, a, b)
    # broadcast dims are summed: allow the rounding of a sum over the broadcast extent
    red = max(1, expected.size // max(1, min(a.size, b.size)))
    tol = _rtol(dt) * (1 if red == 1 else 4 * np.sqrt(red))
    _close(ta.grad.numpy(), ga, dt, rtol=tol, atol=tol * (1 + np.abs(g).sum() if red > 1 else 0))
    _close(tb.grad.numpy(), gb, dt, rtol=tol, atol=tol * (1 + np.abs(g).sum() if red > 1 else 0))
    _unchanged(before, a, b)


def test_binary_broadcast_sum_is_exact_in_index_order():
    # A column broadcast of 1000 rows sums its gradient in a fixed order: float64 matches an
    # index-order sum to the last bit.
    a = _data((1000, 1), np.float64, 1)
    b = _data((1000, 5), np.float64, 2)
    ta = fo.from_numpy(a).requires_grad_()
    tb = fo.from_numpy(b).requires_grad_()
    (ta * tb).backward(fo.ones(1000, 5, dtype=fo.float64))
    expected = np.zeros(1000)
    for k in range(5):
        expected += b[:, k]
    np.testing.assert_array_equal(ta.grad.numpy()[:, 0], expected)


# ---- fo_unary / fo_unary_backward --------------------------------------------------------------

# name -> (op, p0, p1, domain, tensor function)
NAN = float("nan")
UNARY = {
    "neg": (ref.NEG, 0.0, 0.0, "any", lambda x: -x),
    "exp": (ref.EXP, 0.0, 0.0, "any", lambda x: x.exp()),
    "log": (ref.LOG, 0.0, 0.0, "pos", lambda x: x.log()),
    "sqrt": (ref.SQRT, 0.0, 0.0, "pos", lambda x: x.sqrt()),
    "abs": (ref.ABS, 0.0, 0.0, "nonzero", lambda x: x.abs()),
    "relu": (ref.RELU, 0.0, 0.0, "nonzero", lambda x: x.relu()),
    "tanh": (ref.TANH, 0.0, 0.0, "any", lambda x: x.tanh()),
    "sigmoid": (ref.SIGMOID, 0.0, 0.0, "any", lambda x: x.sigmoid()),
    "clamp": (ref.CLAMP, -0.5, 0.7, "any", lambda x: x.clamp(-0.5, 0.7)),
    "clamp_min": (ref.CLAMP, -0.5, NAN, "any", lambda x: x.clamp(min=-0.5)),
    "clamp_max": (ref.CLAMP, NAN, 0.7, "any", lambda x: x.clamp(max=0.7)),
    "clamp_crossed": (ref.CLAMP, 0.7, -0.5, "any", lambda x: x.clamp(0.7, -0.5)),
    "pow0": (ref.POW, 0.0, 0.0, "any", lambda x: x ** 0),
    "pow0.5": (ref.POW, 0.5, 0.0, "pos", lambda x: x ** 0.5),
    "pow1": (ref.POW, 1.0, 0.0, "any", lambda x: x ** 1),
    "pow2": (ref.POW, 2.0, 0.0, "any", lambda x: x ** 2),
    "pow3": (ref.POW, 3.0, 0.0, "any", lambda x: x.pow(3)),
    "pow-1": (ref.POW, -1.0, 0.0, "nonzero", lambda x: x ** -1),
    "pow1.7": (ref.POW, 1.7, 0.0, "pos", lambda x: x ** 1.7),
    "pow-2.5": (ref.POW, -2.5, 0.0, "pos", lambda x: x ** -2.5),
    "add_s": (ref.ADD_S, 1.25, 0.0, "any", lambda x: x + 1.25),
    "radd_s": (ref.ADD_S, 1.25, 0.0, "any", lambda x: 1.25 + x),
    "mul_s": (ref.MUL_S, -3.0, 0.0, "any", lambda x: x * -3.0),
    "rmul_s": (ref.MUL_S, 0.1, 0.0, "any", lambda x: 0.1 * x),
    "rsub_s": (ref.RSUB_S, 2.0, 0.0, "any", lambda x: 2.0 - x),
    "rdiv_s": (ref.RDIV_S, 3.0, 0.0, "nonzero", lambda x: 3.0 / x),
    "div_s": (ref.DIV_S, 3.0, 0.0, "any", lambda x: x / 3.0),
    "rpow_s": (ref.RPOW_S, 2.5, 0.0, "any", lambda x: 2.5 ** x),
}


@pytest.mark.parametrize("contig", [True, False], ids=["contig", "noncontig"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_forward_backward(name, dt, n, contig):
    op, p0, p1, domain, fn = UNARY[name]
    if contig:
        x = _data((n,), dt, 3 + n, domain)
    else:
        x = _data((n, 2), dt, 3 + n, domain)[:, 1]
    before = _snap(x)
    tx = fo.from_numpy(x).requires_grad_()
    out = fn(tx)
    y = ref.unary(op, np.ascontiguousarray(x), p0, p1)
    _close(out.detach().numpy(), y, dt)
    g = _data((n,), dt, 77)
    out.backward(fo.from_numpy(g))
    # the backward twin gets the kernel's own forward output (as the kernel does): y's last-ulp
    # differences would otherwise be amplified by 1 - y*y near saturation
    gx = ref.unary_backward(op, g, np.ascontiguousarray(x), out.detach().numpy(), p0, p1)
    _close(tx.grad.numpy(), gx, dt)
    _unchanged(before, x)


def test_unary_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e300], dtype=np.float64)
    for name in ["neg", "exp", "abs", "relu", "tanh", "sigmoid", "clamp", "pow2", "pow0"]:
        op, p0, p1, _, fn = UNARY[name]
        with np.errstate(all="ignore"):
            _close(fn(fo.from_numpy(x)).numpy(), ref.unary(op, x, p0, p1), np.float64)


# ---- fo_inplace_binary, fo_addcmul, fo_addcdiv, fo_lerp ----------------------------------------

INPLACE = {"add_": (ref.ADD, 1.0), "add_alpha": (ref.ADD, -0.3), "sub_": (ref.SUB, 1.0),
           "sub_alpha": (ref.SUB, 2.5), "mul_": (ref.MUL, 1.0), "div_": (ref.DIV, 1.0)}


@pytest.mark.parametrize("operand", ["same", "broadcast_row", "noncontig"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_binary(name, dt, n, operand):
    op, alpha = INPLACE[name]
    x = _data((n, 3), dt, 5)
    if operand == "same":
        a = _data((n, 3), dt, 6, "nonzero")
    elif operand == "broadcast_row":
        a = _data((3,), dt, 6, "nonzero")
    else:
        a = _data((3, n), dt, 6, "nonzero").T
    before = _snap(a)
    expected = ref.inplace_binary(op, x, a, alpha)
    t = fo.from_numpy(x.copy())
    method = getattr(t, name[:4])
    r = method(fo.from_numpy(a), alpha=alpha) if op in (ref.ADD, ref.SUB) else \
        method(fo.from_numpy(a))
    assert r is t
    _close(t.numpy(), expected, dt)
    _unchanged(before, a)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("value", [1.0, -0.5, 1e-3])
@pytest.mark.parametrize("kind", ["addcmul_", "addcdiv_"])
def test_addcmul_addcdiv(kind, value, dt, n):
    x = _data((n,), dt, 1)
    a = _data((n,), dt, 2)
    b = _data((n,), dt, 3, "nonzero")
    before = _snap(a, b)
    expected = (ref.addcmul if kind == "addcmul_" else ref.addcdiv)(x, a, b, value)
    t = fo.from_numpy(x.copy())
    assert getattr(t, kind)(fo.from_numpy(a), fo.from_numpy(b), value=value) is t
    _close(t.numpy(), expected, dt)
    _unchanged(before, a, b)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("w", [0.0, 0.1, 0.5, 0.9, 1.0, -0.5, 2.0])
def test_lerp(w, dt, n):
    x = _data((n,), dt, 1)
    a = _data((n,), dt, 2)
    before = _snap(a)
    t = fo.from_numpy(x.copy())
    assert t.lerp_(fo.from_numpy(a), w) is t
    _close(t.numpy(), ref.lerp(x, a, w), dt)
    if w == 1.0:
        np.testing.assert_array_equal(t.numpy(), a)   # exact at the end point
    if w == 0.0:
        np.testing.assert_array_equal(t.numpy(), x)
    _unchanged(before, a)


def test_inplace_on_noncontiguous_target_writes_through():
    base = _data((4, 6), np.float64, 1)
    expected = base.copy()
    expected[:, ::2] += 2.0 * np.arange(12.0).reshape(4, 3)
    t = fo.from_numpy(base)[:, ::2]
    t.add_(fo.arange(12.0, dtype=fo.float64).reshape(4, 3), alpha=2.0)
    np.testing.assert_array_equal(base, expected)


# ---- fo_sum, fo_sum_axis, fo_expand_axis ------------------------------------------------------

def _sum_tol(dt, n, x):
    # float32 sum_axis accumulates in the element type: error grows with the count
    if dt == np.float32:
        return {"rtol": _rtol(dt), "atol": 4 * np.finfo(dt).eps * (np.abs(x).sum() + 1)}
    return {"rtol": 1e-13, "atol": 1e-13 * (np.abs(x).sum() + 1)}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("mean", [False, True])
def test_sum_all(mean, dt, n):
    x = _data((n,), dt, 4)
    before = _snap(x)
    tx = fo.from_numpy(x).requires_grad_()
    out = tx.mean() if mean else tx.sum()
    expected = ref.sum(x) / n if (mean and n) else (float("nan") if mean else ref.sum(x))
    # the kernel accumulates in double in the lane order the twin spells out: rounding once to
    # dt is exact
    np.testing.assert_array_equal(out.detach().numpy(), np.asarray(expected, dtype=dt))
    out.backward()
    scale = (1.0 / n if n else float("nan")) if mean else 1.0
    _close(tx.grad.numpy(), ref.expand_axis(np.ones((1, 1), dt), n, scale).reshape(n), dt)
    _unchanged(before, x)


@pytest.mark.parametrize("shape,dim", [((0, 3), 0), ((3, 0), 1), ((1, 1), 0), ((7, 33), 0),
                                       ((7, 33), 1), ((7, 33), -1), ((3, 5, 7), 1),
                                       ((LARGE, 2), 0), ((2, LARGE), 1), ((5, 1, 4), 1)])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("mean", [False, True])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_axis_and_expand_axis(keepdim, mean, dt, shape, dim):
    x = _data(shape, dt, 8)
    before = _snap(x)
    d = dim % len(shape)
    outer = int(np.prod(shape[:d]))
    n = shape[d]
    inner = int(np.prod(shape[d + 1:]))
    scale = (1.0 / n if n else float("nan")) if mean else 1.0
    tx = fo.from_numpy(x).requires_grad_()
    out = (tx.mean if mean else tx.sum)(dim, keepdim=keepdim)
    with np.errstate(invalid="ignore"):
        expected = ref.sum_axis(x.reshape(outer, n, inner), scale)
    oshape = shape[:d] + ((1,) if keepdim else ()) + shape[d + 1:]
    got = out.detach().numpy()
    assert got.shape == oshape
    _close(got.reshape(outer, inner), expected, dt, **_sum_tol(dt, n, x))
    g = _data(oshape, dt, 9)
    out.backward(fo.from_numpy(g))
    gx = ref.expand_axis(g.reshape(outer, inner), n, scale).reshape(shape)
    _close(tx.grad.numpy(), gx, dt)
    _unchanged(before, x)


# ---- fo_extreme / fo_extreme_backward ----------------------------------------------------------

@pytest.mark.parametrize("case", ["random", "ties", "all_equal", "nan", "inf", "one"])
@pytest.mark.parametrize("n", [1, 7, 33, LARGE])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("want_max", [True, False], ids=["max", "min"])
def test_extreme(want_max, dt, n, case):
    x = _data((n,), dt, 12)
    if case == "ties" and n > 2:
        x[[0, n // 2, n - 1]] = x.max() + 1 if want_max else x.min() - 1
    elif case == "all_equal":
        x[:] = 0.25
    elif case == "nan" and n > 2:
        x[[1, n - 2]] = np.nan
    elif case == "inf":
        x[n // 2] = np.inf if want_max else -np.inf
    elif case == "one":
        x = x[:1].copy()
    before = _snap(x)
    tx = fo.from_numpy(x).requires_grad_()
    out = tx.max() if want_max else tx.min()
    m, count = ref.extreme(x, want_max)
    _close(out.detach().numpy(), np.asarray(m, dtype=dt), dt)
    out.backward(fo.tensor(3.0, dtype=fo.float32 if dt == np.float32 else fo.float64))
    _close(tx.grad.numpy(), ref.extreme_backward(x, m, 3.0, count), dt)
    assert np.isclose(tx.grad.numpy().sum(), 3.0)
    _unchanged(before, x)


# ---- fo_matmul (through matmul and linear; small sizes take the C loop, large take BLAS) --------

MM_SHAPES = [(1, 1, 1), (3, 5, 7), (7, 1, 33), (1, 9, 4), (0, 3, 2), (3, 0, 2), (3, 2, 0),
             (40, 50, 60)]


@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("M,N,K", MM_SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_matmul_2d(dt, M, N, K, transpose_b):
    a = _data((M, K), dt, 1)
    b = _data((N, K), dt, 2).T if transpose_b else _data((K, N), dt, 2)
    before = _snap(a, b)
    ta = fo.from_numpy(a).requires_grad_()
    tb = fo.from_numpy(b).requires_grad_()
    out = ta @ tb
    tol = {"rtol": _rtol(dt) * max(4, K), "atol": _rtol(dt) * max(4, K)}
    _close(out.detach().numpy(), ref.matmul(a, np.ascontiguousarray(b)), dt, **tol)
    g = _data((M, N), dt, 3)
    out.backward(fo.from_numpy(g))
    # dA = g @ B^T (B stored [K,N], read transposed); dB = A^T @ g
    _close(ta.grad.numpy(), ref.matmul(g, np.ascontiguousarray(b), trans_b=True), dt,
           rtol=_rtol(dt) * max(4, N), atol=_rtol(dt) * max(4, N))
    _close(tb.grad.numpy(), ref.matmul(a, g, trans_a=True), dt,
           rtol=_rtol(dt) * max(4, M), atol=_rtol(dt) * max(4, M))
    _unchanged(before, a, b)


@pytest.mark.parametrize("case", ["vv", "mv", "vm"])
@pytest.mark.parametrize("K", [0, 1, 7, 33, 300])
@pytest.mark.parametrize("dt", DTYPES)
def test_matmul_1d(dt, K, case):
    a = _data((K,) if case != "mv" else (5, K), dt, 1)
    b = _data((K,) if case != "vm" else (K, 6), dt, 2)
    ta = fo.from_numpy(a).requires_grad_()
    tb = fo.from_numpy(b).requires_grad_()
    out = ta @ tb
    expected = a @ b
    tol = {"rtol": _rtol(dt) * max(4, K), "atol": _rtol(dt) * max(4, K)}
    _close(out.detach().numpy(), expected.astype(dt), dt, **tol)
    g = _data(expected.shape, dt, 3)
    out.backward(fo.from_numpy(g))
    a2 = a.reshape(1 if a.ndim == 1 else a.shape[0], K)
    b2 = b.reshape(K, 1 if b.ndim == 1 else b.shape[1])
    g2 = g.reshape(a2.shape[0], b2.shape[1])
    _close(ta.grad.numpy(), ref.matmul(g2, b2, trans_b=True).reshape(a.shape), dt, **tol)
    _close(tb.grad.numpy(), ref.matmul(a2, g2, trans_a=True).reshape(b.shape), dt, **tol)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("M,N,K", MM_SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_linear_trans_b_bias(dt, M, N, K, bias):
    x = _data((M, K), dt, 1)
    w = _data((N, K), dt, 2)
    b = _data((N,), dt, 3) if bias else None
    before = _snap(x, w)
    tx = fo.from_numpy(x).requires_grad_()
    tw = fo.from_numpy(w).requires_grad_()
    tbias = fo.from_numpy(b).requires_grad_() if bias else None
    out = F.linear(tx, tw, tbias)
    tol = {"rtol": _rtol(dt) * max(4, K), "atol": _rtol(dt) * max(4, K)}
    _close(out.detach().numpy(), ref.matmul(x, w, trans_b=True, bias=b), dt, **tol)
    g = _data((M, N), dt, 4)
    out.backward(fo.from_numpy(g))
    _close(tx.grad.numpy(), ref.matmul(g, w), dt, rtol=_rtol(dt) * max(4, N),
           atol=_rtol(dt) * max(4, N))
    _close(tw.grad.numpy(), ref.matmul(g, x, trans_a=True), dt, rtol=_rtol(dt) * max(4, M),
           atol=_rtol(dt) * max(4, M))
    if bias:
        _close(tbias.grad.numpy(), ref.sum_axis(g.reshape(1, M, N)).reshape(N), dt,
               **_sum_tol(dt, M, g))
    _unchanged(before, x, w)


# ---- fo_mse / fo_mse_backward ---------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dt", DTYPES)
def test_mse(dt, n, reduction):
    a = _data((n,), dt, 1)
    b = _data((n,), dt, 2)
    before = _snap(a, b)
    ta = fo.from_numpy(a).requires_grad_()
    tb = fo.from_numpy(b).requires_grad_()
    loss = F.mse_loss(ta, tb, reduction=reduction)
    total = ref.mse(a, b)
    expected = (total / n if n else float("nan")) if reduction == "mean" else total
    np.testing.assert_array_equal(loss.detach().numpy(), np.asarray(expected, dtype=dt))
    loss.backward(fo.tensor(0.5, dtype=fo.float32 if dt == np.float32 else fo.float64))
    scale = (2.0 / n if n else float("nan")) if reduction == "mean" else 2.0
    ga, gb = ref.mse_backward(a, b, 0.5, scale)
    _close(ta.grad.numpy(), ga, dt)
    _close(tb.grad.numpy(), gb, dt)
    _unchanged(before, a, b)


def test_sum_and_mse_take_the_lane_order_not_index_order():
    """fo_sum/fo_mse add in four interleaved lanes (FO_LANES_SUM), which the twin spells out:
    on [1e100, 1, -1e100, 1] the lanes give (1e100 + 1) + (-1e100 + 1) = 0 where one chain in
    index order gives 1, and a 6-element input adds its tail after the lanes."""
    x = np.array([1e100, 1.0, -1e100, 1.0])
    assert ref.lane_sum(x) == 0.0
    assert fo.from_numpy(x).sum().item() == 0.0
    y = np.array([1.0, 2.0, 3.0, 4.0, 1e100, -1e100])
    assert fo.from_numpy(y).sum().item() == ref.lane_sum(y) == 0.0
    # squares [125906553^2, 4, 1, 1]: in lanes the 1 + 1 meet before the big square, in one
    # chain each is rounded away against it
    d, z = np.array([-125906553.0, 2.0, 1.0, 1.0]), np.zeros(4)
    got = fo.nn.functional.mse_loss(fo.from_numpy(d), fo.from_numpy(z), reduction="sum").item()
    assert got == ref.mse(d, z) == 1.5852460088341814e16
