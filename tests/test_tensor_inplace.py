"""The in-place operators += -= *= /= (and add_/sub_/mul_/div_) update the tensor itself.

Why: before they existed, ``p -= lr * p.grad`` rebound the name ``p`` to a new tensor, so a
hand-written SGD loop ran, exited 0 and trained nothing (the model's parameters never moved): a
silent wrong answer.  torch's rules are followed: the object and its storage are updated (views
see it), a leaf that requires grad refuses outside no_grad, a tensor that needs no grad becomes
a graph node when the operand requires grad, int tensors refuse float results, and ``@=``
rebinds (torch has no ``__imatmul__``).
"""
import numpy as np
import pytest

import fastoptim as fo


def _torch():
    return pytest.importorskip("torch")


OPS = {
    "+=": lambda a, b: a.__iadd__(b),
    "-=": lambda a, b: a.__isub__(b),
    "*=": lambda a, b: a.__imul__(b),
    "/=": lambda a, b: a.__itruediv__(b),
}


def _values(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32),
            rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32))


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("other", ["tensor", "row", "scalar", "0dim"])
def test_operator_updates_the_same_object_and_its_views(op, other):
    x, y = _values()
    t = fo.from_numpy(x.copy())
    view = t.view(12)
    o = {"tensor": fo.from_numpy(y), "row": fo.from_numpy(y[0].copy()), "scalar": 1.5,
         "0dim": fo.tensor(1.5)}[other]
    yo = {"tensor": y, "row": y[0], "scalar": np.float32(1.5), "0dim": np.float32(1.5)}[other]
    expect = {"+=": x + yo, "-=": x - yo, "*=": x * yo, "/=": x / yo}[op]
    before = id(t)
    r = OPS[op](t, o)
    assert r is t and id(t) == before
    np.testing.assert_allclose(t.numpy(), expect, rtol=1e-6)
    np.testing.assert_allclose(view.numpy(), expect.reshape(12), rtol=1e-6)


@pytest.mark.parametrize("op", list(OPS))
def test_operators_match_torch(op):
    torch = _torch()
    x, y = _values(1)
    a, ta = fo.from_numpy(x.copy()), torch.from_numpy(x.copy())
    OPS[op](a, fo.from_numpy(y))
    OPS[op](ta, torch.from_numpy(y))
    np.testing.assert_array_equal(a.numpy(), ta.numpy())
    assert a.dtype == fo.float32 and ta.dtype == torch.float32


def test_python_statement_forms():
    t = fo.ones(3)
    alias = t
    t += 1
    t -= fo.tensor([0.5, 0.5, 0.5])
    t *= 4
    t /= 2
    assert t is alias
    np.testing.assert_array_equal(alias.numpy(), [3.0, 3.0, 3.0])


def test_leaf_requiring_grad_refuses_outside_no_grad():
    w = fo.ones(3, requires_grad=True)
    for op in OPS.values():
        with pytest.raises(RuntimeError, match="^a leaf Variable that requires grad is being "
                                               r"used in an in-place operation\.$"):
            op(w, 1.0)
    np.testing.assert_array_equal(w.numpy(force=True), [1.0, 1.0, 1.0])   # nothing applied


def test_leaf_error_text_is_torchs():
    torch = _torch()
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError) as te:
        w += 1
    v = fo.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError) as fe:
        v += 1
    assert str(fe.value) == str(te.value)


def test_under_no_grad_a_parameter_is_updated_in_place():
    p = fo.ones(3, requires_grad=True)
    p.grad = fo.full((3,), 2.0)
    alias = p
    with fo.no_grad():
        p -= 0.1 * p.grad
    assert p is alias and p.requires_grad and p.is_leaf and p.grad_fn is None
    np.testing.assert_allclose(p.detach().numpy(), [0.8, 0.8, 0.8], rtol=1e-6)


def test_operand_requiring_grad_makes_self_a_node():
    torch = _torch()
    for M in (fo, torch):
        w = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
        acc = M.ones(3)
        acc *= w * 2
        assert acc.requires_grad and not acc.is_leaf
        assert acc.grad_fn.name() == "MulBackward0"
        (acc * w).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), [4.0, 8.0, 12.0])


def test_accumulating_losses_into_a_float64_tensor():
    torch = _torch()
    for M in (fo, torch):
        w = M.ones(2, requires_grad=True)
        acc = M.zeros(2, dtype=M.float64)
        acc += w
        assert acc.dtype == M.float64
        acc.sum().backward()
        assert w.grad.dtype == M.float32
        np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_tensor_in_a_graph_refuses_in_place():
    w = fo.ones(3, requires_grad=True)
    h = w * 2
    with pytest.raises(RuntimeError, match="in-place operations on tensors that are part of an "
                                           "autograd graph are not supported by fastoptim"):
        h += 1
    acc = fo.zeros(3)
    acc += w       # acc becomes a node ...
    with pytest.raises(RuntimeError, match="part of an autograd graph"):
        acc += w   # ... and a second in-place update of it is refused, not miscounted


def test_broadcast_into_a_smaller_tensor_refuses_with_torchs_message():
    torch = _torch()
    msgs = []
    for M in (fo, torch):
        y = M.ones(3)
        with pytest.raises(RuntimeError) as e:
            y += M.ones(2, 3)
        msgs.append(str(e.value))
        np.testing.assert_array_equal(y.numpy(), [1.0, 1.0, 1.0])
    assert msgs[0] == msgs[1]
    # the recorded path (operand requires grad) checks before it changes anything
    y = fo.ones(3)
    with pytest.raises(RuntimeError, match=r"doesn't match the broadcast shape \[2, 3\]"):
        y += fo.ones(2, 3, requires_grad=True)
    assert not y.requires_grad and y.is_leaf


def test_int_tensors():
    torch = _torch()
    for M in (fo, torch):
        x = M.arange(3)
        x += 2
        x *= 3
        x -= 1
        np.testing.assert_array_equal(x.numpy(), [5, 8, 11])
        assert x.dtype == M.int64
    msgs = []
    for M in (fo, torch):
        for bad in (lambda x: x.__itruediv__(2), lambda x: x.__iadd__(1.5),
                    lambda x, M=M: x.__imul__(M.tensor([1.5, 1.5, 1.5]))):
            x = M.arange(3)
            with pytest.raises(RuntimeError) as e:
                bad(x)
            msgs.append(str(e.value))
    assert msgs[:3] == msgs[3:]
    assert msgs[0] == "result type Float can't be cast to the desired output type Long"


def test_matmul_assignment_rebinds_as_in_torch():
    torch = _torch()
    for M in (fo, torch):
        a = M.ones(2, 2)
        alias = a
        a @= M.full((2, 2), 2.0)
        assert a is not alias
        np.testing.assert_array_equal(a.numpy(), np.full((2, 2), 4.0))
        np.testing.assert_array_equal(alias.numpy(), np.ones((2, 2)))


def _sgd_loop(M, x, y, steps=200, lr=0.1):
    """The textbook loop: parameters as raw tensors, gradients by autograd, the update by hand."""
    w = M.zeros(3, 1, requires_grad=True)
    b = M.zeros(1, requires_grad=True)
    first = None
    for _ in range(steps):
        loss = ((x @ w + b - y) ** 2).mean()
        if first is None:
            first = loss.item()
        loss.backward()
        with M.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
            w.grad.zero_()
            b.grad.zero_()
    return first, loss.item(), w.detach().numpy().copy(), b.detach().numpy().copy()


def _sgd_data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]], dtype=np.float32) + 0.25).astype(np.float32)
    return x, y


def test_hand_written_sgd_loop_trains():
    x, y = _sgd_data()
    first, last, w, b = _sgd_loop(fo, fo.from_numpy(x), fo.from_numpy(y))
    assert last < first * 1e-4
    np.testing.assert_allclose(w.ravel(), [1.5, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(b, [0.25], atol=1e-3)


def test_hand_written_sgd_loop_matches_torch():
    torch = _torch()
    x, y = _sgd_data()
    f = _sgd_loop(fo, fo.from_numpy(x), fo.from_numpy(y), steps=50)
    t = _sgd_loop(torch, torch.from_numpy(x), torch.from_numpy(y), steps=50)
    np.testing.assert_allclose(f[0], t[0], rtol=1e-6)
    np.testing.assert_allclose(f[1], t[1], rtol=1e-4)
    np.testing.assert_allclose(f[2], t[2], rtol=1e-4, atol=1e-6)
