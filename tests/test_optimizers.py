"""The six optimizers against torch 2.13, driven by one table of (optimizer, hyperparameters).

Why: fastoptim promises torch's numbers, state-dict layout and messages. Each table row is run
through trajectories (two groups, mixed shapes incl. 0-dim, grads that go missing), state-dict
format, round trips, cross-loading with torch both ways, strict/atomic loading, pickling and
convergence. Tests that need torch are skipped when it is not installed; the golden values
(§1.7 of the reference) and the behavioural tests run without it.
"""

import copy
import pickle

import numpy as np
import pytest
from optim_table import class_cases

import fastoptim
from fastoptim import optim
from fastoptim.optim._descriptions import BY_CLASS

try:
    import torch
except ImportError:  # pragma: no cover - CI installs torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the oracle) is not installed")

# (class name, kwargs): tests/optim_table.py's "class" rows (torch's upstream CPU configs, plus
# the flags our classes must accept).
CASES = class_cases()
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw in CASES]
SHAPES = [(10, 5), (10,), ()]
DTYPES = {np.float32: (1.3e-6, 1e-5), np.float64: (1e-10, 1e-10)}


def fo_dtype(np_dtype):
    return fastoptim.float32 if np.dtype(np_dtype) == np.float32 else fastoptim.float64


def fo_tensor(arr, requires_grad=False):
    arr = np.asarray(arr)
    return fastoptim.tensor(arr.copy(), dtype=fo_dtype(arr.dtype), requires_grad=requires_grad)


def arr(t):
    """A fastoptim or torch tensor as an independent numpy array."""
    return np.array(t.detach().numpy() if hasattr(t, "detach") else t.numpy(), copy=True)


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def grads_for(step, dtype, seed=1):
    """Random grads; the (10,) param has no grad on steps 3 and 4 (frozen, then unfrozen)."""
    rng = np.random.default_rng(seed * 1000 + step)
    out = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    if step in (3, 4):
        out[1] = None
    return out


def groups_for(params, kwargs):
    """Two groups: the table's kwargs, and a second group with its own lr (and weight decay)."""
    second = {"params": params[2:], "lr": kwargs.get("lr", 0.01) * 0.5}
    if kwargs.get("weight_decay"):
        second["weight_decay"] = kwargs["weight_decay"] * 2
    return [{"params": params[:2]}, second]


def build(lib, name, arrays, kwargs, requires_grad=True):
    if lib == "fo":
        params = [fo_tensor(a, requires_grad) for a in arrays]
        return getattr(optim, name)(groups_for(params, kwargs), **kwargs), params
    params = [torch.tensor(a.copy(), requires_grad=requires_grad) for a in arrays]
    return getattr(torch.optim, name)(groups_for(params, kwargs), **kwargs), params


def set_grads(lib, params, grads):
    for p, g in zip(params, grads):
        if g is None:
            p.grad = None
        elif lib == "fo":
            p.grad = fo_tensor(g)
        else:
            p.grad = torch.tensor(g.copy())


def run(lib, opt, params, steps, dtype, start=0):
    for i in range(start, start + steps):
        set_grads(lib, params, grads_for(i, dtype))
        opt.step()


def to_torch_state_dict(sd):
    """Our state_dict with every array converted by torch.as_tensor (the documented recipe)."""
    state = {
        k: {sk: torch.as_tensor(arr(v)) if hasattr(v, "numpy") else v for sk, v in s.items()}
        for k, s in sd["state"].items()
    }
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


def assert_state_close(fo_state, ref_state, rtol, atol):
    assert list(fo_state) == list(ref_state)
    for k in ref_state:
        assert list(fo_state[k]) == list(ref_state[k]), k
        for sk, ref in ref_state[k].items():
            np.testing.assert_allclose(arr(fo_state[k][sk]), arr(ref), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- parity


@needs_torch
@pytest.mark.parametrize("dtype", list(DTYPES), ids=["f32", "f64"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_trajectory_matches_torch(name, kwargs, dtype):
    rtol, atol = DTYPES[dtype]
    arrays = make_params(dtype)
    fo_opt, fo_p = build("fo", name, arrays, kwargs)
    t_opt, t_p = build("torch", name, arrays, kwargs)
    for i in range(20):
        grads = grads_for(i, dtype)
        set_grads("fo", fo_p, grads)
        set_grads("torch", t_p, grads)
        fo_opt.step()
        t_opt.step()
        for a, b in zip(fo_p, t_p):
            np.testing.assert_allclose(arr(a), arr(b), rtol=rtol, atol=atol, err_msg=f"step {i}")
    assert_state_close(fo_opt.state_dict()["state"], t_opt.state_dict()["state"], rtol, atol)


@needs_torch
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_format_matches_torch(name, kwargs):
    arrays = make_params(np.float32)
    fo_opt, fo_p = build("fo", name, arrays, kwargs)
    t_opt, t_p = build("torch", name, arrays, kwargs)
    run("fo", fo_opt, fo_p, 2, np.float32)
    run("torch", t_opt, t_p, 2, np.float32)
    fo_sd, t_sd = fo_opt.state_dict(), t_opt.state_dict()
    assert list(fo_sd) == ["state", "param_groups"]
    assert fo_sd["param_groups"] == t_sd["param_groups"]  # values, and key order below
    for g, tg in zip(fo_sd["param_groups"], t_sd["param_groups"]):
        assert list(g) == list(tg)
        assert list(g)[-1] == "params"
    assert list(fo_sd["state"]) == list(t_sd["state"])
    for k, s in fo_sd["state"].items():
        assert list(s) == list(t_sd["state"][k])
        if "step" in s:
            assert s["step"].dtype is fastoptim.float32 and s["step"].dim() == 0


@needs_torch
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_repr_matches_torch(name, kwargs):
    arrays = make_params(np.float32)
    assert repr(build("fo", name, arrays, kwargs)[0]) == repr(
        build("torch", name, arrays, kwargs)[0]
    )
    fo_p, t_p = fo_tensor(arrays[0]), torch.tensor(arrays[0])
    assert repr(getattr(optim, name)([fo_p])) == repr(getattr(torch.optim, name)([t_p]))


@needs_torch
@pytest.mark.parametrize("name,kwargs", CASES[::3], ids=IDS[::3])
def test_cross_load_both_ways_continues_trajectory(name, kwargs):
    arrays = make_params(np.float64)
    rtol, atol = DTYPES[np.float64]
    # torch -> fastoptim: load torch's dict as is (torch tensors as values).
    t_opt, t_p = build("torch", name, arrays, kwargs)
    run("torch", t_opt, t_p, 6, np.float64)
    fo_opt, fo_p = build("fo", name, [arr(p) for p in t_p], kwargs)
    fo_opt.load_state_dict(copy.deepcopy(t_opt.state_dict()))
    run("torch", t_opt, t_p, 6, np.float64, start=6)
    run("fo", fo_opt, fo_p, 6, np.float64, start=6)
    for a, b in zip(fo_p, t_p):
        np.testing.assert_allclose(arr(a), arr(b), rtol=rtol, atol=atol)
    # fastoptim -> torch: arrays through torch.as_tensor.
    t2, t2_p = build("torch", name, [arr(p) for p in fo_p], kwargs)
    t2.load_state_dict(to_torch_state_dict(fo_opt.state_dict()))
    run("torch", t2, t2_p, 6, np.float64, start=12)
    run("fo", fo_opt, fo_p, 6, np.float64, start=12)
    for a, b in zip(fo_p, t2_p):
        np.testing.assert_allclose(arr(a), arr(b), rtol=rtol, atol=atol)


@needs_torch
def test_mixed_dtypes_and_lr_edits_match_torch():
    a32, a64 = make_params(np.float32)[0], make_params(np.float64)[1]
    fo_p = [fo_tensor(a32, True), fo_tensor(a64, True)]
    t_p = [
        torch.tensor(a32.copy(), requires_grad=True),
        torch.tensor(a64.copy(), requires_grad=True),
    ]
    fo_opt, t_opt = optim.Adam(fo_p, lr=0.01), torch.optim.Adam(t_p, lr=0.01)
    rng = np.random.default_rng(3)
    for i in range(8):
        if i == 4:  # an lr edit between steps takes effect at once
            fo_opt.param_groups[0]["lr"] = t_opt.param_groups[0]["lr"] = 0.1
        gs = [rng.standard_normal(a32.shape).astype(np.float32), rng.standard_normal(a64.shape)]
        set_grads("fo", fo_p, gs)
        set_grads("torch", t_p, gs)
        fo_opt.step()
        t_opt.step()
    np.testing.assert_allclose(arr(fo_p[0]), arr(t_p[0]), rtol=1.3e-6, atol=1e-5)
    np.testing.assert_allclose(arr(fo_p[1]), arr(t_p[1]), rtol=1e-10, atol=1e-10)
    st = fo_opt.state[fo_p[1]]
    assert st["exp_avg"].dtype is fastoptim.float64 and st["step"].dtype is fastoptim.float32


# ----------------------------------------------------------------------------- golden values

P0 = [1.0, -2.0, 0.5]
GRADS = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.2], [-0.4, 0.0, 1.5]]
GOLDEN = [  # torch 2.13, float64, after 3 steps (reference §1.7)
    ("SGD", {"lr": 0.1}, [0.98, -1.93, 0.17]),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
     [0.87826328869, -1.76998607738, -0.144790247405]),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True},
     [1.12305, -2.2626, 1.4186]),
    ("Adam", {"lr": 0.1}, [0.810325966358, -1.82414232285, 0.265802039312]),
    ("Adam", {"lr": 0.1, "weight_decay": 0.1, "amsgrad": True},
     [0.782983779079, -1.7846241918, 0.262981733572]),
    ("AdamW", {"lr": 0.1}, [0.80760916945, -1.81839100571, 0.264562703662]),
    ("AdamW", {"lr": 0.1, "weight_decay": 0.5, "maximize": True},
     [1.03328382906, -1.87871843432, 0.650172218187]),
    ("RMSprop", {"lr": 0.01}, [0.942391082224, -1.92886752068, 0.349807080373]),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1},
     [0.71557907154, -1.72999620958, 0.18190048322]),
    ("Adagrad", {"lr": 0.1}, [0.942109726485, -1.92873478856, 0.350141455197]),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.5, "initial_accumulator_value": 0.1,
                 "weight_decay": 0.1}, [0.913619930953, -1.90159602455, 0.376536126404]),
    ("Adadelta", {}, [0.998839180499, -1.9981861277, 0.49450910167]),
    ("Adadelta", {"lr": 0.5, "rho": 0.5, "weight_decay": 0.1, "maximize": True},
     [0.999902756707, -1.99966231516, 0.501258682588]),
]  # fmt: skip


@pytest.mark.parametrize("name,kwargs,expected", GOLDEN)
def test_golden_values(name, kwargs, expected):
    p = fo_tensor(np.array(P0), requires_grad=True)
    opt = getattr(optim, name)([p], **kwargs)
    for g in GRADS:
        p.grad = fo_tensor(np.array(g))
        opt.step()
    np.testing.assert_allclose(arr(p), expected, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    arrays = make_params(np.float64)
    a, a_p = build("fo", name, arrays, kwargs)
    run("fo", a, a_p, 5, np.float64)
    b, b_p = build("fo", name, [arr(p) for p in a_p], kwargs)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    scalars = BY_CLASS[name].scalar_keys
    for p in b_p:   # torch's load casts 0-dim state (NAdam's mu_product) to the param's dtype
        assert all(b.state[p][k].dtype is fastoptim.float64 for k in scalars if b.state[p])
    run("fo", a, a_p, 5, np.float64, start=5)
    run("fo", b, b_p, 5, np.float64, start=5)
    for x, y in zip(a_p, b_p):
        if scalars:   # so the loaded run rounds them as doubles: torch's does not repeat either
            np.testing.assert_allclose(arr(x), arr(y), rtol=1e-10, atol=1e-10)
        else:
            np.testing.assert_array_equal(arr(x), arr(y))
    assert a.state_dict()["param_groups"] == b.state_dict()["param_groups"]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_pickle_and_deepcopy(name, kwargs):
    arrays = make_params(np.float64)
    opt, params = build("fo", name, arrays, kwargs)
    run("fo", opt, params, 2, np.float64)
    opt.register_step_pre_hook(lambda *a: None)
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert set(vars(clone)) >= {"defaults", "state", "param_groups"}
        assert not clone._optimizer_step_pre_hooks
        assert clone.param_groups[0]["params"][0] is not params[0]  # params are copied
        assert repr(clone) == repr(opt)
        sd, csd = opt.state_dict(), clone.state_dict()
        assert csd["param_groups"] == sd["param_groups"]
        for k in sd["state"]:
            for sk, v in sd["state"][k].items():
                np.testing.assert_array_equal(arr(csd["state"][k][sk]), arr(v))
        # the clone keeps training on its own copies
        run("fo", clone, clone.param_groups[0]["params"] + clone.param_groups[1]["params"], 1,
            np.float64)  # fmt: skip


def _snapshot(opt):
    return (
        [dict(g) for g in opt.param_groups],
        {id(k): (dict(v), {sk: arr(sv) for sk, sv in v.items() if hasattr(sv, "numpy")})
         for k, v in opt.state.items()},
    )  # fmt: skip


@pytest.mark.parametrize(
    "name,kwargs,mutate,match",
    [
        ("Adam", {}, lambda sd: sd["state"][1].update(exp_avg=np.zeros(7, np.float32)),
         r"'exp_avg' of shape \(7,\) for parameter 1 of parameter group 0 .*shape \(10,\)"),
        ("Adam", {}, lambda sd: sd["state"][0].pop("exp_avg_sq"),
         r"missing state 'exp_avg_sq' for parameter 0 of parameter group 0"),
        ("Adam", {}, lambda sd: sd["state"][2].update(momentum_buffer=np.zeros(())),
         r"unexpected state 'momentum_buffer' for parameter 0 of parameter group 1"),
        ("Adam", {}, lambda sd: sd["param_groups"][0].update(amsgrad=True),
         r"missing state 'max_exp_avg_sq'"),
        ("SGD", {"momentum": 0.9}, lambda sd: sd["state"][0].update(momentum_buffer=np.ones(3)),
         r"'momentum_buffer' of shape \(3,\) .* shape \(10, 5\)"),
        ("RMSprop", {"centered": True}, lambda sd: sd["state"][2].pop("grad_avg"),
         r"missing state 'grad_avg'"),
        ("Adagrad", {}, lambda sd: sd["state"][2].update(sum=np.ones((2, 2))),
         r"'sum' of shape \(2, 2\)"),
        ("Adadelta", {}, lambda sd: sd["state"][1].update(exp_avg=np.ones(10)),
         r"unexpected state 'exp_avg'"),
        ("SGD", {}, lambda sd: sd["param_groups"].pop(), "different number of parameter groups"),
        ("SGD", {}, lambda sd: sd["param_groups"][0]["params"].pop(),
         "doesn't match the size of optimizer's group"),
    ],
)  # fmt: skip
def test_strict_atomic_load(name, kwargs, mutate, match):
    arrays = make_params(np.float32)
    src, src_p = build("fo", name, arrays, kwargs)
    run("fo", src, src_p, 1, np.float32)
    sd = {k: v for k, v in src.state_dict().items()}
    sd = {"state": {k: dict(v) for k, v in sd["state"].items()},
          "param_groups": copy.deepcopy(sd["param_groups"])}  # fmt: skip
    mutate(sd)
    dst, dst_p = build("fo", name, arrays, dict(kwargs, lr=0.123))
    run("fo", dst, dst_p, 2, np.float32)
    groups_before, state_before = dst.param_groups, dst.state
    snap = _snapshot(dst)
    with pytest.raises(ValueError, match=match):
        dst.load_state_dict(sd)
    assert dst.param_groups is groups_before and dst.state is state_before
    after = _snapshot(dst)
    assert after[0] == snap[0]
    for k, (keys, arrays_) in snap[1].items():
        assert after[1][k][0].keys() == keys.keys()
        for sk, v in arrays_.items():
            np.testing.assert_array_equal(after[1][k][1][sk], v)


def test_load_casts_dtype_numeric_step_and_old_flags():
    p32 = fo_tensor(np.ones(3, np.float32), True)
    a = optim.Adam([p32], lr=0.1)
    p32.grad = fo_tensor(np.ones(3, np.float32))
    a.step()
    sd = copy.deepcopy(a.state_dict())
    sd["state"][0]["step"] = sd["state"][0]["step"].item()  # an old dict: numeric step
    for flag in ("maximize", "foreach", "fused", "differentiable", "capturable",
                 "decoupled_weight_decay"):  # fmt: skip
        del sd["param_groups"][0][flag]
    p64 = fo_tensor(np.ones(3), True)
    b = optim.Adam([p64], lr=0.5)
    b.load_state_dict(sd)
    st = b.state[p64]
    assert st["exp_avg"].dtype is fastoptim.float64
    assert (
        st["step"].dtype is fastoptim.float32 and st["step"].dim() == 0 and st["step"].item() == 1
    )
    g = b.param_groups[0]
    assert g["lr"] == 0.1 and g["maximize"] is False and g["foreach"] is None
    assert g["decoupled_weight_decay"] is False
    p64.grad = fo_tensor(np.ones(3))
    b.step()
    assert st["step"].item() == 2


def test_sgd_without_momentum_stores_no_state_and_adagrad_is_eager():
    p = fo_tensor(np.ones(2), True)
    s = optim.SGD([p], lr=0.1)
    p.grad = fo_tensor(np.ones(2))
    s.step()
    assert s.state_dict()["state"] == {}
    q = fo_tensor(np.ones(2), True)
    a = optim.Adagrad([q], initial_accumulator_value=0.1)
    st = a.state_dict()["state"][0]
    assert list(st) == ["step", "sum"] and st["step"].item() == 0
    np.testing.assert_allclose(arr(st["sum"]), [0.1, 0.1])
    r = fo_tensor(np.ones(2), True)
    a.add_param_group({"params": [r], "initial_accumulator_value": 0.5})
    assert r not in a.state  # lazy for added groups, from the *default* value
    r.grad = fo_tensor(np.ones(2))
    a.step()
    np.testing.assert_allclose(arr(a.state[r]["sum"]), [1.1, 1.1])


def test_grad_none_params_are_untouched_and_get_no_state():
    p, q = fo_tensor(np.ones(2), True), fo_tensor(np.ones(3), True)
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = fo_tensor(np.ones(2))
    assert opt.step() is None
    np.testing.assert_array_equal(arr(q), np.ones(3))
    assert q not in opt.state and len(opt.state[p]) == 3


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_converges_on_a_quadratic(name, kwargs):
    target = np.linspace(-1, 1, 6)
    p = fo_tensor(np.zeros(6), True)
    kwargs = dict(kwargs)
    kwargs.setdefault("lr", 0.1 if name != "Adadelta" else 1.0)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    opt = getattr(optim, name)([p], **kwargs)

    def loss():
        return float(np.sum((arr(p) - target) ** 2))

    start = loss()
    for _ in range(60):
        # with maximize we hand it the grad of -loss: maximizing -loss must lower the loss
        p.grad = fo_tensor(sign * 2 * (arr(p) - target))
        opt.step()
    assert loss() < start


# ----------------------------------------------------------------------------- validation


def _p():
    return [fo_tensor(np.zeros(2), True)]


@pytest.mark.parametrize(
    "name,kwargs,exc,match",
    [
        ("SGD", {"lr": -1}, ValueError, "^Invalid learning rate: -1$"),
        ("SGD", {"lr": -0.5}, ValueError, "^Invalid learning rate: -0.5$"),
        ("SGD", {"momentum": -0.5}, ValueError, "^Invalid momentum value: -0.5$"),
        ("SGD", {"weight_decay": -1}, ValueError, "^Invalid weight_decay value: -1$"),
        ("SGD", {"nesterov": True}, ValueError,
         "^Nesterov momentum requires a momentum and zero dampening$"),
        ("SGD", {"momentum": 0.9, "dampening": 0.1, "nesterov": True}, ValueError,
         "^Nesterov momentum requires a momentum and zero dampening$"),
        ("SGD", {"fused": True, "foreach": True}, RuntimeError,
         "^`fused` and `foreach` cannot be `True` together.$"),
        ("SGD", {"fused": True, "differentiable": True}, RuntimeError,
         "^`fused` does not support `differentiable`$"),
        ("Adam", {"lr": -1e-2}, ValueError, "^Invalid learning rate: -0.01$"),
        ("Adam", {"eps": -1}, ValueError, "^Invalid epsilon value: -1$"),
        ("Adam", {"betas": (1.0, 0.0)}, ValueError, r"^Invalid beta parameter at index 0: 1.0$"),
        ("Adam", {"betas": (0.9, -0.1)}, ValueError,
         r"^Invalid beta parameter at index 1: -0.1$"),
        ("Adam", {"weight_decay": -1}, ValueError, "^Invalid weight_decay value: -1$"),
        ("Adam", {"betas": (0, 0.9)}, ValueError,
         "^betas must be either both floats or both Tensors$"),
        ("Adam", {"fused": True, "foreach": True}, RuntimeError,
         "^`fused` and `foreach` cannot be `True` together.$"),
        ("AdamW", {"fused": True, "differentiable": True}, RuntimeError,
         "^`fused` does not support `differentiable`$"),
        ("AdamW", {"betas": (0.9, 1.0)}, ValueError, r"^Invalid beta parameter at index 1: 1.0$"),
        ("RMSprop", {"lr": -1}, ValueError, "^Invalid learning rate: -1$"),
        ("RMSprop", {"eps": -1}, ValueError, "^Invalid epsilon value: -1$"),
        ("RMSprop", {"momentum": -1.0}, ValueError, "^Invalid momentum value: -1.0$"),
        ("RMSprop", {"weight_decay": -1}, ValueError, "^Invalid weight_decay value: -1$"),
        ("RMSprop", {"alpha": -1}, ValueError, "^Invalid alpha value: -1$"),
        ("RMSprop", {"fused": True}, TypeError, "unexpected keyword argument 'fused'"),
        ("Adagrad", {"lr": -1}, ValueError, "^Invalid learning rate: -1$"),
        ("Adagrad", {"lr_decay": -0.5}, ValueError, "^Invalid lr_decay value: -0.5$"),
        ("Adagrad", {"weight_decay": -1}, ValueError, "^Invalid weight_decay value: -1$"),
        ("Adagrad", {"initial_accumulator_value": -1}, ValueError,
         "^Invalid initial_accumulator_value value: -1$"),
        ("Adagrad", {"eps": -1}, ValueError, "^Invalid epsilon value: -1$"),
        ("Adagrad", {"fused": True, "foreach": True}, RuntimeError,
         "^`fused` and `foreach` cannot be `True` together.$"),
        ("Adadelta", {"lr": -1}, ValueError, "^Invalid learning rate: -1$"),
        ("Adadelta", {"rho": 1.1}, ValueError, "^Invalid rho value: 1.1$"),
        ("Adadelta", {"eps": -1}, ValueError, "^Invalid epsilon value: -1$"),
        ("Adadelta", {"weight_decay": -1}, ValueError, "^Invalid weight_decay value: -1$"),
        ("Adadelta", {"fused": True}, TypeError, "unexpected keyword argument 'fused'"),
    ],
)  # fmt: skip
def test_validation_messages(name, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        getattr(optim, name)(_p(), **kwargs)


@pytest.mark.parametrize(
    "name,kwargs",
    [("SGD", {"lr": 0}), ("SGD", {"dampening": -5}), ("RMSprop", {"alpha": 2.0}),
     ("Adadelta", {"rho": 0.0}), ("Adadelta", {"rho": 1.0}), ("Adam", {"betas": (0.0, 0.0)})],
)  # fmt: skip
def test_boundary_values_are_accepted(name, kwargs):
    getattr(optim, name)(_p(), **kwargs)


def test_defaults_key_order():
    order = {
        "SGD": "lr momentum dampening weight_decay nesterov maximize foreach differentiable fused",
        "Adam": "lr betas eps weight_decay amsgrad maximize foreach capturable differentiable "
        "fused decoupled_weight_decay",
        "RMSprop": "lr momentum alpha eps centered weight_decay capturable foreach maximize "
        "differentiable",
        "Adagrad": "lr lr_decay eps weight_decay initial_accumulator_value foreach maximize "
        "differentiable fused",
        "Adadelta": "lr rho eps weight_decay maximize capturable foreach differentiable",
    }
    for name, keys in order.items():
        assert list(getattr(optim, name)(_p()).defaults) == keys.split()
    w = optim.AdamW(_p())
    assert w.defaults["weight_decay"] == 0.01 and w.defaults["decoupled_weight_decay"] is True
