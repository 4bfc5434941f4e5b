"""The C steps of the schedulers against their Python rules, bit for bit.

Why: a training loop steps its scheduler every iteration, so StepLR, MultiStepLR,
ExponentialLR, ConstantLR, LinearLR, PolynomialLR (factor computed in C), CosineAnnealingLR and
OneCycleLR (the rule in C doubles), LambdaLR and MultiplicativeLR (lambdas called from C) step
at C level (``fastoptim/_C/_optim_lr.pxi``); the Python ``get_lr`` / ``_chain_factor`` stay the
statement of the rule and the general path.  The C step is the fast twin, the Python rule the
slow one: each case runs the same scheduler twice, once through the C step (which must report
that it ran) and once through a subclass that overrides ``step`` (so only the Python rule
runs), and every group setting (with its type), ``_last_lr`` and the state dict must be equal
exactly (not to a tolerance), over sizes from 2 groups to more than the C step's stack buffer.
The declines are tested too: anything unusual goes to the general path having changed nothing.
"""

import copy
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim._C._optim import (
    _cosine_lr_step,
    _lambda_lr_step,
    _one_cycle_lr_step,
    _uniform_lr_step,
)
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


MANY = tuple(0.01 * (1 + i % 7) for i in range(300))   # more groups than the stack buffer


def warmup(epoch):
    return 1 if epoch < 10 else 0.5    # an int factor, then a float


# name -> (class, kwargs, optimizer kind, steps, the C step[, the groups' lrs])
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
    "OneCycleLR-many-betas": (S.OneCycleLR, dict(max_lr=0.1, total_steps=80), "adam", 80,
                              _one_cycle_lr_step, MANY),
    "StepLR-many": (S.StepLR, dict(step_size=3, gamma=0.9), "sgd", 40, _uniform_lr_step, MANY),
    "ExponentialLR-many": (S.ExponentialLR, dict(gamma=0.95), "sgd", 40, _uniform_lr_step,
                           MANY),
    "ConstantLR": (S.ConstantLR, dict(factor=0.3, total_iters=20), "sgd", 60, _uniform_lr_step),
    "LinearLR": (S.LinearLR, dict(start_factor=0.25, total_iters=30), "adam", 60,
                 _uniform_lr_step),
    "LinearLR-down-int-end": (S.LinearLR, dict(start_factor=1.0, end_factor=0, total_iters=37),
                              "sgd", 50, _uniform_lr_step),
    "LinearLR-default": (S.LinearLR, dict(), "sgd", 12, _uniform_lr_step),
    "PolynomialLR": (S.PolynomialLR, dict(total_iters=150, power=2.0), "sgd", 200,
                     _uniform_lr_step),
    "PolynomialLR-int-power": (S.PolynomialLR, dict(total_iters=50, power=1), "adagrad", 60,
                               _uniform_lr_step),
    "PolynomialLR-sqrt-many": (S.PolynomialLR, dict(total_iters=33, power=0.5), "sgd", 40,
                               _uniform_lr_step, MANY),
    "CosineAnnealingLR": (S.CosineAnnealingLR, dict(T_max=10, eta_min=0.001), "sgd", 200,
                          _cosine_lr_step),
    "CosineAnnealingLR-int-eta": (S.CosineAnnealingLR, dict(T_max=37, eta_min=0), "adam", 200,
                                  _cosine_lr_step),
    "CosineAnnealingLR-many": (S.CosineAnnealingLR, dict(T_max=7), "sgd", 30, _cosine_lr_step,
                               MANY),
    "LambdaLR": (S.LambdaLR, dict(lr_lambda=lambda e: 0.97**e), "sgd", 200, _lambda_lr_step),
    "LambdaLR-two-int-then-float": (S.LambdaLR, dict(lr_lambda=[warmup, lambda e: 1.0 / (e + 1)]),
                                    "adam", 40, _lambda_lr_step),
    "LambdaLR-many": (S.LambdaLR, dict(lr_lambda=lambda e: 1.0 - e / 100), "sgd", 30,
                      _lambda_lr_step, MANY),
    "MultiplicativeLR": (S.MultiplicativeLR, dict(lr_lambda=lambda e: 0.95), "sgd", 200,
                         _lambda_lr_step),
    "MultiplicativeLR-epochs": (S.MultiplicativeLR, dict(lr_lambda=lambda e: 1 + (e % 3 - 1) / 8),
                                "adagrad", 100, _lambda_lr_step),
}


def typed(values):
    # values with their types: 1 == 1.0, but an int lr is not the float one
    return [(type(v), v) for v in values]


def settings(opt):
    return [{k: (type(v), v) for k, v in g.items() if k != "params"} for g in opt.param_groups]


@pytest.mark.parametrize("name", CASES)
def test_c_step_equals_the_python_rule_exactly(name):
    cls, kw, kind, steps, c_step, *lrs = CASES[name]
    lrs = lrs[0] if lrs else (0.05, 0.5)
    fast_opt, slow_opt = make_opt(kind, lrs), make_opt(kind, lrs)
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
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
        seen.add(tuple(fast.get_last_lr()))
    assert fast.state_dict() == slow.state_dict()
    assert len(seen) > 1    # the schedule does move


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


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "OneCycleLR",
                                  "ConstantLR", "LinearLR", "PolynomialLR", "CosineAnnealingLR",
                                  "LambdaLR", "MultiplicativeLR"])
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


# Attributes a C step does not handle: it declines, having changed nothing, and the general
# path (the Python rule) steps.  name -> (class, kwargs, attribute, value, C step)
ODD = {
    "CosineAnnealingLR-float-T_max": (S.CosineAnnealingLR, dict(T_max=10), "T_max", 10.0,
                                      _cosine_lr_step),
    "CosineAnnealingLR-numpy-eta": (S.CosineAnnealingLR, dict(T_max=10), "eta_min",
                                    np.float64(0.001), _cosine_lr_step),
    "LinearLR-int-start": (S.LinearLR, dict(start_factor=0.5, total_iters=40), "start_factor",
                           1, _uniform_lr_step),
    "PolynomialLR-negative-power": (S.PolynomialLR, dict(total_iters=40), "power", -0.5,
                                    _uniform_lr_step),
    "PolynomialLR-float-total": (S.PolynomialLR, dict(total_iters=40), "total_iters", 40.0,
                                 _uniform_lr_step),
    "ConstantLR-float-total": (S.ConstantLR, dict(factor=0.5, total_iters=40), "total_iters",
                               7.0, _uniform_lr_step),
    "StepLR-numpy-gamma": (S.StepLR, dict(step_size=1), "gamma", np.float64(0.5),
                           _uniform_lr_step),
}


@pytest.mark.parametrize("name", ODD)
def test_c_step_declines_for_odd_attributes_and_the_python_rule_steps(name):
    cls, kw, attr, value, c_step = ODD[name]
    fast_opt, slow_opt = make_opt("sgd"), make_opt("sgd")
    fast, slow = cls(fast_opt, **kw), python_only(cls)(slow_opt, **kw)
    for s, o in ((fast, fast_opt), (slow, slow_opt)):
        o.step()
        s.step()
        setattr(s, attr, value)
    for i in range(12):
        before = (settings(fast_opt), dict(fast.__dict__))
        assert c_step(fast) is False, f"step {i}"
        assert (settings(fast_opt), fast.__dict__) == before
        fast.step()
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())


def test_lambda_values_that_are_not_floats_are_written_as_the_python_rule_writes_them():
    # numpy floats at even epochs: the C step runs from float lrs (odd epochs) and must write
    # the numpy values as the Python rule does; from a numpy lr it declines
    fast_opt, slow_opt = make_opt("sgd"), make_opt("sgd")
    kw = dict(lr_lambda=lambda e: 0.9**e if e % 2 else np.float64(0.9) ** e)
    fast, slow = S.LambdaLR(fast_opt, **kw), python_only(S.LambdaLR)(slow_opt, **kw)
    ran = []
    for i in range(8):
        fast_opt.step()
        slow_opt.step()
        if i == 0:
            fast.step()
        else:
            ran.append(_lambda_lr_step(fast) or fast.step() or False)
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
    assert ran == [True, False] * 3 + [True]   # epochs 2, 4, 6, 8 from float lrs
    assert type(fast_opt.param_groups[0]["lr"]) is np.float64


def test_a_lambda_that_raises_leaves_the_state_of_the_python_rule():
    def make(cls):
        calls = []

        def lmbda(e):
            calls.append(e)
            if e == 3:
                raise ArithmeticError("no epoch 3")
            return 0.5

        opt = make_opt("sgd")
        return opt, cls(opt, lr_lambda=lmbda), calls

    runs = [make(S.MultiplicativeLR), make(python_only(S.MultiplicativeLR))]
    for opt, s, _ in runs:
        opt.step()
        s.step()
        s.step()
        with pytest.raises(ArithmeticError, match="no epoch 3"):
            s.step()
    (fo, fs, fc), (so, ss, sc) = runs
    assert fc == sc
    assert settings(fo) == settings(so) and fs.state_dict() == ss.state_dict()
    assert fs._get_lr_called_within_step is False


def test_overriding_the_rule_leaves_the_python_path():
    class Cos(S.CosineAnnealingLR):
        def get_lr(self):
            return [0.5 for _ in self.optimizer.param_groups]

    class Lam(S.LambdaLR):
        def _update_lr(self, epoch=None):
            super()._update_lr(epoch)

    class PlainLam(S.LambdaLR):
        pass

    assert S.CosineAnnealingLR._fast_step and not Cos._fast_step
    assert S.LambdaLR._fast_step and S.MultiplicativeLR._fast_step and PlainLam._fast_step
    assert not Lam._fast_step and not S.CosineAnnealingWarmRestarts._fast_step
    for cls, kw, c_step in ((Cos, dict(T_max=5), _cosine_lr_step),
                            (Lam, dict(lr_lambda=lambda e: 0.5), _lambda_lr_step)):
        opt = make_opt("sgd")
        s = cls(opt, **kw)
        opt.step()
        s.step()
        assert c_step(s) is False
    assert opt.param_groups[0]["lr"] == 0.05 * 0.5
