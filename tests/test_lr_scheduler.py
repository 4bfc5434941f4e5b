"""StepLR / ExponentialLR against torch 2.13: lr sequences, warnings, state dicts, chaining.

Why: training scripts read ``get_last_lr()``, filter the call-order warnings by text, and
checkpoint scheduler state; all of it must carry over from torch unchanged.
"""

import gc
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim import optim
from fastoptim.optim.lr_scheduler import EPOCH_DEPRECATION_WARNING, ExponentialLR, StepLR

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the oracle) is not installed")


def make_opt(lrs=(0.05, 0.5)):
    groups = [
        {"params": [fastoptim.tensor(np.ones(2, np.float32), requires_grad=True)], "lr": lr}
        for lr in lrs
    ]
    return optim.SGD(groups, lr=lrs[0])


def lrs_over(opt, scheds, epochs):
    out = []
    for _ in range(epochs):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        for s in scheds:
            s.step()
    return out


def test_step_lr_sequence_and_attributes():
    opt = make_opt((1.0,))
    s = StepLR(opt, 2, 0.5)
    assert opt.param_groups[0]["initial_lr"] == 1.0
    assert s.last_epoch == 0 and s._step_count == 1 and s.base_lrs == [1.0]
    seen = [s.get_last_lr()[0]]
    for _ in range(6):
        opt.step()
        s.step()
        seen.append(s.get_last_lr()[0])
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_step_lr_upstream_targets():
    opt = make_opt()
    s = StepLR(opt, gamma=0.1, step_size=3)
    targets = [0.05] * 3 + [0.005] * 3 + [0.0005] * 3 + [0.00005] * 3
    got = np.array(lrs_over(opt, [s], 12))
    np.testing.assert_allclose(got[:, 0], targets, atol=1e-5)
    np.testing.assert_allclose(got[:, 1], np.array(targets) * 10, atol=1e-5)


def test_chaining_step_and_exponential():
    opt = make_opt((1.0,))
    scheds = [StepLR(opt, 2, 0.5), ExponentialLR(opt, 0.9)]
    got = []
    for _ in range(5):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        for s in scheds:
            s.step()
    np.testing.assert_allclose(got[1:], [0.9, 0.405, 0.3645, 0.16403, 0.14762][:4], atol=1e-5)
    np.testing.assert_allclose(scheds[1].get_last_lr(), [0.14762], atol=1e-5)


@needs_torch
@pytest.mark.parametrize(
    "make",
    [
        lambda lib, o: [lib.optim.lr_scheduler.StepLR(o, 3, 0.1)],
        lambda lib, o: [lib.optim.lr_scheduler.ExponentialLR(o, 0.9)],
        lambda lib, o: [
            lib.optim.lr_scheduler.StepLR(o, 2, 0.5),
            lib.optim.lr_scheduler.ExponentialLR(o, 0.9),
        ],
    ],
)
def test_sequences_match_torch(make):
    fo_opt = make_opt()
    t_p = [torch.ones(2, requires_grad=True) for _ in range(2)]
    t_opt = torch.optim.SGD([{"params": [t_p[0]], "lr": 0.05}, {"params": [t_p[1]], "lr": 0.5}])
    fo_s, t_s = make(fastoptim, fo_opt), make(torch, t_opt)
    assert lrs_over(fo_opt, fo_s, 12) == lrs_over(t_opt, t_s, 12)
    assert fo_s[-1].get_last_lr() == t_s[-1].get_last_lr()
    assert list(fo_s[0].state_dict()) == list(t_s[0].state_dict())
    assert fo_s[0].state_dict() == t_s[0].state_dict()


def test_warning_when_scheduler_steps_first():
    opt = make_opt()
    s = StepLR(opt, 3)
    with pytest.warns(UserWarning) as rec:
        s.step()
    msgs = [str(w.message) for w in rec]
    assert any(
        m.startswith("Detected call of `lr_scheduler.step()` before `optimizer.step()`. ")
        and "`lr_scheduler.step()`.  Failure to do this" in m
        and m.endswith("how-to-adjust-learning-rate")
        for m in msgs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.step()  # only once


def test_no_warning_in_the_right_order():
    opt = make_opt()
    s = StepLR(opt, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        s.step()


def test_warning_when_optimizer_step_overridden():
    opt = make_opt()
    s = StepLR(opt, 3)
    opt.step = lambda *a, **k: None
    with pytest.warns(UserWarning, match=r"`optimizer.step\(\)` has been overridden"):
        s.step()


def test_epoch_argument_warns_and_uses_closed_form():
    opt = make_opt((1.0,))
    s = StepLR(opt, 2, 0.5)
    opt.step()
    for _ in range(3):
        with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)`"):
            s.step(2)
        assert s.get_last_lr() == [0.5]
    assert EPOCH_DEPRECATION_WARNING.endswith("issues/new/choose.")


def test_get_lr_outside_step_warns():
    s = StepLR(make_opt(), 3)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        s.get_lr()


def test_state_dict_round_trip():
    opt = make_opt()
    s = StepLR(opt, gamma=0.1, step_size=3)
    lrs_over(opt, [s], 10)
    opt2 = make_opt()
    s2 = StepLR(opt2, gamma=0.005, step_size=1)
    lr_before = [g["lr"] for g in opt2.param_groups]
    s2.load_state_dict(s.state_dict())
    for k, v in s.__dict__.items():
        if k != "optimizer":
            assert s2.__dict__[k] == v, k
    assert s2.get_last_lr() == s.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == lr_before  # the optimizer is not touched
    assert set(s.state_dict()) == {
        "step_size", "gamma", "base_lrs", "last_epoch", "_step_count", "_is_initial",
        "_get_lr_called_within_step", "_last_lr",
    }  # fmt: skip


def test_construction_errors():
    with pytest.raises(TypeError, match="^str is not an Optimizer$"):
        StepLR("opt", 3)
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\] "
                       "when resuming scheduler with last_epoch >= 0"):  # fmt: skip
        StepLR(make_opt(), 3, last_epoch=4)


def test_no_reference_cycles():
    opt = make_opt()
    s = StepLR(opt, 3)
    del s
    gc.collect()
    assert [r for r in gc.get_referrers(opt) if isinstance(r, StepLR)] == []

    def make_and_drop():
        o = make_opt()
        sched = StepLR(o, 3)
        return o, __import__("weakref").ref(sched)

    gc.disable()
    try:
        _, ref = make_and_drop()
        assert ref() is None  # freed by refcounting alone
    finally:
        gc.enable()


def test_optimizer_step_still_works_through_the_tracking_wrapper():
    opt = make_opt((0.5,))
    p = opt.param_groups[0]["params"][0]
    StepLR(opt, 3)
    p.grad = fastoptim.tensor(np.ones(2, np.float32))
    assert opt.step(lambda: 3.0) == 3.0
    np.testing.assert_allclose(np.asarray(p.detach().numpy()), [0.5, 0.5])
    assert opt._opt_called is True
