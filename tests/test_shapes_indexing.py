"""Shape ops, indexing and batched matmul against torch: values, gradients, grad_fn names,
storage sharing of views, and torch's error texts.

Why: tutorials reshape, slice, concatenate and gather all the time, and each of these ops is
differentiable in torch; a wrong gradient through a view would train silently wrong.  One table
of cases drives the value/gradient tests (float32 and float64, sizes down to 0 and 1); each
case is a function of the module (fastoptim or torch) and an input tensor.
"""
import warnings

import numpy as np
import pytest

import fastoptim as fo


def _torch():
    return pytest.importorskip("torch")


def _idx(M, a):
    return M.tensor(np.asarray(a, dtype=np.int64))


# name -> (input shape, fn(M, x)); fn returns a tensor or a tuple of tensors
CASES = {
    "cat dim 1": ((2, 3, 4), lambda M, x: M.cat([x, x * 2, x[:, :1]], dim=1)),
    "cat dim -1": ((2, 3, 4), lambda M, x: M.cat((x, x), -1)),
    "cat with empty 1-D": ((3, 2), lambda M, x: M.cat([x, M.zeros(0), x])),
    "cat of size-0 dim": ((0, 3), lambda M, x: M.cat([x, x])),
    "stack dim 0": ((2, 3), lambda M, x: M.stack([x, x * 3])),
    "stack dim -1": ((5,), lambda M, x: M.stack([x, x + 1, x * x], dim=-1)),
    "flatten 1..2": ((2, 3, 4), lambda M, x: x.flatten(1, 2)),
    "flatten fn": ((2, 3, 4), lambda M, x: M.flatten(x, 1)),
    "unflatten": ((2, 12), lambda M, x: x.unflatten(1, (3, -1))),
    "unflatten fn": ((6,), lambda M, x: M.unflatten(x, 0, (2, 3))),
    "unsqueeze/squeeze dim": ((3, 4), lambda M, x: x.unsqueeze(1).unsqueeze(-1).squeeze(1)),
    "squeeze dims tuple": ((1, 3, 1, 2), lambda M, x: x.squeeze((0, 2))),
    "squeeze non-1 dim": ((3, 2), lambda M, x: x.squeeze(0)),
    "permute": ((2, 3, 4), lambda M, x: x.permute(2, 0, 1)),
    "permute tuple fn": ((2, 3, 4), lambda M, x: M.permute(x, (1, 2, 0))),
    "transpose": ((2, 3, 4), lambda M, x: x.transpose(0, 2)),
    "t": ((3, 5), lambda M, x: x.t()),
    "T 2-D": ((3, 5), lambda M, x: x.T),
    "mT": ((2, 3, 5), lambda M, x: x.mT),
    "movedim": ((2, 3, 4), lambda M, x: x.movedim(0, 2)),
    "movedim tuples": ((2, 3, 4, 5), lambda M, x: x.movedim((0, 1), (3, 0))),
    "expand": ((3, 1), lambda M, x: x.expand(2, 3, 4)),
    "expand -1": ((1, 4), lambda M, x: x.expand(5, -1)),
    "expand_as": ((4,), lambda M, x: x.expand_as(M.zeros(3, 4))),
    "expand 0-d": ((), lambda M, x: x.expand(3)),
    "repeat": ((2, 3), lambda M, x: x.repeat(2, 3)),
    "repeat new dims": ((3,), lambda M, x: x.repeat(2, 1, 2)),
    "narrow": ((4, 5), lambda M, x: x.narrow(1, 1, 3)),
    "narrow negative start": ((4, 5), lambda M, x: M.narrow(x, 0, -2, 2)),
    "split int": ((7, 2), lambda M, x: x.split(3)),
    "split sizes": ((2, 6), lambda M, x: M.split(x, [1, 0, 5], 1)),
    "chunk": ((7, 3), lambda M, x: x.chunk(3)),
    "chunk fewer": ((2, 5), lambda M, x: M.chunk(x, 4, dim=1)),
    "unbind": ((3, 2), lambda M, x: x.unbind(1)),
    "select": ((3, 4), lambda M, x: x.select(1, -1)),
    "gather": ((2, 3, 4), lambda M, x: x.gather(2, _idx(M, [[[0, 1], [3, 3], [2, 0]]] * 2))),
    "gather smaller index": ((3, 4), lambda M, x: M.gather(x, 0, _idx(M, [[2, 0], [0, 0]]))),
    "gather repeated": ((5,), lambda M, x: x.gather(0, _idx(M, [1, 1, 1, 4]))),
    "index_select": ((3, 4), lambda M, x: x.index_select(1, _idx(M, [3, 0, 3]))),
    "index_select fn dim 0": ((3, 4), lambda M, x: M.index_select(x, 0, _idx(M, [2, 2]))),
    "index_select empty": ((3, 4), lambda M, x: x.index_select(0, _idx(M, np.zeros(0)))),
    "int tensor index": ((4, 3), lambda M, x: x[_idx(M, [3, 0, 3])]),
    "int tensor index dim 1": ((4, 3), lambda M, x: x[:, _idx(M, [2, 2, 0])]),
    "two int tensors": ((4, 3), lambda M, x: x[_idx(M, [1, 3]), _idx(M, [0, 2])]),
    "bool mask": ((4, 3), lambda M, x: x[x > 0.1]),
    "bool rows": ((4, 3), lambda M, x: x[M.tensor([True, False, True, True])]),
    "list index": ((4, 3), lambda M, x: x[[0, 2, 2]]),
    "basic slices": ((4, 5), lambda M, x: x[1:, ::2]),
    "matmul 3d@3d": ((2, 3, 4), lambda M, x: M.matmul(x, x.transpose(1, 2))),
    "matmul 3d@2d": ((2, 3, 4), lambda M, x: x @ M.arange(20.0).reshape(4, 5).to(x.dtype)),
    "matmul 2d@3d": ((3, 4), lambda M, x: x @ M.ones(2, 4, 3, dtype=x.dtype)),
    "matmul 3d@1d": ((2, 3, 4), lambda M, x: x @ M.arange(4.0).to(x.dtype)),
    "matmul 1d@3d": ((3,), lambda M, x: x @ M.ones(2, 3, 5, dtype=x.dtype)),
    "matmul batch broadcast": ((2, 1, 3, 4), lambda M, x: x @ M.ones(5, 4, 2, dtype=x.dtype)),
    "matmul both 4-D": ((2, 3, 1, 4), lambda M, x: x @ x.transpose(-1, -2)),
    "bmm": ((2, 3, 4), lambda M, x: M.bmm(x, x.transpose(1, 2))),
    "matmul empty batch": ((0, 3, 4), lambda M, x: x @ M.ones(4, 2, dtype=x.dtype)),
}


def _tuple(r):
    return tuple(r) if isinstance(r, (tuple, list)) else (r,)


def _run(M, name, dt, seed=0):
    shape, fn = CASES[name]
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dt)
    x = M.tensor(a, requires_grad=True)
    outs = _tuple(fn(M, x))
    # a random upstream gradient per output: tests every element's gradient, not just a sum
    loss = None
    for o in outs:
        w = M.tensor(rng.standard_normal(tuple(o.shape)).astype(dt))
        term = (o * w).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    return [o.detach().numpy() for o in outs], x.grad.numpy(), [o.grad_fn for o in outs]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_value_and_gradient_match_torch(name, dt):
    torch = _torch()
    fo_vals, fo_grad, _ = _run(fo, name, dt)
    t_vals, t_grad, _ = _run(torch, name, dt)
    tol = dict(rtol=1.3e-6, atol=1e-5) if dt == np.float32 else dict(rtol=1e-7, atol=1e-7)
    assert len(fo_vals) == len(t_vals)
    for f, t in zip(fo_vals, t_vals):
        assert f.shape == t.shape and f.dtype == t.dtype
        np.testing.assert_allclose(f, t, **tol)
    assert fo_grad.dtype == t_grad.dtype
    np.testing.assert_allclose(fo_grad, t_grad, **tol)


NAMED = ["cat dim 1", "stack dim 0", "permute", "movedim", "expand", "repeat", "narrow",
         "split int", "split sizes", "chunk", "unbind", "select", "gather", "index_select",
         "int tensor index", "matmul 3d@3d", "matmul 3d@1d", "bmm", "mT"]


@pytest.mark.parametrize("name", NAMED)
def test_grad_fn_names_match_torch(name):
    torch = _torch()
    fo_fns = _run(fo, name, np.float64)[2]
    t_fns = _run(torch, name, np.float64)[2]
    assert [f.name() for f in fo_fns] == [t.name() for t in t_fns]


def test_T_on_3d_reverses_dims_with_torchs_warning():
    x = fo.zeros(2, 3, 4)
    with pytest.warns(UserWarning, match="The use of `x.T` on tensors of dimension other than 2"):
        assert x.T.shape == (4, 3, 2)


# ---- views share storage: a write through the view shows in the base, as in torch --------------

VIEWS = {
    "permute": lambda x: x.permute(1, 0, 2),
    "transpose": lambda x: x.transpose(0, 2),
    "mT": lambda x: x.mT,
    "narrow": lambda x: x.narrow(2, 1, 2),
    "split": lambda x: x.split(1, 1)[1],
    "chunk": lambda x: x.chunk(2, 2)[1],
    "unbind": lambda x: x.unbind(0)[1],
    "select": lambda x: x.select(1, 2),
    "unflatten": lambda x: x.unflatten(2, (2, 2)),
    "movedim": lambda x: x.movedim(2, 0),
    "view": lambda x: x.view(6, 4),
    "basic index": lambda x: x[1, :, 1:],
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_share_storage_as_torch(name):
    torch = _torch()
    results = []
    for M in (fo, torch):
        base = M.zeros(2, 3, 4)
        v = VIEWS[name](base)
        v.fill_(1.0)
        v.mul_(M.arange(float(v.numel())).reshape(v.shape))
        results.append(base.numpy())
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0].any()


def test_copies_do_not_share_storage():
    for op in (lambda x: x.repeat(1, 2), lambda x: fo.cat([x, x]), lambda x: fo.stack([x]),
               lambda x: x.gather(0, _idx(fo, [[0, 1]])), lambda x: x[_idx(fo, [0])],
               lambda x: x.index_select(0, _idx(fo, [1]))):
        base = fo.zeros(2, 2)
        op(base).fill_(3.0)
        assert not base.numpy().any()


def test_expand_is_a_read_only_view():
    base = fo.zeros(3, 1)
    e = base.expand(3, 4)
    base.add_(1.0)
    assert e.numpy().tolist() == [[1.0] * 4] * 3
    with pytest.raises(ValueError, match="read-only"):
        e.add_(1.0)


def test_setitem_with_int_and_bool_tensors_as_torch():
    torch = _torch()
    res = []
    for M in (fo, torch):
        x = M.zeros(4, 3)
        x[_idx(M, [0, 2])] = 1.0
        x[x == 0] = 5.0
        x[_idx(M, [1, 3]), _idx(M, [2, 0])] = M.tensor([7.0, 8.0])
        x[:, _idx(M, [1])] += 10                   # read-modify-write through an index
        x.t()[0, 1] = -1.0                         # through a view
        res.append(x.numpy().copy())
    np.testing.assert_array_equal(res[0], res[1])


def test_setitem_on_a_leaf_that_requires_grad_raises_torchs_error():
    w = fo.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in "
                                           "an in-place operation."):
        w[_idx(fo, [0])] = 0.0
    with fo.no_grad():
        w[_idx(fo, [0])] = 0.0
    assert w.detach().numpy().tolist() == [0.0, 1.0, 1.0]


# ---- errors: torch's exceptions and texts -----------------------------------------------------

X = np.zeros((2, 3, 4), np.float32)

ERRORS = {
    "cat empty": lambda M, x: M.cat([]),
    "cat sizes": lambda M, x: M.cat([x, M.zeros(2, 2, 3)], 1),
    "cat ndim": lambda M, x: M.cat([x, M.zeros(2, 3)], 1),
    "cat dim": lambda M, x: M.cat([x, x], 3),
    "cat not a list": lambda M, x: M.cat(x, 0),
    "stack empty": lambda M, x: M.stack([]),
    "stack sizes": lambda M, x: M.stack([x, M.zeros(2, 3, 3)]),
    "stack dim": lambda M, x: M.stack([x, x], 4),
    "permute length": lambda M, x: x.permute(0, 1),
    "permute duplicate": lambda M, x: x.permute(0, 1, 1),
    "permute range": lambda M, x: x.permute(0, 1, 3),
    "expand size": lambda M, x: x.expand(2, 5, 4),
    "expand too few": lambda M, x: x.expand(3, 4),
    "expand -1 leading": lambda M, x: x.expand(-1, 2, 3, 4),
    "repeat too few": lambda M, x: x.repeat(2, 2),
    "narrow past end": lambda M, x: x.narrow(2, 3, 2),
    "narrow negative length": lambda M, x: x.narrow(2, 1, -1),
    "narrow start": lambda M, x: x.narrow(2, 5, 0),
    "split 0": lambda M, x: x.split(0, 2),
    "split negative": lambda M, x: x.split(-1, 2),
    "split sizes sum": lambda M, x: x.split([1, 2], 2),
    "chunk 0": lambda M, x: x.chunk(0, 2),
    "gather float index": lambda M, x: x.gather(2, M.zeros(2, 3, 1)),
    "gather ndim": lambda M, x: x.gather(2, M.zeros(2, 3, dtype=M.long)),
    "gather size": lambda M, x: x.gather(2, M.zeros(2, 4, 1, dtype=M.long)),
    "gather out of range": lambda M, x: x.gather(2, M.full((2, 3, 1), 4, dtype=M.long)),
    "index_select 2-D index": lambda M, x: x.index_select(1, M.zeros(2, 2, dtype=M.long)),
    "index_select float index": lambda M, x: x.index_select(1, M.zeros(2)),
    "index_select out of range": lambda M, x: x.index_select(1, M.tensor([3])),
    "bmm 2-D": lambda M, x: M.bmm(x[0], x[0]),
    "bmm batch": lambda M, x: M.bmm(x, M.zeros(3, 4, 2)),
    "bmm inner": lambda M, x: M.bmm(x, M.zeros(2, 3, 2)),
    "matmul batch": lambda M, x: M.matmul(x, M.zeros(3, 4, 2)),
    "matmul inner": lambda M, x: M.matmul(x, M.zeros(2, 3, 2)),
    "matmul 3d@1d": lambda M, x: M.matmul(x, M.zeros(3)),
    "matmul 3d@2d": lambda M, x: M.matmul(x, M.zeros(3, 2)),
    "unflatten": lambda M, x: x.unflatten(2, (3, 2)),
    "squeeze dims range": lambda M, x: x.squeeze((0, 5)),
    "mT 1-D": lambda M, x: x[0, 0].mT,
    "index out of range": lambda M, x: x[M.tensor([5])],
    "register_hook without grad": lambda M, x: x.register_hook(lambda g: g),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name):
    torch = _torch()
    got = []
    for M in (fo, torch):
        with pytest.raises(Exception) as e, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ERRORS[name](M, M.tensor(X))
        got.append((e.type, str(e.value)))
    fo_t, fo_msg = got[0]
    t_t, t_msg = got[1]
    assert issubclass(fo_t, t_t) or fo_t is t_t, (fo_t, t_t)
    assert fo_msg.startswith(t_msg) or t_msg.startswith(fo_msg), (fo_msg, t_msg)


def test_integer_matmul_batched_matches_numpy():
    a = np.arange(24).reshape(2, 3, 4)
    b = np.arange(8).reshape(4, 2)
    np.testing.assert_array_equal((fo.tensor(a) @ fo.tensor(b)).numpy(), a @ b)


def _written(M):
    w = M.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    out = M.zeros(4, 3, dtype=M.float64)
    for i in range(3):
        out[i] = w * (i + 1)                  # row by row, as loops fill a buffer
    out[_idx(M, [3])] = w.sum()               # a broadcast value
    out[0, 1] = 7.0                           # a constant over part of a written row
    loss = (out * M.arange(12.0, dtype=M.float64).reshape(4, 3)).sum()
    loss.backward()
    return out.detach().numpy(), w.grad.numpy(), out.grad_fn.name()


def test_setitem_of_values_that_require_grad_is_differentiable_as_torch():
    torch = _torch()
    got, want = _written(fo), _written(torch)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    assert got[2] == want[2] == "torch::autograd::CopySlices"


def test_setitem_into_a_tensor_that_saved_values_still_raises():
    w = fo.ones(3, requires_grad=True)
    y = w.exp()                                # exp's backward reads y: writing y would corrupt it
    with pytest.raises(RuntimeError, match="in-place operations on tensors that are part of an "
                                           "autograd graph are not supported by fastoptim"):
        y[0] = 0.0
