"""Reductions over dims against torch 2.13: sum, mean, prod, var/std (correction, unbiased),
norm (p, dim), max/min with indices (torch.return_types), argmax/argmin, logsumexp, cumsum,
any/all -- values, dtypes, shapes (dim an int or a tuple, keepdim), gradients and grad_fn
names, as methods and as fastoptim functions.

Why: ``logits.max(dim=1)``, ``x.std(0)``, ``(x - mu).norm(dim=1)`` are how tutorials write
classifiers and normalisation; each is an op with a backward in the op table
(_tensor_reduce.pxi), so it is held to torch over sizes 0/1/odd/large and both float dtypes.
"""
import math
import warnings

import numpy as np
import pytest

import fastoptim as fo


def _torch():
    return pytest.importorskip("torch")


TOL = {"float32": dict(rtol=2e-5, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}
SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (1, 9, 1), (64, 33)]


def _dims(shape):
    nd = len(shape)
    out = [None]
    if nd:
        out += [0, -1]
    if nd >= 2:
        out += [(0, -1), (1,)]
    if nd == 0:
        out += [0]
    return out


def _pair(shape, dt, seed=0, positive=False):
    torch = _torch()
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, shape) if positive else rng.normal(size=shape)
    x = np.asarray(x, dtype=dt)
    a = torch.tensor(x, requires_grad=True)
    b = fo.tensor(x, requires_grad=True)
    return a, b


def _close(ta, fb, dt):
    assert tuple(ta.shape) == tuple(fb.shape)
    assert str(ta.dtype)[6:] == str(fb.dtype)[10:]
    np.testing.assert_allclose(fb.detach().numpy(), ta.detach().numpy(), **TOL[dt],
                               equal_nan=True)


def _check(fn, shape, dt, seed=0, positive=False, grad=True, name=None):
    """fn(T, x) computed by torch and fastoptim: values and, from a random upstream gradient,
    the input gradient and grad_fn name."""
    a, b = _pair(shape, dt, seed, positive)
    ra, rb = fn(_torch(), a), fn(fo, b)
    _close(ra, rb, dt)
    if not grad:
        return
    assert type(ra.grad_fn).__name__ == rb.grad_fn.name()
    g = np.random.default_rng(seed + 1).normal(size=tuple(ra.shape)).astype(dt)
    ra.backward(_torch().tensor(g))
    rb.backward(fo.tensor(g))
    if a.grad is None:   # torch's backward gave no gradient (norm p=0): ours is zero
        assert b.grad is None or not b.grad.numpy().any()
        return
    _close(a.grad, b.grad, dt)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_over_dims(dt, shape, keepdim):
    for d in _dims(shape):
        if d is None and keepdim:
            continue
        kw = {} if d is None else {"dim": d, "keepdim": keepdim}
        _check(lambda T, x, kw=kw: x.sum(**kw), shape, dt)
        if math.prod(shape) > 0:
            _check(lambda T, x, kw=kw: T.mean(x, **kw), shape, dt)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_prod(dt, shape, keepdim):
    for d in [None] + ([0, -1] if shape else [0]):
        kw = {} if d is None else {"dim": d, "keepdim": keepdim}
        _check(lambda T, x, kw=kw: x.prod(**kw), shape, dt, positive=True)
        _check(lambda T, x, kw=kw: T.prod(x, **kw), shape, dt)


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_prod_gradient_with_zeros(dt):
    torch = _torch()
    for x in ([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0]], [[1.0, 0.0], [2.0, 5.0]]):
        for d in (None, 0, 1):
            a = torch.tensor(x, dtype=getattr(torch, dt), requires_grad=True)
            b = fo.tensor(x, dtype=getattr(fo, dt), requires_grad=True)
            (a.prod() if d is None else a.prod(d)).sum().backward()
            (b.prod() if d is None else b.prod(d)).sum().backward()
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), **TOL[dt])


def test_prod_integers_and_dtype():
    torch = _torch()
    for x in ([1, 2, 3], [True, False]):
        assert fo.tensor(x).prod().tolist() == torch.tensor(x).prod().tolist()
        assert fo.tensor(x).prod().dtype is fo.int64
    assert fo.tensor([1, 2]).prod(dtype=fo.float64).dtype is fo.float64
    with pytest.raises(TypeError, match="prod\\(\\): argument 'dim' must be int"):
        fo.ones(2, 3).prod(dim=(0, 1))


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4), (200, 3)])
@pytest.mark.parametrize("op", ["std", "var"])
def test_std_var(dt, shape, op):
    for d in _dims(shape):
        for kw in ({}, {"correction": 0}, {"unbiased": False}, {"correction": 2},
                   {"keepdim": True}):
            if d is None and kw.get("keepdim"):
                continue
            n = math.prod(shape) if d is None else math.prod(
                shape[k] for k in ((d,) if isinstance(d, int) else d))
            if n <= kw.get("correction", 0 if kw.get("unbiased") is False else 1):
                continue
            args = () if d is None else (d,)
            _check(lambda T, x, kw=kw, args=args, op=op: getattr(x, op)(*args, **kw), shape, dt)
            _check(lambda T, x, kw=kw, args=args, op=op: getattr(T, op)(x, *args, **kw), shape, dt)


def test_std_var_overloads_warnings_and_errors():
    torch = _torch()
    x = [[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]]
    a, b = torch.tensor(x), fo.tensor(x)
    for call in (lambda t: t.std(1, True), lambda t: t.std(False),
                 lambda t: t.var(0, False, True),
                 lambda t: t.var(dim=1, correction=0, keepdim=True),
                 lambda t: t.std(unbiased=True)):
        np.testing.assert_allclose(call(b).numpy(), call(a).numpy(), rtol=1e-6)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = fo.tensor([1.0]).std()
    assert math.isnan(r.item())
    assert any("degrees of freedom is <= 0" in str(m.message) for m in w)
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        fo.tensor([1, 2]).std()
    with pytest.raises(RuntimeError, match="Cannot specify both unbiased and correction"):
        fo.ones(3).var(unbiased=True, correction=0)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4), (100, 3)])
@pytest.mark.parametrize("p", [2, 1, 3, 0.5, 1.5, float("inf"), -float("inf"), 0, "fro"])
def test_norm(dt, shape, p):
    for d in _dims(shape):
        for keepdim in (False, True):
            if d is None and keepdim:
                continue
            kw = {"p": p} if d is None else {"p": p, "dim": d, "keepdim": keepdim}
            _check(lambda T, x, kw=kw: x.norm(**kw), shape, dt, seed=3)
            _check(lambda T, x, kw=kw: T.norm(x, **kw), shape, dt, seed=4)


def test_norm_at_zero_and_errors():
    torch = _torch()
    for p in (2, 3, 1.5):
        a, b = torch.zeros(3, requires_grad=True), fo.zeros(3, requires_grad=True)
        a.norm(p).backward()
        b.norm(p).backward()
        assert b.grad.tolist() == a.grad.tolist()
    with pytest.raises(RuntimeError, match="linalg.vector_norm: Expected a floating point"):
        fo.tensor([1, 2]).norm()
    with pytest.raises(NotImplementedError, match="'nuc'"):
        fo.ones(2, 2).norm(p="nuc")
    assert fo.tensor([3, 4]).norm(dtype=fo.float64).item() == 5.0


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 4), (1, 9, 1), (64, 33)])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_over_a_dim(dt, shape, op):
    torch = _torch()
    for d in range(-len(shape), len(shape)):
        for keepdim in (False, True):
            a, b = _pair(shape, dt, seed=d + 5)
            ra, rb = getattr(a, op)(d, keepdim=keepdim), getattr(b, op)(dim=d, keepdim=keepdim)
            assert type(rb).__name__ == op and type(rb).__module__ == "fastoptim.return_types"
            _close(ra.values, rb.values, dt)
            assert rb.indices.tolist() == ra.indices.tolist()
            assert rb.indices.dtype is fo.int64
            v, i = getattr(fo, op)(b, d, keepdim)         # tuple unpacking, function form
            assert v.equal(rb.values) and i.equal(rb.indices)
            assert rb[0] is rb.values
            assert rb.values.grad_fn.name() == type(ra.values.grad_fn).__name__
            g = np.random.default_rng(1).normal(size=tuple(ra.values.shape)).astype(dt)
            ra.values.backward(torch.tensor(g))
            rb.values.backward(fo.tensor(g))
            _close(a.grad, b.grad, dt)


def test_max_min_dim_ties_nan_ints_and_errors():
    torch = _torch()
    for x in ([[1.0, 3.0, 3.0], [2.0, 2.0, 1.0]], [[1.0, float("nan"), 3.0], [0.0, 0.0, 0.0]],
              [[1, 5, 5], [7, 2, 7]]):
        a, b = torch.tensor(x), fo.tensor(x)
        for op in ("max", "min"):
            for d in (0, 1):
                ra, rb = getattr(a, op)(d), getattr(b, op)(d)
                np.testing.assert_array_equal(rb.values.numpy(), ra.values.numpy())
                assert rb.indices.tolist() == ra.indices.tolist()
    assert "fastoptim.return_types.max(\nvalues=tensor([2.]),\nindices=tensor([1]))" == \
        repr(fo.tensor([[1.0, 2.0]]).max(1))
    with pytest.raises(IndexError, match="max\\(\\): Expected reduction dim 1 to have non-zero"):
        fo.ones(2, 0).max(1)
    assert fo.ones(2, 0).max(0).values.shape == (0,)
    with pytest.raises(IndexError, match="Dimension out of range"):
        fo.ones(2).max(dim=1)
    assert fo.tensor(3.0).max(0).indices.item() == 0
    # max(other) stays element-wise
    assert fo.max(fo.tensor([1.0, 4.0]), fo.tensor([3.0, 2.0])).tolist() == [3.0, 4.0]
    assert fo.tensor([1.0, 4.0]).max(other=fo.tensor([3.0, 2.0])).tolist() == [3.0, 4.0]


def test_argmax_argmin():
    torch = _torch()
    rng = np.random.default_rng(0)
    for shape in [(1,), (7,), (3, 5), (2, 3, 4)]:
        x = rng.integers(0, 4, shape).astype(np.float32)    # ties: the first index wins
        a, b = torch.tensor(x), fo.tensor(x)
        for op in ("argmax", "argmin"):
            for kw in ({}, {"keepdim": True}, {"dim": 0}, {"dim": -1, "keepdim": True}):
                ra, rb = getattr(a, op)(**kw), getattr(fo, op)(b, **kw)
                assert rb.dtype is fo.int64
                assert tuple(rb.shape) == tuple(ra.shape)
                assert rb.tolist() == ra.tolist()
    with pytest.raises(RuntimeError, match="argmax\\(\\): Expected reduction dim to be specified"):
        fo.ones(0).argmax()


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4), (64, 33)])
def test_logsumexp(dt, shape):
    for d in [0, -1] + ([(0, 1)] if len(shape) >= 2 else []):
        for keepdim in (False, True):
            _check(lambda T, x, d=d, keepdim=keepdim: T.logsumexp(x * 30, d, keepdim=keepdim),
                   shape, dt)
            _check(lambda T, x, d=d: x.logsumexp(dim=d), shape, dt)


def test_logsumexp_infinities_and_ints():
    torch = _torch()
    for x in ([float("-inf"), float("-inf")], [float("inf"), 1.0], [1000.0, 1000.0]):
        assert fo.tensor(x).logsumexp(0).item() == torch.tensor(x).logsumexp(0).item()
    assert fo.tensor([1, 2]).logsumexp(0).dtype is fo.float32


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4), (1000,)])
def test_cumsum(dt, shape):
    for d in ([0, -1] if shape else [0]):
        _check(lambda T, x, d=d: x.cumsum(d), shape, dt)
        _check(lambda T, x, d=d: T.cumsum(x, dim=d), shape, dt)


def test_cumsum_ints_and_dtype():
    torch = _torch()
    for x in ([1, 2, 3], [True, True, False]):
        assert fo.cumsum(fo.tensor(x), 0).tolist() == torch.cumsum(torch.tensor(x), 0).tolist()
        assert fo.tensor(x).cumsum(0).dtype is fo.int64
    assert fo.tensor([1, 2], dtype=fo.int32).cumsum(0).dtype is fo.int64
    assert fo.tensor([1, 2]).cumsum(0, dtype=fo.float64).dtype is fo.float64


def test_any_all_over_dims():
    torch = _torch()
    x = [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    a, b = torch.tensor(x), fo.tensor(x)
    for op in ("any", "all"):
        for kw in ({}, {"dim": 0}, {"dim": 1, "keepdim": True}):
            ra, rb = getattr(a, op)(**kw), getattr(fo, op)(b, **kw)
            assert rb.dtype is fo.bool_ and rb.tolist() == ra.tolist()
            assert tuple(rb.shape) == tuple(ra.shape)


def test_reductions_reject_bad_dims():
    x = fo.ones(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.std(5)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        x.var((0, 0))
    with pytest.raises(TypeError, match="dim must be an int or a tuple"):
        x.norm(dim="a")
