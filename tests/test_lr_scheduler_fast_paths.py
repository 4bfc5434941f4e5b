"""The C steps of the schedulers against their Python rules, bit for bit.

Why: a training loop steps its scheduler every iteration, so StepLR, MultiStepLR,
ExponentialLR, ConstantLR, LinearLR, PolynomialLR (factor computed in C), CosineAnnealingLR,
OneCycleLR, CyclicLR and CosineAnnealingWarmRestarts (the rule in C doubles; CyclicLR calls a
custom scale function from C), LambdaLR and MultiplicativeLR (lambdas called from C) step at C
level (``fastoptim/_C/_optim_lr.pxi``); the Python ``get_lr`` / ``_chain_factor`` /
``_step_rule`` stay the statement of the rule and the general path.  The C step is the fast
twin, the Python rule the slow one: each case runs the same scheduler twice, once through the C
step (which must report that it ran) and once through a subclass that overrides ``step`` (so
only the Python rule runs), and every group setting (with its type), ``_last_lr`` and the state
dict must be equal
exactly (not to a tolerance), over sizes from 2 groups to more than the C step's stack buffer.
The declines are tested too: anything unusual goes to the general path having changed nothing.
"""

import copy
import math
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim._C._optim import (
    _cosine_lr_step,
    _cyclic_lr_step,
    _float_lrs,
    _lambda_lr_step,
    _one_cycle_lr_step,
    _plateau_lr_step,
    _swalr_lr_step,
    _uniform_lr_step,
    _warm_restarts_lr_step,
)
from fastoptim.optim import lr_scheduler as S
from fastoptim.optim.swa_utils import SWALR


def make_opt(kind, lrs=(0.05, 0.5)):
    groups = [{"params": [fastoptim.tensor(np.ones(2), dtype=fastoptim.float64,
                                           requires_grad=True)], "lr": lr} for lr in lrs]
    if kind == "adam":
        return fastoptim.optim.Adam(groups, lr=lrs[0])
    if kind == "adagrad":
        return fastoptim.optim.Adagrad(groups, lr=lrs[0])
    return fastoptim.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def python_only(cls):
    """``cls`` whose ``step`` is its Python rule (``LRScheduler.step``, or the class's own
    ``_step_rule``): no C step."""
    step = getattr(cls, "_step_rule", S.LRScheduler.step)
    return type("PythonOnly" + cls.__name__, (cls,), {"step": step})


MANY = tuple(0.01 * (1 + i % 7) for i in range(300))   # more groups than the stack buffer


def warmup(epoch):
    return 1 if epoch < 10 else 0.5    # an int factor, then a float


class Halves:
    """A callable scale function object (kept in the state dict)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return 1 if x < 3 else 0.5 ** (x - 2)      # an int scale, then floats


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
    "CyclicLR": (S.CyclicLR, dict(base_lr=0.001, max_lr=[0.1, 1.0], step_size_up=20), "sgd",
                 200, _cyclic_lr_step),
    "CyclicLR-tri2-betas-down": (S.CyclicLR, dict(base_lr=[0.01, 0], max_lr=0.3, step_size_up=7,
                                                  step_size_down=13, mode="triangular2"),
                                 "adam", 200, _cyclic_lr_step),
    "CyclicLR-exp-range": (S.CyclicLR, dict(base_lr=0.01, max_lr=0.2, step_size_up=9,
                                            mode="exp_range", gamma=0.99, base_momentum=0.7,
                                            max_momentum=[0.9, 0.95]), "sgd", 200,
                           _cyclic_lr_step),
    "CyclicLR-nomomentum-int-bounds": (S.CyclicLR, dict(base_lr=0, max_lr=1, step_size_up=5,
                                                        step_size_down=1, cycle_momentum=False),
                                       "adagrad", 60, _cyclic_lr_step),
    "CyclicLR-scalefn-iterations": (S.CyclicLR, dict(base_lr=0.01, max_lr=0.2, step_size_up=12,
                                                     scale_fn=lambda x: 0.5 ** (x / 50),
                                                     scale_mode="iterations"), "adam", 120,
                                    _cyclic_lr_step),
    "CyclicLR-scalefn-object-cycle": (S.CyclicLR, dict(base_lr=0.02, max_lr=0.4, step_size_up=4,
                                                       scale_fn=Halves()), "sgd", 60,
                                      _cyclic_lr_step),
    "CyclicLR-many-betas": (S.CyclicLR, dict(base_lr=0.001, max_lr=0.05, step_size_up=6,
                                             mode="triangular2"), "adam", 40, _cyclic_lr_step,
                            MANY),
    "CosineAnnealingWarmRestarts": (S.CosineAnnealingWarmRestarts, dict(T_0=10), "sgd", 200,
                                    _warm_restarts_lr_step),
    "CosineAnnealingWarmRestarts-mult": (S.CosineAnnealingWarmRestarts,
                                         dict(T_0=3, T_mult=2, eta_min=0.001), "adam", 200,
                                         _warm_restarts_lr_step),
    "CosineAnnealingWarmRestarts-int-eta-many": (S.CosineAnnealingWarmRestarts,
                                                 dict(T_0=4, T_mult=3, eta_min=0), "sgd", 50,
                                                 _warm_restarts_lr_step, MANY),
    "SWALR": (SWALR, dict(swa_lr=0.02, anneal_epochs=10), "sgd", 40, _swalr_lr_step),
    "SWALR-linear-per-group": (SWALR, dict(swa_lr=[0.3, 0.001], anneal_epochs=25,
                                           anneal_strategy="linear"), "adam", 60,
                               _swalr_lr_step),
    "SWALR-short-linear": (SWALR, dict(swa_lr=0.07, anneal_epochs=3,
                                           anneal_strategy="linear"), "sgd", 10,
                               _swalr_lr_step),
    "SWALR-cos-many": (SWALR, dict(swa_lr=0.5, anneal_epochs=7), "sgd", 20, _swalr_lr_step,
                       MANY),
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
                                  "LambdaLR", "MultiplicativeLR", "CyclicLR",
                                  "CosineAnnealingWarmRestarts", "SWALR"])
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
    "CyclicLR-numpy-total": (S.CyclicLR, dict(base_lr=0.01, max_lr=0.1, step_size_up=3),
                             "total_size", np.float64(6.0), _cyclic_lr_step),
    "CyclicLR-numpy-max-lrs": (S.CyclicLR, dict(base_lr=0.01, max_lr=0.1, step_size_up=3),
                               "max_lrs", [np.float64(0.1), 0.2], _cyclic_lr_step),
    "CyclicLR-tuple-momenta": (S.CyclicLR, dict(base_lr=0.01, max_lr=0.1, step_size_up=3),
                               "base_momentums", (0.8, 0.8), _cyclic_lr_step),
    "CyclicLR-zero-step-ratio": (S.CyclicLR, dict(base_lr=0.01, max_lr=0.1, step_size_up=3),
                            "step_ratio", 0.0, None),
    "CosineAnnealingWarmRestarts-float-T_i": (S.CosineAnnealingWarmRestarts, dict(T_0=5), "T_i",
                                              5.0, _warm_restarts_lr_step),
    "SWALR-float-anneal-epochs": (SWALR, dict(swa_lr=0.05, anneal_epochs=5), "anneal_epochs",
                                  5.0, _swalr_lr_step),
    "SWALR-other-anneal-func": (SWALR, dict(swa_lr=0.05, anneal_epochs=5), "anneal_func",
                                lambda t: t * t, _swalr_lr_step),
    "CosineAnnealingWarmRestarts-numpy-T_cur": (S.CosineAnnealingWarmRestarts, dict(T_0=5),
                                                "T_cur", np.int64(2), _warm_restarts_lr_step),
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
        if c_step is None:      # a division by zero at some steps: both raise it
            if not _cyclic_lr_step(fast):
                assert (settings(fast_opt), fast.__dict__) == before
                for sched in (fast, slow):
                    with pytest.raises(ZeroDivisionError):
                        sched.step()
                continue
        else:
            assert c_step(fast) is False, f"step {i}"
            assert (settings(fast_opt), fast.__dict__) == before
            fast.step()
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())


def test_swalr_declines_for_an_int_swa_lr_which_the_python_rule_keeps_an_int():
    # an int swa_lr: the Python rule's arithmetic on it (the linear anneal's int alpha keeps
    # an int lr)
    fast_opt, slow_opt = make_opt("sgd"), make_opt("sgd")
    kw = dict(swa_lr=0.05, anneal_epochs=3, anneal_strategy="linear")
    fast, slow = SWALR(fast_opt, **kw), python_only(SWALR)(slow_opt, **kw)
    for o in (fast_opt, slow_opt):
        o.param_groups[1]["swa_lr"] = 1
    for i in range(8):
        fast_opt.step()
        slow_opt.step()
        if i > 0:
            before = (settings(fast_opt), dict(fast.__dict__))
            assert _swalr_lr_step(fast) is False, f"step {i}"
            assert (settings(fast_opt), fast.__dict__) == before
        fast.step()
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
    assert type(fast_opt.param_groups[1]["lr"]) is int


# ReduceLROnPlateau: kwargs, the metric sequence (floats, ints, a NaN: plateaus, improvements,
# reductions down to a min_lr, cooldowns), whether the reductions run in C (float and int
# min_lrs) or go to the Python rule (a numpy min_lr)
_METRICS = [5.0, 4.0, 4.0, 4, 4.0, 3.99999, 3.9, 3.9, float("nan"), 3.0, 3, 3.0, 3.0, 3.5,
            2.0, 7.0, 7.0, 7.0, 7.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
PLATEAU = {
    "min-rel": (dict(patience=2, factor=0.5, min_lr=1e-3), True),
    "min-abs-cooldown": (dict(patience=1, factor=0.3, threshold=0.05, threshold_mode="abs",
                              cooldown=2, min_lr=[0.02, 0.001]), True),
    "max-rel": (dict(mode="max", patience=0, factor=0.9, min_lr=0.04, eps=1e-3), True),
    "max-abs-int-threshold": (dict(mode="max", patience=1, threshold=1, threshold_mode="abs",
                                   min_lr=0.0), True),
    "default-int-min-lr": (dict(patience=1), True),
    "numpy-min-lr": (dict(patience=1, min_lr=np.float64(0.01)), False),
}


@pytest.mark.parametrize("name", PLATEAU)
@pytest.mark.parametrize("lrs", [(0.05, 0.5), MANY])
def test_plateau_c_step_equals_the_python_rule_exactly(name, lrs):
    kw, reductions_in_c = PLATEAU[name]
    if isinstance(kw.get("min_lr"), list):
        kw = dict(kw, min_lr=kw["min_lr"] * (len(lrs) // 2))
    fast_opt, slow_opt = make_opt("sgd", lrs), make_opt("sgd", lrs)
    fast = S.ReduceLROnPlateau(fast_opt, **copy.deepcopy(kw))
    slow = python_only(S.ReduceLROnPlateau)(slow_opt, **kw)
    reduced = in_c = 0
    for i, metric in enumerate(_METRICS * 2):
        before = (settings(fast_opt), dict(fast.__dict__))
        ran = _plateau_lr_step(fast, metric)
        if not ran:
            assert (settings(fast_opt), fast.__dict__) == before, f"step {i}"
            fast.step(metric)
        slow.step(metric)
        moved = settings(slow_opt) != before[0]
        reduced += moved
        in_c += moved and ran
        assert ran or not reductions_in_c, f"the C step declined at step {i}"
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
        assert fast.state_dict() == slow.state_dict() or math.isnan(fast.best), f"step {i}"
        assert typed([fast.best, fast.num_bad_epochs, fast.cooldown_counter]) == typed(
            [slow.best, slow.num_bad_epochs, slow.cooldown_counter])
    assert reduced >= 1 and (in_c == reduced if reductions_in_c else in_c == 0)
    assert fast_opt.param_groups[-1]["lr"] != lrs[-1]


def test_plateau_c_step_writes_an_int_min_lr_as_the_python_rule_does():
    # max(1.5 * 0.5, 1) is the int 1; a group listed twice is reduced twice (3.0 -> the int
    # min_lr 2 -> max(2 * 0.5, 1) = 1.0)
    fast_opt, slow_opt = make_opt("sgd", (1.5, 3.0)), make_opt("sgd", (1.5, 3.0))
    for o in (fast_opt, slow_opt):
        o.param_groups.append(o.param_groups[1])
    kw = dict(patience=0, factor=0.5, min_lr=[1, 2, 1])
    fast = S.ReduceLROnPlateau(fast_opt, **kw)
    slow = python_only(S.ReduceLROnPlateau)(slow_opt, **kw)
    ran = []
    for metric in (1.0, 2.0, 3.0, 4.0):
        ran.append(_plateau_lr_step(fast, metric) or fast.step(metric) or False)
        slow.step(metric)
        assert settings(fast_opt) == settings(slow_opt)
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
        assert fast.state_dict() == slow.state_dict()
    assert ran == [True, True, False, False]    # from the int lrs on: the Python rule
    assert typed(fast.get_last_lr()) == typed([1, 1.0, 1.0])  # 2, then max(1.0, 1) = 1.0


def test_plateau_c_step_declines_for_odd_metrics_and_attributes():
    opt = make_opt("sgd")
    s = S.ReduceLROnPlateau(opt, patience=0, min_lr=0.001)
    for metric in (np.float64(1.0), True, fastoptim.tensor(1.0), 2**60):
        assert _plateau_lr_step(s, metric) is False
    for attr, value in (("mode", "mean"), ("threshold_mode", "relative"), ("best", 1),
                        ("patience", 1.0), ("threshold", np.float64(0.1)),
                        ("cooldown_counter", None)):
        old = s.__dict__[attr]
        setattr(s, attr, value)
        before = (settings(opt), dict(s.__dict__))
        assert _plateau_lr_step(s, 1.0) is False, attr
        assert (settings(opt), s.__dict__) == before
        setattr(s, attr, old)
    assert _plateau_lr_step(s, 0.5) is True     # best = 0.5: the next 1.0 is a reduction step
    s.min_lrs = [0.001]     # another length: the reduction is the Python rule's (which raises)
    s.default_min_lr = None
    before = (settings(opt), dict(s.__dict__))
    assert _plateau_lr_step(s, 1.0) is False
    assert (settings(opt), s.__dict__) == before
    with pytest.raises(RuntimeError, match="differs from when `ReduceLROnPlateau`"):
        s.step(1.0)
    opt.param_groups[0]["lr"] = fastoptim.tensor(0.25, dtype=fastoptim.float64)
    s.min_lrs = [0.001, 0.001]
    assert _plateau_lr_step(s, 1.0) is False
    s.step(0.5)
    assert isinstance(opt.param_groups[0]["lr"], fastoptim.Tensor)


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


class Meddler:
    """A lambda (called once per group) that, at the epochs and calls given, edits what the
    rule reads around the calls: the scheduler's last_epoch, another group's lr (a float, or
    a numpy float, which the write then meets), the group list's dicts, the lambda list."""

    def __init__(self, what):
        self.what, self.calls, self.sched = what, 0, None

    def __call__(self, e):
        self.calls += 1
        if self.sched is not None and e == 4 and self.calls % 5 == 2:
            opt = self.sched.optimizer
            if self.what == "last_epoch":
                self.sched.last_epoch = self.sched.last_epoch + 10  # (later calls see it)
            elif self.what == "lr":
                opt.param_groups[3]["lr"] = opt.param_groups[3]["lr"] * 0.5
            elif self.what == "numpy-lr":
                opt.param_groups[1]["lr"] = np.float64(0.25)
            elif self.what == "new-dict":
                opt.param_groups[4] = dict(opt.param_groups[4], lr=0.125)
            elif self.what == "append-lambda":      # (zip(strict=True) raises)
                self.sched.lr_lambdas.append(self)
            elif self.what == "drop-lambda":
                del self.sched.lr_lambdas[-1]
        return 0.9 + (e % 7) / 100


@pytest.mark.parametrize("what", ["last_epoch", "lr", "numpy-lr", "new-dict", "append-lambda",
                                  "drop-lambda"])
@pytest.mark.parametrize("cls", [S.LambdaLR, S.MultiplicativeLR])
def test_a_lambda_that_edits_what_the_rule_reads_is_seen_as_the_python_rule_sees_it(cls, what):
    # the C step reads last_epoch and group['lr'] again after a lambda changed their dict
    runs = []
    for c in (cls, python_only(cls)):
        opt = make_opt("sgd", MANY[:6])
        m = Meddler(what)
        m.sched = c(opt, lr_lambda=[m] * 6)
        runs.append((opt, m.sched))
    for i in range(8):
        raised = []
        for opt, sched in runs:
            opt.step()
            try:
                sched.step()
            except ValueError as e:
                raised.append(str(e))
        assert len(raised) in (0, 2) and len(set(raised)) <= 1, raised
        (fo, fs), (so, ss) = runs
        assert settings(fo) == settings(so), f"step {i}"
        assert typed(fs.get_last_lr()) == typed(ss.get_last_lr())
        assert fs.last_epoch == ss.last_epoch


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
    class Plateau(S.ReduceLROnPlateau):
        def _is_better(self, a, best):
            return False

    assert not Lam._fast_step and S.ReduceLROnPlateau._fast_step and not Plateau._fast_step
    p = Plateau(make_opt("sgd"))
    assert _plateau_lr_step(p, 1.0) is False
    for cls, kw, c_step in ((Cos, dict(T_max=5), _cosine_lr_step),
                            (Lam, dict(lr_lambda=lambda e: 0.5), _lambda_lr_step)):
        opt = make_opt("sgd")
        s = cls(opt, **kw)
        opt.step()
        s.step()
        assert c_step(s) is False
    assert opt.param_groups[0]["lr"] == 0.05 * 0.5


@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_warm_restarts_closed_form_equals_the_python_rule_exactly(t_mult):
    # torch's documented use: step(epoch + i / iters) every batch, int epochs, epochs before
    # T_0, and chainable steps in between
    kw = dict(T_0=3, T_mult=t_mult, eta_min=0.002)
    fast_opt, slow_opt = make_opt("adam"), make_opt("adam")
    fast = S.CosineAnnealingWarmRestarts(fast_opt, **kw)
    slow = python_only(S.CosineAnnealingWarmRestarts)(slow_opt, **kw)
    epochs = [e + i / 7 for e in range(40) for i in range(7)] + [26, 2, 0, 45.5, 3, 3.0, 1e6]
    for j, epoch in enumerate(epochs):
        for e in (epoch, None) if j % 5 == 0 else (epoch,):
            assert _warm_restarts_lr_step(fast, e), f"epoch {epoch!r}"
            slow.step(e)
            assert settings(fast_opt) == settings(slow_opt), f"epoch {epoch!r}"
            assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
            assert typed([fast.T_cur, fast.T_i, fast.last_epoch]) == typed(
                [slow.T_cur, slow.T_i, slow.last_epoch]), f"epoch {epoch!r}"
    assert fast.state_dict() == slow.state_dict()


@pytest.mark.parametrize("epoch", [-1, -0.5, float("nan"), float("inf"), np.float64(2.5), True,
                                   2.0**60])
def test_warm_restarts_declines_for_odd_epochs_and_the_python_rule_decides(epoch):
    fast_opt, slow_opt = make_opt("sgd"), make_opt("sgd")
    fast = S.CosineAnnealingWarmRestarts(fast_opt, 4, T_mult=2)
    slow = python_only(S.CosineAnnealingWarmRestarts)(slow_opt, 4, T_mult=2)
    before = (settings(fast_opt), dict(fast.__dict__))
    assert _warm_restarts_lr_step(fast, epoch) is False
    assert (settings(fast_opt), fast.__dict__) == before
    outcomes = []
    for s in (fast, slow):
        try:
            s.step(epoch)
            outcomes.append(None)
        except (ValueError, OverflowError) as exc:
            outcomes.append((type(exc), str(exc)))
    assert outcomes[0] == outcomes[1]
    assert settings(fast_opt) == settings(slow_opt)
    assert fast.__dict__.keys() == slow.__dict__.keys()


def test_cyclic_scale_fn_that_raises_leaves_the_state_of_the_python_rule():
    def make(cls):
        def scale(x):
            if x == 4:
                raise ArithmeticError("no cycle 4")
            return 1.0

        opt = make_opt("sgd")
        return opt, cls(opt, 0.01, 0.1, step_size_up=1, scale_fn=scale)

    runs = [make(S.CyclicLR), make(python_only(S.CyclicLR))]
    for opt, s in runs:
        opt.step()
        for _ in range(5):
            s.step()
        with pytest.raises(ArithmeticError, match="no cycle 4"):
            s.step()
    (fo, fs), (so, ss) = runs
    assert settings(fo) == settings(so) and fs.state_dict() == ss.state_dict()
    assert fs._get_lr_called_within_step is False


def test_cyclic_scale_that_is_not_a_float_is_applied_by_the_python_rule():
    kw = dict(base_lr=0.01, max_lr=0.1, step_size_up=3,
              scale_fn=lambda x: np.float64(0.9) ** x, scale_mode="iterations")
    fast_opt, slow_opt = make_opt("adam"), make_opt("adam")
    fast, slow = S.CyclicLR(fast_opt, **kw), python_only(S.CyclicLR)(slow_opt, **kw)
    for i in range(10):
        fast_opt.step()
        slow_opt.step()
        if i == 0:
            fast.step()
        else:
            assert _cyclic_lr_step(fast)      # the scale came from C's call; _scaled wrote it
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())
    assert type(fast_opt.param_groups[0]["lr"]) is np.float64
    assert type(fast_opt.param_groups[0]["betas"][0]) is np.float64


def test_overriding_the_cyclic_rules_leaves_the_c_step():
    class Flat(S.CyclicLR):
        def scale_fn(self, x):
            return 0.5

    class Warm(S.CosineAnnealingWarmRestarts):
        def _step_rule(self, epoch=None):
            super()._step_rule(epoch)

    assert S.CyclicLR._fast_step and S.CosineAnnealingWarmRestarts._fast_step
    assert not Flat._fast_step and not Warm._fast_step
    opt = make_opt("sgd")
    s = Flat(opt, 0.01, 0.1, step_size_up=2)
    opt.step()
    s.step()
    assert _cyclic_lr_step(s) is False
    s.step()
    assert opt.param_groups[0]["lr"] == 0.01 + (0.1 - 0.01) * 1.0 * 0.5   # x = 1 at step 2
    w = Warm(make_opt("sgd"), 5)
    assert _warm_restarts_lr_step(w) is False


def test_float_lrs_and_the_schedulers_that_read_the_lrs():
    opt = make_opt("sgd", (0.1, 0.2, 0.3))
    last = _float_lrs(opt.param_groups)
    assert last == [0.1, 0.2, 0.3] and last is not _float_lrs(opt.param_groups)
    opt.param_groups[1]["lr"] = fastoptim.tensor(0.2, dtype=fastoptim.float64)
    assert _float_lrs(opt.param_groups) is None
    assert _float_lrs([{"lr": 1}]) is None and _float_lrs([{}]) is None
    assert _float_lrs([[("lr", 0.1)]]) is None and _float_lrs([]) == []
    # ReduceLROnPlateau's _last_lr: the floats, and clones of a Tensor lr
    s = S.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    for metric in (1.0, 2.0, 3.0):
        s.step(metric)
    lrs = s.get_last_lr()
    assert isinstance(lrs[1], fastoptim.Tensor) and lrs[1] is not opt.param_groups[1]["lr"]
    assert [float(v) for v in lrs] == [0.025, 0.05, 0.075]
    opt = make_opt("sgd", (0.1, 0.2))
    s = S.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for metric in (1.0, 2.0, 3.0):
        s.step(metric)
    assert typed(s.get_last_lr()) == typed([0.05, 0.1])
    chained = S.ChainedScheduler([S.StepLR(opt, 1, 0.5), S.ExponentialLR(opt, 0.5)])
    opt.step()
    chained.step()
    assert typed(chained.get_last_lr()) == typed([0.05 * 0.25, 0.1 * 0.25])


# OneCycleLR's C step keeps what it read from each group while the group dict is unchanged
# (its version tag): every edit of a key the rule reads must still be seen at the next step.
ONE_CYCLE_EDITS = [  # (optimizer kind, key edited, step of the edit, three_phase)
    ("sgd", "initial_lr", 5, False), ("sgd", "max_lr", 5, False), ("sgd", "max_lr", 30, False),
    ("sgd", "min_lr", 30, False), ("sgd", "max_momentum", 5, False),
    ("sgd", "max_momentum", 30, False), ("sgd", "base_momentum", 5, False),
    ("sgd", "base_momentum", 30, False), ("adam", "max_lr", 5, False),
    ("adam", "base_momentum", 30, False), ("adam", "betas", 7, False),
    ("sgd", "momentum", 7, False), ("sgd", "lr", 7, False), ("sgd", "initial_lr", 25, True),
    ("adagrad", "min_lr", 30, False),
]


def _edit(opt, key, step):
    g = opt.param_groups[1]
    if key == "betas":
        g["betas"] = (g["betas"][0], 0.95)
    elif key in ("momentum", "lr"):
        g[key] = 0.123     # overwritten by the step: the rule never reads it back
    else:
        g[key] = g[key] * 1.5 + 0.01 * step


@pytest.mark.parametrize("kind,key,at,three", ONE_CYCLE_EDITS)
def test_one_cycle_sees_every_edit_of_a_read_key(kind, key, at, three):
    kw = dict(max_lr=[0.1, 1.0], total_steps=40, three_phase=three,
              cycle_momentum=kind != "adagrad")
    fast_opt, slow_opt = make_opt(kind), make_opt(kind)
    fast, slow = S.OneCycleLR(fast_opt, **kw), python_only(S.OneCycleLR)(slow_opt, **kw)
    for i in range(40):
        if i in (at, at + 3):
            _edit(fast_opt, key, i)
            _edit(slow_opt, key, i)
        fast_opt.step()
        slow_opt.step()
        if i == 0:
            fast.step()
        else:
            assert _one_cycle_lr_step(fast), f"the C step declined at step {i}"
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())


def test_one_cycle_sees_a_replaced_group_dict_and_a_second_scheduler():
    opts = [make_opt("sgd") for _ in range(4)]
    fast = [S.OneCycleLR(opts[0], 0.1, total_steps=30), S.OneCycleLR(opts[1], 0.4, total_steps=30)]
    slow = [python_only(S.OneCycleLR)(opts[2], 0.1, total_steps=30),
            python_only(S.OneCycleLR)(opts[3], 0.4, total_steps=30)]
    for i in range(30):
        if i == 10:     # a new dict in the same place, with one value changed
            for o in (opts[0], opts[2]):
                o.param_groups[0] = dict(o.param_groups[0], max_lr=0.3)
        for o in opts:
            o.step()
        for f, s in zip(fast, slow):    # two schedulers in turn share the C step's record
            f.step()
            s.step()
        for a, b in ((0, 2), (1, 3)):
            assert settings(opts[a]) == settings(opts[b]), f"step {i}"


def test_one_cycle_edits_match_torch():
    torch = pytest.importorskip("torch")
    groups = []
    for lib in (fastoptim, torch):
        ps = [{"params": [lib.tensor(np.ones(2), dtype=lib.float64, requires_grad=True)],
               "lr": lr} for lr in (0.05, 0.5)]
        o = lib.optim.SGD(ps, lr=0.05, momentum=0.9)
        groups.append((o, lib.optim.lr_scheduler.OneCycleLR(o, [0.1, 1.0], total_steps=40)))
    for i in range(40):
        for o, s in groups:
            if i in (5, 25):
                for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
                    o.param_groups[1][key] = o.param_groups[1][key] * 1.25
            o.step()
            s.step()
        mine, theirs = (o.param_groups for o, _ in groups)
        for a, b in zip(mine, theirs):
            assert {k: v for k, v in a.items() if k != "params"} == {
                k: v for k, v in b.items() if k != "params"}, f"step {i}"


BETA_SCHEDULERS = {
    "CyclicLR": (S.CyclicLR, dict(base_lr=0.001, max_lr=0.05, step_size_up=6), _cyclic_lr_step),
    "CyclicLR-scalefn": (S.CyclicLR, dict(base_lr=0.001, max_lr=0.05, step_size_up=6,
                                          scale_fn=lambda x: 0.9 ** x), _cyclic_lr_step),
    "OneCycleLR": (S.OneCycleLR, dict(max_lr=0.1, total_steps=40), _one_cycle_lr_step),
}


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99, "extra", 7), (0.85,), ()])
@pytest.mark.parametrize("name", BETA_SCHEDULERS)
def test_c_step_writes_betas0_and_keeps_the_rest(name, betas):
    # betas of any length (and betas[1:] of any type) keep betas[1:], the objects themselves,
    # behind the new beta1, as the Python rule's (m, *betas[1:]) does
    cls, kw, c_step = BETA_SCHEDULERS[name]
    fast_opt, slow_opt = make_opt("adam", MANY[:5]), make_opt("adam", MANY[:5])
    fast, slow = cls(fast_opt, **kw), python_only(cls)(slow_opt, **kw)
    for o in (fast_opt, slow_opt):
        o.step()
    fast.step()
    slow.step()
    for o in (fast_opt, slow_opt):
        for g in o.param_groups:
            g["betas"] = betas
    for i in range(30):
        assert c_step(fast), f"the C step declined at step {i}"
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        for a, b in zip(fast_opt.param_groups, slow_opt.param_groups):
            assert type(a["betas"]) is tuple and len(a["betas"]) == max(1, len(betas))
            assert all(x is y for x, y in zip(a["betas"][1:], b["betas"][1:]))
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())


@pytest.mark.parametrize("name", BETA_SCHEDULERS)
def test_c_step_declines_for_a_betas_list_and_the_python_rule_writes_a_tuple(name):
    # (any sequence is the Python rule's: (m, *betas[1:]) is a tuple, as torch's)
    cls, kw, c_step = BETA_SCHEDULERS[name]
    fast_opt, slow_opt = make_opt("adam", MANY[:3]), make_opt("adam", MANY[:3])
    fast, slow = cls(fast_opt, **kw), python_only(cls)(slow_opt, **kw)
    for _ in range(6):
        for o in (fast_opt, slow_opt):
            o.step()
        fast.step()
        slow.step()
    for o in (fast_opt, slow_opt):
        o.param_groups[2]["betas"] = [0.7, 0.9]
    before = settings(fast_opt), fast.state_dict()
    if name == "CyclicLR-scalefn":
        # the scale function runs first (as the rule calls it); the rest is the Python rule's
        assert c_step(fast)
    else:
        assert not c_step(fast)
        assert (settings(fast_opt), fast.state_dict()) == before    # declined: nothing changed
        fast.step()
    slow.step()
    assert settings(fast_opt) == settings(slow_opt)
    for i in range(5):
        for o in (fast_opt, slow_opt):
            o.step()
        fast.step()
        slow.step()
        assert settings(fast_opt) == settings(slow_opt), f"step {i}"
        assert type(fast_opt.param_groups[2]["betas"]) is tuple
        assert typed(fast.get_last_lr()) == typed(slow.get_last_lr())


RECORDED = {   # C steps that read the lrs through the module's record of the groups
    "StepLR": (S.StepLR, dict(step_size=3, gamma=0.5)),
    "ExponentialLR": (S.ExponentialLR, dict(gamma=0.9)),
    "CosineAnnealingLR": (S.CosineAnnealingLR, dict(T_max=7)),
    "CosineAnnealingWarmRestarts": (S.CosineAnnealingWarmRestarts, dict(T_0=5)),
    "SWALR": (SWALR, dict(swa_lr=0.02, anneal_epochs=9)),
    "ReduceLROnPlateau": (S.ReduceLROnPlateau, dict(patience=1, factor=0.5)),
    "CyclicLR": (S.CyclicLR, dict(base_lr=0.001, max_lr=0.1, step_size_up=5,
                                  cycle_momentum=False)),
}


def _step(sched):
    if isinstance(sched, S.ReduceLROnPlateau):
        sched.step(1.0)
    else:
        sched.step()


@pytest.mark.parametrize("name", RECORDED)
def test_every_edit_of_the_groups_between_steps_is_seen(name):
    # the C steps' record of each group's lr stands in for a lookup only while the group dict
    # is unchanged: every kind of edit between steps is seen, also with two optimizers
    # stepping in turn (one record for both) and with a group listed twice
    cls, kw = RECORDED[name]
    opts = [make_opt("sgd", lrs) for lrs in (MANY[:5], MANY[3:9], MANY[:5], MANY[3:9])]
    scheds = [cls(o, **kw) for o in opts[:2]] + [python_only(cls)(o, **kw) for o in opts[2:]]
    for i in range(24):
        for k in (0, 1):        # the same edit on the C-stepped and the Python-stepped side
            for o in (opts[k], opts[k + 2]):
                g = o.param_groups
                if i == 4:
                    g[1]["lr"] = g[1]["lr"] * 1.5
                elif i == 7:
                    g[2] = dict(g[2], lr=0.0625)
                elif i == 10:
                    g[0], g[3] = g[3], g[0]
                elif i == 13:
                    g[4]["lr"] = 0.25
                    del g[4]["lr"]
                    g[4]["lr"] = 0.375
                elif i == 16:
                    g[1] = g[2]                 # one dict twice
        for o, s in zip(opts, scheds):
            o.step()
            _step(s)
        for k in (0, 1):
            assert settings(opts[k]) == settings(opts[k + 2]), f"step {i}"
            assert typed(scheds[k].get_last_lr()) == typed(scheds[k + 2].get_last_lr()), i
