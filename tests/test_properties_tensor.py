"""Property-based tests (hypothesis) of the tensor ops and of autograd.

Why: tests/test_properties.py drives the optimizer API; this file drives what a training step
runs before the optimizer -- the element-wise, reduction and matmul kernels and the backward
walk -- with operands hypothesis picks: shapes 0, 1, odd, 0-dim and past the kernels' size
thresholds, broadcasting pairs, float32/float64 (mixed: torch's promotion), NaN/Inf/-0, and
layouts the kernels must not read as they are (transposed and strided views, misaligned
``from_numpy`` arrays, which are copied to an aligned buffer before a kernel sees them).

Oracles:

* values: NumPy on the same arrays (float32 ops to float32 ulps, float64 to ~1e-12);
* gradients: central finite differences of a NumPy float64 evaluation of the same random
  expression (``Expr``), and the closed forms for matmul and the reductions;
* failures: a random op on random, often invalid operands (shapes that do not broadcast,
  int64/bool tensors, empty and 0-dim tensors) either gives NumPy's values or raises a builtin
  Python exception (RuntimeError, TypeError, ValueError, IndexError) -- never a crash, never a
  numpy-internal exception type leaking through.

All of them reach the C kernels with hypothesis' inputs, so they run in a child pytest process
(``FASTOPTIM_PROPERTIES_CHILD=1``), as tests/test_properties.py's risky cases do: a crash fails
one test instead of killing the suite.  Budgets: the profiles of tests/conftest.py (``ci``: 100
examples per property, a few seconds for the file; ``HYPOTHESIS_PROFILE=long`` for 40x).
"""

import operator
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import fastoptim as fo  # noqa: E402

CHILD = os.environ.get("FASTOPTIM_PROPERTIES_CHILD") == "1"
in_child = pytest.mark.skipif(not CHILD, reason="run in a child process by its *_in_subprocess")

DTYPES = [np.float32, np.float64]
TOL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-12}
LAYOUTS = ["contiguous", "transposed", "strided", "misaligned"]
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])


# ---- operands ------------------------------------------------------------------------------------

def _values(rng, shape, dtype, special, scale=1.0):
    a = np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)
    if special and a.size:
        mask = rng.random(a.shape) < 0.25
        a[mask] = rng.choice(SPECIALS.astype(dtype), size=int(mask.sum()))
    return np.asarray(a, dtype=dtype)


def _laid_out(a, layout):
    """The values of ``a`` in an array of the given layout (same shape and dtype)."""
    if layout == "transposed" and a.ndim >= 2:
        return np.ascontiguousarray(a.T).T
    if layout == "strided" and a.ndim >= 1:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "misaligned":
        buf = np.zeros(a.nbytes + a.itemsize, np.uint8)
        m = buf[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
        m[...] = a
        assert a.itemsize == 1 or a.size == 0 or not m.flags.aligned
        return m
    return np.array(a)


@st.composite
def operands(draw, shape, dtype=None, special=None, scale=1.0):
    """(numpy array, fastoptim tensor over it): random values, dtype and layout."""
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    special = draw(st.booleans()) if special is None else special
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    a = _laid_out(_values(rng, shape, dtype, special, scale), draw(st.sampled_from(LAYOUTS)))
    return a, fo.from_numpy(a)


def _check(got, want, what, scale=None):
    """got (a Tensor) equals want (numpy) in shape, dtype and values (NaN where NaN, infinities
    exactly, finite values to the dtype's tolerance times ``scale``, the inputs' magnitude)."""
    assert isinstance(got, fo.Tensor), (what, type(got))
    g = got.detach().numpy()
    want = np.asarray(want)
    assert g.shape == want.shape, (what, g.shape, want.shape)
    assert g.dtype == want.dtype, (what, g.dtype, want.dtype)
    tol = TOL[want.dtype]
    atol = tol * (1.0 if scale is None else scale)
    np.testing.assert_allclose(g, want, rtol=4 * tol, atol=atol, equal_nan=True, err_msg=what)


# ---- element-wise ops: broadcasting binary, scalar and unary forms -------------------------------

BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "truediv": operator.truediv}
UNARY = {   # fastoptim method -> numpy twin (where torch and numpy agree on NaN/Inf/-0)
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "square": np.square,
    "sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype),
    "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "reciprocal": np.reciprocal,
    "expm1": np.expm1, "log1p": np.log1p,
}


def _result_type(a, b):
    """torch's promotion of two float tensors: float32 with float64 gives float64, except that a
    0-dim tensor does not widen one with dimensions (numpy 2 would widen it)."""
    if (a.ndim == 0) != (b.ndim == 0):
        return (b if a.ndim == 0 else a).dtype
    return np.promote_types(a.dtype, b.dtype)


@in_child
@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                     max_side=5),
       st.sampled_from(sorted(BINARY)))
def test_binary_broadcasts_like_numpy(data, shapes, name):
    (a, ta), (b, tb) = (data.draw(operands(s)) for s in shapes.input_shapes)
    op = BINARY[name]
    note(f"{name} {a.dtype}{a.shape} {b.dtype}{b.shape}")
    with np.errstate(all="ignore"):
        want = op(a, b).astype(_result_type(a, b))
        _check(op(ta, tb), want, name)
        if a.ndim:                 # a scalar operand keeps the tensor's dtype (torch and numpy 2)
            s = float(b.flat[0]) if b.size else 2.5
            _check(op(ta, s), op(a, a.dtype.type(s)), f"{name} scalar")
            _check(op(s, ta), op(a.dtype.type(s), a), f"r{name} scalar")
    assert np.array_equal(ta.numpy(), a, equal_nan=True)      # inputs unchanged


@in_child
@given(st.data(), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
       st.sampled_from(sorted(UNARY)))
def test_unary_like_numpy(data, shape, name):
    a, ta = data.draw(operands(shape))
    note(f"{name} {a.dtype}{a.shape}")
    with np.errstate(all="ignore"):
        _check(getattr(ta, name)(), UNARY[name](a), name)


@in_child
@given(st.data(), st.sampled_from([(0,), (1,), (7,), (4097,), (3, 0, 2), (2, 3, 5)]),
       st.sampled_from(["add_", "sub_", "mul_", "div_", "lerp_"]))
def test_inplace_updates_write_through(data, shape, name):
    # in place into a view (transposed, strided or misaligned): the caller's array receives it
    a, ta = data.draw(operands(shape))
    b, tb = data.draw(operands(shape, dtype=a.dtype))
    before = a.copy()
    with np.errstate(all="ignore"):
        if name == "lerp_":
            ta.lerp_(tb, 0.25)
            want = before + 0.25 * (b - before)
        else:
            getattr(ta, name)(tb)
            want = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply,
                    "div_": np.divide}[name](before, b)
    _check(fo.from_numpy(np.array(a)), want.astype(a.dtype), name)


# ---- reductions and matmul -----------------------------------------------------------------------

@in_child
@given(st.data(), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7),
       st.sampled_from(["sum", "mean"]), st.booleans())
def test_reductions_like_numpy(data, shape, name, keepdim):
    a, ta = data.draw(operands(shape))
    scale = float(np.nansum(np.abs(np.where(np.isfinite(a), a, 0)))) + 1.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")           # numpy's "mean of empty slice"
        _check(getattr(ta, name)(), getattr(np, name)(a, dtype=a.dtype), name, scale)
        if a.ndim:
            dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
            want = getattr(np, name)(a, axis=dim, keepdims=keepdim, dtype=a.dtype)
            _check(getattr(ta, name)(dim=dim, keepdim=keepdim), want, f"{name}({dim})", scale)
    if a.size:
        _check(ta.max(), np.max(a), "max")
        _check(ta.min(), np.min(a), "min")
    else:
        with pytest.raises(RuntimeError):   # torch: a reduction of an empty tensor has no value
            ta.max()


@in_child
@given(st.data(), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20),
       st.sampled_from(DTYPES))
def test_matmul_and_its_grads(data, n, k, m, dtype):
    # small products run the C loop, those of >= 2048 multiply-adds BLAS: both are crossed
    a, _ = data.draw(operands((n, k), dtype=dtype, special=False))
    b, _ = data.draw(operands((k, m), dtype=dtype, special=False))
    w = np.random.default_rng(n * 441 + k * 21 + m).standard_normal((n, m)).astype(dtype)
    ta = fo.from_numpy(np.array(a)).requires_grad_()
    tb = fo.from_numpy(np.array(b)).requires_grad_()
    out = fo.from_numpy(a) @ fo.from_numpy(b)     # the views themselves, no grad
    scale = float(np.abs(a).sum() * np.abs(b).sum()) + 1.0
    _check(out, a @ b, "matmul", scale)
    ((ta @ tb) * fo.from_numpy(w)).sum().backward()
    if n and m:
        _check(ta.grad, w @ b.T, "grad a", scale)
        _check(tb.grad, a.T @ w, "grad b", scale)


# ---- autograd: random expressions against finite differences -------------------------------------

class Expr:
    """A random smooth expression of two inputs x, y (broadcasting), evaluated by either
    backend: ``ev(np)`` on numpy arrays (the finite-difference oracle), ``ev(fo)`` on tensors."""

    UN = ["tanh", "sin", "sigmoid", "square", "neg", "scale", "shift", "exp_tanh"]
    BIN = ["add", "sub", "mul", "div1"]

    def __init__(self, tree):
        self.tree = tree

    def __repr__(self):
        return repr(self.tree)

    @staticmethod
    def _un(name, v, is_np):
        if name == "tanh":
            return np.tanh(v) if is_np else v.tanh()
        if name == "sin":
            return np.sin(v) if is_np else v.sin()
        if name == "sigmoid":
            return 1 / (1 + np.exp(-v)) if is_np else v.sigmoid()
        if name == "square":
            return v * v if is_np else v.square()
        if name == "neg":
            return -v
        if name == "scale":
            return 0.7 * v
        if name == "shift":
            return v - 0.3
        return np.exp(np.tanh(v)) if is_np else v.tanh().exp()

    @staticmethod
    def _bin(name, u, v):
        if name == "add":
            return u + v
        if name == "sub":
            return u - v
        if name == "mul":
            return u * v
        return u / (1.0 + v * v)

    def ev(self, x, y, is_np):
        def go(t):
            if t == "x":
                return x
            if t == "y":
                return y
            if t[0] in self.UN:
                return self._un(t[0], go(t[1]), is_np)
            return self._bin(t[0], go(t[1]), go(t[2]))
        return go(self.tree)


_leaves = st.sampled_from(["x", "y"])
_trees = st.recursive(
    _leaves,
    lambda sub: st.one_of(st.tuples(st.sampled_from(Expr.UN), sub),
                          st.tuples(st.sampled_from(Expr.BIN), sub, sub)),
    max_leaves=6)


def _loss_np(expr, x, y, red, w):
    v = np.broadcast_to(expr.ev(x, y, True), np.broadcast_shapes(x.shape, y.shape))
    if red is not None:
        kind, dim, keep = red
        v = getattr(np, kind)(v, axis=dim, keepdims=keep)
    return float(np.sum(v * w))


def _fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


@in_child
@given(st.data(), _trees,
       hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_backward_matches_finite_differences(data, tree, shapes):
    expr = Expr(tree)
    sx, sy = shapes.input_shapes
    x, _ = data.draw(operands(sx, dtype=np.float64, special=False))
    y, _ = data.draw(operands(sy, dtype=np.float64, special=False))
    out_shape = np.broadcast_shapes(sx, sy)
    red = None
    if out_shape and data.draw(st.booleans()):
        red = (data.draw(st.sampled_from(["sum", "mean"])),
               data.draw(st.integers(-len(out_shape), len(out_shape) - 1)),
               data.draw(st.booleans()))
    red_shape = out_shape if red is None else \
        np.sum(np.zeros(out_shape), axis=red[1], keepdims=red[2]).shape
    w = np.random.default_rng(len(repr(tree))).standard_normal(red_shape)
    note(f"{expr} x{sx} y{sy} reduce={red}")

    tx = fo.from_numpy(x).requires_grad_()     # x, y may be strided or misaligned views
    ty = fo.from_numpy(y).requires_grad_()
    v = expr.ev(tx, ty, False)
    if not isinstance(v, fo.Tensor) or tuple(v.shape) != out_shape:
        v = v + fo.zeros(out_shape, dtype=fo.float64)      # an expression of x (or y) alone
    if red is not None:
        v = getattr(v, red[0])(dim=red[1], keepdim=red[2])
    loss = (v * fo.from_numpy(w)).sum()
    np.testing.assert_allclose(loss.item(), _loss_np(expr, x, y, red, w), rtol=1e-12,
                               atol=1e-12)
    loss.backward()
    for name, t, arr, f in (("x", tx, x, lambda z: _loss_np(expr, z, y, red, w)),
                            ("y", ty, y, lambda z: _loss_np(expr, x, z, red, w))):
        want = _fd_grad(f, np.array(arr))
        got = np.zeros_like(arr) if t.grad is None else t.grad.numpy()
        assert got.shape == arr.shape, (name, got.shape, arr.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"d loss / d {name}")


# ---- risky operands: values or a clean Python exception ------------------------------------------

RISKY_OPS = {
    "add": operator.add, "mul": operator.mul, "truediv": operator.truediv,
    "matmul": operator.matmul, "lt": operator.lt, "eq": operator.eq,
    "maximum": lambda a, b: a.maximum(b) if isinstance(a, fo.Tensor) else np.maximum(a, b),
    "sum_dim": lambda a, b: a.sum(dim=b.ndim - 1 if hasattr(b, "ndim") else 0),
    "exp": lambda a, b: a.exp(), "abs": lambda a, b: a.abs(), "neg": lambda a, b: -a,
    "max": lambda a, b: a.max(), "mean": lambda a, b: a.mean(),
    "getitem": lambda a, b: a[b.shape[0] if b.ndim else 0],
    "reshape": lambda a, b: a.reshape(-1, 2),
    "add_": lambda a, b: a.add_(b),
}
CLEAN = (RuntimeError, TypeError, ValueError, IndexError)


@st.composite
def risky_operand(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    a = _values(rng, shape, np.float64, draw(st.booleans()), scale=3.0)
    with np.errstate(all="ignore"):
        a = np.nan_to_num(a).astype(dtype) if dtype in (np.int64, np.bool_) else a.astype(dtype)
    return _laid_out(a, draw(st.sampled_from(LAYOUTS)))


@in_child
@given(risky_operand(), risky_operand(), st.sampled_from(sorted(RISKY_OPS)))
def test_risky_operands_give_values_or_clean_errors(a, b, name):
    note(f"{name} {a.dtype}{a.shape} {b.dtype}{b.shape}")
    ta, tb = fo.from_numpy(a), fo.from_numpy(b)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = RISKY_OPS[name](ta, tb)
    except CLEAN as e:
        # a builtin exception, not numpy's (AxisError, UFuncTypeError, ...) leaking through
        assert type(e).__module__ == "builtins", f"{type(e).__module__}.{type(e).__name__}: {e}"
        return
    assert isinstance(out, fo.Tensor), type(out)
    if name in ("add", "mul") and a.dtype.kind == "f" and b.dtype.kind == "f":
        # torch's promotion, not NumPy 2's: a 0-dim operand does not widen a dimensioned one
        dt = (b.dtype if a.ndim == 0 < b.ndim else a.dtype if b.ndim == 0 < a.ndim
              else np.result_type(a, b))
        with np.errstate(all="ignore"):
            _check(out, RISKY_OPS[name](a.astype(dt), b.astype(dt)), name)


# Defects these properties found, fixed, kept as tests: T1 (add_ into a bool tensor leaked numpy's
# UFuncTypeError), T2 (sum(dim=) out of range on a 0-dim tensor was ignored or leaked AxisError).
def test_bool_add_inplace_as_torch():
    t = fo.tensor([False, True])
    t.add_(fo.tensor(True))
    assert t.tolist() == [True, True]
    t = fo.tensor([True, True])
    t.mul_(fo.tensor([True, False]))
    assert t.tolist() == [True, False] and t.dtype == fo.bool
    with pytest.raises(RuntimeError, match="with two bool tensors is not supported"):
        t.sub_(fo.tensor([True, False]))
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired "
                       "output type Bool"):
        fo.tensor([False]).add_(1)
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired "
                       "output type Bool"):
        fo.tensor([False]).add_(fo.tensor([1]))


def test_int_sum_dim_out_of_range_as_torch():
    for t in (fo.tensor(3), fo.tensor(3.0), fo.tensor([True, False])):
        with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in "
                           r"range of \[-1, 0\], but got 1\)"):
            t.sum(dim=1)


# ---- the risky cases run in a child process ------------------------------------------------------

IMPORT_ROOT = pathlib.Path(fo.__file__).resolve().parents[1]   # the fastoptim imported here


@pytest.mark.skipif(CHILD, reason="this is the parent")
def test_tensor_properties_in_subprocess():
    env = dict(os.environ, FASTOPTIM_PROPERTIES_CHILD="1")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(pathlib.Path(__file__).resolve())],
        cwd=IMPORT_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = (out.stdout + out.stderr)[-8000:]
    assert out.returncode == 0, f"child exited with {out.returncode} (negative: a signal)\n{tail}"
    assert " passed" in out.stdout, tail
