"""The steady step's cache (``_optim.StepCache``): a change between steps is always seen.

Why: the classes' steady step keeps each run's validated pointer arrays between steps and
re-checks them instead of rebuilding them.  A change the re-check missed would step stale
memory -- a silent wrong answer, or a write through a freed buffer.  Each test makes one kind of
change between steady steps (a new grad, a grad set to None, a param replaced or rebound, a
dtype change, loaded or edited state, a per-tensor scalar state replaced, rebound, edited in
place or made float64, a new group, a hook that swaps grads, an lr change) and
holds the run against the same run with the shortcut declined (the general path, which
collects and validates from scratch every step), bit for bit.
"""

import numpy as np
import pytest

import fastoptim
from fastoptim import optim
from fastoptim._C import _optim
from fastoptim.optim import _step

# NAdam and ASGD keep per-tensor scalar state (0-dim mu_product; eta and mu, averaging from
# step 3 on with t0=1), whose objects, data pointers and dtypes the re-check covers too
CONFIGS = [("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}),
           ("Adam", {"lr": 0.01}), ("Adagrad", {"lr": 0.1}), ("NAdam", {"lr": 0.01}),
           ("ASGD", {"lr": 0.01, "t0": 1.0})]
IDS = [f"{n}-{'-'.join(map(str, k.values()))}" for n, k in CONFIGS]


def tensor(values, dtype=np.float32, grad=False):
    t = fastoptim.from_numpy(np.asarray(values, dtype=dtype).copy())
    return t.requires_grad_() if grad else t


def setup(name, kwargs, n=4, groups=1):
    rng = np.random.default_rng(0)
    ps = [tensor(rng.standard_normal(5 + i), grad=True) for i in range(n)]
    for p in ps:
        p.grad = tensor(rng.standard_normal(p.shape))
    if groups == 1:
        spec = ps
    else:
        spec = [{"params": ps[: n // 2]}, {"params": ps[n // 2:], "lr": 0.05}]
    return getattr(optim, name)(spec, **kwargs), ps


def run(name, kwargs, change, monkeypatch, cached, groups=1):
    """Params and state after 2 steps, ``change(opt, ps)``, 2 steps."""
    if not cached:
        monkeypatch.setattr(_step, "group_step", lambda *a: False)
    opt, ps = setup(name, kwargs, groups=groups)
    for _ in range(2):
        opt.step()
    before = _optim._step_cache_reuses()
    change(opt, ps)
    for _ in range(2):
        opt.step()
    reused = _optim._step_cache_reuses() - before
    monkeypatch.undo()
    ps = [p for g in opt.param_groups for p in g["params"]]
    state = {i: {k: np.array(getattr(v, "_np", v), copy=True) for k, v in opt.state[p].items()}
             for i, p in enumerate(ps) if p in opt.state}
    return [p.detach().numpy().copy() for p in ps], state, reused


def new_grads(opt, ps):
    for p in ps:
        p.grad = tensor(np.full(p.shape, 0.5))


def none_grad(opt, ps):
    ps[1].grad = None


def zero_grad_to_none(opt, ps):
    opt.zero_grad()
    ps[2].grad = tensor(np.ones(ps[2].shape))


def zero_grad_in_place(opt, ps):
    opt.zero_grad(set_to_none=False)


def grad_values_in_place(opt, ps):
    ps[0].grad.mul_(3.0)


def grad_rebound(opt, ps):
    ps[0].grad.data = tensor(np.full(ps[0].shape, -2.0))


def param_replaced(opt, ps):
    q = tensor(np.linspace(0, 1, 7), grad=True)
    q.grad = tensor(np.ones(7))
    opt.param_groups[0]["params"][1] = q


def param_rebound(opt, ps):
    ps[0].data = tensor(np.arange(ps[0].shape[0]) * 1.0)


def dtype_change(opt, ps):
    ps[0].data = tensor(np.ones(ps[0].shape), np.float64)
    ps[0].grad = tensor(np.ones(ps[0].shape), np.float64)
    if ps[0] in opt.state:        # the state follows the param's dtype (loaded state would)
        st = opt.state[ps[0]]
        for k, v in list(st.items()):
            if k != "step" and hasattr(v, "_np"):
                st[k] = tensor(v.detach().numpy(), np.float64)


def _array_key(opt, st):
    """A state key of ``st`` holding an array like the param (not the step, not a scalar)."""
    return next(k for k in st if k != "step" and k not in opt._DESCRIPTION.scalar_keys)


def _scalar_keys(opt, ps, i=0):
    """The per-tensor scalar state keys of ``ps[i]`` (NAdam's, ASGD's), else ()."""
    st = opt.state.get(ps[i])
    return [k for k in st if k in opt._DESCRIPTION.scalar_keys] if st else []


def state_value_replaced(opt, ps):
    st = opt.state.get(ps[0])
    if st:
        st[_array_key(opt, st)] = tensor(np.full(ps[0].shape, 0.25))


def state_value_rebound(opt, ps):
    st = opt.state.get(ps[0])
    if st:
        st[_array_key(opt, st)].data = tensor(np.full(ps[0].shape, 0.75))


def scalar_replaced(opt, ps):
    for k in _scalar_keys(opt, ps):
        opt.state[ps[0]][k] = tensor(0.5)


def scalar_rebound(opt, ps):
    for k in _scalar_keys(opt, ps, 1):
        opt.state[ps[1]][k].data = tensor(0.25)


def scalar_in_place(opt, ps):
    for k in _scalar_keys(opt, ps, 2):
        opt.state[ps[2]][k].fill_(0.75)


def scalar_dtype(opt, ps):
    # float64 scalars beside float32 ones in one batch (as loading into a float64 param makes
    # them): the gather splits the batch by scalar dtype
    for k in _scalar_keys(opt, ps):
        st = opt.state[ps[0]]
        st[k] = tensor(st[k].item(), np.float64)


def scalar_dtype_rebound(opt, ps):
    for k in _scalar_keys(opt, ps, 3):
        st = opt.state[ps[3]]
        st[k].data = tensor(st[k].item(), np.float64)


def state_dropped(opt, ps):
    opt.state.pop(ps[3], None)


def loaded(opt, ps):
    groups = len(opt.param_groups)
    other, qs = setup(type(opt).__name__, dict(opt.defaults), groups=groups)
    for q in qs:
        q.grad = tensor(np.ones(q.shape))
    for _ in range(3):
        other.step()
    opt.load_state_dict(other.state_dict())


def group_added(opt, ps):
    q = tensor(np.ones(3), grad=True)
    q.grad = tensor(np.ones(3))
    opt.add_param_group({"params": [q], "lr": 0.2})


def hook_swaps_grads(opt, ps):
    def hook(o, args, kwargs):
        for p in ps:
            p.grad = tensor(np.full(p.shape, 0.1))
    opt.register_step_pre_hook(hook)


def lr_changed(opt, ps):
    for g in opt.param_groups:
        g["lr"] = g["lr"] * 0.5


def nothing(opt, ps):
    pass


CHANGES = [new_grads, none_grad, zero_grad_to_none, zero_grad_in_place, grad_values_in_place,
           grad_rebound, param_replaced, param_rebound, dtype_change, state_value_replaced,
           state_value_rebound, scalar_replaced, scalar_rebound, scalar_in_place, scalar_dtype,
           scalar_dtype_rebound, state_dropped, loaded, group_added, hook_swaps_grads,
           lr_changed, nothing]


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_a_change_between_steps_is_seen(name, kwargs, change, groups, monkeypatch):
    fast, fast_state, reused = run(name, kwargs, change, monkeypatch, True, groups)
    slow, slow_state, _ = run(name, kwargs, change, monkeypatch, False, groups)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
    assert fast_state.keys() == slow_state.keys()
    for i in fast_state:
        assert fast_state[i].keys() == slow_state[i].keys()
        for k in fast_state[i]:
            np.testing.assert_array_equal(fast_state[i][k], slow_state[i][k])
    if change in (nothing, lr_changed, grad_values_in_place, zero_grad_in_place,
                  scalar_in_place, new_grads, grad_rebound, hook_swaps_grads):
        # the steady steps re-checked their caches (grads that moved taken in place)
        assert reused >= 2 * groups


@pytest.mark.parametrize("name,kwargs", CONFIGS[1:], ids=IDS[1:])
def test_a_new_grad_that_overlaps_written_state_is_refused(name, kwargs):
    # a grad that moved is taken into the record, and the overlap proof is redone: a grad over
    # a state array's memory fails it, the step raises and writes nothing
    opt, ps = setup(name, kwargs)
    for _ in range(2):
        opt.step()
    st = opt.state[ps[1]]
    key = _array_key(opt, st)
    ps[1].grad = fastoptim.from_numpy(st[key].detach().numpy())   # shares the state's memory
    before = [p.detach().numpy().copy() for p in ps]
    with pytest.raises(ValueError, match="overlap in memory"):
        opt.step()
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.detach().numpy(), b)


def test_new_grads_every_step_reuse_the_cache():
    # the training loop's zero_grad() then backward(): new grads each step, the record kept
    opt, ps = setup("Adam", {"lr": 0.01})
    opt.step()            # the general path (state made)
    opt.step()            # the first steady step: gathered in full, recorded
    before = _optim._step_cache_reuses()
    for _ in range(5):
        opt.zero_grad()
        for p in ps:
            p.grad = tensor(np.ones(p.shape))
        opt.step()
    assert _optim._step_cache_reuses() - before == 5


def test_the_cache_holds_its_params_and_is_never_copied():
    import copy
    import pickle
    import weakref

    opt, ps = setup("Adam", {"lr": 0.1})
    opt.step()
    opt.step()
    cache = opt._step_caches[0]
    assert cache._info() == (True, len(ps))
    assert copy.deepcopy(cache)._info() == (False, 0)
    assert pickle.loads(pickle.dumps(cache))._info() == (False, 0)
    assert [c._info() for c in copy.deepcopy(opt)._step_caches] == [(False, 0)]
    assert [c._info() for c in pickle.loads(pickle.dumps(opt))._step_caches] == [(False, 0)]
    # a grad dropped between steps is not kept alive by the cache
    g = ps[0].grad
    ref = weakref.ref(g._np)
    ps[0].grad = None
    del g
    assert ref() is None


def test_run_without_a_pending_gather_raises():
    with pytest.raises(RuntimeError, match="no gathered step is pending"):
        _optim.StepCache().run()
    with pytest.raises(ValueError, match="needs a cache"):
        _optim.group_step(_step.plan(optim.SGD._DESCRIPTION), (0.1, 0.0, 0.0, 0.0, False,
                                                               False), [], {}, None, False)


# ---- torch params: the sync a steady step skips (_optim.TorchSteady) --------------------------

class _NeverSteady:
    """Stands in for a TorchSteady that never says "nothing changed": the full sync each step."""

    def check(self, groups, tstate):
        return False

    def kernel_unchanged(self, kstate):
        return False

    def record(self, *args):
        pass


def t_new_grads(opt, ps, torch):
    for p in ps:
        p.grad = torch.full_like(p, 0.5)


def t_none_grad(opt, ps, torch):
    ps[1].grad = None


def t_grad_in_place(opt, ps, torch):
    ps[0].grad.mul_(3.0)


def t_storage(opt, ps, torch):
    ps[0].data = torch.arange(ps[0].numel(), dtype=ps[0].dtype)


def t_state_replaced(opt, ps, torch):
    st = opt.state.get(ps[0])
    if st:
        st[_array_key(opt, st)] = torch.full_like(ps[0], 0.25)


def t_momentum_on(opt, ps, torch):
    if "momentum" in opt.param_groups[0]:
        opt.param_groups[0]["momentum"] = 0.5


def t_loaded(opt, ps, torch):
    opt.load_state_dict(opt.state_dict())


def t_lr(opt, ps, torch):
    opt.param_groups[0]["lr"] *= 0.5


def t_nothing(opt, ps, torch):
    pass


T_CHANGES = [t_new_grads, t_none_grad, t_grad_in_place, t_storage, t_state_replaced,
             t_momentum_on, t_loaded, t_lr, t_nothing]


def _torch_run(torch, name, kwargs, change, steady):
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(5 + i, generator=gen).requires_grad_() for i in range(3)]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = getattr(optim, name)(ps, **kwargs)
    if not steady:
        opt._torch_params.steady = _NeverSteady()
    for _ in range(2):
        opt.step()
    change(opt, ps, torch)
    for _ in range(2):
        opt.step()
    state = {i: {k: v.clone() for k, v in opt.state[p].items()}
             for i, p in enumerate(ps) if p in opt.state}
    return [p.detach().clone() for p in ps], state


@pytest.mark.parametrize("change", T_CHANGES, ids=[c.__name__ for c in T_CHANGES])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_torch_params_a_change_between_steps_is_seen(name, kwargs, change):
    torch = pytest.importorskip("torch")
    fast, fast_state = _torch_run(torch, name, kwargs, change, True)
    slow, slow_state = _torch_run(torch, name, kwargs, change, False)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)
    assert fast_state.keys() == slow_state.keys()
    for i in fast_state:
        assert fast_state[i].keys() == slow_state[i].keys()
        for k in fast_state[i]:
            assert torch.equal(fast_state[i][k], slow_state[i][k])


def test_torch_params_steady_step_skips_the_sync(monkeypatch):
    torch = pytest.importorskip("torch")
    from fastoptim.optim import _torch_params
    ps = [torch.zeros(4, requires_grad=True) for _ in range(3)]
    for p in ps:
        p.grad = torch.ones(4)
    opt = optim.Adam(ps, lr=0.1)
    opt.step()
    calls = []
    real = _torch_params.TorchParams._sync
    monkeypatch.setattr(_torch_params.TorchParams, "_sync",
                        lambda self, o: calls.append(1) or real(self, o))
    opt.step()
    opt.step()
    assert calls == []
    ps[0].grad = torch.ones(4)       # a new grad: bound by the steady check, no sync
    opt.step()
    assert calls == []
    ps[1].grad = None                # a grad goes: what the step writes changes, synced again
    opt.step()
    assert calls == [1]


def _resized_run(torch, make):
    """Two steady steps, then the param narrowed in place at the same address (``p.data =
    p.data[:5]``) and its grad resized in place (the same grad object), then a step: the
    param and the storage past its new end, as ``make`` (an optimizer class) leaves them."""
    p = torch.arange(8.0, dtype=torch.float64).requires_grad_()
    p.grad = torch.full((8,), 0.5, dtype=torch.float64)
    storage = p.detach()            # all 8 elements of the storage, seen after the resize
    opt = make([p])
    opt.step()
    opt.step()
    ptr = p.data_ptr()
    p.data = p.data[:5]
    p.grad.resize_(5)
    assert p.data_ptr() == ptr and p.grad.shape == (5,)
    before = storage.clone()
    try:
        opt.step()
    except (RuntimeError, ValueError) as e:
        return None, before, storage.clone(), e
    return p.detach().clone(), before, storage.clone(), None


def test_torch_param_resized_at_the_same_address_is_synced():
    # Stateless SGD: the step updates the param's 5 elements, not the 8 its old view had.
    torch = pytest.importorskip("torch")
    ours = _resized_run(torch, lambda ps: optim.SGD(ps, lr=0.25))
    theirs = _resized_run(torch, lambda ps: torch.optim.SGD(ps, lr=0.25))
    assert ours[3] is None and theirs[3] is None
    assert torch.equal(ours[0], theirs[0])
    assert torch.equal(ours[2], theirs[2])          # the 3 elements past the end: untouched
    assert torch.equal(ours[2][5:], ours[1][5:])


def test_torch_param_resized_under_its_state_raises_before_writing():
    # Adam's state keeps the old 8 elements: torch's step raises; ours too, writing nothing.
    torch = pytest.importorskip("torch")
    _, before, after, err = _resized_run(torch, lambda ps: optim.Adam(ps, lr=0.25))
    assert err is not None and "5" in str(err) and "8" in str(err)
    assert torch.equal(before, after)
    assert _resized_run(torch, lambda ps: torch.optim.Adam(ps, lr=0.25))[3] is not None


def test_torch_param_reshaped_at_the_same_address_is_synced():
    # p.data = p.data.view(...): same address, same numel, a new shape: the kernel's view and
    # the published state follow it (torch's SGD momentum buffer is made in the new shape).
    torch = pytest.importorskip("torch")
    p = torch.arange(6.0, dtype=torch.float64).requires_grad_()
    p.grad = torch.ones(6, dtype=torch.float64)
    opt = optim.SGD([p], lr=0.5)
    opt.step()
    opt.step()
    p.data = p.data.view(2, 3)
    p.grad = None
    p.grad = torch.ones(2, 3, dtype=torch.float64)
    opt.param_groups[0]["momentum"] = 0.9
    opt.step()
    assert opt._torch_params.view_of(p).shape == (2, 3)
    assert opt.state[p]["momentum_buffer"].shape == (2, 3)
    assert torch.equal(p.detach(), torch.arange(6.0, dtype=torch.float64).view(2, 3) - 1.5)


GRAD_SWAPS = {
    "data": lambda torch, g: setattr(g, "data", torch.full_like(g, 10.0)),
    "set_": lambda torch, g: g.set_(torch.full_like(g, -3.0)),
}


@pytest.mark.parametrize("swap", sorted(GRAD_SWAPS))
@pytest.mark.parametrize("make", ["SGD", "Adam"])
def test_torch_grad_memory_swapped_on_the_same_object_is_synced(make, swap):
    # p.grad.data = x / p.grad.set_(x): the same grad object, new memory. The steady check
    # and the sync compare the grad's data_ptr() and shape too, so the step reads the new
    # values (a check by identity alone read the old memory: a silent wrong answer).
    torch = pytest.importorskip("torch")

    def run(lib):
        p = torch.ones(4, dtype=torch.float64).requires_grad_()
        p.grad = torch.full((4,), 0.5, dtype=torch.float64)
        opt = getattr(lib, make)([p], lr=0.1)
        opt.step()
        opt.step()
        g = p.grad
        GRAD_SWAPS[swap](torch, g)
        assert p.grad is g
        opt.step()
        opt.step()
        return p.detach().clone()

    assert torch.equal(run(optim), run(torch.optim))
