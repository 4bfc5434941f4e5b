"""LBFGS over a torch model's parameters (issue 11): the same iterates, state and version bumps
as ``torch.optim.LBFGS``.

Why a file of its own: LBFGS is not in the optimizer table that ``test_torch_interop`` and
``test_torch_versions`` run, because its step calls the closure itself, several times, and
each call writes new torch grads that the kernel views must follow (``_torch_params``'s
closure-driven step).  Each test runs one script with ``torch.optim.LBFGS`` and with
``fastoptim.optim.LBFGS`` on copies of one torch model and compares.
"""

import copy
import io
import re

import pytest

import fastoptim.optim as fo_optim

torch = pytest.importorskip("torch")

LIBS = {"torch": torch.optim, "fastoptim": fo_optim}
TOL = {torch.float64: {"rtol": 1e-10, "atol": 1e-10},
       torch.float32: {"rtol": 1e-5, "atol": 1e-5}}
# the state (history, two-loop scalars): our dots sum in double, torch's float32 ones do not
STATE_TOL = {torch.float64: {"rtol": 1e-9, "atol": 1e-10},
             torch.float32: {"rtol": 1e-4, "atol": 1e-5}}
CONFIGS = [
    {"lr": 0.5, "max_iter": 5},
    {"lr": 1.0, "max_iter": 4, "history_size": 3, "line_search_fn": "strong_wolfe"},
    {"lr": 0.3, "max_iter": 1},
    {"lr": torch.tensor(0.5), "max_iter": 4},   # a float32 0-dim lr promotes as torch's
]
IDS = ["plain", "strong_wolfe", "one_iter", "tensor_lr"]


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                                        torch.nn.Linear(5, 2))
        self.unused = torch.nn.Linear(1, 1)   # no grad ever: zeros in the flat grad

    def forward(self, x):
        return self.body(x)

    def __getitem__(self, i):
        return self.body[i]


def make_model(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return Net().to(dtype)


def closure_of(model, opt, i, dtype):
    g = torch.Generator().manual_seed(200 + i)
    x = torch.randn(9, 3, generator=g, dtype=dtype)
    y = torch.randn(9, 2, generator=g, dtype=dtype)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss
    return closure


def run(model, opt, steps, dtype, start=0):
    return [opt.step(closure_of(model, opt, i, dtype)).item()
            for i in range(start, start + steps)]


def assert_models_close(m1, m2, dtype):
    for (n, p), q in zip(m1.named_parameters(), m2.parameters()):
        torch.testing.assert_close(q, p, **TOL[dtype], msg=n)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kwargs", CONFIGS, ids=IDS)
def test_iterates_and_state_match_torch(kwargs, dtype):
    ref = make_model(dtype)
    ours = copy.deepcopy(ref)
    topt = torch.optim.LBFGS(ref.parameters(), **kwargs)
    fopt = fo_optim.LBFGS(ours.parameters(), **kwargs)
    losses_t = run(ref, topt, 4, dtype)
    losses_f = run(ours, fopt, 4, dtype)
    torch.testing.assert_close(losses_f, losses_t, **TOL[dtype])
    assert_models_close(ref, ours, dtype)
    assert all(isinstance(p.grad, torch.Tensor) for p in ours[0].parameters())
    p0 = next(ours.parameters())
    assert list(fopt.state) == [p0]
    ts, fs = topt.state[next(ref.parameters())], fopt.state[p0]
    assert fs.keys() == ts.keys()
    for k, tv in ts.items():
        fv = fs[k]
        if isinstance(tv, list):
            assert len(fv) == len(tv), k
            for a, b in zip(fv, tv):
                assert (a is None) == (b is None), k
                if b is not None:
                    assert isinstance(a, torch.Tensor) and a.dtype == b.dtype, k
                    torch.testing.assert_close(a, b, **STATE_TOL[dtype], msg=k)
        elif isinstance(tv, torch.Tensor):
            assert isinstance(fv, torch.Tensor) and fv.dtype == tv.dtype, k
            torch.testing.assert_close(fv, tv, **STATE_TOL[dtype], msg=k)
        else:
            assert fv == pytest.approx(tv, rel=STATE_TOL[dtype]["rtol"]), k


@pytest.mark.parametrize("kwargs", CONFIGS, ids=IDS)
def test_checkpoints_cross_libraries_mid_run(kwargs):
    dtype = torch.float64
    ref = make_model(dtype)
    topt = torch.optim.LBFGS(ref.parameters(), **kwargs)
    run(ref, topt, 2, dtype)
    # torch -> ours, mid-run
    ours = copy.deepcopy(ref)
    fopt = fo_optim.LBFGS(ours.parameters(), **kwargs)
    fopt.load_state_dict(copy.deepcopy(topt.state_dict()))
    run(ref, topt, 2, dtype, start=2)
    run(ours, fopt, 2, dtype, start=2)
    assert_models_close(ref, ours, dtype)
    # ours -> torch, through torch.save / torch.load(weights_only=True)
    buf = io.BytesIO()
    torch.save(fopt.state_dict(), buf)
    buf.seek(0)
    back = copy.deepcopy(ours)
    bopt = torch.optim.LBFGS(back.parameters(), **kwargs)
    bopt.load_state_dict(torch.load(buf, weights_only=True))
    run(ref, topt, 2, dtype, start=4)
    run(back, bopt, 2, dtype, start=4)
    assert_models_close(ref, back, dtype)


def _stale_backward(lib, kwargs):
    model = make_model()
    opt = LIBS[lib].LBFGS(model.parameters(), **kwargs)
    run(model, opt, 1, torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    stale = model(x).sum()             # saves the params' versions
    versions = [p._version for p in model.parameters()]
    run(model, opt, 1, torch.float64, start=1)
    moved = [p._version > v for p, v in zip(model.parameters(), versions)]
    try:
        stale.backward()
    except RuntimeError as e:
        # the versions in the message count in-place ops: torch bumps per op, we per step
        return moved, re.sub(r"version \d+", "version N", str(e))
    return moved, None


@pytest.mark.parametrize("kwargs", CONFIGS, ids=IDS)
def test_a_backward_through_stepped_params_raises_as_with_torch(kwargs):
    (tmoved, terr), (fmoved, ferr) = (_stale_backward(lib, kwargs) for lib in LIBS)
    assert fmoved == tmoved and all(fmoved)      # every param moves, the unused ones too
    assert terr is not None and ferr == terr


def test_a_step_that_writes_nothing_bumps_nothing():
    for lib in LIBS:
        model = make_model()
        opt = LIBS[lib].LBFGS(model.parameters(), tolerance_grad=1e9)   # converged at once
        versions = [p._version for p in model.parameters()]
        before = [p.detach().clone() for p in model.parameters()]
        run(model, opt, 1, torch.float64)
        assert [p._version for p in model.parameters()] == versions, lib
        assert all(torch.equal(a, p) for a, p in zip(before, model.parameters())), lib


def test_inference_params_outside_inference_mode_are_refused_as_torch():
    msgs = {}
    for lib in LIBS:
        with torch.inference_mode():
            p = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
        calls = []

        def closure(p=p, calls=calls):
            calls.append(1)
            p.grad = torch.full_like(p, 0.5)
            return torch.tensor(1.0)

        opt = LIBS[lib].LBFGS([p])
        with pytest.raises(RuntimeError) as e:
            opt.step(closure)
        msgs[lib] = str(e.value)
        if lib == "fastoptim":           # refused before the closure runs or anything is written
            assert not calls and torch.equal(p, torch.ones_like(p))
    assert msgs["fastoptim"] == msgs["torch"]


def test_a_closure_that_replaces_a_param_storage_is_refused():
    model = make_model()
    opt = fo_optim.LBFGS(model.parameters())
    inner = closure_of(model, opt, 0, torch.float64)

    def closure():
        model[0].bias.data = torch.zeros(5, dtype=torch.float64)
        return inner()

    with pytest.raises(RuntimeError, match="closure replaced the memory of parameter 1 of "
                                           "parameter group 0"):
        opt.step(closure)


def test_hooks_and_zero_grad_see_the_torch_params():
    model = make_model()
    opt = fo_optim.LBFGS(model.parameters(), max_iter=3)
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append(o.param_groups[0]["params"][0]))
    run(model, opt, 1, torch.float64)
    assert seen == [model[0].weight]
    assert opt.param_groups[0]["params"] == list(model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_tensor_lr_of_more_than_one_element_is_refused_as_torch():
    model = make_model()
    for lib in LIBS:
        with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
            LIBS[lib].LBFGS(model.parameters(), lr=torch.tensor([0.1, 0.2]))
