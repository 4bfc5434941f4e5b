"""Every scheduler's state dict goes through ``fastoptim.save`` / ``fastoptim.load`` and resumes.

Why: the README's checkpoint recipe saves ``scheduler.state_dict()`` with ``fastoptim.save``,
which stores only data (no pickle).  A scheduler whose state holds a type the format lacks
(MultiStepLR keeps its milestones in a ``collections.Counter``, as torch does) broke the recipe;
this table holds one configuration of every scheduler class, so a class added later without a
row fails ``test_every_scheduler_class_has_a_row``.

Each test runs half a schedule, saves the optimizer's and the scheduler's state dicts to a file,
builds a fresh optimizer and scheduler, loads the file into them and runs the rest: the lrs (and
momenta) equal an uninterrupted run exactly, and the loaded state dict equals the saved one,
types included (a Counter comes back a Counter).  No torch needed.
"""

import collections
import inspect
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim.optim import lr_scheduler as S
from fastoptim.optim import swa_utils


def make_opt(kind):
    groups = [{"params": [fastoptim.tensor(np.ones(3), dtype=fastoptim.float64,
                                           requires_grad=True)], "lr": lr} for lr in (0.05, 0.5)]
    if kind == "adam":
        return fastoptim.optim.Adam(groups, lr=0.05)
    return fastoptim.optim.SGD(groups, lr=0.05, momentum=0.9)


class Scale:
    """A callable object: LambdaLR's state dict keeps its ``__dict__``."""

    def __init__(self, gamma):
        self.gamma = gamma

    def __call__(self, epoch):
        return self.gamma**epoch


def _seq(o):
    return S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=7), S.MultiStepLR(o, [20, 30], 0.5),
                              S.ExponentialLR(o, 0.97)], milestones=[7, 60])


def _chain(o):
    return S.ChainedScheduler([S.ConstantLR(o, 0.5, total_iters=9), S.ExponentialLR(o, 0.99),
                               S.MultiStepLR(o, [30, 80, 80], 0.3)])


# name -> (factory(optimizer), optimizer kind); 120 steps each, saved at 50
CASES = {
    "LambdaLR": (lambda o: S.LambdaLR(o, [lambda e: 0.97**e, Scale(0.95)]), "sgd"),
    "MultiplicativeLR": (lambda o: S.MultiplicativeLR(o, Scale(0.99)), "adam"),
    "StepLR": (lambda o: S.StepLR(o, 7, 0.5), "sgd"),
    "MultiStepLR": (lambda o: S.MultiStepLR(o, [10, 50, 50, 70], 0.3), "sgd"),
    "ConstantLR": (lambda o: S.ConstantLR(o, 0.25, total_iters=77), "adam"),
    "LinearLR": (lambda o: S.LinearLR(o, 1.0, 0.05, total_iters=90), "sgd"),
    "ExponentialLR": (lambda o: S.ExponentialLR(o, 0.97), "sgd"),
    "PolynomialLR": (lambda o: S.PolynomialLR(o, total_iters=100, power=2.0), "adam"),
    "CosineAnnealingLR": (lambda o: S.CosineAnnealingLR(o, 17, eta_min=0.001), "sgd"),
    "SequentialLR": (_seq, "sgd"),
    "ChainedScheduler": (_chain, "adam"),
    "ReduceLROnPlateau": (lambda o: S.ReduceLROnPlateau(o, patience=2, factor=0.5,
                                                         min_lr=[0.001, 0.01]), "sgd"),
    "CyclicLR": (lambda o: S.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=15, step_size_down=25,
                                      mode="triangular2"), "sgd"),
    "CyclicLR-exp-adam": (lambda o: S.CyclicLR(o, 0.01, 0.2, step_size_up=10, mode="exp_range",
                                               gamma=0.99), "adam"),
    "OneCycleLR": (lambda o: S.OneCycleLR(o, [0.1, 1.0], total_steps=120), "sgd"),
    "OneCycleLR-3phase-adam": (lambda o: S.OneCycleLR(o, 0.5, total_steps=120,
                                                      anneal_strategy="linear",
                                                      three_phase=True), "adam"),
    "CosineAnnealingWarmRestarts": (lambda o: S.CosineAnnealingWarmRestarts(o, 5, T_mult=2),
                                    "sgd"),
    "SWALR": (lambda o: swa_utils.SWALR(o, swa_lr=[0.02, 0.2], anneal_epochs=40,
                                        anneal_strategy="linear"), "adam"),
}
STEPS, SAVE_AT = 120, 50


def _metric(i):
    return 1.0 / (1 + i % 17)   # ReduceLROnPlateau: plateaus, so its lr does move


def _step(sched, i):
    if isinstance(sched, S.ReduceLROnPlateau):
        sched.step(_metric(i))
    else:
        sched.step()


def _settings(opt):
    return [(g["lr"], g.get("momentum"), g.get("betas")) for g in opt.param_groups]


def _run(opt, sched, start, stop):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(start, stop):
            opt.step()
            _step(sched, i)
            out.append(_settings(opt))
    return out


def assert_same_state(got, want, where="state"):
    """Equal values and exact types all the way down."""
    assert type(got) is type(want), f"{where}: {type(got)} != {type(want)}"
    if isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            assert_same_state(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same_state(a, b, f"{where}[{i}]")
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got), where
    else:
        assert got == want, where


def test_every_scheduler_class_has_a_row():
    classes = {n for n in S.__all__ if n != "LRScheduler"} | {"SWALR"}
    covered = {name.split("-")[0] for name in CASES}
    assert classes == covered
    for name in S.__all__:
        assert inspect.isclass(getattr(S, name))


@pytest.mark.parametrize("name", CASES)
def test_state_dict_saves_loads_and_resumes(name, tmp_path):
    make, kind = CASES[name]
    opt, sched = make_opt(kind), None
    sched = make(opt)
    full = _run(opt, sched, 0, STEPS)

    opt1 = make_opt(kind)
    s1 = make(opt1)
    _run(opt1, s1, 0, SAVE_AT)
    saved = s1.state_dict()
    fastoptim.save({"epoch": SAVE_AT, "optimizer": opt1.state_dict(), "scheduler": saved},
                   tmp_path / "checkpoint.fo")

    ckpt = fastoptim.load(tmp_path / "checkpoint.fo")
    assert_same_state(ckpt["scheduler"], saved)
    opt2 = make_opt(kind)
    s2 = make(opt2)
    opt2.load_state_dict(ckpt["optimizer"])   # after the scheduler is built, as torch says
    s2.load_state_dict(ckpt["scheduler"])
    rest = _run(opt2, s2, ckpt["epoch"], STEPS)
    assert rest == full[SAVE_AT:]
    assert len(set(map(tuple, full))) >= 2    # the schedule does move


def test_multisteplr_milestones_come_back_a_counter(tmp_path):
    # The README's recipe with MultiStepLR (its state dict holds milestones: Counter).
    opt = make_opt("sgd")
    sched = S.MultiStepLR(opt, [3, 3, 8])
    fastoptim.save({"scheduler": sched.state_dict()}, tmp_path / "c.fo")
    milestones = fastoptim.load(tmp_path / "c.fo")["scheduler"]["milestones"]
    assert type(milestones) is collections.Counter
    assert milestones == collections.Counter({3: 2, 8: 1})
