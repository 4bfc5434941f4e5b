"""The torch-param steady check (``_optim.TorchSteady``) reads its facts cheaply; it must still
catch every change it caught before (issue 11).

Why: the check reads, per param, ``.grad``, ``data_ptr()`` and ``shape``, and per grad
``data_ptr()`` and ``shape``, and now hands out the kernel groups it kept instead of copying
them per step.  Each test makes one change between steady steps
(after a param without a grad, at the end, in one-group-per-param layouts), for plain tensors,
``nn.Parameter`` and a subclass with a live ``__torch_function__``, and
compares the params with torch.optim's after the same script.
"""

import pytest

import fastoptim.optim as fo_optim
from fastoptim.optim import _torch_params

torch = pytest.importorskip("torch")


class Live(torch.Tensor):
    """A tensor subclass whose ``__torch_function__`` is torch's default (live) one."""


KINDS = {
    "tensor": lambda t: t.requires_grad_(),
    "parameter": torch.nn.Parameter,
    "live": lambda t: t.as_subclass(Live).requires_grad_(),
}


def _params(kind):
    gen = torch.Generator().manual_seed(0)
    ps = [KINDS[kind](torch.randn(n, generator=gen, dtype=torch.float64)) for n in (4, 3, 5, 6)]
    for i, p in enumerate(ps):
        if i != 1:                         # param 1 has no grad
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
    return ps


def _grad_data(ps):
    ps[2].grad.data = torch.full((5,), 2.0, dtype=torch.float64)


def _grad_set(ps):
    ps[3].grad.set_(torch.full((6,), -1.0, dtype=torch.float64))


def _param_data(ps):
    ps[3].data = torch.full((6,), 3.0, dtype=torch.float64)


def _param_data_first(ps):
    ps[0].data = torch.full((4,), 3.0, dtype=torch.float64)


def _grad_appears(ps):
    ps[1].grad = torch.ones(3, dtype=torch.float64)


def _grad_goes(ps):
    ps[2].grad = None


def _grad_in_place(ps):
    ps[3].grad.mul_(4.0)      # the same memory: no sync needed, the kernel reads the new values


def _last_group_lr(ps, opt):
    opt.param_groups[-1]["lr"] = 0.5


CHANGES = [_grad_data, _grad_set, _param_data, _param_data_first, _grad_appears, _grad_goes,
           _grad_in_place]


def _run(lib, kind, name, layout, change):
    ps = _params(kind)
    groups = [{"params": [p]} for p in ps] if layout == "per-param" else ps
    kwargs = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.1}
    opt = getattr(lib, name)(groups, **kwargs)
    for _ in range(3):
        opt.step()
    if change is _last_group_lr:
        change(ps, opt)
    else:
        change(ps)
    for _ in range(2):
        opt.step()
    return [p.detach().clone() for p in ps]


@pytest.mark.parametrize("change", CHANGES + [_last_group_lr], ids=lambda c: c.__name__[1:])
@pytest.mark.parametrize("layout", ["one-group", "per-param"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_change_between_steady_steps_is_seen_as_by_torch(name, kind, layout, change):
    ours = _run(fo_optim, kind, name, layout, change)
    theirs = _run(torch.optim, kind, name, layout, change)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["one-group", "per-param"])
def test_parameters_take_the_steady_path(monkeypatch, layout):
    ps = _params("parameter")
    groups = [{"params": [p]} for p in ps] if layout == "per-param" else ps
    opt = fo_optim.Adam(groups, lr=0.1)
    opt.step()
    calls = []
    real = _torch_params.TorchParams._sync
    monkeypatch.setattr(_torch_params.TorchParams, "_sync",
                        lambda self, o: calls.append(1) or real(self, o))
    kept = opt._torch_params.steady.check(opt.param_groups, opt.state)
    assert kept is not None
    opt.step()
    opt.step()
    assert calls == []
    again = opt._torch_params.steady.check(opt.param_groups, opt.state)
    assert [a is b for a, b in zip(again, kept)] == [True] * len(kept)   # not copied per step
    opt.param_groups[0]["lr"] = 0.01        # that group's kernel copy is remade, no other
    again = opt._torch_params.steady.check(opt.param_groups, opt.state)
    assert again[0] is not kept[0] and again[0]["lr"] == 0.01
    assert all(a is b for a, b in zip(again[1:], kept[1:]))
    ps[2].grad.data = torch.zeros(5, dtype=torch.float64)      # same grad object, new memory
    assert opt._torch_params.steady.check(opt.param_groups, opt.state) is not None
    assert not opt._torch_params.view_of(ps[2]).grad.numpy().any()   # re-bound, in C
    ps[3].grad = torch.ones(6, dtype=torch.float64)            # a new grad object: bound too
    opt.step()
    assert calls == []
    ps[1].grad = torch.ones(3, dtype=torch.float64)    # a grad appears: the step writes more
    assert opt._torch_params.steady.check(opt.param_groups, opt.state) is None
    opt.step()
    assert calls == [1]


@pytest.mark.parametrize("layout", ["one-group", "per-param"])
@pytest.mark.parametrize("dtype,other", [(torch.float64, torch.complex64),
                                         (torch.float64, torch.int64),
                                         (torch.float32, torch.int32)])
def test_a_param_viewed_as_another_dtype_of_its_size_is_refused(layout, dtype, other):
    # p.data = p.data.view(other) keeps the address and the shape: the steady check must see
    # the dtype, or the kernel writes float arithmetic into complex or integer memory
    ps = [torch.nn.Parameter(torch.ones(4, dtype=dtype)) for _ in range(2)]
    for p in ps:
        p.grad = torch.ones(4, dtype=dtype)
    groups = [{"params": [p]} for p in ps] if layout == "per-param" else ps
    opt = fo_optim.SGD(groups, lr=0.5)
    opt.step()
    opt.step()
    ps[1].requires_grad_(other.is_complex)    # torch refuses an integer .data on a grad-requirer
    ps[1].data = ps[1].data.view(other)
    assert ps[1].dtype == other and ps[1].shape == (4,)
    before = [p.detach().clone() for p in ps]
    group = 1 if layout == "per-param" else 0
    pos = 0 if layout == "per-param" else 1
    with pytest.raises(ValueError, match=f"parameter {pos} of parameter group {group} has "
                                         f"dtype {other}"):
        opt.step()
    for p, b in zip(ps, before):
        assert torch.equal(p.detach(), b)


@pytest.mark.parametrize("bound", ["by-sync", "by-steady-rebind"])
@pytest.mark.parametrize("dtype,other", [(torch.float64, torch.int64),
                                         (torch.float32, torch.int32)])
def test_a_grad_viewed_as_another_dtype_of_its_size_is_refused(bound, dtype, other):
    # p.grad.data = p.grad.data.view(other) keeps the grad object, its address and its shape:
    # the steady check must see the grad's dtype, or the kernel reads integer bits as floats.
    # "by-steady-rebind": the grad views were made by the steady check (new grads each step,
    # a numpy header whose base is the grad itself), "by-sync": by the sync (DLPack)
    ps = [torch.nn.Parameter(torch.ones(4, dtype=dtype)) for _ in range(2)]
    for p in ps:
        p.grad = torch.ones(4, dtype=dtype)
    opt = fo_optim.SGD(ps, lr=0.5)
    opt.step()
    opt.step()
    if bound == "by-steady-rebind":
        for p in ps:
            p.grad = torch.ones(4, dtype=dtype)     # new grad objects: bound in C
        opt.step()
        assert opt._torch_params.steady.check(opt.param_groups, opt.state) is not None
    ps[1].grad.data = ps[1].grad.data.view(other)
    assert ps[1].grad.dtype == other and ps[1].grad.shape == (4,)
    before = [p.detach().clone() for p in ps]
    with pytest.raises(RuntimeError, match=f"the grad of parameter 1 of parameter group 0 has "
                                           f"dtype {other}, but the parameter has dtype {dtype}"):
        opt.step()
    for p, b in zip(ps, before):
        assert torch.equal(p.detach(), b)


def test_a_grad_given_other_memory_after_a_steady_rebind_is_read_from_there():
    # the views the steady check binds hold the grad object, not its old memory: a grad whose
    # memory is swapped afterwards (g.data = x) must be re-bound and read from x
    ps = [torch.nn.Parameter(torch.zeros(5, dtype=torch.float64)) for _ in range(3)]
    ref = [torch.nn.Parameter(torch.zeros(5, dtype=torch.float64)) for _ in range(3)]
    opt, topt = fo_optim.SGD(ps, lr=0.5), torch.optim.SGD(ref, lr=0.5, foreach=False)
    for step in range(6):
        for qs in (ps, ref):
            for i, p in enumerate(qs):
                p.grad = torch.full((5,), float(step + i), dtype=torch.float64)
        if step % 2:
            for qs in (ps, ref):
                qs[1].grad.data = torch.full((5,), -3.0 * step, dtype=torch.float64)
        opt.step()
        topt.step()
        for p, r in zip(ps, ref):
            assert torch.equal(p.detach(), r.detach())


def _mlp_run(lib, name, layout, dtype, steps=6):
    """Two Linear layers trained the usual way: zero_grad(set_to_none=True), then backward, so
    that every step finds new grad tensors."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    model = model.to(dtype)
    ps = list(model.parameters())
    groups = [{"params": [p]} for p in ps] if layout == "per-param" else ps
    kwargs = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    opt = getattr(lib, name)(groups, **kwargs)
    x = torch.randn(11, 5, dtype=dtype)
    y = torch.randn(11, 3, dtype=dtype)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return opt, [p.detach().clone() for p in ps]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["one-group", "per-param"])
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_new_grads_every_step_take_the_steady_path_as_torch(monkeypatch, name, layout, dtype):
    calls = []
    real = _torch_params.TorchParams._sync
    monkeypatch.setattr(_torch_params.TorchParams, "_sync",
                        lambda self, o: calls.append(1) or real(self, o))
    opt, ours = _mlp_run(fo_optim, name, layout, dtype)
    # the first step makes the state (a sync), the second publishes nothing new; after that
    # the new grads are bound by the steady check alone
    assert len(calls) <= 2
    _, theirs = _mlp_run(torch.optim, name, layout, dtype)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **tol)
    # the views read the torch grads' memory, and hold no earlier grad alive
    for p in opt.param_groups[0]["params"]:
        view = opt._torch_params.view_of(p)
        assert view.grad.numpy().ctypes.data == p.grad.data_ptr()


def test_a_new_grad_does_not_keep_the_old_one_alive():
    import weakref
    p = torch.nn.Parameter(torch.ones(8))
    p.grad = torch.ones(8)
    opt = fo_optim.SGD([p], lr=0.1)
    opt.step()
    opt.step()
    old = weakref.ref(p.grad)
    p.grad = torch.full((8,), 2.0)
    opt.step()
    assert old() is None
    assert torch.allclose(p.detach(), torch.full((8,), 1.0 - 0.2 - 0.2))


def _strided_grad(p):
    p.grad = torch.ones(2 * p.numel(), dtype=p.dtype)[::2]     # the setter allows it


def _grad_moved_on(p):
    g = torch.ones_like(p)
    p.grad = g
    g.data = torch.ones(p.numel() + 1, dtype=p.dtype)          # after the setter's check


def _grad_retyped(p):
    g = torch.ones_like(p)
    p.grad = g
    g.data = torch.ones(p.shape, dtype=torch.float32)


def _negated_grad(p):
    # a lazily negated view: its memory holds 1, its values are -1 (torch's optimizers read -1)
    p.grad = torch._neg_view(torch.ones_like(p))


@pytest.mark.parametrize("bad,message", [
    (_strided_grad, "the grad of parameter 2 of parameter group 0 is not contiguous"),
    (_grad_moved_on, r"the grad of parameter 2 of parameter group 0 has shape \[6\], but the "
                     r"parameter has shape \[5\]"),
    (_grad_retyped, "the grad of parameter 2 of parameter group 0 has dtype torch.float32"),
    (_negated_grad, r"the grad of parameter 2 of parameter group 0 is a lazily negated view"),
], ids=["strided", "resized", "retyped", "negated"])
def test_a_bad_new_grad_in_a_steady_step_is_refused_before_anything_is_written(bad, message):
    ps = _params("parameter")
    opt = fo_optim.Adam(ps, lr=0.1)
    opt.step()
    opt.step()
    for p in ps:                  # new grads everywhere, the third bad
        if p.grad is not None:
            p.grad = torch.ones_like(p)
    bad(ps[2])
    before = [p.detach().clone() for p in ps]
    state = {k: v.clone() for k, v in opt.state[ps[0]].items()}
    with pytest.raises(RuntimeError, match=message):
        opt.step()
    for p, b in zip(ps, before):
        assert torch.equal(p.detach(), b)
    for k, v in opt.state[ps[0]].items():
        assert torch.equal(v, state[k])


def test_a_new_grad_given_other_memory_later_is_seen():
    p = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    p.grad = torch.ones(4, dtype=torch.float64)
    opt = fo_optim.SGD([p], lr=1.0)
    opt.step()
    opt.step()                          # p = -2
    g = torch.ones(4, dtype=torch.float64)
    p.grad = g
    opt.step()                          # bound in the steady check: p = -3
    g.set_(torch.full((4,), 10.0, dtype=torch.float64))   # the bound grad's memory, swapped
    opt.step()
    assert torch.equal(p.detach(), torch.full((4,), -13.0, dtype=torch.float64))


def test_a_negated_view_is_refused_where_torch_would_read_its_values():
    """torch._neg_view(x) keeps x's memory and negates lazily: the kernels read and write memory
    as is, so they would use the wrong sign (SGD moved p by +lr*g where torch moves it by
    -lr*g). As a first-step grad, as a param and as loaded state it is refused, named."""
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    p.grad = torch._neg_view(torch.ones(4, dtype=torch.float64))
    opt = fo_optim.SGD([p], lr=0.1)
    with pytest.raises(RuntimeError, match="the grad of parameter 0 of parameter group 0 is "
                                           r"a lazily negated view \(is_neg\(\)\)"):
        opt.step()
    assert torch.equal(p.detach(), torch.ones(4, dtype=torch.float64))
    p.grad = p.grad.resolve_neg()
    opt.step()
    ref = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    ref.grad = torch._neg_view(torch.ones(4, dtype=torch.float64))
    torch.optim.SGD([ref], lr=0.1).step()
    assert torch.equal(p.detach(), ref.detach())         # 1.1: the values', not the memory's

    neg = torch.nn.Parameter(torch._neg_view(torch.ones(4, dtype=torch.float64)))
    with pytest.raises(ValueError, match="parameter 0 of parameter group 0 is a lazily negated "
                                         "view"):
        fo_optim.SGD([neg], lr=0.1)

    q = torch.nn.Parameter(torch.ones(4))
    q.grad = torch.ones(4)
    adam = fo_optim.Adam([q])
    adam.step()
    sd = adam.state_dict()
    sd["state"][0]["exp_avg"] = torch._neg_view(sd["state"][0]["exp_avg"].clone())
    before = {k: v.clone() for k, v in adam.state[q].items()}
    with pytest.raises(RuntimeError, match="negative bit set"):    # torch's own refusal
        adam.load_state_dict(sd)
    for k, v in adam.state[q].items():
        assert torch.equal(v, before[k])


class _Counted(torch.nn.Parameter):
    """A Parameter subclass whose ``grad`` and ``shape`` are Python properties (counting)."""

    reads: list = []

    @property
    def grad(self):
        self.reads.append("grad")
        return torch.nn.Parameter.grad.__get__(self)

    @grad.setter
    def grad(self, g):
        torch.nn.Parameter.grad.__set__(self, g)

    @property
    def shape(self):
        self.reads.append("shape")
        return torch.nn.Parameter.shape.__get__(self)


def _counted_run(lib, ps_of):
    ps = ps_of()
    opt = lib.SGD(ps, lr=0.1, momentum=0.9)
    for k in range(4):
        for p in ps:
            p.grad = torch.full(p.shape, float(k + 1), dtype=torch.float64)
        opt.step()
    return [p.detach().clone().as_subclass(torch.Tensor) for p in ps], opt


def test_a_parameter_subclass_overriding_grad_and_shape_is_read_through_them():
    # the steady check reads Tensor and Parameter attributes from torch's C getters directly;
    # a subclass's own properties must still be what it reads
    def ps_of():
        gen = torch.Generator().manual_seed(0)
        return [_Counted(torch.randn(n, generator=gen, dtype=torch.float64)) for n in (3, 4)]

    theirs, _ = _counted_run(torch.optim, ps_of)
    ours, opt = _counted_run(fo_optim, ps_of)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    _Counted.reads.clear()
    assert opt._torch_params.steady.check(opt.param_groups, opt.state) is not None
    assert _Counted.reads.count("grad") == 2 and _Counted.reads.count("shape") == 2


def test_a_patched_parameter_class_or_instance_is_read_as_python_reads_it(monkeypatch):
    # patching the class changes its version tag: the next check reads through the patch
    ps = [torch.nn.Parameter(torch.randn(n, dtype=torch.float64)) for n in (3, 4)]
    for p in ps:
        p.grad = torch.ones_like(p)
    opt = fo_optim.SGD(ps, lr=0.1)
    opt.step()
    opt.step()
    steady = opt._torch_params.steady
    assert steady.check(opt.param_groups, opt.state) is not None
    reads = []
    real = torch.nn.Parameter.__dict__.get("grad", torch._C.TensorBase.grad)

    def grad(self):
        reads.append(1)
        return real.__get__(self)

    monkeypatch.setattr(torch.nn.Parameter, "grad", property(grad, real.__set__), raising=False)
    assert steady.check(opt.param_groups, opt.state) is not None
    assert len(reads) == 2
    monkeypatch.undo()
    reads.clear()
    assert steady.check(opt.param_groups, opt.state) is not None
    assert reads == []
    # a method shadowed in an instance's dict is called, as Python would
    calls = []
    real_ptr = ps[0].data_ptr
    ps[0].data_ptr = lambda: calls.append(1) or real_ptr()
    assert steady.check(opt.param_groups, opt.state) is not None
    assert calls == [1]
    ps[0].data_ptr = lambda: 1
    assert steady.check(opt.param_groups, opt.state) is None      # "moved": a sync
    del ps[0].data_ptr
    opt.step()
    assert steady.check(opt.param_groups, opt.state) is not None


def test_an_exception_from_a_read_propagates_as_before():
    class Failing(torch.nn.Parameter):
        def data_ptr(self):
            raise RuntimeError("no pointer here")

    ps = [torch.nn.Parameter(torch.randn(3, dtype=torch.float64))]
    ps[0].grad = torch.ones(3, dtype=torch.float64)
    opt = fo_optim.SGD(ps, lr=0.1)
    opt.step()
    opt.step()
    steady = opt._torch_params.steady
    ps[0].data_ptr = Failing.data_ptr.__get__(ps[0])
    with pytest.raises(RuntimeError, match="no pointer here"):
        steady.check(opt.param_groups, opt.state)
