"""torch.autograd's user API on fastoptim: autograd.Function, autograd.grad/backward,
backward(inputs=), retain_grad, register_hook and inference_mode, each against torch.

Why: tutorials write custom ops as autograd.Function, take gradients with autograd.grad and
inspect them with hooks; each must give torch's numbers and raise torch's errors.
"""
import threading

import numpy as np
import pytest

import fastoptim as fo


def _torch():
    return pytest.importorskip("torch")


def _x(M, shape=(5,), seed=0, dt=np.float64):
    return M.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dt),
                    requires_grad=True)


# ---- autograd.Function -----------------------------------------------------------------------

def _functions(M):
    class Cube(M.autograd.Function):
        """x**3 * k with a non-tensor argument."""

        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x * x * x * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x * ctx.k, None

    class MulAdd(M.autograd.Function):
        """Two tensor inputs, two outputs (a*b, a+b)."""

        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            ctx.seen = ctx.needs_input_grad
            return a * b, a + b

        @staticmethod
        def backward(ctx, g_mul, g_add):
            a, b = ctx.saved_tensors
            ga = g_mul * b + g_add if ctx.needs_input_grad[0] else None
            gb = g_mul * a + g_add if ctx.needs_input_grad[1] else None
            return ga, gb

    class Clip(M.autograd.Function):
        """torch's newer style: forward without ctx, setup_context after it."""

        @staticmethod
        def forward(x):
            return x.clamp(-0.5, 0.5)

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > -0.5).to(g.dtype) * (x < 0.5).to(g.dtype)

    return Cube, MulAdd, Clip


def _use_functions(M):
    Cube, MulAdd, Clip = _functions(M)
    x = _x(M)
    y = _x(M, seed=1)
    c = M.tensor(np.arange(5.0))          # needs no grad
    p, s = MulAdd.apply(x, c)
    loss = (Cube.apply(x, 2.0) * y).sum() + (p * s).sum() + Clip.apply(y).pow(2).sum()
    p2, _ = MulAdd.apply(y, x)            # only the first output used
    loss = loss + p2.sum()
    loss.backward()
    return loss.item(), x.grad.numpy(), y.grad.numpy()


def test_function_matches_torch():
    torch = _torch()
    got, want = _use_functions(fo), _use_functions(torch)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_function_ctx_and_grad_fn():
    Cube, MulAdd, _ = _functions(fo)
    x = _x(fo)
    c = fo.ones(5)
    p, s = MulAdd.apply(x, c)
    assert p.grad_fn.name() == "MulAddBackward" and p.requires_grad and s.requires_grad
    assert not p.is_leaf
    ctx_seen = []

    class Probe(fo.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, n):
            ctx_seen.append((ctx.needs_input_grad, fo.is_grad_enabled()))
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g, None

    Probe.apply(x, c, 3)
    assert ctx_seen == [((True, False, False), False)]    # forward runs with grad mode off
    with fo.no_grad():
        assert not Cube.apply(x, 1.0).requires_grad
    assert not Cube.apply(c, 1.0).requires_grad           # no input needs grad: no node


def test_function_second_backward_raises_and_retain_graph_allows_it():
    Cube, _, _ = _functions(fo)
    x = _x(fo)
    y = Cube.apply(x, 1.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy() ** 2)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_function_wrong_number_of_gradients_raises_torchs_error():
    torch = _torch()
    msgs = []
    for M in (fo, torch):
        class Bad(M.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, g):
                return g

        with pytest.raises(RuntimeError) as e:
            Bad.apply(_x(M), 2.0).sum().backward()
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_function_gradient_of_wrong_shape_raises():
    class Bad(fo.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return fo.ones(3)

    with pytest.raises(RuntimeError, match="Function BadBackward returned an invalid gradient "
                                           "at index 0 - got \\[3\\] but expected shape "
                                           "compatible with \\[5\\]"):
        Bad.apply(_x(fo)).sum().backward()


def test_function_legacy_instance_raises():
    Cube, _, _ = _functions(fo)
    with pytest.raises(RuntimeError, match="Legacy autograd function with non-static forward"):
        Cube()


def test_function_mark_non_differentiable():
    class ArgMaxAndMax(fo.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            i = fo.tensor(float(np.argmax(x.detach().numpy())))
            ctx.mark_non_differentiable(i)
            return x * 1, i

        @staticmethod
        def backward(ctx, g, gi):
            return g

    y, i = ArgMaxAndMax.apply(_x(fo))
    assert y.requires_grad and not i.requires_grad


# ---- autograd.grad / autograd.backward / backward(inputs=) -----------------------------------

def _grads(M, **kw):
    x, y, z = _x(M), _x(M, seed=1), _x(M, seed=2)
    u = x * y
    out = (u * u).sum() + (x.exp() * 2).sum()
    got = M.autograd.grad(out, [x, u, z], allow_unused=True, **kw)
    return [None if g is None else g.numpy() for g in got], x.grad, y.grad


def test_grad_matches_torch_and_touches_no_grad():
    torch = _torch()
    (fg, fxg, fyg), (tg, _, _) = _grads(fo), _grads(torch)
    assert fxg is None and fyg is None
    assert fg[2] is None and tg[2] is None
    for a, b in zip(fg[:2], tg[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    mg = _grads(fo, materialize_grads=True)[0]
    assert mg[2].tolist() == [0.0] * 5


def test_grad_with_grad_outputs_and_several_outputs():
    torch = _torch()
    res = []
    for M in (fo, torch):
        x = _x(M, (2, 3))
        a, b = x * 3, (x * x).sum(1)
        g = M.autograd.grad([a, b], x, grad_outputs=[M.ones(2, 3), M.tensor([1.0, -2.0],
                                                                             dtype=M.float64)])
        res.append(g[0].numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12)


def test_grad_errors_as_torch():
    torch = _torch()
    cases = {
        "unused": lambda M, x, z: M.autograd.grad((x * 2).sum(), [z]),
        "non-scalar": lambda M, x, z: M.autograd.grad(x * 2, [x]),
        "no grad": lambda M, x, z: M.autograd.grad(x.detach().sum(), [x]),
        "count": lambda M, x, z: M.autograd.grad([x * 2, x * 3], [x], grad_outputs=[x]),
    }
    for name, f in cases.items():
        msgs = []
        for M in (fo, torch):
            with pytest.raises(RuntimeError) as e:
                f(M, _x(M), _x(M, seed=3))
            msgs.append(str(e.value))
        assert msgs[0] == msgs[1], name


def test_grad_frees_the_graph_unless_retained():
    x = _x(fo)
    y = (x.exp()).sum()
    fo.autograd.grad(y, x, retain_graph=True)
    (g,) = fo.autograd.grad(y, x)
    np.testing.assert_allclose(g.numpy(), np.exp(x.detach().numpy()))
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        fo.autograd.grad(y, x)


def test_create_graph_raises_naming_it():
    x = _x(fo)
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        fo.autograd.grad((x * x).sum(), x, create_graph=True)


def test_backward_inputs_only_fill_those():
    torch = _torch()
    res = []
    for M in (fo, torch):
        x, y = _x(M), _x(M, seed=1)
        (x * y).sum().backward(inputs=[x])
        assert y.grad is None
        M.autograd.backward([(x * y).sum(), (x * x).sum()], inputs=(y,))
        res.append((x.grad.numpy(), y.grad.numpy()))
    for a, b in zip(res[0], res[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_retain_grad_also_in_autograd_grad_as_torch():
    torch = _torch()
    res = []
    for M in (fo, torch):
        x = _x(M)
        y = x * 2
        y.retain_grad()
        M.autograd.grad((y * y).sum(), [x])
        res.append(y.grad.numpy())
    np.testing.assert_allclose(res[0], res[1])


# ---- hooks ------------------------------------------------------------------------------------

def _hooked(M):
    x = _x(M)
    seen = []
    h = x.register_hook(lambda g: g * 10)
    y = x * 2
    y.register_hook(lambda g: seen.append(g.clone()))
    z = y.exp()
    z.register_hook(lambda g: g + 1)
    z.sum().backward(retain_graph=True)
    first = x.grad.numpy().copy()
    h.remove()
    x.grad = None
    z.sum().backward()
    return first, x.grad.numpy(), [s.numpy() for s in seen]


def test_register_hook_matches_torch():
    torch = _torch()
    got, want = _hooked(fo), _hooked(torch)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    assert len(got[2]) == len(want[2]) == 2
    for a, b in zip(got[2], want[2]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_hook_on_a_leaf_root():
    x = _x(fo, ())
    x.register_hook(lambda g: g * 3)
    x.backward()
    assert x.grad.item() == 3.0


# ---- inference_mode ---------------------------------------------------------------------------

def test_inference_mode_context_and_decorators_as_torch():
    torch = _torch()
    for M in (fo, torch):
        x = _x(M)
        with M.inference_mode():
            assert M.is_inference_mode_enabled() and not M.is_grad_enabled()
            assert not (x * 2).requires_grad
            with M.inference_mode(False):
                assert M.is_grad_enabled() and not M.is_inference_mode_enabled()
                assert (x * 2).requires_grad
        assert M.is_grad_enabled() and not M.is_inference_mode_enabled()

        @M.inference_mode()
        def f(t):
            return t * 3

        @M.inference_mode
        def g(t):
            return t * 3

        assert not f(x).requires_grad and not g(x).requires_grad
        assert (x * 3).requires_grad


def test_inference_mode_is_per_thread():
    seen = []
    with fo.inference_mode():
        t = threading.Thread(target=lambda: seen.append(
            (fo.is_inference_mode_enabled(), fo.is_grad_enabled())))
        t.start()
        t.join()
    assert seen == [(False, True)]
