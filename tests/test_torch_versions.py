"""torch's version counters under fastoptim's optimizers over torch params (issue 11).

Why: autograd refuses a backward through a tensor saved for it and modified in place since
("one of the variables needed for gradient computation has been modified by an inplace
operation"), by the tensor's ``_version``.  torch's optimizers bump it through ATen; our kernels
write the memory directly, so without a bump the same script that raises under torch.optim
would silently compute a wrong gradient under fastoptim.optim.  Each test runs one script with
``torch.optim.X`` and with ``fastoptim.optim.X`` (every configuration of the optimizer table)
and compares: the error and its message, which versions advance on each step (ours by one per
step: torch's count is how many in-place ops it happens to use), the functionals, and
inference-mode tensors (torch refuses to update one in place outside inference mode).

The oracle is torch's for-loop implementation (``foreach=False``, what torch runs on the CPU by
default): torch 2.13's fused CPU kernels (``fused=True``: SGD, Adam, AdamW, Adagrad) bump no
version at all, so under them the stale backward runs silently.  Ours bump with ``fused=True``
too (they run the same kernel either way): a silent wrong gradient is not a behaviour to copy.
"""

import copy
import re

import pytest
from optim_table import class_cases

import fastoptim.optim as fo_optim

torch = pytest.importorskip("torch")

CASES = class_cases()
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
LIBS = {"torch": torch.optim, "fastoptim": fo_optim}


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 2)).double()


def batch(i):
    g = torch.Generator().manual_seed(100 + i)
    return (torch.randn(7, 3, generator=g, dtype=torch.float64),
            torch.randn(7, 2, generator=g, dtype=torch.float64))


def loss_of(model, i):
    x, y = batch(i)
    return torch.nn.functional.mse_loss(model(x), y)


def _torch_kwargs(lib, kwargs):
    """torch's for-loop variant of a configuration (see the module docstring)."""
    if lib == "fastoptim":
        return kwargs
    return {**{k: v for k, v in kwargs.items() if k not in ("fused", "foreach")},
            "foreach": False}


def _masked(msg):
    # the versions in the message count in-place ops: torch's and ours differ (module doc)
    return re.sub(r"version \d+", "version N", msg)


def _stale_backward(lib, name, kwargs, new_grads):
    """Step, forward (saving the params), step again, then backward through the stale graph:
    the error message (versions masked), or None if backward ran."""
    model = make_model()
    opt = getattr(LIBS[lib], name)(model.parameters(), **_torch_kwargs(lib, kwargs))
    loss_of(model, 0).backward()
    opt.step()
    stale = loss_of(model, 1)          # saves the second layer's weight (and the first's input)
    if new_grads:                      # the step syncs (new grad tensors)
        opt.zero_grad()
        loss_of(model, 2).backward()
    opt.step()                         # same grads: the steady step (TorchSteady)
    try:
        stale.backward()
    except RuntimeError as e:
        return _masked(str(e))
    return None


@pytest.mark.parametrize("new_grads", [False, True], ids=["steady", "synced"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_backward_through_stepped_params_raises_as_with_torch(name, kwargs, new_grads):
    theirs = _stale_backward("torch", name, kwargs, new_grads)
    ours = _stale_backward("fastoptim", name, kwargs, new_grads)
    assert theirs is not None and "modified by an inplace operation" in theirs
    assert ours == theirs


def _versions(model, opt):
    """(each param's version, {(param index, key): (tensor, version)} of its state)."""
    ps = list(model.parameters())
    state = {(i, k): (v, v._version) for i, p in enumerate(ps)
             for k, v in opt.state.get(p, {}).items() if isinstance(v, torch.Tensor)}
    return [p._version for p in ps], state


def _deltas(lib, name, kwargs, steps=5):
    """Per step: which params' versions advanced and by how much, and which state tensors'
    (those that existed before the step and are still the state's)."""
    model = make_model()
    opt = getattr(LIBS[lib], name)(model.parameters(), **_torch_kwargs(lib, kwargs))
    out = []
    for i in range(steps):
        opt.zero_grad(set_to_none=i % 2 == 0)   # new grad tensors on even steps, kept on odd
        out_ = model(batch(i)[0])
        if i == 2:   # no grad for the first layer's bias on this step: it is not stepped
            out_ = model[2](model[1](batch(i)[0] @ model[0].weight.t()))
        torch.nn.functional.mse_loss(out_, batch(i)[1]).backward()
        if i == 2:
            assert model[0].bias.grad is None
        before, sbefore = _versions(model, opt)
        opt.step()
        after, safter = _versions(model, opt)
        states = {key: safter[key][1] - v for key, (t, v) in sbefore.items()
                  if key in safter and safter[key][0] is t}
        out.append(([a - b for a, b in zip(after, before)], states))
    return out


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_versions_advance_where_torch_advances_them(name, kwargs):
    theirs = _deltas("torch", name, kwargs)
    ours = _deltas("fastoptim", name, kwargs)
    for step, ((tp, ts), (op, os_)) in enumerate(zip(theirs, ours)):
        assert [d > 0 for d in op] == [d > 0 for d in tp], step
        assert all(d in (0, 1) for d in op), step             # one bump per step
        assert op[1] == 0 if step == 2 else op[1] == 1        # no grad: not stepped
        common = ts.keys() & os_.keys()
        assert {k: os_[k] > 0 for k in common} == {k: ts[k] > 0 for k in common}, step
        if step >= 1:       # the state made at the first step is there from the second on
            assert common == ts.keys()


def test_steady_steps_bump_the_state_made_on_the_first_step():
    model = make_model()
    opt = fo_optim.Adam(model.parameters(), lr=0.01)
    loss_of(model, 0).backward()
    opt.step()
    st = opt.state[model[0].weight]
    seen = {k: v._version for k, v in st.items()}
    opt.step()                       # steady: the list made at the sync includes the new state
    assert {k: v._version - seen[k] for k, v in st.items()} == {k: 1 for k in st}


def test_a_failed_step_bumps_nothing():
    model = make_model()
    opt = fo_optim.SGD(model.parameters(), lr=0.1)
    loss_of(model, 0).backward()
    model[2].weight.grad = torch.ones(5, 2, dtype=torch.float64).t()   # not contiguous
    before = [p._version for p in model.parameters()]
    with pytest.raises(RuntimeError, match="not contiguous"):
        opt.step()
    assert [p._version for p in model.parameters()] == before


def _adam_kw():
    return dict(amsgrad=False, beta1=0.9, beta2=0.999, lr=0.01, weight_decay=0.0, eps=1e-8,
                maximize=False)


def test_functionals_bump_what_they_write_as_torch_does():
    from torch.optim.adam import adam as torch_adam

    from fastoptim.optim import functional as F

    def run(adam, **extra):
        gen = torch.Generator().manual_seed(0)
        ps = [torch.randn(s, generator=gen) for s in ((3, 4), (5,))]
        gs = [torch.randn(p.shape, generator=gen) for p in ps]
        ms, vs = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
        steps = [torch.tensor(0.0) for _ in ps]
        lists = (ps, gs, ms, vs, steps)
        adam(ps, gs, ms, vs, [], steps, **_adam_kw(), **extra)
        return [[t._version > 0 for t in lst] for lst in lists]

    ours, theirs = run(F.adam), run(torch_adam, foreach=False)
    assert ours == theirs
    assert ours[0] == [True, True] and ours[1] == [False, False]    # params yes, grads no


# ------------------------------------------------------------------ inference mode
def _inference_params():
    with torch.inference_mode():
        ps = [torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(2, 3))]
        for p in ps:
            p.grad = torch.full_like(p, 0.5)
    return ps


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_inference_params_outside_inference_mode_are_refused_as_torch(name):
    msgs = {}
    for lib in LIBS:
        ps = _inference_params()
        opt = getattr(LIBS[lib], name)(ps, lr=0.1)
        with pytest.raises(RuntimeError) as e:
            opt.step()
        msgs[lib] = str(e.value)
        if lib == "fastoptim":           # refused before anything is written
            assert all(torch.equal(p, torch.ones_like(p)) for p in ps)
            assert not opt.state or all(not s for s in opt.state.values())
    assert msgs["fastoptim"] == msgs["torch"]
    assert "Inplace update to inference tensor outside InferenceMode" in msgs["torch"]


def _kw(name):
    return {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.1}


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_steps_inside_inference_mode_as_torch(name):
    """Inference params stepped inside inference mode; normal params stepped outside, inside
    (their versions still advance there) and outside again: the same values and versions'
    advances as torch's.  Inference params stepped outside the mode again: refused, as by
    torch."""
    results = {}
    for lib in LIBS:
        ps = _inference_params()
        opt = getattr(LIBS[lib], name)(ps, **_kw(name), foreach=False)
        with torch.inference_mode():
            opt.step()
            opt.step()
        normal = make_model()
        nopt = getattr(LIBS[lib], name)(normal.parameters(), **_kw(name), foreach=False)
        loss_of(normal, 0).backward()
        versions = []
        for mode in (False, True, False):
            with torch.inference_mode(mode):
                nopt.step()
            versions.append([p._version for p in normal.parameters()])
        results[lib] = ([p.clone() for p in ps], [p.detach().clone() for p in normal.parameters()],
                        [[b > a for a, b in zip(v, w)] for v, w in zip(versions, versions[1:])])
        with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside"):
            opt.step()                          # outside the mode again: refused
    (tp, tn, tv), (op, on, ov) = results["torch"], results["fastoptim"]
    for a, b in zip(op + on, tp + tn):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert ov == tv and all(all(v) for v in ov)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_state_made_inside_inference_mode_is_refused_outside_as_torch(name):
    msgs = {}
    for lib in LIBS:
        model = make_model()
        opt = getattr(LIBS[lib], name)(model.parameters(), **_kw(name), foreach=False)
        loss_of(model, 0).backward()
        with torch.inference_mode():
            opt.step()            # the state is made here: inference tensors
        before = [p.detach().clone() for p in model.parameters()]
        with pytest.raises(RuntimeError) as e:
            opt.step()
        msgs[lib] = str(e.value)
        if lib == "fastoptim":    # refused before anything is written
            assert all(torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))
    assert msgs["fastoptim"] == msgs["torch"]


def test_copy_of_an_optimizer_keeps_bumping():
    model = make_model()
    opt = fo_optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_of(model, 0).backward()
    opt.step()
    m2, o2 = copy.deepcopy((model, opt))     # (torch's Parameter copies carry no grad)
    loss_of(m2, 1).backward()
    before = [p._version for p in m2.parameters()]
    o2.step()
    assert [p._version - b for p, b in zip(m2.parameters(), before)] == [1] * 4
