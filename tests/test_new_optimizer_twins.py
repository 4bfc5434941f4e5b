"""The NumPy twins of Adamax, NAdam, RAdam, ASGD and Rprop (fastoptim.optim._reference) against
torch 2.13's own classes, stepping the same params for 20 steps.

Why this file exists: the twins are the statement of what the new C kernels must compute (and
the C kernels are held against them), so they must first be held against torch.  Each case
builds ``torch.optim.<Class>`` and a twin-driven copy of the same params, feeds both the same
grads (different every step, some exact zeros, one param without a grad on some steps so that
tensors of one call sit at different steps, a 0-dim and an empty param), and compares params and
every state entry after every step.  The twin's state is created as torch's ``_init_group``
creates it (lazily, on the first step with a grad), and the hyperparameters are read back from
torch's own param group, so defaults are not restated here.

The configurations are those of torch's own optimizer tests
(torch/testing/_internal/common_optimizers.py, ``optim_inputs_func_<name>``, CPU entries),
plus a few that reach branches those miss (ASGD's averaging once t > t0, ATen's other lerp
branch, Rprop's step-size clamps).
"""

import numpy as np
import pytest

from fastoptim.optim import _reference as ref

torch = pytest.importorskip("torch")

STEPS = 20
# float32 at torch's own test tolerances; float64 as tight as the twins get (torch's CPU
# kernels fuse multiply-adds, NumPy does not, so a few ulp per step accumulate).
TOL = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-14)}
SHAPES = [(5, 3), (17,), (), (0,), (4,)]
NO_GRAD = {4: {0, 3, 4, 9}}          # param index -> steps on which its grad is None


def _zeros(p, group):
    return np.zeros_like(p)


def _scalar(value):
    # torch's 0-dim scalar state under the default float32 dtype
    return lambda p, group: np.array(value, dtype=np.float32)


# name -> (torch class, state keys in torch's creation order with their initialiser, the twin's
# state lists in its argument order, the twin's keyword arguments from a torch param group,
# configurations)
SPECS = {
    "adamax": (
        "Adamax",
        {"step": _scalar(0.0), "exp_avg": _zeros, "exp_inf": _zeros},
        ("exp_avg", "exp_inf", "step"),
        lambda g: dict(eps=g["eps"], beta1=g["betas"][0], beta2=g["betas"][1], lr=g["lr"],
                       weight_decay=g["weight_decay"], maximize=g["maximize"]),
        [{}, {"lr": 0.1}, {"weight_decay": 0.1}, {"maximize": True},
         {"weight_decay": 0.1, "maximize": True},
         # extra: beta1 < 0.5 (ATen's other lerp branch), a large eps
         {"betas": (0.3, 0.5), "eps": 1e-3, "lr": 0.05}],
    ),
    "nadam": (
        "NAdam",
        {"step": _scalar(0.0), "mu_product": _scalar(1.0), "exp_avg": _zeros,
         "exp_avg_sq": _zeros},
        ("exp_avg", "exp_avg_sq", "mu_product", "step"),
        lambda g: dict(beta1=g["betas"][0], beta2=g["betas"][1], lr=g["lr"],
                       weight_decay=g["weight_decay"], momentum_decay=g["momentum_decay"],
                       eps=g["eps"], decoupled_weight_decay=g["decoupled_weight_decay"],
                       maximize=g["maximize"]),
        [{}, {"lr": 1e-3}, {"momentum_decay": 6e-3}, {"weight_decay": 0.1},
         {"weight_decay": 0.1, "momentum_decay": 6e-3},
         {"weight_decay": 0.1, "momentum_decay": 6e-3, "decoupled_weight_decay": True},
         {"weight_decay": 0.1, "maximize": True},
         # extra: decoupled under maximize; beta1 < 0.5
         {"weight_decay": 0.5, "decoupled_weight_decay": True, "maximize": True, "lr": 0.01},
         {"betas": (0.3, 0.9), "lr": 0.01}],
    ),
    "radam": (
        "RAdam",
        {"step": _scalar(0.0), "exp_avg": _zeros, "exp_avg_sq": _zeros},
        ("exp_avg", "exp_avg_sq", "step"),
        lambda g: dict(beta1=g["betas"][0], beta2=g["betas"][1], lr=g["lr"],
                       weight_decay=g["weight_decay"], eps=g["eps"],
                       decoupled_weight_decay=g["decoupled_weight_decay"],
                       maximize=g["maximize"]),
        # (with the default beta2 the rectified branch starts at step 6: both branches run)
        [{}, {"lr": 2e-3}, {"eps": 1e-6}, {"weight_decay": 0.1},
         {"weight_decay": 0.1, "decoupled_weight_decay": True},
         {"weight_decay": 0.1, "maximize": True},
         # extra: never rectified (rho_inf = 3); decoupled under maximize, beta1 < 0.5
         {"betas": (0.9, 0.5), "lr": 0.01},
         {"betas": (0.3, 0.99), "weight_decay": 0.2, "decoupled_weight_decay": True,
          "maximize": True, "lr": 0.01}],
    ),
    "asgd": (
        "ASGD",
        {"step": _scalar(0.0),
         "eta": lambda p, g: np.array(g["lr"], dtype=np.float32),
         "mu": _scalar(1.0), "ax": _zeros},
        ("ax", "mu", "eta", "step"),
        lambda g: dict(lambd=g["lambd"], lr=g["lr"], t0=g["t0"], alpha=g["alpha"],
                       weight_decay=g["weight_decay"], maximize=g["maximize"]),
        [{}, {"lambd": 0.1}, {"lr": 0.02}, {"t0": 100}, {"maximize": True},
         {"weight_decay": 0.1}, {"weight_decay": 0.1, "maximize": True},
         # extra: averaging starts within the run (mu != 1 from t = t0 + 2 on)
         {"t0": 5}, {"t0": 3, "lambd": 0.1, "alpha": 0.5, "weight_decay": 0.1,
                     "maximize": True, "lr": 0.05}],
    ),
    "rprop": (
        "Rprop",
        {"step": _scalar(0.0), "prev": _zeros,
         "step_size": lambda p, g: np.full_like(p, g["lr"])},
        ("prev", "step_size", "step"),
        lambda g: dict(step_size_min=g["step_sizes"][0], step_size_max=g["step_sizes"][1],
                       etaminus=g["etas"][0], etaplus=g["etas"][1], maximize=g["maximize"]),
        [{}, {"lr": 2e-4}, {"etas": (0.5, 1.5)}, {"step_sizes": (2e-6, 100)},
         {"maximize": True},
         # extra: both clamps reached within the run
         {"lr": 0.1, "etas": (0.3, 1.1), "step_sizes": (1e-3, 0.105), "maximize": True}],
    ),
}

CASES = [pytest.param(name, i, id=f"{name}-{i}")
         for name, spec in SPECS.items() for i in range(len(spec[4]))]


def _grads(rng, dtype, step):
    """One step's grads (None where NO_GRAD says), with about 10% exact zeros."""
    out = []
    for i, shape in enumerate(SHAPES):
        if step in NO_GRAD.get(i, ()):
            out.append(None)
            continue
        g = rng.standard_normal(shape)
        g = np.where(rng.random(shape) < 0.1, 0.0, g)
        out.append(np.asarray(g, dtype=dtype))
    return out


def _run_twin_step(name, params, grads, state, group):
    """What torch's step() does around its functional: lazy state, then one call over the
    params that have a grad."""
    _, init, keys, kwargs, _ = SPECS[name]
    active = [i for i, g in enumerate(grads) if g is not None]
    for i in active:
        if i not in state:
            state[i] = {k: f(params[i], group) for k, f in init.items()}
    twin = getattr(ref, name)
    lists = [[state[i][k] for i in active] for k in keys]
    twin([params[i] for i in active], [grads[i] for i in active], *lists, **kwargs(group))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,index", CASES)
def test_twin_matches_torch(name, index, dtype):
    cls_name, init, _, _, configs = SPECS[name]
    rng = np.random.default_rng(1234 + index)
    start = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in start]
    opt = getattr(torch.optim, cls_name)(tparams, **configs[index])
    group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    params = [p.copy() for p in start]
    state = {}
    for step in range(STEPS):
        grads = _grads(rng, dtype, step)
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        opt.step()
        _run_twin_step(name, params, grads, state, group)
        for i, tp in enumerate(tparams):
            np.testing.assert_allclose(params[i], tp.detach().numpy(), **TOL[dtype],
                                       err_msg=f"param {i} after step {step + 1}")
            tstate = opt.state.get(tp, {})
            assert list(state.get(i, {})) == list(tstate), (i, step)
            for key, value in tstate.items():
                mine = state[i][key]
                assert mine.dtype == np.dtype(str(value.dtype).replace("torch.", "")), key
                assert mine.shape == tuple(value.shape), key
                np.testing.assert_allclose(mine, value.numpy(), **TOL[dtype],
                                           err_msg=f"state {key!r} of param {i} after step "
                                                   f"{step + 1}")
    # the no-grad steps left the intermittent param behind: its counter shows it
    assert float(state[4]["step"]) == STEPS - len(NO_GRAD[4])


@pytest.mark.parametrize("name", list(SPECS))
def test_twin_nonfinite_grads_match_torch(name):
    """NaN and inf in the grads go where torch sends them (Rprop's sign(NaN) is 0, Adamax's
    maximum propagates NaN, ...)."""
    cls_name, _, _, _, configs = SPECS[name]
    rng = np.random.default_rng(7)
    start = np.asarray(rng.standard_normal(8), dtype=np.float64)
    tparam = torch.nn.Parameter(torch.from_numpy(start.copy()))
    opt = getattr(torch.optim, cls_name)([tparam], **configs[0])
    group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    params, state = [start.copy()], {}
    for step in range(4):
        g = rng.standard_normal(8)
        g[step] = np.nan
        g[step + 4] = np.inf if step % 2 else -np.inf
        tparam.grad = torch.from_numpy(g.copy())
        opt.step()
        with np.errstate(invalid="ignore", divide="ignore"):
            _run_twin_step(name, params, [g], state, group)
        np.testing.assert_allclose(params[0], tparam.detach().numpy(), rtol=1e-12,
                                   atol=1e-14, equal_nan=True)


@pytest.mark.parametrize("name", ["nadam", "asgd"])
def test_twin_matches_torch_after_loading_into_float64(name):
    """torch's load_state_dict casts every state entry but 'step' to the param's dtype, so a
    float64 param's per-tensor scalars (mu_product; eta, mu) are float64 from then on, and
    torch's arithmetic on them changes with it.  Load mid-run, then 10 more steps."""
    cls_name, _, _, _, configs = SPECS[name]
    config = configs[-1]
    rng = np.random.default_rng(11)
    tparams = [torch.nn.Parameter(torch.from_numpy(rng.standard_normal(s))) for s in SHAPES[:3]]
    opt = getattr(torch.optim, cls_name)(tparams, **config)
    for _ in range(8):
        for tp in tparams:
            tp.grad = torch.from_numpy(rng.standard_normal(tuple(tp.shape)))
        opt.step()
    saved = {k: v for k, v in opt.state_dict().items()}
    opt = getattr(torch.optim, cls_name)(tparams, **config)
    opt.load_state_dict(saved)
    group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    params = [tp.detach().numpy().copy() for tp in tparams]
    state = {i: {k: v.numpy().copy() for k, v in opt.state[tp].items()}
             for i, tp in enumerate(tparams)}
    scalar_keys = {"nadam": ("mu_product",), "asgd": ("eta", "mu")}[name]
    for key in scalar_keys:
        assert state[0][key].dtype == np.float64, key
    assert state[0]["step"].dtype == np.float32
    for step in range(10):
        grads = [rng.standard_normal(p.shape) for p in params]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        _run_twin_step(name, params, grads, state, group)
        for i, tp in enumerate(tparams):
            np.testing.assert_allclose(params[i], tp.detach().numpy(), **TOL[np.float64])
            for key, value in opt.state[tp].items():
                assert state[i][key].dtype == np.dtype(str(value.dtype).replace("torch.", ""))
                np.testing.assert_allclose(state[i][key], value.numpy(), **TOL[np.float64],
                                           err_msg=f"{key} after step {step + 1}")
