"""Every scheduler of torch.optim.lr_scheduler 2.13 (and swa_utils.SWALR) against torch itself.

Why: a schedule is a sequence of numbers that training recipes are tuned on; it must be torch's
to the last bit (float64, rtol 1e-12), in the chainable form and in the closed form
(``step(epoch)``), through a resume from a state dict, and across libraries (our state dict
loads into torch's scheduler and back).

One table (``CASES``) drives every test: a case builds the same scheduler on a fastoptim and on
a torch optimizer with two param groups of different lrs, and says how many steps to run,
whether a closed form exists and which momentum key the optimizer has.
"""

import copy
import warnings

import numpy as np
import pytest

import fastoptim

torch = pytest.importorskip("torch")

LRS = (0.05, 0.5)


class Scale:
    """A callable object: torch keeps its ``__dict__`` in LambdaLR's state dict."""

    def __init__(self, gamma):
        self.gamma = gamma

    def __call__(self, epoch):
        return self.gamma**epoch


def make_opts(kind="sgd", lrs=LRS):
    """The same two-group optimizer in fastoptim and in torch (float64 params)."""
    pairs = []
    for lib in (fastoptim, torch):
        groups = [
            {"params": [lib.tensor(np.ones(3), dtype=lib.float64, requires_grad=True)], "lr": lr}
            for lr in lrs
        ]
        if kind == "sgd":
            pairs.append(lib.optim.SGD(groups, lr=lrs[0], momentum=0.9))
        elif kind == "adam":
            pairs.append(lib.optim.Adam(groups, lr=lrs[0]))
        elif kind == "rmsprop":
            pairs.append(lib.optim.RMSprop(groups, lr=lrs[0], momentum=0.5))
        else:
            pairs.append(lib.optim.Adagrad(groups, lr=lrs[0]))
    return pairs


def S(lib):
    return lib.optim.lr_scheduler


def _seq(lib, o):
    s = S(lib)
    return s.SequentialLR(
        o, [s.LinearLR(o, 0.1, total_iters=7), s.CosineAnnealingLR(o, T_max=40),
            s.ExponentialLR(o, 0.97)], milestones=[7, 60])


def _chain(lib, o):
    s = S(lib)
    return s.ChainedScheduler([s.ConstantLR(o, 0.5, total_iters=9), s.ExponentialLR(o, 0.99),
                               s.MultiStepLR(o, [30, 80], 0.3)])


def _swalr(lib, o, **kw):
    swa = fastoptim.optim.swa_utils if lib is fastoptim else torch.optim.swa_utils
    return swa.SWALR(o, **kw)


# name -> (factory(lib, optimizer), steps, has closed form, optimizer kind)
CASES = {
    "LambdaLR": (lambda lib, o: S(lib).LambdaLR(o, lambda e: 0.97**e), 200, False, "sgd"),
    "LambdaLR-list": (lambda lib, o: S(lib).LambdaLR(
        o, [lambda e: 1 / (e + 1), Scale(0.95)]), 200, False, "adam"),
    "MultiplicativeLR": (lambda lib, o: S(lib).MultiplicativeLR(o, lambda e: 0.98), 200, False,
                         "sgd"),
    "MultiplicativeLR-obj": (lambda lib, o: S(lib).MultiplicativeLR(o, Scale(0.999)), 200,
                             False, "adam"),
    "StepLR": (lambda lib, o: S(lib).StepLR(o, 7, 0.5), 200, True, "sgd"),
    "StepLR-gamma2": (lambda lib, o: S(lib).StepLR(o, 30, 2.0), 200, True, "rmsprop"),
    "MultiStepLR": (lambda lib, o: S(lib).MultiStepLR(o, [10, 50, 50, 120], 0.3), 200, True,
                    "sgd"),
    "ConstantLR": (lambda lib, o: S(lib).ConstantLR(o), 200, True, "sgd"),
    "ConstantLR-long": (lambda lib, o: S(lib).ConstantLR(o, 0.25, total_iters=77), 200, True,
                        "adagrad"),
    "LinearLR": (lambda lib, o: S(lib).LinearLR(o), 200, True, "sgd"),
    "LinearLR-down": (lambda lib, o: S(lib).LinearLR(o, 1.0, 0.05, total_iters=150), 200, True,
                      "adam"),
    "ExponentialLR": (lambda lib, o: S(lib).ExponentialLR(o, 0.97), 200, True, "sgd"),
    "PolynomialLR": (lambda lib, o: S(lib).PolynomialLR(o, total_iters=150, power=2.0), 200,
                     True, "sgd"),
    "PolynomialLR-frac": (lambda lib, o: S(lib).PolynomialLR(o, total_iters=33, power=0.7),
                          200, True, "adam"),
    "CosineAnnealingLR": (lambda lib, o: S(lib).CosineAnnealingLR(o, T_max=50), 200, True,
                          "sgd"),
    "CosineAnnealingLR-eta": (lambda lib, o: S(lib).CosineAnnealingLR(o, 17, eta_min=0.001),
                              200, True, "adam"),
    "SequentialLR": (_seq, 200, False, "sgd"),
    "ChainedScheduler": (_chain, 200, False, "adam"),
    "CyclicLR": (lambda lib, o: S(lib).CyclicLR(o, 0.001, [0.1, 1.0], step_size_up=20), 200,
                 False, "sgd"),
    "CyclicLR-tri2": (lambda lib, o: S(lib).CyclicLR(
        o, [0.01, 0.02], 0.3, step_size_up=15, step_size_down=25, mode="triangular2"), 200,
        False, "adam"),
    "CyclicLR-exp": (lambda lib, o: S(lib).CyclicLR(
        o, 0.01, 0.2, step_size_up=10, mode="exp_range", gamma=0.99, base_momentum=0.7,
        max_momentum=[0.95, 0.9]), 200, False, "sgd"),
    "CyclicLR-scalefn": (lambda lib, o: S(lib).CyclicLR(
        o, 0.01, 0.2, step_size_up=12, scale_fn=lambda x: 0.5 ** x, scale_mode="iterations",
        cycle_momentum=False), 200, False, "adagrad"),
    "OneCycleLR": (lambda lib, o: S(lib).OneCycleLR(o, [0.1, 1.0], total_steps=200), 200, False,
                   "sgd"),
    "OneCycleLR-3phase-linear": (lambda lib, o: S(lib).OneCycleLR(
        o, 0.5, epochs=10, steps_per_epoch=21, pct_start=0.25, anneal_strategy="linear",
        three_phase=True), 210, False, "adam"),
    "OneCycleLR-nomomentum": (lambda lib, o: S(lib).OneCycleLR(
        o, 0.3, total_steps=250, cycle_momentum=False, div_factor=10.0,
        final_div_factor=100.0), 250, False, "adagrad"),
    "CosineAnnealingWarmRestarts": (lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, 10),
                                    200, False, "sgd"),
    "CosineAnnealingWarmRestarts-mult": (lambda lib, o: S(lib).CosineAnnealingWarmRestarts(
        o, 5, T_mult=2, eta_min=0.01), 200, False, "adam"),
    "SWALR-cos": (lambda lib, o: _swalr(lib, o, swa_lr=0.01, anneal_epochs=15), 200, False,
                  "sgd"),
    "SWALR-linear": (lambda lib, o: _swalr(lib, o, swa_lr=[0.02, 0.2], anneal_epochs=40,
                                           anneal_strategy="linear"), 200, False, "adam"),
    "SWALR-zero": (lambda lib, o: _swalr(lib, o, swa_lr=0.03, anneal_epochs=0), 200, False,
                   "sgd"),
}

PLATEAU = {
    "min-rel": dict(patience=3, factor=0.5),
    "max-abs": dict(mode="max", threshold_mode="abs", threshold=0.05, patience=2, cooldown=3,
                    min_lr=[0.001, 0.01]),
    "min-abs-eps": dict(threshold_mode="abs", factor=0.3, patience=0, eps=1e-3, min_lr=0.004),
    "max-rel-cooldown": dict(mode="max", patience=1, cooldown=2, factor=0.7),
}


def metrics(n):
    rng = np.random.default_rng(0)
    return [float(v) for v in 1 / np.arange(1, n + 1) ** 0.3 + 0.2 * rng.random(n)]


def snapshot(opt):
    """Every non-param entry of every group (lr, momentum/betas, initial_lr, ...)."""
    return [{k: (float(v) if hasattr(v, "item") else v) for k, v in g.items() if k != "params"}
            for g in opt.param_groups]


def assert_same(a, b):
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        assert ga.keys() == gb.keys()
        for k in ga:
            np.testing.assert_allclose(np.asarray(ga[k], float), np.asarray(gb[k], float),
                                       rtol=1e-12, atol=0, err_msg=k)


def run(opt, sched, steps, epochs=False):
    out = [snapshot(opt)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            opt.step()
            if epochs:
                sched.step(i + 1)
            else:
                sched.step()
            out.append(snapshot(opt))
    return out


def build(name):
    make, steps, closed, kind = CASES[name]
    fo_opt, t_opt = make_opts(kind)
    return fo_opt, make(fastoptim, fo_opt), t_opt, make(torch, t_opt), steps, closed


@pytest.mark.parametrize("name", CASES)
def test_chainable_sequence_equals_torch(name):
    fo_opt, fo_s, t_opt, t_s, steps, _ = build(name)
    fo_seq, t_seq = run(fo_opt, fo_s, steps), run(t_opt, t_s, steps)
    for a, b in zip(fo_seq, t_seq):
        assert_same(a, b)
    np.testing.assert_allclose(fo_s.get_last_lr(), t_s.get_last_lr(), rtol=1e-12, atol=0)
    if name != "SWALR-zero":  # (which is at swa_lr from the start)
        assert len({tuple(g["lr"] for g in s) for s in fo_seq}) >= 2  # the schedule does move


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2]])
def test_closed_form_sequence_equals_torch(name):
    fo_opt, fo_s, t_opt, t_s, steps, _ = build(name)
    fo_seq, t_seq = run(fo_opt, fo_s, steps, epochs=True), run(t_opt, t_s, steps, epochs=True)
    for a, b in zip(fo_seq, t_seq):
        assert_same(a, b)


@pytest.mark.parametrize("T_mult", [1, 3])
def test_warm_restarts_fractional_epochs_equal_torch(T_mult):
    fo_opt, t_opt = make_opts("sgd")
    scheds = [S(lib).CosineAnnealingWarmRestarts(o, 4, T_mult=T_mult, eta_min=0.002)
              for lib, o in ((fastoptim, fo_opt), (torch, t_opt))]
    epochs = [0.25 * k for k in range(240)] + [3.0, 100.5, 7.75]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in epochs:
            for s in scheds:
                s.step(e)
            assert_same(snapshot(fo_opt), snapshot(t_opt))


def _torch_twin(name, fo_opt):
    # A torch scheduler in the same configuration, on a torch optimizer whose groups hold
    # fo_opt's current settings.
    make, _, _, kind = CASES[name]
    _, t_opt = make_opts(kind)
    t_s = make(torch, t_opt)
    for tg, fg in zip(t_opt.param_groups, fo_opt.param_groups):
        tg.update({k: v for k, v in fg.items() if k != "params"})
    return t_opt, t_s


@pytest.mark.parametrize("name", CASES)
def test_resume_from_state_dict_equals_uninterrupted(name):
    fo_opt, fo_s, _, _, steps, _ = build(name)
    full = run(fo_opt, fo_s, steps)
    half = steps // 2
    opt1, s1, *_ = build(name)
    run(opt1, s1, half)
    sd, opt_sd = copy.deepcopy(s1.state_dict()), copy.deepcopy(opt1.state_dict())
    opt2, s2, *_ = build(name)
    opt2.load_state_dict(opt_sd)  # after the scheduler is built, as torch recommends
    s2.load_state_dict(sd)
    rest = run(opt2, s2, steps - half)
    for a, b in zip(full[half:], rest):
        assert_same(a, b)


@pytest.mark.parametrize("name", CASES)
def test_state_dict_layout_and_cross_loading(name):
    fo_opt, fo_s, t_opt, t_s, steps, _ = build(name)
    half = steps // 2
    run(fo_opt, fo_s, half)
    run(t_opt, t_s, half)
    fo_sd, t_sd = fo_s.state_dict(), t_s.state_dict()
    assert list(fo_sd) == list(t_sd)
    # ours -> torch: torch continues where we stopped, and produces our continuation
    t_opt2, t_s2 = _torch_twin(name, fo_opt)
    t_s2.load_state_dict(copy.deepcopy(fo_sd))
    ours = run(fo_opt, fo_s, steps - half)
    theirs = run(t_opt2, t_s2, steps - half)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    # torch -> ours
    fo_opt3, fo_s3, *_ = build(name)
    for fg, tg in zip(fo_opt3.param_groups, t_opt.param_groups):
        fg.update({k: v for k, v in tg.items() if k != "params"})
    fo_s3.load_state_dict(copy.deepcopy(t_sd))
    for a, b in zip(run(fo_opt3, fo_s3, steps - half), run(t_opt, t_s, steps - half)):
        assert_same(a, b)


@pytest.mark.parametrize("name", ["LambdaLR-list", "MultiplicativeLR-obj"])
def test_lambda_state_dict_keeps_only_callable_objects(name):
    fo_opt, fo_s, t_opt, t_s, *_ = build(name)
    sd = fo_s.state_dict()
    assert sd["lr_lambdas"] == t_s.state_dict()["lr_lambdas"]
    assert any(x is not None for x in sd["lr_lambdas"])
    if name == "LambdaLR-list":
        assert sd["lr_lambdas"][0] is None and sd["lr_lambdas"][1] == {"gamma": 0.95}
    sd["lr_lambdas"][-1]["gamma"] = 0.5
    fo_s.load_state_dict(sd)
    assert fo_s.lr_lambdas[-1].gamma == 0.5
    assert "lr_lambdas" in sd  # the caller's dict is left whole


@pytest.mark.parametrize("config", PLATEAU)
def test_reduce_on_plateau_equals_torch(config):
    fo_opt, t_opt = make_opts("sgd")
    kw = PLATEAU[config]
    fo_s = fastoptim.optim.lr_scheduler.ReduceLROnPlateau(fo_opt, **kw)
    t_s = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kw)
    ms = metrics(200)
    if kw.get("mode") == "max":
        ms = [-m for m in ms]
    for k, m in enumerate(ms):
        fo_s.step(m)
        t_s.step(m)
        assert_same(snapshot(fo_opt), snapshot(t_opt))
        if k == 100:  # cross-load mid-run, both ways
            fo_sd, t_sd = fo_s.state_dict(), t_s.state_dict()
            assert list(fo_sd) == list(t_sd)
            assert fo_sd == t_sd
            fo_s.load_state_dict(copy.deepcopy(t_sd))
            t_s.load_state_dict(copy.deepcopy(fo_sd))
    assert fo_s.get_last_lr() == t_s.get_last_lr()
    assert len({g[0]["lr"] for g in [snapshot(fo_opt)]}) == 1


@pytest.mark.parametrize("metric", [
    lambda v: fastoptim.tensor(v), lambda v: fastoptim.tensor(v, dtype=fastoptim.float32),
    lambda v: torch.tensor(v), lambda v: np.float32(v), lambda v: np.float64(v),
    lambda v: np.array(v),
])
def test_reduce_on_plateau_accepts_tensor_and_numpy_metrics(metric):
    # Beyond torch: the metric may be a 0-dim fastoptim/torch tensor or a numpy scalar.
    fo_opt, t_opt = make_opts("sgd")
    fo_s = fastoptim.optim.lr_scheduler.ReduceLROnPlateau(fo_opt, patience=1)
    t_s = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, patience=1)
    for m in [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]:
        fo_s.step(metric(m))
        t_s.step(m)
        assert fo_s.best == t_s.best and type(fo_s.best) is float
    assert_same(snapshot(fo_opt), snapshot(t_opt))


def test_reduce_on_plateau_rejects_a_many_element_metric():
    fo_opt, _ = make_opts("sgd")
    s = fastoptim.optim.lr_scheduler.ReduceLROnPlateau(fo_opt)
    with pytest.raises(ValueError, match=r"metrics must be a number or a tensor with one "
                       r"element, got Tensor of shape \(2,\)"):
        s.step(fastoptim.tensor([1.0, 2.0]))


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR", "CyclicLR",
                                  "LinearLR", "SWALR-cos"])
def test_tensor_lrs_filled_in_place_like_torch(name):
    make, steps, _, kind = CASES[name]
    fo_opt, t_opt = make_opts(kind)
    for o, lib in ((fo_opt, fastoptim), (t_opt, torch)):
        for g in o.param_groups:
            # (np.float64: fastoptim.tensor(0.05, dtype=float64) rounds through float32 today)
            g["lr"] = lib.tensor(np.float64(g["lr"]))
    held = [g["lr"] for g in fo_opt.param_groups]
    fo_s, t_s = make(fastoptim, fo_opt), make(torch, t_opt)
    for a, b in zip(run(fo_opt, fo_s, steps), run(t_opt, t_s, steps)):
        assert_same(a, b)
    assert all(g["lr"] is h for g, h in zip(fo_opt.param_groups, held))  # filled, not replaced
    last = fo_s.get_last_lr()
    assert all(isinstance(x, fastoptim.Tensor) and x is not g["lr"]
               for x, g in zip(last, fo_opt.param_groups))


def test_initial_lr_rules_when_resuming_with_last_epoch():
    fo_opt, t_opt = make_opts("sgd")
    for o in (fo_opt, t_opt):
        for g, lr in zip(o.param_groups, (0.1, 0.2)):
            g["initial_lr"] = lr
    fo_s = fastoptim.optim.lr_scheduler.StepLR(fo_opt, 3, 0.5, last_epoch=10)
    t_s = torch.optim.lr_scheduler.StepLR(t_opt, 3, 0.5, last_epoch=10)
    assert fo_s.base_lrs == t_s.base_lrs == [0.1, 0.2]
    for a, b in zip(run(fo_opt, fo_s, 20), run(t_opt, t_s, 20)):
        assert_same(a, b)
    for lib in (fastoptim, torch):
        o = make_opts("sgd")[0 if lib is fastoptim else 1]
        with pytest.raises(KeyError) as err:
            S(lib).CosineAnnealingLR(o, 10, last_epoch=3)
        if lib is fastoptim:
            fo_msg = str(err.value)
        else:
            assert fo_msg == str(err.value)


def _messages(fn):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn()
    return [(w.category, str(w.message)) for w in rec]


@pytest.mark.parametrize("name", CASES)
def test_warnings_equal_torch(name):
    fo_opt, fo_s, t_opt, t_s, _, closed = build(name)
    # scheduler before optimizer: the call-order warning, once
    assert _messages(fo_s.step) == _messages(t_s.step)
    assert _messages(fo_s.step) == _messages(t_s.step) == []
    if closed:
        msgs = _messages(lambda: fo_s.step(3))
        assert msgs == _messages(lambda: t_s.step(3))
        assert msgs == [(UserWarning, fastoptim.optim.lr_scheduler.EPOCH_DEPRECATION_WARNING)]
    if hasattr(t_s, "get_lr") and not name.startswith(("Sequential", "Chained")):
        assert _messages(fo_s.get_lr) == _messages(t_s.get_lr)


def test_call_order_warning_text_equals_torch():
    fo_opt, fo_s, t_opt, t_s, *_ = build("StepLR")
    fo_w, t_w = _messages(fo_s.step), _messages(t_s.step)
    assert fo_w == t_w and len(fo_w) == 1 and "opposite order" in fo_w[0][1]
    fo_opt, fo_s, t_opt, t_s, *_ = build("ExponentialLR")
    fo_opt.step = lambda *a, **k: None
    t_opt.step = lambda *a, **k: None
    fo_w, t_w = _messages(fo_s.step), _messages(t_s.step)
    assert fo_w == t_w and len(fo_w) == 1 and "has been overridden" in fo_w[0][1]


ERRORS = [
    ("ConstantLR", dict(factor=1.5)), ("LinearLR", dict(start_factor=0)),
    ("LinearLR", dict(end_factor=2.0)),
    ("MultiplicativeLR", dict(lr_lambda=3)), ("LambdaLR", dict(lr_lambda=[lambda e: 1.0])),
    ("CosineAnnealingWarmRestarts", dict(T_0=0)), ("CosineAnnealingWarmRestarts", dict(T_0=2.5)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=0)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, eta_min="x")),
    ("OneCycleLR", dict(max_lr=0.1)), ("OneCycleLR", dict(max_lr=0.1, total_steps=0)),
    ("OneCycleLR", dict(max_lr=0.1, epochs=2, steps_per_epoch=0)),
    ("OneCycleLR", dict(max_lr=0.1, epochs=-1, steps_per_epoch=3)),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, pct_start=1)),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, anneal_strategy="exp")),
    ("OneCycleLR", dict(max_lr=[0.1, 0.2, 0.3], total_steps=10)),
    ("CyclicLR", dict(base_lr=0.1, max_lr=1.0, mode="foo")),
    ("CyclicLR", dict(base_lr=[0.1], max_lr=1.0)),
    ("ReduceLROnPlateau", dict(factor=1.0)), ("ReduceLROnPlateau", dict(mode="avg")),
    ("ReduceLROnPlateau", dict(threshold_mode="x")), ("ReduceLROnPlateau", dict(min_lr=[0.1])),
]


@pytest.mark.parametrize("name,kw", ERRORS)
def test_construction_errors_equal_torch(name, kw):
    fo_opt, t_opt = make_opts("sgd")
    with pytest.raises(Exception) as t_err:
        getattr(S(torch), name)(t_opt, **kw)
    with pytest.raises(type(t_err.value)) as fo_err:
        getattr(S(fastoptim), name)(fo_opt, **kw)
    assert str(fo_err.value) == str(t_err.value)


def test_cycle_momentum_needs_momentum_or_betas():
    for lib in (fastoptim, torch):
        p = lib.tensor(np.ones(2), requires_grad=True)
        o = lib.optim.Adagrad([p], lr=0.1)
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            S(lib).CyclicLR(o, 0.01, 0.1)
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            S(lib).OneCycleLR(o, 0.1, total_steps=10)


def _composed_error_messages(lib, o):
    s = S(lib)
    cases = [
        lambda: s.SequentialLR(o, [], []),
        lambda: s.SequentialLR(o, [s.StepLR(o, 2)], [3]),
        lambda: s.SequentialLR(o, [s.StepLR(o, 2), s.ReduceLROnPlateau(o)], [3]),
        lambda: s.ChainedScheduler([]),
        lambda: s.ChainedScheduler([s.StepLR(o, 2), object()]),
    ]
    msgs = []
    for c in cases:
        with pytest.raises((ValueError, TypeError)) as err:
            c()
        msgs.append((type(err.value), str(err.value)))
    return msgs


def test_composed_errors_equal_torch():
    fo_opt, t_opt = make_opts("sgd")
    assert _composed_error_messages(fastoptim, fo_opt) == _composed_error_messages(torch, t_opt)
    fo_other, _ = make_opts("sgd")
    with pytest.raises(ValueError, match="expects all schedulers to belong to the same optimizer"):
        S(fastoptim).SequentialLR(fo_opt, [S(fastoptim).StepLR(fo_other, 2)], [])


def test_one_cycle_overrun_error_equals_torch():
    fo_opt, t_opt = make_opts("sgd")
    msgs = []
    for lib, o in ((fastoptim, fo_opt), (torch, t_opt)):
        s = S(lib).OneCycleLR(o, 0.1, total_steps=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(5):
                s.step()
            with pytest.raises(ValueError) as err:
                s.step()
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] == "Tried to step 6 times. The specified number of total steps is 5"


# ---- beyond torch: param groups added after the scheduler ------------------------------------

K_ADD, NEW_LR = 13, 0.02

# Chainable schedules: from the step it is added, the new group moves by the same factors as
# group 0, so lr2 / lr0 stays what it was when the group arrived.
# (CosineAnnealingLR is left out: past T_max its recurrence adds a multiple of the base lr.)
FOLLOW_RATIO = ["StepLR", "MultiStepLR", "ConstantLR-long", "LinearLR-down", "ExponentialLR",
                "PolynomialLR", "MultiplicativeLR", "ChainedScheduler"]

# Schedules computed from the base lrs: the new group follows exactly what the same scheduler
# gives a group with that base lr from the start (a 3-group reference).
FOLLOW_BASE = {
    "LambdaLR": lambda lib, o: S(lib).LambdaLR(o, lambda e: 0.97**e),
    "CosineAnnealingWarmRestarts-mult": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(
        o, 5, T_mult=2, eta_min=0.01),
    "OneCycleLR": lambda lib, o: S(lib).OneCycleLR(o, [0.1, 1.0, NEW_LR * 25.0], total_steps=200),
    "CyclicLR-tri2": lambda lib, o: S(lib).CyclicLR(
        o, [0.01, 0.02, NEW_LR], 0.3, step_size_up=15, step_size_down=25, mode="triangular2"),
}


def _add_group_after(name, k=K_ADD):
    make, steps, _, kind = CASES[name]
    fo_opt, _ = make_opts(kind)
    sched = make(fastoptim, fo_opt)
    run(fo_opt, sched, k)
    p = fastoptim.tensor(np.ones(3), dtype=fastoptim.float64, requires_grad=True)
    fo_opt.add_param_group({"params": [p], "lr": NEW_LR})
    seq = run(fo_opt, sched, steps - k)[1:]
    assert fo_opt.param_groups[2]["initial_lr"] == NEW_LR
    assert len(sched.get_last_lr()) == 3
    return seq, steps, kind


@pytest.mark.parametrize("name", FOLLOW_RATIO)
def test_chainable_schedulers_follow_param_groups_added_later(name):
    seq, _, _ = _add_group_after(name)
    lr0 = np.array([s[0]["lr"] for s in seq])
    lr2 = np.array([s[2]["lr"] for s in seq])
    assert len(set(lr2.tolist())) > 1  # the new group is scheduled
    np.testing.assert_allclose(lr2, lr0 * (lr2[0] / lr0[0]), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("name", FOLLOW_BASE)
def test_base_lr_schedulers_follow_param_groups_added_later(name):
    seq, steps, kind = _add_group_after(name)
    ref_opt, _ = make_opts(kind, lrs=LRS + (NEW_LR,))
    ref_seq = run(ref_opt, FOLLOW_BASE[name](fastoptim, ref_opt), steps)[K_ADD + 1:]
    np.testing.assert_allclose([s[2]["lr"] for s in seq], [s[2]["lr"] for s in ref_seq],
                               rtol=1e-9)
    assert_same([s[:2] for s in seq][-1], [s[:2] for s in ref_seq][-1])


def test_swalr_and_sequential_follow_param_groups_added_later():
    seq, _, _ = _add_group_after("SWALR-cos")
    assert seq[-1][2]["lr"] == pytest.approx(0.01, rel=1e-12)  # annealed to swa_lr
    assert seq[-1][2]["swa_lr"] == 0.01
    seq, _, _ = _add_group_after("SequentialLR")
    # at milestone 60 ExponentialLR restarts from the base lrs: the new group's is NEW_LR
    assert seq[60 - K_ADD - 1][2]["lr"] == NEW_LR
    assert seq[61 - K_ADD - 1][2]["lr"] == pytest.approx(NEW_LR * 0.97, rel=1e-12)


def test_follow_rejects_per_group_settings_for_a_new_group():
    fo_opt, _ = make_opts("sgd")
    s = S(fastoptim).LambdaLR(fo_opt, [lambda e: 1.0, lambda e: 0.5])
    fo_opt.add_param_group({"params": [fastoptim.tensor(np.ones(1), requires_grad=True)]})
    with pytest.raises(ValueError, match="param group 2 was added to the optimizer after the "
                       "scheduler was created, and lr_lambda was given per param group"):
        s.step()


def test_follow_new_group_in_reduce_on_plateau():
    fo_opt, _ = make_opts("sgd")
    s = S(fastoptim).ReduceLROnPlateau(fo_opt, patience=0, factor=0.5)
    fo_opt.add_param_group({"params": [fastoptim.tensor(np.ones(1), requires_grad=True)],
                            "lr": 0.4})
    s.step(1.0)
    s.step(2.0)
    assert [g["lr"] for g in fo_opt.param_groups] == [0.025, 0.25, 0.2]
