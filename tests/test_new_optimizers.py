"""Adamax, NAdam, RAdam, ASGD and Rprop: what the table-driven tests (tests/optim_table.py)
do not reach.

* torch's surface, compared with torch itself: constructor and functional signatures
  (names, kinds, defaults), ``defaults`` key order, validation messages (exact text, in
  torch's order of checks);
* per-tensor scalar state (NAdam's ``mu_product``, ASGD's ``eta`` and ``mu``): a group whose
  loaded float64 scalars sit next to fresh float32 ones (one call per scalar dtype) matches
  torch, on the general path and on the steady-state shortcut;
* team mode (the kernels' region opened before the collection) stores the scalars after
  counting the steps: bit-identical to a one-thread run.
"""

import copy
import importlib
import inspect

import numpy as np
import pytest

import fastoptim
from fastoptim import optim
from fastoptim._C import _optim

NEW = ["Adamax", "NAdam", "RAdam", "ASGD", "Rprop"]
MODULES = {"Adamax": "adamax", "NAdam": "nadam", "RAdam": "radam", "ASGD": "asgd",
           "Rprop": "rprop"}


def _sig(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name != "self"]


@pytest.mark.parametrize("name", NEW)
def test_constructor_and_functional_signatures_are_torchs(name):
    torch = pytest.importorskip("torch")
    assert _sig(getattr(optim, name).__init__) == _sig(getattr(torch.optim, name).__init__)
    mod = MODULES[name]
    ours = getattr(importlib.import_module(f"fastoptim.optim.{mod}"), mod)
    assert ours is getattr(optim.functional, mod)
    assert _sig(ours) == _sig(getattr(importlib.import_module(f"torch.optim.{mod}"), mod))
    p = [fastoptim.nn.Parameter(fastoptim.zeros(2))]
    tp = [torch.nn.Parameter(torch.zeros(2))]
    assert list(getattr(optim, name)(p).defaults.items()) == list(
        getattr(torch.optim, name)(tp).defaults.items())


BAD = {
    "Adamax": [{"lr": -1}, {"eps": -1e-3}, {"betas": (1.0, 0.0)}, {"betas": (0.0, 1.0)},
               {"betas": (-0.1, 0.5)}, {"weight_decay": -0.5}, {"lr": -1, "eps": -1}],
    "NAdam": [{"lr": -0.5}, {"eps": -1}, {"betas": (1.0, 0.0)}, {"betas": (0.9, 1.5)},
              {"weight_decay": -1}, {"momentum_decay": -0.2}, {"eps": -1, "momentum_decay": -1}],
    "RAdam": [{"lr": -1}, {"eps": -1}, {"betas": (1.0, 0.0)}, {"betas": (0.5, -0.1)},
              {"weight_decay": -1}],
    "ASGD": [{"lr": -1}, {"weight_decay": -0.5}, {"lr": -1, "weight_decay": -1}],
    "Rprop": [{"lr": -1}, {"etas": (1.0, 0.5)}, {"etas": (0.0, 1.2)}, {"etas": (0.5, 1.0)},
              {"lr": -1, "etas": (2, 3)}],
}
CASES = [(n, kw) for n, bad in BAD.items() for kw in bad]


@pytest.mark.parametrize(("name", "kwargs"), CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_validation_messages_are_torchs(name, kwargs):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError) as want:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    with pytest.raises(ValueError) as got:
        getattr(optim, name)([fastoptim.nn.Parameter(fastoptim.zeros(2))], **kwargs)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize(("name", "kwargs"), [("Rprop", {"step_sizes": (1.0, 1e-3)}),
                                              ("ASGD", {"lambd": -1.0, "t0": -5, "alpha": -2}),
                                              ("Adamax", {"betas": (0, 0)})])
def test_what_torch_does_not_check_is_accepted(name, kwargs):
    getattr(optim, name)([fastoptim.nn.Parameter(fastoptim.zeros(2))], **kwargs)


# ---- per-tensor scalar state of two dtypes in one group --------------------------------------

def _grads(step, shapes, lib, torch=None):
    rng = np.random.default_rng(100 + step)
    out = [rng.standard_normal(s) for s in shapes]
    if lib == "fo":
        return [fastoptim.from_numpy(g) for g in out]
    return [torch.from_numpy(g) for g in out]


@pytest.mark.parametrize("name", ["NAdam", "ASGD"])
def test_loaded_float64_scalars_next_to_fresh_float32_ones_match_torch(name):
    """Params 0 and 2 get state (float32 scalars) and are loaded into a new optimizer (torch's
    load casts the scalars to float64); params 1 and 3 get their first state after the load
    (float32): every later step holds both dtypes in one group."""
    torch = pytest.importorskip("torch")
    kwargs = {"lr": 0.01} if name == "NAdam" else {"lr": 0.01, "t0": 2, "lambd": 0.01}
    shapes = [(5,), (3, 2), (), (7,)]
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in shapes]
    tp = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    topt = getattr(torch.optim, name)(tp, **kwargs)
    for step in range(3):
        for i, (p, g) in enumerate(zip(tp, _grads(step, shapes, "torch", torch))):
            p.grad = g if i % 2 == 0 else None
        topt.step()
    fp = [fastoptim.nn.Parameter(fastoptim.from_numpy(p.detach().numpy().copy())) for p in tp]
    fopt = getattr(optim, name)(fp, **kwargs)
    fopt.load_state_dict(copy.deepcopy(topt.state_dict()))
    topt.load_state_dict(copy.deepcopy(topt.state_dict()))    # torch casts its own, too
    key = "mu_product" if name == "NAdam" else "eta"
    assert fopt.state[fp[0]][key].dtype is fastoptim.float64
    for step in range(3, 10):
        for p, g in zip(tp, _grads(step, shapes, "torch", torch)):
            p.grad = g
        for p, g in zip(fp, _grads(step, shapes, "fo")):
            p.grad = g
        topt.step()
        fopt.step()
        assert fopt.state[fp[1]][key].dtype is fastoptim.float32   # (mixed: both paths ran)
    for a, b in zip(fp, tp):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10,
                                   atol=1e-10)
    for a, b in zip(fp, tp):
        for k, v in topt.state[b].items():
            got = fopt.state[a][k].numpy()
            assert got.dtype == v.numpy().dtype, k
            np.testing.assert_allclose(got, v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_functional_mixed_scalar_dtypes_match_the_twin():
    from fastoptim.optim import _reference as ref

    shapes = [(4,), (3,), (5,), (2,)]
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s) for s in shapes]
    state = [[np.zeros(s) for s in shapes], [np.zeros(s) for s in shapes],
             [np.array(1.0, np.float64 if i % 2 else np.float32) for i in range(4)],
             [np.array(0.0, np.float32) for _ in shapes]]
    twin = [p.copy() for p in params], [[x.copy() for x in lst] for lst in state]
    hp = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1,
          "momentum_decay": 0.004}
    for _ in range(6):
        grads = [rng.standard_normal(s) for s in shapes]
        optim.functional.nadam(params, grads, *state, **hp)
        ref.nadam(twin[0], grads, *twin[1], **hp)
    for a, b in zip(params + state[2], twin[0] + twin[1][2]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_functional_scalar_state_errors_name_the_argument():
    p, g = [np.zeros(3)], [np.ones(3)]
    m, v, s = [np.zeros(3)], [np.zeros(3)], [np.zeros(1, np.float32)]
    hp = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
          "momentum_decay": 0.004}
    with pytest.raises(TypeError, match=r"^nadam: mu_products\[0\] has dtype int64 and shape "
                                        r"\(\); expected a float32 or float64 array"):
        optim.functional.nadam(p, g, m, v, [np.array(1)], s, **hp)
    with pytest.raises(TypeError, match=r"mu_products\[0\] has dtype float64 and shape \(3,\)"):
        optim.functional.nadam(p, g, m, v, [np.ones(3)], s, **hp)
    ro = np.array(1.0)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"mu_products\[0\] is read-only"):
        optim.functional.nadam(p, g, m, v, [ro], s, **hp)
    with pytest.raises(TypeError, match=r"^asgd: etas\[0\] has dtype float32; expected the dtype "
                                        r"of mus\[0\]"):
        optim.functional.asgd(p, g, [np.zeros(3)], [np.array(1.0)], [np.array(0.01, np.float32)],
                              s, lambd=1e-4, lr=0.01, t0=1e6, alpha=0.75, weight_decay=0.0)
    buf = np.zeros(3)   # a scalar inside a written array
    with pytest.raises(ValueError, match="overlap in memory"):
        optim.functional.nadam(p, g, [buf], v, [buf[1:2]], s, **hp)
    assert not p[0].any() and not buf.any()


# ---- team mode --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_team_mode_is_bit_identical_to_one_thread(name):
    """>= 64 tensors and >= FO_OMP_MIN_ELEMS elements on 2 threads: the steady-state step runs
    in team mode, which must count the steps and then store NAdam's/ASGD's scalars."""
    shapes = [(9000,)] * 70
    kwargs = {"lr": 0.01} if name != "ASGD" else {"lr": 0.01, "t0": 2, "lambd": 0.01}
    results = []
    old = _optim._get_num_threads()
    try:
        for threads in (1, 2):
            _optim._set_num_threads(threads)
            rng = np.random.default_rng(7)
            ps = [fastoptim.nn.Parameter(fastoptim.from_numpy(rng.standard_normal(s)))
                  for s in shapes]
            opt = getattr(optim, name)(ps, **kwargs)
            before = _optim._team_step_count()
            for _ in range(5):
                for p in ps:
                    p.grad = fastoptim.from_numpy(rng.standard_normal(p.shape))
                opt.step()
            teamed = _optim._team_step_count() - before
            results.append(([p.detach().numpy().copy() for p in ps],
                            [{k: v.numpy().copy() for k, v in opt.state[p].items()}
                             for p in ps]))
            if threads == 2:
                assert teamed == 5      # tried every step (the first declines: state to make)
    finally:
        _optim._set_num_threads(old)
    (p1, s1), (p2, s2) = results
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)
    for a, b in zip(s1, s2):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
