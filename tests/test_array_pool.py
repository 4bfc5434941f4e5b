"""The array pool (fastoptim/_C/_tensor_dtypes.pxi): an array a dying tensor or a finished
backward drops is reused by the next _empty of its dtype and shape -- but only when nothing
else can see it.  These tests pin both halves: reuse happens (the speed it is for), and every
way an array can still be seen (a view, numpy(), np.asarray, a weak reference, another tensor
sharing it) keeps it out of the pool, so no one ever sees their data change under them."""
import gc
import weakref

import numpy as np
import pytest

import fastoptim
from fastoptim._C import _tensor as T


@pytest.fixture(autouse=True)
def empty_pool():
    gc.collect()
    T._pool_clear()
    yield
    T._pool_clear()


def _addr(t):
    return t.data_ptr()


def test_a_dead_tensors_array_is_reused_for_the_same_dtype_and_shape():
    x = fastoptim.randn(64, 10)
    y = x * 2.0
    addr = _addr(y)
    del y
    assert T._pool_size() == 1
    z = x * 3.0                                   # same dtype and shape: the pooled array
    assert _addr(z) == addr and T._pool_size() == 0
    np.testing.assert_array_equal(z.numpy(), x.numpy() * np.float32(3.0))


def test_other_dtypes_and_shapes_do_not_take_it():
    x = fastoptim.randn(64, 10)
    r = fastoptim.randn(64, 10, dtype=fastoptim.float64)
    xf = x.reshape(640)
    y = x * 2.0
    addr = _addr(y)
    del y
    a = r * 2.0                                    # other dtype
    b = xf * 2.0                                   # other shape
    assert T._pool_size() == 1
    assert _addr(a) != addr and _addr(b) != addr
    assert _addr(x * 2.0) == addr


@pytest.mark.parametrize("hold", ["numpy", "asarray", "view", "alias"])
def test_an_array_someone_can_still_see_is_never_reused(hold):
    x = fastoptim.randn(8, 5)
    y = x * 2.0
    want = y.numpy().copy()
    if hold == "numpy":
        kept = y.numpy()
    elif hold == "asarray":
        kept = np.asarray(y)
    elif hold == "view":
        kept = y[1:]
        want = want[1:]
    else:
        kept = y.detach()                          # another tensor on the same storage
    del y
    for _ in range(4):                             # would overwrite a reused array
        w = x * -7.0
        del w
    got = kept.numpy() if isinstance(kept, fastoptim.Tensor) else kept
    np.testing.assert_array_equal(got, want)


def test_a_weakly_referenced_array_is_not_pooled():
    x = fastoptim.randn(8, 5)
    y = x * 2.0
    a = y.numpy().base if y.numpy().base is not None else None
    assert a is not None
    r = weakref.ref(a)
    del a, y
    assert T._pool_size() == 0 and r() is None     # freed, not kept alive in the pool


def test_the_pool_is_bounded_and_takes_no_large_arrays():
    x = fastoptim.randn(4, 4)
    ys = [x * float(i) for i in range(20)]
    del ys
    assert T._pool_size() == 8
    big = fastoptim.randn(200, 200) * 2.0          # 160 KB: over the size limit
    del big
    assert T._pool_size() == 8


@pytest.mark.parametrize("dtype", [fastoptim.float32, fastoptim.float64])
def test_training_with_the_pool_gives_the_gradients_without_it(dtype):
    """A loop whose every step reuses pooled arrays for outputs and gradients gives the same
    numbers as fresh computations in numpy."""
    g = np.random.default_rng(1)
    w0 = g.standard_normal((10, 3))
    xs = [g.standard_normal((16, 10)) for _ in range(5)]
    w = fastoptim.tensor(w0, dtype=dtype, requires_grad=True)
    npd = np.float32 if dtype is fastoptim.float32 else np.float64
    acc = np.zeros((10, 3))
    for xn in xs:
        x = fastoptim.tensor(xn, dtype=dtype)
        loss = fastoptim.nn.functional.log_softmax(x @ w, 1).sum()
        loss.backward()
        z = xn.astype(npd) @ w0.astype(npd)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        acc += xn.T @ (1 - 3 * p)
    tol = 1e-4 if dtype is fastoptim.float32 else 1e-10
    np.testing.assert_allclose(w.grad.numpy(), acc, rtol=tol, atol=tol)
    assert T._pool_size() > 0                      # the loop did use the pool
