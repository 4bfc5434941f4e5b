"""Param-group batching: ``step`` merges consecutive groups with equal hyperparameters into one
kernel call. It must change nothing observable: trajectories equal (bit for bit) to one call per
group and to one big group, equal to torch's within tolerance, and the same state layout."""

import zlib

import numpy as np
import pytest
from optim_table import TABLE

import fastoptim
import fastoptim.optim.adam as adam_mod
from fastoptim import optim
from fastoptim.optim._descriptions import BY_NAME
from fastoptim.optim.optimizer import Optimizer

torch = pytest.importorskip("torch")

STEPS = 12
N_GROUPS = 50

# case -> (class, kwargs, the setting varied between groups): tests/optim_table.py's "batching"
CASES = {case: (BY_NAME[name].cls, kwargs, vary) for name, row in TABLE.items()
         for case, (kwargs, vary) in row["batching"].items()}


def _sizes(rng):
    return [tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(1, 3)))
            for _ in range(N_GROUPS)]


def _data(seed, dtype):
    rng = np.random.default_rng(seed)
    sizes = _sizes(rng)
    init = [rng.standard_normal(s).astype(dtype) for s in sizes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in sizes] for _ in range(STEPS)]
    return init, grads


def _group_dicts(params, vary_key, variant):
    groups = []
    for i, p in enumerate(params):
        g = {"params": [p]}
        if variant == "mixed" and i % 3 == 0:
            g[vary_key] = 0.02 if vary_key == "lr" else 0.05
        groups.append(g)
    return groups


def _none_mask(step, i, variant):
    return variant == "none_grads" and (i + step) % 4 == 0


def _lr_edit(opt, step, variant):
    if variant == "lr_edit" and step == STEPS // 2:
        opt.param_groups[7]["lr"] = opt.param_groups[7]["lr"] * 0.3


def _run_fo(cls, kwargs, init, grads, vary_key, variant, layout="groups", batching=True):
    params = [fastoptim.nn.Parameter(fastoptim.from_numpy(a.copy())) for a in init]
    if layout == "one_group":
        opt = getattr(optim, cls)(params, **kwargs)
    else:
        opt = getattr(optim, cls)(_group_dicts(params, vary_key, variant), **kwargs)
    if not batching:  # one kernel call per group: the reference for bit-identity
        opt._batched_groups = lambda hyper: opt.param_groups
    for step in range(STEPS):
        for i, p in enumerate(params):
            p.grad = None if _none_mask(step, i, variant) else fastoptim.from_numpy(
                grads[step][i].copy())
        _lr_edit(opt, step, variant)
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


def _run_torch(cls, kwargs, init, grads, vary_key, variant):
    params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt = getattr(torch.optim, cls)(_group_dicts(params, vary_key, variant), **kwargs)
    for step in range(STEPS):
        for i, p in enumerate(params):
            p.grad = None if _none_mask(step, i, variant) else torch.from_numpy(
                grads[step][i].copy())
        _lr_edit(opt, step, variant)
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


def _tol(dtype):
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1.3e-6,
                                                                       "atol": 1e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", ["same", "mixed", "lr_edit", "none_grads"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_groups_match_per_group_one_group_and_torch(case, variant, dtype):
    cls, kwargs, vary_key = CASES[case]
    init, grads = _data(zlib.crc32(f"{case}/{variant}".encode()), dtype)
    got, opt = _run_fo(cls, kwargs, init, grads, vary_key, variant)

    # Bit-identical to one kernel call per group.
    ref, _ = _run_fo(cls, kwargs, init, grads, vary_key, variant, batching=False)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)

    # Bit-identical to all params in one group, where the hyperparameters allow one group.
    if variant in ("same", "none_grads"):
        one, _ = _run_fo(cls, kwargs, init, grads, vary_key, variant, layout="one_group")
        for a, b in zip(got, one):
            np.testing.assert_array_equal(a, b)

    # torch with the same groups.
    exp, topt = _run_torch(cls, kwargs, init, grads, vary_key, variant)
    for a, b in zip(got, exp):
        np.testing.assert_allclose(a, b, **_tol(dtype))

    # Same state layout as torch: indices, state keys, group keys and param indices.
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert list(sd["state"]) == list(tsd["state"])
    for k in sd["state"]:
        assert list(sd["state"][k]) == list(tsd["state"][k])
        for name, v in sd["state"][k].items():
            np.testing.assert_allclose(np.asarray(v.numpy()), tsd["state"][k][name].numpy(),
                                       **_tol(dtype))
    assert [sorted(g) for g in sd["param_groups"]] == [sorted(g) for g in tsd["param_groups"]]
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    assert [g["lr"] for g in sd["param_groups"]] == [g["lr"] for g in tsd["param_groups"]]


def _batches(opt):
    return opt._batched_groups(adam_mod._DESCRIPTION.group_keys)


def test_runs_of_equal_groups_are_merged_in_order():
    ps = [fastoptim.nn.Parameter(fastoptim.zeros(2)) for _ in range(7)]
    groups = [{"params": [p]} for p in ps]
    for i in (3, 4):
        groups[i]["lr"] = 0.5
    opt = optim.Adam(groups, lr=0.1)
    batches = _batches(opt)
    assert [len(b["params"]) for b in batches] == [3, 2, 2]
    assert [b["lr"] for b in batches] == [0.1, 0.5, 0.1]
    assert [q for b in batches for q in b["params"]] == ps
    assert opt.param_groups[0]["params"] == [ps[0]]  # the user's groups are untouched


class _Trap(float):
    """A float-like value whose ``==`` must never run (stands for a Tensor's elementwise ==)."""

    def __eq__(self, other):
        raise AssertionError("a non-plain hyperparameter was compared with ==")

    __hash__ = float.__hash__


@pytest.mark.parametrize("odd", [
    lambda: fastoptim.tensor(0.1),                 # Tensor lr
    lambda: np.float64(0.1),                       # numpy scalar
    lambda: _Trap(0.1),                            # an object with its own ==
    lambda: (fastoptim.tensor(0.9), 0.999),        # a Tensor inside betas
    lambda: (_Trap(0.9), 0.999),
])
def test_groups_with_non_plain_values_are_never_merged(odd):
    ps = [fastoptim.nn.Parameter(fastoptim.zeros(2)) for _ in range(4)]
    opt = optim.Adam([{"params": [p]} for p in ps], lr=0.1)
    key = "betas" if isinstance(odd(), tuple) else "lr"
    opt.param_groups[1][key] = odd()
    opt.param_groups[2][key] = odd()
    assert [len(b["params"]) for b in _batches(opt)] == [1, 1, 1, 1]


def test_base_class_helper_is_shared():
    assert "_batched_groups" in Optimizer.__dict__


def test_a_group_missing_a_setting_raises_keyerror_as_the_lookup_would():
    ps = [fastoptim.nn.Parameter(fastoptim.zeros(2)) for _ in range(3)]
    opt = optim.Adam([{"params": [p]} for p in ps], lr=0.1)
    del opt.param_groups[1]["eps"]
    with pytest.raises(KeyError, match="eps"):
        _batches(opt)


def test_equal_values_merge_whatever_their_identity_and_plain_type():
    ps = [fastoptim.nn.Parameter(fastoptim.zeros(2)) for _ in range(4)]
    opt = optim.Adam([{"params": [p]} for p in ps], lr=0.1)
    opt.param_groups[1]["lr"] = float("0.1")          # equal, another object
    opt.param_groups[2]["weight_decay"] = 0.0          # 0 (int default) == 0.0
    opt.param_groups[3]["betas"] = (0.9, 0.999)
    assert [len(b["params"]) for b in _batches(opt)] == [4]
    opt.param_groups[2]["lr"] = float("nan")           # nan != nan: never merged
    assert [len(b["params"]) for b in _batches(opt)] == [2, 1, 1]


def _layout(batches):
    return [(list(b["params"]), {k: b[k] for k in b if k != "params"}) for b in batches]


def test_an_unchanged_batching_is_reused_and_every_change_is_seen():
    """The optimizer keeps its last batching (in its first StepCache) and returns it again
    while nothing it depends on changed; each kind of change gives what batching from scratch
    (no cache) gives."""
    from fastoptim._C import _optim

    names = adam_mod._DESCRIPTION.group_keys
    ps = [fastoptim.nn.Parameter(fastoptim.zeros(2)) for _ in range(6)]
    groups = [{"params": [p]} for p in ps]
    groups[3]["lr"] = 0.5
    opt = optim.Adam(groups, lr=0.1)

    def check():
        got = _batches(opt)
        assert _layout(got) == _layout(_optim._batch_groups(opt.param_groups, names))
        return got

    first = check()
    assert [len(b["params"]) for b in first] == [3, 1, 2]
    assert _batches(opt) is first                        # nothing changed: the same result
    opt.param_groups[4]["lr"] = 0.5                      # a setting edited
    assert [len(b["params"]) for b in check()] == [3, 2, 1]
    extra = fastoptim.nn.Parameter(fastoptim.zeros(2))
    opt.param_groups[1]["params"].append(extra)         # a merged run's list grown in place
    assert [len(b["params"]) for b in check()] == [4, 2, 1]
    opt.param_groups[1]["params"][0] = ps[5]            # an item replaced, same length
    assert check()[0]["params"][1] is ps[5]
    opt.param_groups[1]["params"].pop()                 # shrunk
    assert [len(b["params"]) for b in check()] == [3, 2, 1]
    before = _batches(opt)
    opt.param_groups[2] = {**opt.param_groups[2]}       # a group replaced by an equal copy
    assert _batches(opt) is not before
    check()
    opt.add_param_group({"params": [extra], "lr": 0.5})  # a group added
    assert [len(b["params"]) for b in check()] == [3, 2, 1, 1]
    opt.param_groups = opt.param_groups[:3]              # another list
    assert [len(b["params"]) for b in check()] == [3]
    del opt.param_groups[0]["eps"]                       # a missing setting still raises
    with pytest.raises(KeyError, match="eps"):
        _batches(opt)


def test_reused_batching_steps_as_batching_from_scratch():
    """Steps over a reused batching (one group per param, settings edited midway, a param's
    grad dropped) are bit-identical to steps that batch from scratch every time."""
    from fastoptim._C import _optim

    names = adam_mod._DESCRIPTION.group_keys
    init, grads = _data(3, np.float32)
    runs = []
    for cached in (True, False):
        params = [fastoptim.nn.Parameter(fastoptim.from_numpy(a.copy())) for a in init]
        opt = optim.Adam([{"params": [p]} for p in params], lr=0.01)
        if not cached:
            opt._batched_groups = lambda hyper, o=opt: _optim._batch_groups(o.param_groups,
                                                                          names)
        for step in range(STEPS):
            for i, (p, g) in enumerate(zip(params, grads[step])):
                p.grad = None if (i + step) % 7 == 0 else fastoptim.from_numpy(g.copy())
            if step == STEPS // 2:
                for group in opt.param_groups[::2]:
                    group["lr"] = 0.003
            opt.step()
        runs.append(b"".join(p.detach().numpy().tobytes() for p in params))
    assert runs[0] == runs[1]
