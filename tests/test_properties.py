"""Property-based tests (hypothesis) of the public optimizer API and the public functionals.

Why: the hand-written tests pick their shapes, layouts and hyperparameters; these let hypothesis
pick them (shapes 0, 1, odd, 0-dim and large-ish, float32/float64 mixed, strided and transposed
views, NaN/Inf, hyperparameters at and past their bounds) and hold every result against an
oracle: the NumPy twins (``fastoptim.optim._reference``) for numbers, torch 2.13 for the
constructors' checks and messages.  Every failure must be a clean Python exception that leaves
its inputs exactly as they were.

Design:

* ``OptimizerMachine`` is a ``RuleBasedStateMachine`` over every row of tests/optim_table.py
  (with one scalar hyperparameter possibly moved to an edge value): random sequences of grads
  (some None, some with NaN/Inf), ``step``, ``zero_grad``, ``add_param_group``, ``state_dict``,
  ``load_state_dict`` of earlier snapshots and of corrupted dicts, failing steps (an aliased
  grad, a raising pre-hook), LR scheduler steps, state dicts and (corrupted) loads.  A model
  (numpy arrays for params and state, the group settings, the scheduler's epoch) is advanced
  by the twins; after every rule the optimizer must equal the model (to the twin tolerance;
  step counts and settings exactly), and is then re-synced to it so that rounding does not
  accumulate over a long run.
* ``_functional_property``: one call of a public functional on plain numpy arrays with an
  injected defect (mismatched lengths, a grad or state aliasing a param, read-only params or
  state, a wrong shape) or a harmless oddity (read-only or shared grads, a repeated param,
  strided/transposed/offset views): the result equals the twin's on copies, or, when the twin
  raises or the input is invalid, the call raises and every input is unchanged.
* The machine and the functional property are the risky cases (they reach the C glue with
  corrupted input): each runs in a child pytest process (``FASTOPTIM_PROPERTIES_CHILD=1``), so
  that a crash fails its test instead of killing the suite.
* Budgets: the ``ci`` and ``long`` profiles of tests/conftest.py (``HYPOTHESIS_PROFILE=long``).
"""

import copy
import inspect
import itertools
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from optim_table import TABLE, class_cases  # noqa: E402

import fastoptim  # noqa: E402
from fastoptim import optim  # noqa: E402
from fastoptim.optim import _reference as ref  # noqa: E402
from fastoptim.optim import functional as F  # noqa: E402
from fastoptim.optim import lr_scheduler  # noqa: E402
from fastoptim.optim._descriptions import BY_CLASS, BY_NAME  # noqa: E402

CHILD = os.environ.get("FASTOPTIM_PROPERTIES_CHILD") == "1"
in_child = pytest.mark.skipif(not CHILD, reason="run in a child process by its *_in_subprocess")

TOL = {np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
       np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-13}}
SHAPES = [(), (0,), (1,), (3,), (7,), (2, 3), (5, 1, 2), (1025,), (20_001,)]
DTYPES = [np.float32, np.float64]
# edge values per scalar hyperparameter: at the bounds, past them, and non-finite where the
# twin's float arithmetic stays real (a beta2 > 1 would make the twin's bias correction complex)
EDGES = {
    "lr": [0.0, 1.0, -0.1, 10.0, float("nan")],
    "weight_decay": [0.0, 1.0, -0.5],
    "eps": [0.0, 1.0],
    "beta1": [0.0, 0.5, 1.0],
    "beta2": [0.0, 0.5],
    "momentum": [0.0, 1.0],
    "dampening": [0.0, 1.0],
    "alpha": [0.0, 1.0],
    "rho": [0.0, 1.0],
    "lr_decay": [0.0, -1.0, 1.0],
}
CLEAN_ERRORS = (ValueError, TypeError, KeyError, ZeroDivisionError)


def _values(rng, shape, dtype, special):
    """Random values; with ``special``, some entries NaN, +-Inf, +-0."""
    a = np.asarray(rng.standard_normal(shape), dtype=dtype)
    if special and a.size:
        mask = rng.random(a.shape) < 0.2
        a[mask] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype),
                             size=int(mask.sum()))
    return a


def _close(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape,
                                                                 got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, err_msg=what, equal_nan=True, **TOL[want.dtype])


# ---- the optimizer classes: a stateful machine --------------------------------------------------

CASES = class_cases()


def _twin_step(d, hyper, params, grads, states, defaults):
    """One ``step`` of one group in the model: the twin over the params that have a grad."""
    idx = [i for i in params if grads[i] is not None]
    if not idx:
        return
    for i in idx:
        if states.get(i):
            continue
        if d.first_step == "from_grad":
            states[i] = {}
            continue
        states[i] = {"step": np.zeros((), np.float32)}
        for s in d.state:
            if not s.present(hyper):
                continue
            # the description's first value (Rprop's step_size: the lr; NAdam's mu_product: 1)
            fill = (defaults["initial_accumulator_value"] if d.first_step == "eager"
                    else hyper["lr"] if s.init == "lr" else s.init)
            states[i][s.key] = (np.array(fill, np.float32) if s.scalar
                                else np.full_like(params[i], fill))
    lists = []
    for s in d.state:
        if d.first_step == "from_grad":
            lists.append([states[i].get(s.key) for i in idx])
        elif s.present(hyper):
            lists.append([states[i][s.key] for i in idx])
        else:
            lists.append([None] * len(idx))
    if d.step:
        lists.append([states[i]["step"] for i in idx])
    kwargs = {h.name: h.read(hyper) for h in d.hyper}
    kwargs.update(dict(d.fixed))
    getattr(ref, d.kernel)([params[i] for i in idx], [grads[i] for i in idx], *lists, **kwargs)
    if d.first_step == "from_grad" and hyper["momentum"] != 0:
        for j, i in enumerate(idx):
            states[i]["momentum_buffer"] = lists[0][j]


class OptimizerMachine(RuleBasedStateMachine):
    """An optimizer of tests/optim_table.py and its numpy model, driven by random rules."""

    def __init__(self):
        super().__init__()
        warnings.simplefilter("ignore")   # scheduler call-order warnings, duplicate params
        self.opt = None

    # -- set-up
    @initialize(case=st.integers(0, len(CASES) - 1),
                shapes=st.lists(st.sampled_from(SHAPES), min_size=1, max_size=4),
                dtypes=st.lists(st.sampled_from(DTYPES), min_size=4, max_size=4),
                two_groups=st.booleans(),
                edge=st.one_of(st.none(), st.tuples(st.integers(0, 9), st.integers(0, 9))),
                sched=st.sampled_from([None, "step", "exp"]),
                seed=st.integers(0, 2**32 - 1))
    def setup(self, case, shapes, dtypes, two_groups, edge, sched, seed):
        cls, kwargs = CASES[case]
        kwargs = dict(kwargs)
        self.d = BY_CLASS[cls]
        if edge is not None:   # one scalar to an edge value that the constructor accepts
            h = self.d.scalars[edge[0] % len(self.d.scalars)]
            values = EDGES.get(h.name, [0.0])
            value = values[edge[1] % len(values)]
            ok = {"lr": 0.0, "weight_decay": 0.0, "eps": 0.0, "beta1": 0.0, "beta2": 0.0}
            if h.index is not None:     # one element of a pair (betas, etas, step_sizes)
                pair = list(kwargs.get(h.group_key, inspect.signature(
                    getattr(optim, cls)).parameters[h.group_key].default))
                if h.group_key == "betas" and not 0.0 <= value < 1.0:
                    value = ok[h.name]
                pair[h.index] = value
                kwargs[h.group_key] = tuple(pair)
            elif value >= 0.0 or h.name not in ok:
                kwargs[h.group_key] = value
        self.rng = np.random.default_rng(seed)
        self.params, self.mp, self.mg = [], [], []
        for shape, dtype in zip(shapes, dtypes):
            a = _values(self.rng, shape, dtype, False)
            self.params.append(fastoptim.nn.Parameter(fastoptim.from_numpy(a.copy())))
            self.mp.append(a)
            self.mg.append(None)
        n = len(self.params)
        if two_groups and n > 1:
            groups = [{"params": self.params[: n // 2]},
                      {"params": self.params[n // 2:], "lr": 0.5 * kwargs.get("lr", 0.01)}]
        else:
            groups = [{"params": list(self.params)}]
        note(f"{cls}({kwargs}) shapes={shapes} dtypes={dtypes[:n]} groups={len(groups)}")
        try:
            self.opt = getattr(optim, cls)(groups, **kwargs)
        except ValueError as e:      # an edge the class refuses (nesterov without momentum)
            note(f"refused: {e}; the table's settings instead")
            self.opt = getattr(optim, cls)(groups, **CASES[case][1])
        self.defaults = dict(self.opt.defaults)
        self.hypers = [self._settings(g) for g in self.opt.param_groups]
        self.members = [[self._index(p) for p in g["params"]]
                        for g in self.opt.param_groups]
        self.ms = {}
        for i, p in enumerate(self.params):   # Adagrad's eager state, as constructed
            if self.opt.state.get(p):
                self.ms[i] = {k: np.array(v._np, copy=True) for k, v in self.opt.state[p].items()}
        self.snapshots = []
        self.sched = None
        if sched is not None:
            self.sched = (lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5) if sched == "step"
                          else lr_scheduler.ExponentialLR(self.opt, gamma=0.9))
            self.hypers = [self._settings(g) for g in self.opt.param_groups]
            self.epoch = 0
            self.sched_snapshots = []

    def _index(self, p):
        return next(i for i, q in enumerate(self.params) if q is p)   # by identity

    @staticmethod
    def _settings(group):
        return {k: copy.copy(v) for k, v in group.items() if k != "params"}

    def _live(self):
        return self.opt is not None

    # -- grads
    @precondition(_live)
    @rule(data=st.data())
    def set_grads(self, data):
        for i, p in enumerate(self.params):
            kind = data.draw(st.sampled_from(["none", "normal", "normal", "special", "keep"]))
            if kind == "keep":
                continue
            if kind == "none":
                p.grad = None
                self.mg[i] = None
            else:
                g = _values(self.rng, self.mp[i].shape, self.mp[i].dtype, kind == "special")
                p.grad = fastoptim.from_numpy(g.copy())
                self.mg[i] = g

    @precondition(_live)
    @rule(set_to_none=st.booleans())
    def zero_grad(self, set_to_none):
        self.opt.zero_grad(set_to_none=set_to_none)
        self.mg = [None if (g is None or set_to_none) else np.zeros_like(g) for g in self.mg]

    # -- steps
    def _model_step(self):
        for hyper, members in zip(self.hypers, self.members):
            _twin_step(self.d, hyper, {i: self.mp[i] for i in members}, self.mg, self.ms,
                       self.defaults)

    @precondition(_live)
    @rule()
    def step(self):
        self.opt.step()
        self._model_step()

    @precondition(_live)
    @rule()
    def step_with_an_aliased_grad(self):
        """The first group's last sized param gets its own memory as grad: the step refuses
        (the kernels need a grad apart from what they write) and changes nothing."""
        first = [i for i in self.members[0] if self.mp[i].size]
        if not first:
            return
        p = self.params[first[-1]]
        keep = p.grad
        p.grad = p.detach()
        try:
            with pytest.raises(ValueError, match="overlap in memory"):
                self.opt.step()
        finally:
            p.grad = keep

    @precondition(_live)
    @rule(where=st.sampled_from(["pre", "post"]))
    def step_with_a_raising_hook(self, where):
        """A raising pre-hook stops the step before anything moves; a post-hook runs after
        the step (torch's order), so the step stands."""
        class Boom(Exception):
            pass

        def hook(*args):
            raise Boom

        reg = self.opt.register_step_pre_hook if where == "pre" else \
            self.opt.register_step_post_hook
        with reg(hook), pytest.raises(Boom):
            self.opt.step()
        if where == "post":
            self._model_step()

    # -- groups
    @precondition(lambda self: self._live() and len(self.params) < 8)
    @rule(shape=st.sampled_from(SHAPES[:7]), dtype=st.sampled_from(DTYPES),
          lr=st.sampled_from([None, 0.0, 0.003]))
    def add_param_group(self, shape, dtype, lr):
        a = _values(self.rng, shape, dtype, False)
        p = fastoptim.nn.Parameter(fastoptim.from_numpy(a.copy()))
        group = {"params": [p]} if lr is None else {"params": [p], "lr": lr}
        self.opt.add_param_group(group)
        self.params.append(p)
        self.mp.append(a)
        self.mg.append(None)
        self.members.append([len(self.params) - 1])
        self.hypers.append(self._settings(self.opt.param_groups[-1]))

    @precondition(lambda self: self._live() and len(self.params) < 8)
    @rule(bad=st.sampled_from(["repeat", "not a tensor", "set", "not a dict", "missing params"]))
    def add_a_bad_param_group(self, bad):
        """A refused group leaves the optimizer's groups as they were."""
        groups = [dict(g) for g in self.opt.param_groups]
        arg = {"repeat": {"params": [self.params[0]]}, "not a tensor": {"params": [1.0]},
               "set": {"params": {self.params[0]}}, "not a dict": [self.params[0]],
               "missing params": {"lr": 0.1}}[bad]
        with pytest.raises(CLEAN_ERRORS):
            self.opt.add_param_group(arg)
        assert [dict(g) for g in self.opt.param_groups] == groups

    # -- state dicts
    @precondition(_live)
    @rule()
    def state_dict(self):
        sd = self.opt.state_dict()
        index = {id(p): i for i, p in enumerate(self.params)}
        assert [g["params"] for g in sd["param_groups"]] == self.members
        for i in sd["state"]:
            assert set(sd["state"][i]) == set(self.ms.get(i, {})), i
        assert all(index[id(p)] in sd["state"] for p in self.opt.state if self.opt.state[p])
        self.snapshots = (self.snapshots + [(copy.deepcopy(sd), copy.deepcopy(self.ms),
                                             copy.deepcopy(self.hypers))])[-3:]

    def _fits(self, sd):
        return (len(sd["param_groups"]) == len(self.members)
                and [len(g["params"]) for g in sd["param_groups"]] == [len(m) for m in
                                                                       self.members])

    @precondition(lambda self: self._live() and self.snapshots)
    @rule(k=st.integers(0, 2))
    def load_state_dict(self, k):
        sd, ms, hypers = self.snapshots[k % len(self.snapshots)]
        if not self._fits(sd):
            with pytest.raises(ValueError, match="parameter group"):
                self.opt.load_state_dict(copy.deepcopy(sd))
            return
        self.opt.load_state_dict(copy.deepcopy(sd))
        self.ms = copy.deepcopy(ms)
        self.hypers = copy.deepcopy(hypers)

    @precondition(_live)
    @rule(kind=st.sampled_from(["shape", "unknown key", "missing step", "step shape",
                                "not a dict", "group count", "group size", "no groups",
                                "state not a dict", "groups not a list", "group not a dict",
                                "not a mapping"]),
          data=st.data())
    def load_a_corrupted_state_dict(self, kind, data):
        """Every corruption raises a clean error, and the optimizer is left as it was (the
        invariants compare it with the unchanged model)."""
        sd = copy.deepcopy(self.opt.state_dict())
        entries = [(i, s) for i, s in sd["state"].items() if s]
        arrays = [(i, k) for i, s in entries for k, v in s.items()
                  if k != "step" and v is not None]
        stepped = [i for i, s in entries if "step" in s]
        if kind == "shape" and arrays:
            i, k = data.draw(st.sampled_from(arrays))
            sd["state"][i][k] = np.zeros(tuple(self.mp[i].shape) + (1,))
        elif kind == "unknown key" and entries:
            sd["state"][entries[0][0]]["bogus"] = np.zeros(self.mp[entries[0][0]].shape)
        elif kind == "missing step" and stepped:
            del sd["state"][data.draw(st.sampled_from(stepped))]["step"]
        elif kind == "step shape" and stepped:
            sd["state"][data.draw(st.sampled_from(stepped))]["step"] = np.zeros(2)
        elif kind == "not a dict":
            sd["state"][data.draw(st.sampled_from(range(len(self.params))))] = [1, 2]
        elif kind == "group size":
            sd["param_groups"][-1]["params"].append(99)
        elif kind == "no groups":
            del sd["param_groups"]
        elif kind == "state not a dict":
            sd["state"] = [1, 2]
        elif kind == "groups not a list":
            sd["param_groups"] = 7
        elif kind == "group not a dict":
            sd["param_groups"][0] = [0]
        elif kind == "not a mapping":
            sd = [("state", {}), ("param_groups", [])]
        else:   # "group count", and the kinds above with nothing to corrupt
            sd["param_groups"].append(copy.deepcopy(sd["param_groups"][0]))
        with pytest.raises(CLEAN_ERRORS):
            self.opt.load_state_dict(sd)

    # -- the LR scheduler
    def _has_sched(self):
        return self._live() and self.sched is not None

    @precondition(_has_sched)
    @rule()
    def scheduler_step(self):
        self.sched.step()
        self.epoch += 1
        for h in self.hypers:
            if isinstance(self.sched, lr_scheduler.ExponentialLR):
                h["lr"] = h["lr"] * 0.9
            elif self.epoch % 2 == 0:
                h["lr"] = h["lr"] * 0.5

    @precondition(_has_sched)
    @rule()
    def scheduler_state_dict(self):
        sd = self.sched.state_dict()
        assert sd["last_epoch"] == self.epoch and "optimizer" not in sd
        self.sched_snapshots = (self.sched_snapshots + [copy.deepcopy(sd)])[-2:]

    @precondition(lambda self: self._has_sched() and self.sched_snapshots)
    @rule(k=st.integers(0, 1))
    def scheduler_load_state_dict(self, k):
        sd = self.sched_snapshots[k % len(self.sched_snapshots)]
        self.sched.load_state_dict(copy.deepcopy(sd))
        self.epoch = sd["last_epoch"]

    @precondition(_has_sched)
    @rule(kind=st.sampled_from(["pairs", "epoch type", "optimizer", "base_lrs", "not a dict",
                                "step count", "last_lr item", "gamma"]))
    def scheduler_load_a_corrupted_state_dict(self, kind):
        sd = copy.deepcopy(self.sched.state_dict())
        if kind == "pairs":
            sd = [("last_epoch", 5), ("x",)]
        elif kind == "epoch type":
            sd["last_epoch"] = "a"
        elif kind == "optimizer":
            sd["optimizer"] = None
        elif kind == "base_lrs":
            sd["base_lrs"] = "x"
        elif kind == "not a dict":
            sd = 5
        elif kind == "step count":
            sd["_step_count"] = -1.5
        elif kind == "last_lr item":
            sd["_last_lr"] = sd["_last_lr"] + ["x"]
        else:
            sd["gamma"] = "half"
        before = dict(self.sched.__dict__)
        with pytest.raises((TypeError, ValueError)):
            self.sched.load_state_dict(sd)
        assert self.sched.__dict__ == before

    # -- what must hold after every rule
    @invariant()
    def optimizer_equals_model(self):
        if self.opt is None:
            return
        for i, p in enumerate(self.params):
            _close(p._np, self.mp[i], f"param {i}")
            self.mp[i][...] = p._np       # re-sync: each step is checked from equal inputs
        for i, p in enumerate(self.params):
            got = self.opt.state.get(p) or {}
            want = self.ms.get(i) or {}
            assert set(got) == set(want), (i, set(got), set(want))
            for key, value in want.items():
                if key == "step":
                    assert float(got[key]) == float(value), (i, float(got[key]), float(value))
                    assert got[key].dtype is fastoptim.float32 and got[key].dim() == 0
                else:
                    _close(got[key]._np, value, f"state {i} {key}")
                    value[...] = got[key]._np
        assert len(self.opt.param_groups) == len(self.hypers)
        for g, h, m in zip(self.opt.param_groups, self.hypers, self.members):
            assert [self._index(p) for p in g["params"]] == m
            for key, value in h.items():
                assert g[key] == value or (value != value and g[key] != g[key]), (key, g[key],
                                                                                  value)
        if self.sched is not None:
            assert self.sched.last_epoch == self.epoch


OptimizerMachine.TestCase.settings = hypothesis.settings(hypothesis.settings.default)
TestOptimizerMachine = in_child(OptimizerMachine.TestCase)


# ---- the public functionals on plain numpy arrays ------------------------------------------------

FUNCTIONAL_CASES = [(name, k) for name, row in TABLE.items() for k in range(len(row["functional"]))]
INVALID = ["len params", "len state", "grad aliases param", "state aliases param",
           "state aliases state", "read-only param", "read-only state", "wrong grad shape"]
HARMLESS = ["none", "none", "read-only grad", "shared grad", "repeated param"]
LAYOUTS = ["c", "c", "strided", "transposed", "offset"]


def _laid_out(a, layout):
    """``a``'s values in an array of the given memory layout (a view into a bigger buffer)."""
    if layout == "strided" and a.ndim:
        big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        view = big[..., ::2]
    elif layout == "transposed" and a.ndim >= 2:
        view = np.empty(a.shape[::-1], a.dtype).T
    elif layout == "offset":
        view = np.empty(a.size + 1, a.dtype)[1:].reshape(a.shape)
    else:
        view = np.empty_like(a)
    view[...] = a
    return view


@st.composite
def functional_calls(draw):
    name, k = draw(st.sampled_from(FUNCTIONAL_CASES))
    d = BY_NAME[name]
    hp = dict(TABLE[name]["functional"][k])
    iav = hp.pop("initial_accumulator_value", 0.0)
    init_steps = hp.pop("init_steps", None)
    for h in d.scalars:
        if draw(st.integers(0, 5)) == 0:
            hp[h.name] = draw(st.sampled_from(EDGES.get(h.name, [0.0])))
    shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=0, max_size=4))
    dtypes = draw(st.lists(st.sampled_from(DTYPES), min_size=len(shapes), max_size=len(shapes)))
    layouts = draw(st.lists(st.sampled_from(LAYOUTS), min_size=1, max_size=12))
    defect = draw(st.sampled_from(INVALID + HARMLESS))
    seed = draw(st.integers(0, 2**32 - 1))
    special = draw(st.booleans())
    return name, d, hp, iav, init_steps, shapes, dtypes, layouts, defect, seed, special


def _functional_inputs(d, iav, init_steps, shapes, dtypes, layouts, seed, special):
    rng = np.random.default_rng(seed)
    lay = itertools.cycle(layouts)
    params = [_laid_out(_values(rng, s, t, special), next(lay)) for s, t in zip(shapes, dtypes)]
    grads = [_laid_out(_values(rng, s, t, special), next(lay)) for s, t in zip(shapes, dtypes)]
    states = []
    for _ in d.state:
        if d.first_step == "from_grad":
            states.append([None] * len(shapes))
        else:
            fill = iav if d.first_step == "eager" else None
            states.append([_laid_out(np.full(sh, fill, t) if fill is not None
                                     else np.abs(_values(rng, sh, t, False)), next(lay))
                           for sh, t in zip(shapes, dtypes)])
    if d.step:
        steps = init_steps or (0,)
        states.append([np.array(steps[i % len(steps)] + rng.integers(0, 3), np.float32)
                       for i in range(len(shapes))])
    return params, grads, states


def _inject(defect, d, hp, params, grads, states):
    """Apply ``defect``; returns whether the call is invalid (must raise)."""
    sized = [i for i, p in enumerate(params) if p.size]
    # the state lists the call uses (Adam's max_exp_avg_sqs only with amsgrad, ...)
    used = [lst for s, lst in zip(d.state, states) if s.present(hp)]
    if d.step:
        used.append(states[-1])
    arrays = [lst for lst in used[: len(d.state)] if lst and lst[0] is not None
              and lst is not (states[-1] if d.step else None)]
    if defect == "len params" and params:
        params.pop()
    elif defect == "len state" and used and used[-1]:
        used[-1].pop()
    elif defect == "grad aliases param" and sized:
        grads[sized[-1]] = params[sized[-1]]
    elif defect == "state aliases param" and sized and arrays:
        arrays[-1][sized[-1]] = params[sized[-1]]
    elif defect == "state aliases state" and sized and len(arrays) >= 2:
        arrays[0][sized[0]] = arrays[1][sized[0]]
    elif defect == "read-only param" and sized:
        params[sized[0]].flags.writeable = False
    elif defect == "read-only state" and sized and arrays:
        arrays[0][sized[0]].flags.writeable = False
    elif defect == "wrong grad shape" and sized:
        grads[sized[0]] = np.zeros(params[sized[0]].size + 1, params[sized[0]].dtype)
    elif defect == "read-only grad" and sized:
        grads[sized[0]].flags.writeable = False
    elif defect == "shared grad" and len(sized) >= 2:
        a, b = sized[0], sized[1]
        if params[a].shape == params[b].shape and params[a].dtype == params[b].dtype:
            grads[b] = grads[a]
    elif defect == "repeated param" and params:
        params.append(params[0])
        grads.append(np.array(grads[0], copy=True))
        for lst in states:
            x = lst[0]
            lst.append(None if x is None else np.array(x, copy=True))
        return False
    else:
        return False
    return defect in INVALID


def _copies(lists):
    """Copies of the arrays, the same copy for the same array (a repeated param stays one)."""
    memo = {}
    return [[None if x is None else memo.setdefault(id(x), np.array(x, copy=True)) for x in lst]
            for lst in lists]


@in_child
@given(functional_calls())
def test_functional_matches_twin_or_refuses_cleanly(call):
    name, d, hp, iav, init_steps, shapes, dtypes, layouts, defect, seed, special = call
    params, grads, states = _functional_inputs(d, iav, init_steps, shapes, dtypes, layouts,
                                               seed, special)
    invalid = _inject(defect, d, hp, params, grads, states)
    note(f"{name} {hp} defect={defect} invalid={invalid}")
    before = _copies([params, grads, *states])
    twin_error = None
    if not invalid:
        twin = _copies([params, grads, *states])
        try:
            with np.errstate(all="ignore"):
                getattr(ref, name)(*twin, **hp)
        except ZeroDivisionError as e:   # torch's own `lr / bias_correction1` raises too
            twin_error = e
    try:
        getattr(F, name)(params, grads, *states, **hp)
    except CLEAN_ERRORS as e:
        assert invalid or twin_error is not None, f"refused a valid call: {e!r}"
        if twin_error is not None:
            assert type(e) is type(twin_error), (e, twin_error)
        after = _copies([params, grads, *states])
        for lst_b, lst_a in zip(before, after):
            for x, y in zip(lst_b, lst_a):
                assert (x is None) == (y is None)
                if x is not None:
                    np.testing.assert_array_equal(y, x)   # nothing written (NaN == NaN here)
        return
    assert not invalid, f"accepted an invalid call ({defect})"
    assert twin_error is None, f"the twin raised {twin_error!r}, the kernel did not"
    for k, (lst_got, lst_want) in enumerate(zip([params, grads, *states], twin)):
        for i, (x, y) in enumerate(zip(lst_got, lst_want)):
            assert (x is None) == (y is None), (k, i)
            if x is not None:
                _close(x, y, f"list {k} entry {i}")


# ---- constructors at and past their bounds, against torch ---------------------------------------

POOL = [0.0, -0.0, 1e-3, 0.5, 0.9, 1.0, 1.5, -1e-3, -1.0, float("nan"), float("inf"),
        float("-inf")]
SIGNATURES = {
    "SGD": {"lr": "f", "momentum": "f", "dampening": "f", "weight_decay": "f", "nesterov": "b",
            "maximize": "b"},
    "Adam": {"lr": "f", "betas": "ff", "eps": "f", "weight_decay": "f", "amsgrad": "b",
             "maximize": "b"},
    "AdamW": {"lr": "f", "betas": "ff", "eps": "f", "weight_decay": "f", "amsgrad": "b",
              "maximize": "b"},
    "RMSprop": {"lr": "f", "alpha": "f", "eps": "f", "weight_decay": "f", "momentum": "f",
                "centered": "b", "maximize": "b"},
    "Adagrad": {"lr": "f", "lr_decay": "f", "weight_decay": "f", "initial_accumulator_value": "f",
                "eps": "f", "maximize": "b"},
    "Adadelta": {"lr": "f", "rho": "f", "eps": "f", "weight_decay": "f", "maximize": "b"},
}


@st.composite
def constructor_calls(draw):
    cls = draw(st.sampled_from(sorted(SIGNATURES)))
    kwargs = {}
    for key, kind in SIGNATURES[cls].items():
        if not draw(st.booleans()):
            continue
        if kind == "b":
            kwargs[key] = draw(st.booleans())
        elif kind == "ff":
            kwargs[key] = (draw(st.sampled_from(POOL)), draw(st.sampled_from(POOL)))
        else:
            kwargs[key] = draw(st.sampled_from(POOL))
    return cls, kwargs


@given(constructor_calls(), st.integers(0, 2**32 - 1))
def test_constructor_bounds_and_first_steps_match_torch(call, seed):
    """Hyperparameters at and past their bounds: fastoptim refuses exactly what torch refuses,
    with the same exception and message, and what both accept steps to torch's numbers."""
    torch = pytest.importorskip("torch")
    cls, kwargs = call
    rng = np.random.default_rng(seed)
    p0, g = rng.standard_normal(5), rng.standard_normal(5)
    fp = fastoptim.nn.Parameter(fastoptim.from_numpy(p0.copy()))
    tp = torch.nn.Parameter(torch.tensor(p0.copy()))
    outcomes = []
    for lib, p in ((optim, fp), (torch.optim, tp)):
        try:
            outcomes.append(getattr(lib, cls)([p], **kwargs))
        except Exception as e:  # noqa: BLE001 - compared with torch's below
            outcomes.append((type(e).__name__, str(e)))
    mine, theirs = outcomes
    if isinstance(theirs, tuple) or isinstance(mine, tuple):
        assert mine == theirs
        return
    if cls == "RMSprop" and kwargs.get("centered") and kwargs.get("alpha") == 0.0:
        # v - g_avg**2 is exactly 0 here: its sign, so NaN or not from the sqrt, is rounding
        # (torch's fused multiply-adds against our order), not a property of the algorithm
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            fp.grad = fastoptim.from_numpy(g.copy())
            tp.grad = torch.tensor(g.copy())
            try:
                mine.step()
                err = None
            except ZeroDivisionError as e:
                err = e
            if err is not None:
                with pytest.raises(ZeroDivisionError):
                    theirs.step()
                return
            theirs.step()
            np.testing.assert_allclose(fp._np, tp.detach().numpy(), rtol=1e-10, atol=1e-10,
                                       equal_nan=True)


# ---- the risky cases, each in a child process ----------------------------------------------------

# The child runs from the directory that holds the fastoptim imported here (`python -m` puts its
# cwd first on sys.path: from the source root it would import an unbuilt tree in CI, where the
# package is installed) and names this file by its absolute path.
IMPORT_ROOT = pathlib.Path(fastoptim.__file__).resolve().parents[1]


def _run_child(node):
    env = dict(os.environ, FASTOPTIM_PROPERTIES_CHILD="1")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         f"{pathlib.Path(__file__).resolve()}::{node}"],
        cwd=IMPORT_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = (out.stdout + out.stderr)[-6000:]
    assert out.returncode == 0, f"child exited with {out.returncode} (negative: a signal)\n{tail}"
    assert " passed" in out.stdout, tail


@pytest.mark.skipif(CHILD, reason="this is the parent")
def test_optimizer_machine_in_subprocess():
    _run_child("TestOptimizerMachine")


@pytest.mark.skipif(CHILD, reason="this is the parent")
def test_functionals_in_subprocess():
    _run_child("test_functional_matches_twin_or_refuses_cleanly")
