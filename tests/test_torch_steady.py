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
