"""The C steps of the schedulers against their Python rules, bit for bit.

Why: a training loop steps its scheduler every iteration, so StepLR, MultiStepLR,
ExponentialLR (factor computed in C) and OneCycleLR (annealing in C doubles) step at C level
(``fastoptim/_C/_optim.pyx``); the Python ``get_lr`` / ``_chain_factor`` stay the statement of
the rule and the general path.  The C step is the fast twin, the Python rule the slow one: each
case runs the same scheduler twice, once through the C step (which must report that it ran) and
once through a subclass that overrides ``step`` (so only the Python rule runs), and every group
setting, ``_last_lr`` and the state dict must be equal exactly (not to a tolerance).  The
declines are tested too: anything unusual goes to the general path having changed nothing.
"""

import copy
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim._C._optim import _one_cycle_lr_step, _uniform_lr_step
from fastoptim.optim import lr_scheduler as S


def make_opt(kind, lrs=(0.05, 0.5)):
    groups = [{"params": [fastoptim.tensor(np.ones(2), dtype=fastoptim.float64,
                                           requires_grad=True)], "lr": lr} for lr in lrs]
    if kind == "adam":
        return fastoptim.optim.Adam(groups, lr=lrs[0])
    if kind == "adagrad":
        return fastoptim.optim.Adagrad(groups, lr=lrs[0])
    return fastoptim.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def python_only(cls):
    """``cls`` whose ``step`` is ``LRScheduler.step``: no C step, only the Python rule."""
    return type("PythonOnly" + cls.__name__, (cls,), {"step": S.LRScheduler.step})


# name -> (class, kwargs, optimizer kind, steps, the C step)
CASES = {
    "StepLR": (S.StepLR, dict(step_size=7, gamma=0.5), "sgd", 200, _uniform_lr_step),
    "StepLR-int-gamma": (S.StepLR, dict(step_size=3, gamma=2), "adam", 60, _uniform_lr_step),
    "StepLR-step1": (S.StepLR, dict(step_size=1, gamma=0.99), "sgd", 100, _uniform_lr_step),
    "MultiStepLR": (S.MultiStepLR, dict(milestones=[10, 50, 50, 120], gamma=0.3), "sgd", 200,
                    _uniform_lr_step),
    "ExponentialLR": (S.ExponentialLR, dict(gamma=0.97), "adagrad", 200, _uniform_lr_step),
    "OneCycleLR": (S.OneCycleLR, dict(max_lr=[0.1, 1.0], total_steps=200), "sgd", 200,
                   _one_cycle_lr_step),
    "OneCycleLR-3phase-linear-betas": (S.OneCycleLR, dict(
        max_lr=0.5, epochs=10, steps_per_epoch=21, pct_start=0.25, anneal_strategy="linear",
        three_phase=True), "adam", 210, _one_cycle_lr_step),
    "OneCycleLR-nomomentum": (S.OneCycleLR, dict(
        max_lr=0.3, total_steps=251, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0), "adagrad", 251, _one_cycle_lr_step),
    "OneCycleLR-3phase-cos": (S.OneCycleLR, dict(max_lr=[0.2, 0.7], total_steps=97,
                                                 three_phase=True, pct_start=0.4), "sgd", 97,
                              _one_cycle_lr_step),
}


def settings(opt):
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


@pytest.mark.parametrize("name", CASES)
def test_c_step_equals_the_python_rule_exactly(name):
    cls, kw, kind, steps, c_step = CASES[name]
    fast_opt, slow_opt = make_opt(kind), make_opt(kind)
    fast, slow = cls(fast_opt, **copy.deepcopy(kw)), python_only(cls)(slow_opt, **kw)
    assert settings(fast_opt) == settings(slow_opt)
    seen = set()
    for i in range(steps):
        fast_opt.step()
        slow_opt.step()
        if i == 0:
            fast.step()        # the first step (its call-order check) is the general path's
        else:
            assert c_step(fast), f"the C step declined at step {i}"
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert fast.get_last_lr() == slow.get_last_lr()
        seen.add(tuple(fast.get_last_lr()))
    assert fast.state_dict() == slow.state_dict()
    assert len(seen) > 2    # the schedule does move


def test_one_cycle_overrun_declines_then_raises_torchs_error():
    opt = make_opt("sgd")
    s = S.OneCycleLR(opt, 0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        s.step()
    before = (settings(opt), s.state_dict())
    assert _one_cycle_lr_step(s) is False
    assert (settings(opt), s.state_dict()) == before
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total "
                                         "steps is 3"):
        s.step()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "OneCycleLR"])
def test_c_step_declines_for_a_tensor_lr_and_changes_nothing(name):
    cls, kw, kind, _, c_step = CASES[name]
    opt = make_opt(kind)
    s = cls(opt, **kw)
    opt.step()
    s.step()
    opt.param_groups[1]["lr"] = fastoptim.tensor(0.25, dtype=fastoptim.float64)
    before = (settings(opt), dict(s.__dict__))
    assert c_step(s) is False
    assert settings(opt) == before[0] and s.__dict__ == before[1]
    s.step()   # the general path: the Tensor lr is filled in place
    assert isinstance(opt.param_groups[1]["lr"], fastoptim.Tensor)


def test_c_step_declines_on_the_first_step_so_the_call_order_warning_comes():
    opt = make_opt("sgd")
    s = S.OneCycleLR(opt, 0.1, total_steps=10)
    assert _one_cycle_lr_step(s) is False   # _step_count == 1: the warning check is Python's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s.step()
    assert any("before `optimizer.step()`" in str(w.message) for w in caught)


def test_overriding_the_rule_leaves_the_c_rule():
    class Doubling(S.StepLR):
        def _chain_factor(self):
            return 2.0

    class Halving(S.OneCycleLR):
        @staticmethod
        def _annealing_cos(start, end, pct):
            return start / 2

    assert S.StepLR._factor_rule != S._UniformLR._factor_rule
    assert Doubling._factor_rule == S._UniformLR._factor_rule
    assert S.OneCycleLR._fast_step and not Halving._fast_step
    opt = make_opt("sgd", (1.0,))
    s = Doubling(opt, step_size=5)
    for _ in range(3):
        opt.step()
        s.step()
    assert opt.param_groups[0]["lr"] == 16.0   # the constructor's step doubles too
    opt = make_opt("sgd", (1.0,))
    h = Halving(opt, 1.0, total_steps=10)
    opt.step()
    h.step()
    assert _one_cycle_lr_step(h) is False
