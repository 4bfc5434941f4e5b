"""fastoptim with torch's own tensors: DLPack both ways, conversions, and our optimizers over a
torch model's parameters (torch's autograd writes the grads, our kernels update the params).

Every optimizer configuration of the table trains a torch model (two Linear layers and an MSE
loss) 20 steps with torch.optim.X and, on a copy, with fastoptim.optim.X; the params must end
equal (float64 to 1e-10, float32 at torch's tolerances), with two param groups and a param whose
grad is None on some steps.  Checkpoints cross between the libraries mid-run both ways.
"""

import copy
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
from optim_table import class_cases

import fastoptim
import fastoptim.optim as fo_optim

# a `python -c` child must not import the source tree of the repository it starts in (conftest)
_PY = [sys.executable] + (["-P"] if sys.version_info >= (3, 11) else [])

torch = pytest.importorskip("torch")

TOL = {torch.float64: {"rtol": 1e-10, "atol": 1e-10},
       torch.float32: {"rtol": 1.3e-6, "atol": 1e-5}}


# ------------------------------------------------------------------ importing
def test_importing_fastoptim_never_imports_torch():
    code = ("import sys, fastoptim, fastoptim.optim, fastoptim.optim.lr_scheduler, "
            "fastoptim.nn; print('torch' in sys.modules)")
    out = subprocess.run([*_PY, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ DLPack
def test_dlpack_to_torch_and_numpy_share_memory():
    a = fastoptim.arange(6.0).reshape(2, 3)
    t = torch.from_dlpack(a)
    n = np.from_dlpack(a)
    t[0, 0] = 42.0
    n[1, 2] = -1.0
    assert a[0, 0].item() == 42.0 and a[1, 2].item() == -1.0
    a.mul_(2.0)
    assert t[0, 0].item() == 84.0 and n[0, 0] == 84.0
    assert t.data_ptr() == a.data_ptr() == n.ctypes.data
    assert a.__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("src", ["torch", "numpy"])
def test_from_dlpack_shares_memory(src):
    x = torch.arange(5.0, dtype=torch.float64) if src == "torch" else np.arange(5.0)
    t = fastoptim.from_dlpack(x)
    t[1] = 9.0
    assert float(x[1]) == 9.0
    x[2] = -3.0
    assert t[2].item() == -3.0
    assert t.dtype is fastoptim.float64


def test_dlpack_capsules_versioned_and_legacy():
    a = fastoptim.ones(3)
    assert "dltensor_versioned" in repr(a.__dlpack__(max_version=(1, 0)))
    legacy = a.__dlpack__()
    assert "dltensor" in repr(legacy) and "versioned" not in repr(legacy)
    # a bare capsule is accepted, as torch does; a legacy capsule has no read-only flag and
    # numpy imports it read-only, so (our tensors being writable) it is copied
    b = fastoptim.from_dlpack(legacy)
    b[0] = 5.0
    assert a[0].item() == 1.0 and b.tolist() == [5.0, 1.0, 1.0]
    with pytest.raises(BufferError, match="read-only"):
        fastoptim.from_dlpack(a.__dlpack__(), copy=False)


def test_dlpack_copy_and_read_only():
    a = fastoptim.ones(3)
    c = np.from_dlpack(a, copy=True)
    c[0] = 7.0
    assert a[0].item() == 1.0
    r = np.arange(3.0)
    r.flags.writeable = False
    t = fastoptim.from_dlpack(r)        # our tensors are writable: a read-only source is copied
    assert t.data_ptr() != r.ctypes.data and t.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(BufferError, match="source is read-only"):
        fastoptim.from_dlpack(r, copy=False)
    w = np.arange(3.0)
    assert fastoptim.from_dlpack(w, copy=True).data_ptr() != w.ctypes.data


def test_dlpack_refuses_a_tensor_requiring_grad():
    p = fastoptim.ones(2, requires_grad=True)
    with pytest.raises(BufferError, match="require gradient"):
        p.__dlpack__()
    with pytest.raises(TypeError, match="object with __dlpack__"):
        fastoptim.from_dlpack([1.0, 2.0])


# ------------------------------------------------------------------ conversions
def test_tensor_copies_torch_without_warnings_and_as_tensor_shares():
    t = torch.ones(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = fastoptim.tensor(t)
        s = fastoptim.as_tensor(t.detach())
    assert c.tolist() == [1.0, 1.0, 1.0] and c.dtype is fastoptim.float32
    assert c.data_ptr() != t.data_ptr()
    assert s.data_ptr() == t.data_ptr()
    assert fastoptim.as_tensor(t.detach(), dtype=fastoptim.float64).data_ptr() != t.data_ptr()


def test_a_lazily_negated_torch_view_converts_to_its_values_or_is_refused():
    """torch._neg_view(x) holds x's memory and reads as -x; torch's __dlpack__ exports the
    memory as is (torch.from_dlpack and np.from_dlpack of it read +x), so a conversion that went
    through the memory silently flipped the sign.  Copies take the values, as torch.tensor does;
    from_dlpack, which can only share, refuses it unless asked to copy."""
    x = torch.tensor([1.0, -2.0, 3.0])
    n = torch._neg_view(x)
    assert n.is_neg() and n.tolist() == [-1.0, 2.0, -3.0]
    for c in (fastoptim.tensor(n), fastoptim.as_tensor(n), fastoptim.from_dlpack(n, copy=True)):
        assert c.tolist() == torch.tensor(n).tolist()
        assert c.data_ptr() != x.data_ptr()
    with pytest.raises(BufferError, match=r"from_dlpack: the tensor is a lazily negated view "
                                          r"\(is_neg\(\)\)"):
        fastoptim.from_dlpack(n)
    with pytest.raises(BufferError, match="lazily negated"):
        fastoptim.from_dlpack(n, copy=False)


def test_torch_as_tensor_and_tensor_on_ours():
    a = fastoptim.arange(4.0).reshape(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared = torch.as_tensor(a)
        copied = torch.tensor(a)
    assert shared.data_ptr() == a.data_ptr() and copied.data_ptr() != a.data_ptr()
    assert copied.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    zero_d = torch.as_tensor(fastoptim.tensor(3.0))
    assert zero_d.shape == () and zero_d.item() == 3.0


def test_readme_recipe_state_dict_into_torch_as_written():
    # README: "Our state_dict() loads into torch.optim after torch.as_tensor"
    p = fastoptim.randn(4, requires_grad=True)
    opt = fo_optim.Adam([p], lr=0.1)
    p.grad = fastoptim.ones(4)
    opt.step()
    sd = opt.state_dict()
    sd = {"state": {k: {sk: torch.as_tensor(v) for sk, v in s.items()}
                    for k, s in sd["state"].items()},
          "param_groups": sd["param_groups"]}
    tp = torch.nn.Parameter(torch.as_tensor(p.detach()).clone())
    topt = torch.optim.Adam([tp], lr=0.1)
    topt.load_state_dict(sd)
    assert topt.state[tp]["step"].item() == 1.0
    torch.testing.assert_close(topt.state[tp]["exp_avg"], torch.full((4,), 0.1))


def test_mixing_in_arithmetic_says_which_conversion():
    a, t = fastoptim.ones(2), torch.ones(2)
    for op in (lambda: a + t, lambda: t + a, lambda: a * t, lambda: a - t):
        with pytest.raises(TypeError, match=r"torch\.Tensor mixed with a fastoptim Tensor.*"
                                             r"fastoptim\.from_dlpack"):
            op()


# ------------------------------------------------------------------ optimizers on torch params
def make_model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 2)).to(dtype)


def groups_of(model, kwargs):
    first, second = model[0], model[2]
    g2 = {"params": list(second.parameters())}
    if "lr" in kwargs:
        g2["lr"] = kwargs["lr"] * 0.5
    return [{"params": list(first.parameters())}, g2]


def train(model, opt, steps, dtype, start=0):
    for i in range(start, start + steps):
        g = torch.Generator().manual_seed(1000 + i)
        x = torch.randn(7, 3, generator=g, dtype=dtype)
        y = torch.randn(7, 2, generator=g, dtype=dtype)
        opt.zero_grad()
        out = model(x)
        if i % 3 == 1:   # the first layer's bias gets no grad on these steps
            out = model[2](model[1](x @ model[0].weight.t()))
        torch.nn.functional.mse_loss(out, y).backward()
        opt.step()


def assert_models_close(m1, m2, dtype):
    for (n, p), q in zip(m1.named_parameters(), m2.parameters()):
        torch.testing.assert_close(q, p, **TOL[dtype], msg=n)


CASES = class_cases()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("name", "kwargs"), CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trains_a_torch_model_like_torch_optim(name, kwargs, dtype):
    ref = make_model(dtype)
    ours = copy.deepcopy(ref)
    topt = getattr(torch.optim, name)(groups_of(ref, kwargs), **kwargs)
    fopt = getattr(fo_optim, name)(groups_of(ours, kwargs), **kwargs)
    train(ref, topt, 20, dtype)
    train(ours, fopt, 20, dtype)
    assert_models_close(ref, ours, dtype)
    assert isinstance(ours[0].weight.grad, torch.Tensor)   # the grads stay torch's
    # the state is torch tensors over the memory the kernels update
    for p in ours.parameters():
        for v in fopt.state[p].values():
            assert v is None or isinstance(v, torch.Tensor)


@pytest.mark.parametrize(("name", "kwargs"), CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_checkpoints_cross_libraries_mid_run(name, kwargs):
    dtype = torch.float64
    ref = make_model(dtype)
    topt = getattr(torch.optim, name)(groups_of(ref, kwargs), **kwargs)
    train(ref, topt, 8, dtype)
    # torch -> ours, mid-run
    ours = copy.deepcopy(ref)
    fopt = getattr(fo_optim, name)(groups_of(ours, kwargs), **kwargs)
    fopt.load_state_dict(copy.deepcopy(topt.state_dict()))
    train(ref, topt, 6, dtype, start=8)
    train(ours, fopt, 6, dtype, start=8)
    assert_models_close(ref, ours, dtype)
    # ours -> torch, through torch.save / torch.load(weights_only=True)
    buf = io.BytesIO()
    torch.save(fopt.state_dict(), buf)
    buf.seek(0)
    back = copy.deepcopy(ours)
    bopt = getattr(torch.optim, name)(groups_of(back, kwargs), **kwargs)
    bopt.load_state_dict(torch.load(buf, weights_only=True))
    train(ref, topt, 6, dtype, start=14)
    train(back, bopt, 6, dtype, start=14)
    assert_models_close(ref, back, dtype)


def test_state_shares_memory_with_what_the_kernel_updates():
    model = make_model(torch.float32)
    opt = fo_optim.Adam(model.parameters(), lr=0.01)
    train(model, opt, 2, torch.float32)
    p = model[0].weight
    m = opt.state[p]["exp_avg"]
    before = m.clone()
    train(model, opt, 1, torch.float32, start=2)
    assert not torch.equal(m, before)            # updated in place by the kernel
    assert opt.state[p]["exp_avg"] is m
    assert opt.state[p]["step"].item() == 3.0


def test_zero_grad_hooks_and_closure():
    model = make_model(torch.float64)
    opt = fo_optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure)
    assert calls == ["pre", "post"] and isinstance(first, torch.Tensor)
    for _ in range(5):
        last = opt.step(closure)
    assert last.item() < first.item()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    closure()
    g = model[0].weight.grad
    opt.zero_grad(set_to_none=False)
    assert model[0].weight.grad is g and torch.count_nonzero(g) == 0


def test_grad_kept_across_steps_reuses_its_view():
    model = make_model(torch.float64)
    ref = copy.deepcopy(model)
    opt = fo_optim.Adam(model.parameters(), lr=0.01)
    topt = torch.optim.Adam(ref.parameters(), lr=0.01)
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    for m, o in ((model, opt), (ref, topt)):
        for _ in range(4):
            o.zero_grad(set_to_none=False)   # the same grad tensors every step
            torch.nn.functional.mse_loss(m(x), y).backward()
            o.step()
    assert_models_close(ref, model, torch.float64)


def test_params_rebound_with_data_are_followed():
    model = make_model(torch.float64)
    opt = fo_optim.SGD(model.parameters(), lr=0.5)
    p = model[0].bias
    p.data = torch.zeros(5, dtype=torch.float64)
    p.grad = torch.ones(5, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((5,), -0.5, dtype=torch.float64))


def test_lr_schedulers():
    model = make_model(torch.float64)
    opt = fo_optim.SGD(model.parameters(), lr=1.0)
    sched = fo_optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    p = model[0].bias
    start = p.detach().clone()
    p.grad = torch.ones_like(p)
    opt.step()
    sched.step()
    opt.step()
    torch.testing.assert_close(p.detach(), start - 1.5)
    # torch's schedulers check isinstance(optimizer, torch.optim.Optimizer)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        torch.optim.lr_scheduler.StepLR(opt, step_size=1)


# ------------------------------------------------------------------ bad input
def test_mixing_torch_and_fastoptim_params_is_refused():
    tp = torch.nn.Parameter(torch.ones(2))
    fp = fastoptim.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match="cannot mix torch and fastoptim tensors: parameter 1 "
                                        "of parameter group 0 is fastoptim.FloatTensor"):
        fo_optim.SGD([tp, fp], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 of parameter group 1 is torch"):
        fo_optim.SGD([{"params": [fp]}, {"params": [tp]}], lr=0.1)
    opt = fo_optim.SGD([tp], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 of parameter group 1 is fastoptim"):
        opt.add_param_group({"params": [fp]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize(("make", "match"), [
    (lambda: torch.nn.Parameter(torch.ones(2, device="meta")), "CPU tensors only.*'meta'"),
    (lambda: torch.nn.Parameter(torch.ones(2, dtype=torch.complex64)), "complex64"),
    (lambda: torch.nn.Parameter(torch.ones(2, dtype=torch.float16)), "float16"),
    (lambda: torch.nn.Parameter(torch.ones(3, 2).t()), "not contiguous"),
    (lambda: torch.nn.Parameter(torch.eye(2).to_sparse()), "dense tensors only"),
    (lambda: torch.ones(2, requires_grad=True) * 2, "non-leaf"),
])
def test_bad_torch_params_are_refused_by_position(make, match):
    good = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match=match) as info:
        fo_optim.Adam([{"params": [good]}, {"params": [torch.nn.Parameter(torch.ones(1)),
                                                        make()]}])
    assert "parameter 1 of parameter group 1" in str(info.value)


def test_bad_grad_is_refused_before_anything_is_written():
    a = torch.nn.Parameter(torch.ones(3, 2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, 3, dtype=torch.float64))
    opt = fo_optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad = torch.ones(3, 2, dtype=torch.float64)
    b.grad = torch.ones(3, 2, dtype=torch.float64).t()   # right shape, not contiguous
    with pytest.raises(RuntimeError, match="grad of parameter 0 of parameter group 1 is not "
                                           "contiguous"):
        opt.step()
    assert torch.equal(a.detach(), torch.ones(3, 2, dtype=torch.float64))
    assert len(opt.state) == 0
    b.grad = torch.ones(2, 3, dtype=torch.float64).to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradients.*parameter 0 of parameter group 1"):
        opt.step()
    b.grad = torch.ones(2, 3, dtype=torch.float64)
    opt.step()
    assert not torch.equal(a.detach(), torch.ones(3, 2, dtype=torch.float64))


# ------------------------------------------------------------------ functionals on torch tensors
def _adam_kw():
    return dict(amsgrad=False, beta1=0.9, beta2=0.999, lr=0.1, weight_decay=0.01, eps=1e-8,
                maximize=False)


def _sgd_kw():
    return dict(weight_decay=0.0, momentum=0.9, lr=0.1, dampening=0.0, nesterov=False,
                maximize=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_functionals_update_torch_tensors_in_place_as_torch_does(dtype):
    from torch.optim.adam import adam as torch_adam
    from torch.optim.sgd import sgd as torch_sgd

    from fastoptim.optim import functional as F

    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (1,), (7,)]
    ps = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    gs = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    ours = [p.clone() for p in ps]
    theirs = [p.clone() for p in ps]
    ptrs = [p.data_ptr() for p in ours]
    om, ov = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
    tm, tv = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
    os_, ts = [torch.tensor(0.0) for _ in ps], [torch.tensor(0.0) for _ in ps]
    obuf, tbuf = [None] * 3, [None] * 3
    for _ in range(3):
        F.adam(ours, gs, om, ov, [], os_, **_adam_kw())
        torch_adam(theirs, gs, tm, tv, [], ts, foreach=False, **_adam_kw())
        F.sgd(ours, gs, obuf, **_sgd_kw())
        torch_sgd(theirs, gs, tbuf, foreach=False, **_sgd_kw())
    assert [p.data_ptr() for p in ours] == ptrs           # in place
    for a, b in zip(ours + om + ov + os_, theirs + tm + tv + ts):
        torch.testing.assert_close(a, b, **TOL[a.dtype] if a.dtype in TOL else {})
    # the momentum buffers SGD made are torch tensors, stepped in place on later calls
    assert all(isinstance(b, torch.Tensor) for b in obuf)
    for a, b in zip(obuf, tbuf):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_functionals_refuse_a_torch_tensor_they_cannot_update():
    from fastoptim.optim import functional as F

    p = torch.zeros(3, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"adam: params\[0\] is a torch tensor .* dense real CPU"):
        F.adam([p], [p.clone()], [p.clone()], [p.clone()], [], [torch.tensor(0.0)],
               **_adam_kw())
