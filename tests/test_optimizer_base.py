"""The ``Optimizer`` base class: construction checks, hooks, state dicts, closures, subclassing.

Why: user code written against ``torch.optim.Optimizer`` (custom optimizers, hooks, checkpoint
code) must behave identically, messages included; these tests pin that behaviour without
depending on any one optimizer's math.
"""

import copy
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim import optim
from fastoptim.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
    required,
)


def t(values, requires_grad=True):
    return fastoptim.tensor(np.asarray(values, dtype=np.float32), requires_grad=requires_grad)


def arr(x):
    return np.array(x.detach().numpy(), copy=True)


# ----------------------------------------------------------------------------- construction


def test_tensor_as_params_is_rejected():
    with pytest.raises(
        TypeError,
        match=r"^params argument given to the optimizer should be an iterable of Tensors or "
        r"dicts, but got fastoptim\.FloatTensor$",
    ):
        optim.SGD(t([1.0]))


@pytest.mark.parametrize(
    "params,exc,match",
    [
        ([], ValueError, "^optimizer got an empty parameter list$"),
        ([1.0], TypeError, "^optimizer can only optimize Tensors, but one of the params is float$"),
        ([{"params": {1}}], TypeError, "ordering of tensors in sets will change between runs"),
        (["x"], TypeError, "one of the params is str$"),
        ([{"lr": 0.1}], KeyError, "params"),
    ],
)
def test_base_construction_errors(params, exc, match):
    with pytest.raises(exc, match=match):
        optim.SGD(params, lr=0.1)


def test_group_not_a_dict_and_mixed_list():
    opt = optim.SGD([t([1.0])])
    with pytest.raises(TypeError, match=r"^param_group must be a dict, but got <class 'list'>$"):
        opt.add_param_group([t([2.0])])
    with pytest.raises(TypeError, match="one of the params is dict$"):
        optim.SGD([t([1.0]), {"params": [t([2.0])]}])


def test_non_leaf_is_rejected():
    q = t([1.0]) * 2.0
    if q.is_leaf:
        pytest.skip("needs the autograd Tensor to build a non-leaf")
    with pytest.raises(ValueError, match="^can't optimize a non-leaf Tensor$"):
        optim.SGD([q])


def test_set_passed_directly_is_accepted():
    opt = optim.SGD({t([1.0])}, lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 1


def test_duplicates_warn_within_group_and_error_across_groups():
    p = t([1.0])
    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        opt = optim.SGD([p, p], lr=0.1)
    p.grad = t([1.0], requires_grad=False)
    opt.step()
    np.testing.assert_allclose(arr(p), [0.8])  # stepped twice, as in torch
    with pytest.raises(
        ValueError, match="^some parameters appear in more than one parameter group$"
    ):
        optim.SGD([{"params": [p]}, {"params": p}], lr=0.1)


def test_named_params_and_mixing_errors():
    a, b = t([1.0]), t([2.0])
    opt = optim.SGD([("w", a), ("b", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]
    with pytest.raises(ValueError, match="Some param names are missing$"):
        optim.SGD([("w", a), b])
    with pytest.raises(ValueError, match="cannot add param group without names to the optimizer$"):
        opt.add_param_group({"params": [t([3.0])]})
    opt2 = optim.SGD([a])
    with pytest.raises(ValueError, match="cannot add param group with names to the optimizer$"):
        opt2.add_param_group({"params": [("c", t([3.0]))]})


def test_generator_defaults_fill_and_extra_keys():
    ps = [t([1.0]), t([2.0])]
    opt = optim.SGD(iter(ps), lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [t([3.0])], "lr": 0.5, "my_tag": "head"})
    g = opt.param_groups[1]
    assert g["lr"] == 0.5 and g["momentum"] == 0.9 and g["my_tag"] == "head"
    assert opt.state_dict()["param_groups"][1]["my_tag"] == "head"
    opt.add_param_group({"params": []})  # accepted, as in torch


def test_required_default():
    class NeedsLr(optim.Optimizer):
        def __init__(self, params, lr=required):
            super().__init__(params, {"lr": lr})

    assert repr(required) == "<required parameter>"
    with pytest.raises(ValueError, match="didn't specify a value of required optimization "
                       "parameter lr$"):  # fmt: skip
        NeedsLr([t([1.0])])
    NeedsLr([{"params": [t([1.0])], "lr": 0.1}])


def test_custom_optimizer_verbatim():
    torch = fastoptim  # the user's `import fastoptim as torch`

    class CustomOptimizer(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            defaults = dict(lr=lr)  # noqa: C408
            super(CustomOptimizer, self).__init__(params, defaults)  # noqa: UP008

        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.data.add_(-group["lr"], p.grad.data)

    p, q = t([1.0, 2.0]), t([3.0])
    opt = CustomOptimizer([p, q], lr=0.5)
    p.grad = t([1.0, -1.0], requires_grad=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy add_(scalar, tensor) form may warn
        assert opt.step() is None
    np.testing.assert_allclose(arr(p), [0.5, 2.5])
    np.testing.assert_allclose(arr(q), [3.0])
    assert "CustomOptimizer (" in repr(opt)
    sd = opt.state_dict()
    opt2 = CustomOptimizer([t([0.0, 0.0]), t([0.0])])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.5
    copy.deepcopy(opt)


# ----------------------------------------------------------------------------- step, zero_grad


def test_closure_runs_with_grad_enabled_and_step_without_grad(monkeypatch):
    p = t([1.0])
    seen = {}
    from fastoptim.optim import _step

    def spy(*args):
        seen["in_step"] = fastoptim.is_grad_enabled()
        return real(*args)

    real = _step.group_step       # the shortcut every built-in class's step calls
    monkeypatch.setattr(_step, "group_step", spy)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        seen["closure"] = fastoptim.is_grad_enabled()
        return 42.0

    with fastoptim.no_grad():
        assert opt.step(closure) == 42.0
    assert seen["closure"] is True
    assert fastoptim.is_grad_enabled()
    assert opt.step() is None  # no grads at all: a no-op
    np.testing.assert_allclose(arr(p), [1.0])

    assert seen["in_step"] is False  # the update itself is never recorded


def test_zero_grad_both_modes():
    p = t([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = t([3.0, 4.0], requires_grad=False)
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and not g.requires_grad
    np.testing.assert_array_equal(arr(g), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_lr_edit_takes_effect_and_add_param_group_uses_own_hyperparameters():
    p, q = t([1.0]), t([1.0])
    opt = optim.SGD([p], lr=0.1)
    opt.add_param_group({"params": [q], "lr": 1.0})
    for x in (p, q):
        x.grad = t([1.0], requires_grad=False)
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(arr(p), [0.4])
    np.testing.assert_allclose(arr(q), [-1.0])


# ----------------------------------------------------------------------------- hooks


def test_step_hooks_order_global_and_local_across_two_optimizers():
    calls = []
    p, q = t([1.0]), t([1.0])
    o1, o2 = optim.SGD([p], lr=0.1), optim.Adam([q], lr=0.1)
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append(("gpre", o))),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append(("gpost", o))),
    ]
    for o in (o1, o2):
        handles.append(o.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o))))
        handles.append(o.register_step_post_hook(lambda o, a, k: calls.append(("post", o))))
    try:
        o1.step()
        o2.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == [(n, o) for o in (o1, o2) for n in ("gpre", "pre", "post", "gpost")]
    calls.clear()
    o1.step()
    assert calls == []


def test_step_hook_counters_and_remove():
    opt = optim.SGD([t([1.0])], lr=0.1)
    data = [5]
    h = opt.register_step_pre_hook(lambda o, a, k: data.__setitem__(0, data[0] + 2))
    opt.step()
    opt.step()
    assert data[0] == 9
    h.remove()
    opt.step()
    assert data[0] == 9
    data = [2]
    h = opt.register_step_post_hook(lambda o, a, k: data.__setitem__(0, data[0] + 2))
    opt.step()
    opt.step()
    h.remove()
    opt.step()
    assert data[0] == 6


def test_pre_hook_can_replace_arguments_or_must_return_pair():
    opt = optim.SGD([t([1.0])], lr=0.1)
    h = opt.register_step_pre_hook(lambda o, args, kwargs: (args, {"closure": lambda: 7.0}))
    assert opt.step() == 7.0
    h.remove()
    opt.register_step_pre_hook(lambda o, args, kwargs: "bad")
    with pytest.raises(RuntimeError, match=r"must return None or a tuple of \(new_args, "
                       r"new_kwargs\), but got bad\.$"):  # fmt: skip
        opt.step()


def test_state_dict_hooks():
    opt = optim.SGD([t([1.0])], lr=0.1)

    def pre(o):
        o.state["test"] = 1

    def post(o, sd):
        sd["state"].pop("test")
        sd["ran"] = True
        return sd

    opt.register_state_dict_pre_hook(pre)
    h = opt.register_state_dict_post_hook(post)
    sd = opt.state_dict()
    assert sd["ran"] is True and "test" not in sd["state"]
    h.remove()
    assert opt.state_dict()["state"]["test"] == 1


def test_load_state_dict_hooks_prepend_order():
    opt = optim.SGD([t([1.0])], lr=0.1)
    sd = opt.state_dict()
    after = []

    def hook1(o, sd):
        sd["param_groups"][0]["lr"] = 0.002

    def hook2(o, sd):
        sd = copy.deepcopy(sd)
        sd["param_groups"][0]["lr"] = 0.003
        return sd

    opt.register_load_state_dict_pre_hook(hook1)
    opt.register_load_state_dict_pre_hook(hook2, prepend=True)
    opt.register_load_state_dict_post_hook(lambda o: after.append(o.param_groups[0]["lr"]))
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.002 and after == [0.002]


# ----------------------------------------------------------------------------- state dicts


def test_state_dict_indices_live_references_and_determinism():
    a, b, c = t([1.0]), t([2.0, 3.0]), t([4.0])
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1, momentum=0.9)
    for x in (a, b, c):
        x.grad = fastoptim.tensor(np.ones(x.shape, np.float32))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["state"][1]["momentum_buffer"] is opt.state[b]["momentum_buffer"]  # no copy
    opt.param_groups.extend(opt.param_groups)
    assert opt.state_dict()["param_groups"][-1]["params"] == [2]


def test_loaded_hyperparameters_win_and_param_names_kept():
    a = t([1.0])
    src = optim.Adam([a], lr=1e-3)
    dst = optim.Adam([("w", t([1.0]))], lr=0.5)
    dst.load_state_dict(src.state_dict())
    assert dst.param_groups[0]["lr"] == 1e-3
    assert dst.param_groups[0]["param_names"] == ["w"]


def test_missing_param_groups_key_is_a_key_error():
    opt = optim.SGD([t([1.0])])
    with pytest.raises(KeyError, match="param_groups"):
        opt.load_state_dict({"state": {}})


def test_user_subclass_state_loads_like_torch():
    class Counter(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    self.state[p]["n"] = self.state[p].get("n", 0) + 1
                    self.state[p]["note"] = "kept"

    p = t([1.0])
    src = Counter([p])
    src.step()
    dst = Counter([t([1.0])])
    dst.load_state_dict(src.state_dict())
    assert list(dst.state.values()) == [{"n": 1, "note": "kept"}]


def test_state_key_missing_after_flag_change_raises_keyerror_as_torch():
    # amsgrad switched on after the state was created: torch's dict lookup raises KeyError;
    # the C-level collection must do the same (not create or skip the missing buffer).
    p = fastoptim.randn(3, requires_grad=True)
    p.grad = fastoptim.randn(3)
    opt = fastoptim.optim.Adam([p])
    opt.step()
    opt.param_groups[0]["amsgrad"] = True
    before = p.detach().clone()
    with pytest.raises(KeyError, match="max_exp_avg_sq"):
        opt.step()
    assert p.equal(before)
