"""The tensor protocol and the legacy spellings against torch 2.13: where, clamp with tensor
bounds and lerp (values, promotion, gradients, errors); __format__, tolist, comparisons as bool
tensors, any/all, eq, allclose, isnan/isfinite/isinf; integer and bool tensors computing without
numpy's messages; FloatTensor/LongTensor/DoubleTensor, t.type(...), .long()/.float()/.double()/
.int()/.bool().

Why: these are what tutorial code touches between the model and the optimizer --
``print(f"loss {loss:.4f}")``, ``correct += (pred == y).sum()``, ``torch.where(mask, a, b)``,
``x.type(torch.FloatTensor)`` -- and each must behave exactly as torch's does.
"""
import numpy as np
import pytest

import fastoptim as fo


def _torch():
    return pytest.importorskip("torch")


def _same(ta, fb):
    assert str(ta.dtype)[6:] == str(fb.dtype)[10:]
    assert tuple(ta.shape) == tuple(fb.shape)
    np.testing.assert_allclose(fb.detach().numpy(), ta.detach().numpy(), rtol=1e-6, atol=1e-7,
                               equal_nan=True)


def _grads(fn, *arrays, dt="float32"):
    """fn(T, *tensors) in torch and fastoptim, every operand requiring grad: values, grad_fn
    name and each operand's gradient from a random upstream gradient."""
    torch = _torch()
    ta = [torch.tensor(np.asarray(a, dtype=dt), requires_grad=True) for a in arrays]
    fa = [fo.tensor(np.asarray(a, dtype=dt), requires_grad=True) for a in arrays]
    ra, rb = fn(torch, *ta), fn(fo, *fa)
    _same(ra, rb)
    assert type(ra.grad_fn).__name__ == rb.grad_fn.name()
    g = np.random.default_rng(0).normal(size=tuple(ra.shape)).astype(dt)
    ra.backward(torch.tensor(g))
    rb.backward(fo.tensor(g))
    for x, y in zip(ta, fa):
        if x.grad is None:
            assert y.grad is None or not y.grad.numpy().any()
        else:
            _same(x.grad, y.grad)


# ---- where / clamp with tensor bounds / lerp -----------------------------------------------

@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shapes", [((5,), (5,), (5,)), ((3, 4), (4,), (3, 1)), ((), (), ()),
                                    ((2, 3), (), (2, 3)), ((0,), (0,), (1,))])
def test_where_values_and_gradients(dt, shapes):
    torch = _torch()
    rng = np.random.default_rng(1)
    cs, xs, ys = shapes
    c = rng.uniform(size=cs) > 0.5
    x, y = rng.normal(size=xs), rng.normal(size=ys)
    _grads(lambda T, a, b: T.where(T.tensor(c), a, b), x, y, dt=dt)
    _grads(lambda T, a, b: a.where(T.tensor(c), b), x, y, dt=dt)
    assert fo.where(fo.tensor(c), fo.tensor(x), 0.0).tolist() == \
        torch.where(torch.tensor(c), torch.tensor(x), 0.0).tolist()


def test_where_promotion_single_argument_and_errors():
    torch = _torch()
    c = [True, False, True]
    for x, y in [([1, 2, 3], 0.5), ([1, 2, 3], 7), (1.0, 0.0), (2, 3),
                 ([1.0, 2.0, 3.0], [0, 0, 0])]:
        tx = torch.tensor(x) if isinstance(x, list) else x
        ty = torch.tensor(y) if isinstance(y, list) else y
        fx = fo.tensor(x) if isinstance(x, list) else x
        fy = fo.tensor(y) if isinstance(y, list) else y
        _same(torch.where(torch.tensor(c), tx, ty), fo.where(fo.tensor(c), fx, fy))
    f64 = fo.where(fo.tensor(c), fo.ones(3, dtype=fo.float64), fo.zeros(3))
    assert f64.dtype is fo.float64
    m = [[0.0, 1.0], [2.0, 0.0]]
    for a, b in zip(torch.where(torch.tensor(m) > 0), fo.where(fo.tensor(m) > 0)):
        assert a.tolist() == b.tolist() and b.dtype is fo.int64
    with pytest.raises(RuntimeError, match="where expected condition to be a boolean tensor, but "
                                           "got a tensor with dtype Float"):
        fo.where(fo.tensor([1.0, 0.0]), fo.ones(2), fo.zeros(2))
    with pytest.raises(RuntimeError, match="The size of tensor a \\(2\\) must match the size of "
                                           "tensor b \\(3\\) at non-singleton dimension 0"):
        fo.where(fo.tensor([True, False]), fo.ones(3), fo.zeros(3))


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_clamp_with_tensor_bounds(dt):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 5))
    lo, hi = rng.normal(size=(5,)) - 0.5, rng.normal(size=(4, 1)) + 0.5
    _grads(lambda T, a, b, c: T.clamp(a, min=b, max=c), x, lo, hi, dt=dt)
    _grads(lambda T, a, b: a.clamp(min=b), x, lo, dt=dt)
    _grads(lambda T, a, c: T.clamp(a, max=c), x, hi, dt=dt)
    _grads(lambda T, a, b, c: a.clip(b, c), x, hi, lo, dt=dt)       # min > max: max wins
    torch = _torch()
    nan = [float("nan"), 1.0, 5.0]
    _same(torch.clamp(torch.tensor(nan), torch.zeros(3), torch.tensor([2.0, float("nan"), 2.0])),
          fo.clamp(fo.tensor(nan), fo.zeros(3), fo.tensor([2.0, float("nan"), 2.0])))
    _same(torch.clamp(torch.tensor([1, 5, -3]), torch.tensor([0, 0, 0]), torch.tensor([2, 2, 2])),
          fo.clamp(fo.tensor([1, 5, -3]), fo.tensor([0, 0, 0]), fo.tensor([2, 2, 2])))
    _same(torch.clamp(torch.tensor([1, 5, -3]), min=torch.tensor([0.5, 0.5, 0.5])),
          fo.clamp(fo.tensor([1, 5, -3]), min=fo.tensor([0.5, 0.5, 0.5])))
    # 0-dim bounds that need no grad stay the scalar kernel (ClampBackward1), as torch
    x1 = fo.ones(3, requires_grad=True)
    assert x1.clamp(fo.tensor(0.0), fo.tensor(2.0)).grad_fn.name() == "ClampBackward1"


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("weight", [0.25, 0.5, 0.75, -0.3, 1.7])
def test_lerp_scalar_weight(dt, weight):
    rng = np.random.default_rng(3)
    x, e = rng.normal(size=(3, 4)), rng.normal(size=(4,))
    _grads(lambda T, a, b: T.lerp(a, b, weight), x, e, dt=dt)
    _grads(lambda T, a, b: a.lerp(b, weight), x, e, dt=dt)


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_lerp_tensor_weight(dt):
    rng = np.random.default_rng(4)
    x, e, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.uniform(-0.5, 1.5, (4,))
    _grads(lambda T, a, b, c: T.lerp(a, b, c), x, e, w, dt=dt)
    _grads(lambda T, a, b, c: T.lerp(a, b, c), rng.normal(size=()), rng.normal(size=(5,)),
           rng.uniform(size=(5,)), dt=dt)


def test_lerp_errors_as_torch():
    torch = _torch()
    for call in (lambda T: T.lerp(T.tensor([1.0]), T.tensor([1.0], dtype=T.float64), 0.5),
                 lambda T: T.tensor([1.0]).lerp(T.tensor([2]), 0.5)):
        with pytest.raises(RuntimeError) as te:
            call(torch)
        with pytest.raises(RuntimeError) as fe:
            call(fo)
        assert str(fe.value) == str(te.value)


# ---- __format__, tolist, comparisons, any/all, eq, allclose, isnan ---------------------------

def test_format_as_torch():
    torch = _torch()
    for v, spec in [(3.14159, ".3f"), (2.5, ""), (2.5, "8.2e"), (7, "d"), (7, "05d"),
                    (True, ""), (1e-8, ".2g")]:
        assert format(fo.tensor(v), spec) == format(torch.tensor(v), spec)
    assert f"{fo.tensor([1.0, 2.0])}" == str(fo.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="unsupported format string"):
        format(fo.tensor([1.0, 2.0]), ".2f")
    loss = (fo.ones(3, requires_grad=True) * 2).sum()
    assert f"{loss:.4f}" == "6.0000"


def test_tolist_and_item_types():
    torch = _torch()
    for x in ([[1.5, 2.0]], [1, 2], [True, False], 3.0, 7):
        a, b = torch.tensor(x).tolist(), fo.tensor(x).tolist()
        assert a == b and type(a) is type(b)
        if isinstance(a, list):
            assert [type(v) for v in np.ravel(a)] == [type(v) for v in np.ravel(b)]


def test_comparisons_give_bool_tensors():
    torch = _torch()
    xs = [1.0, 2.0, 3.0]
    a, b = torch.tensor(xs), fo.tensor(xs)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        for other in (2.0, [3.0, 2.0, 1.0]):
            to = torch.tensor(other) if isinstance(other, list) else other
            fob = fo.tensor(other) if isinstance(other, list) else other
            ra, rb = getattr(torch, name)(a, to), getattr(fo, name)(b, fob)
            assert rb.dtype is fo.bool_ and rb.tolist() == ra.tolist()
            assert getattr(b, name)(fob).tolist() == ra.tolist()
    assert (b > 1.5).dtype is fo.bool_
    assert (fo.tensor([1, 2]) == fo.tensor([1, 3])).tolist() == [True, False]
    correct = fo.tensor(0)
    correct += (fo.tensor([1, 2, 3]) == fo.tensor([1, 0, 3])).sum()
    assert correct.item() == 2 and correct.dtype is fo.int64


def test_any_all_allclose_isnan_isfinite_isinf():
    torch = _torch()
    x = [0.0, 1.0, float("nan"), float("inf"), -float("inf")]
    a, b = torch.tensor(x), fo.tensor(x)
    for name in ("isnan", "isfinite", "isinf"):
        assert getattr(fo, name)(b).tolist() == getattr(torch, name)(a).tolist()
        assert getattr(b, name)().dtype is fo.bool_
    for v in ([0.0, 1.0], [1, 1], [False, False], []):
        assert fo.tensor(v).any().item() == torch.tensor(v).any().item()
        assert fo.all(fo.tensor(v)).item() == torch.all(torch.tensor(v)).item()
        assert fo.tensor(v).any().dtype is fo.bool_
    assert fo.allclose(fo.tensor([1.0, 2.0]), fo.tensor([1.0, 2.0000001]))
    assert not fo.tensor([1.0, float("nan")]).allclose(fo.tensor([1.0, float("nan")]))
    assert fo.tensor([1.0, float("nan")]).allclose(fo.tensor([1.0, float("nan")]),
                                                   equal_nan=True)
    assert fo.eq(fo.tensor([1.0, 2.0]), 2.0).tolist() == [False, True]


def test_integer_and_bool_tensors_compute_without_numpy_messages():
    torch = _torch()
    cases = [lambda T: T.tensor(2) + T.tensor(3), lambda T: T.tensor(2) - T.tensor(3),
             lambda T: T.tensor(2) * T.tensor(3), lambda T: T.tensor(3) / T.tensor(2),
             lambda T: T.tensor(2) ** T.tensor(3), lambda T: T.tensor(2) + 1,
             lambda T: 1 - T.tensor(2), lambda T: T.tensor(2) * 3, lambda T: T.tensor(2) * 1.5,
             lambda T: T.tensor(3) / 2, lambda T: T.tensor(True) + T.tensor(True),
             lambda T: T.tensor([1, 2]) + T.tensor(1), lambda T: T.tensor(2) * T.tensor(1.5),
             lambda T: T.maximum(T.tensor(2), T.tensor(5)), lambda T: -T.tensor(4),
             lambda T: T.tensor(5).sum(), lambda T: abs(T.tensor(-3))]
    for call in cases:
        _same(call(torch), call(fo))
    n = fo.tensor(0)
    n += 1
    n += fo.tensor(2)
    assert n.item() == 3 and n.dtype is fo.int64 and n.shape == ()
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):
        n += 0.5


# ---- legacy spellings ------------------------------------------------------------------------

def test_legacy_typed_constructors():
    torch = _torch()
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor"):
        tcls, fcls = getattr(torch, name), getattr(fo, name)
        _same(tcls([1, 0, 2]), fcls([1, 0, 2]))
        assert fcls(2, 3).shape == (2, 3) and fcls(2, 3).dtype is fcls.dtype
        assert fcls(fo.Size([4])).shape == (4,)
        assert fcls().shape == (0,)
        assert isinstance(fcls([1]), fcls)
        assert isinstance(fcls([1]), fo.Tensor)
    assert not isinstance(fo.zeros(2, dtype=fo.float64), fo.FloatTensor)
    assert isinstance(fo.zeros(2), fo.FloatTensor)
    assert fo.Tensor(2, 3).shape == (2, 3) and fo.Tensor([1, 2]).dtype is fo.float32
    x = fo.tensor([1.0])
    assert fo.FloatTensor(x) is x
    with pytest.raises(TypeError, match="new\\(\\): data must be a sequence \\(got float\\)"):
        fo.FloatTensor(3.5)
    with pytest.raises(TypeError, match="expected fastoptim.float32 \\(got fastoptim.int64\\)"):
        fo.FloatTensor(fo.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        fo.FloatTensor(-1)


def test_type_and_cast_methods():
    torch = _torch()
    a, b = torch.tensor([1.7, -2.2]), fo.tensor([1.7, -2.2])
    assert b.type() == "fastoptim.FloatTensor" and a.type() == "torch.FloatTensor"
    assert fo.tensor([1, 2]).type() == "fastoptim.LongTensor"
    for ttype, ftype in [(torch.DoubleTensor, fo.DoubleTensor), (torch.LongTensor, fo.LongTensor),
                         (torch.IntTensor, fo.IntTensor),
                         ("torch.DoubleTensor", "torch.DoubleTensor"),
                         ("torch.LongTensor", "fastoptim.LongTensor"), (torch.int64, fo.int64)]:
        _same(a.type(ttype), b.type(ftype))
    assert b.type(fo.FloatTensor) is b
    with pytest.raises(ValueError, match="invalid type: 'foo'"):
        b.type("foo")
    for m in ("long", "float", "double", "int", "bool"):
        _same(getattr(a, m)(), getattr(b, m)())
    w = fo.tensor([1.5], requires_grad=True)
    w.double().sum().backward()          # casts between floats are differentiable
    assert w.grad.tolist() == [1.0] and w.grad.dtype is fo.float32
