"""The step every built-in optimizer shares, driven by its description; and the functionals'
plumbing under their torch signatures.

Why it exists: the classes' step bodies and the functionals' argument handling used to be
written out per optimizer (``_update_group``/``_init_group`` unpacking a settings tuple by
position; ``_sgd``, ``_adam``, ...).  Everything they did follows from the optimizer's row in
``_descriptions``: which group keys hold the hyperparameters, which settings create which
state, how a first step makes state.  So it is written once here:

* :func:`plan` makes the glue's ``_optim.Plan`` of a description (once, cached);
* :func:`grouped_step` makes a class's ``step``: runs of equal groups, each first tried on the
  steady-state shortcut ``_optim.group_step`` (one C call from the group, re-checking the
  run's last gather kept in its ``_optim.StepCache``; it declines when state must be made or
  anything is unusual), else the general path (:func:`_prepare_group`: collect the group's
  lists with ``Optimizer._collect_lazy``, lazy state made packed, check the call, and return
  the write, which runs it and installs the new state).  With several runs every one is
  collected and checked before any is written (nothing half-applied when a later group is
  bad): the steady ones are left pending and run with the last run's kernels;
* :func:`run` is the functionals' body: hyperparameters that arrive as one-element arrays or
  Tensors become floats, SGD-style first buffers are made from the grad, strided arrays go
  through contiguous copies and repeated params through rounds (decided by explicit tests, not
  by catching an error), then one ``_optim.step``.

The hot path is the shortcut: one itemgetter over the group and one C call, no per-optimizer
Python between them.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np

import fastoptim
from fastoptim._C import _optim
from fastoptim._C._optim import group_step

from ._descriptions import Description
from ._state import _fresh_state, _packed_like
from ._torch_params import _torch_value, bump_versions, call_views, is_torch_tensor, written_by_call
from .optimizer import _device_dtype_check_for_fused, _use_grad_for_differentiable

__all__ = ["grouped_step", "plan", "run"]

_WHEN = {None: 0, "true": 1, "!=": 2, ">": 3}
_PLANS: dict[str, Any] = {}


def _when(d: Description, when: str | None) -> tuple[int, int]:
    """A StateArray.when as the glue's (hyperparameter index, test)."""
    names = [h.name for h in d.hyper]
    if when is None:
        return 0, _WHEN[None]
    for op in ("!=", ">"):
        if op in when:
            return names.index(when.split(op)[0]), _WHEN[op]
    return names.index(when), _WHEN["true"]


def plan(d: Description) -> Any:
    """The glue's ``_optim.Plan`` of a description (made once)."""
    p = _PLANS.get(d.name)
    if p is None:
        p = _PLANS[d.name] = _optim.Plan(
            d.kernel, d.name, len(d.hyper), tuple(s.key for s in d.state),
            tuple(s.list_name for s in d.state), tuple(_when(d, s.when) for s in d.state),
            d.step, d.first_step == "from_grad", tuple(s.scalar for s in d.state))
    return p


def _settings_getter(d: Description):
    """The group's values of the hyperparameters' keys, in order (a tuple setting such as
    ``betas`` once: the glue flattens it)."""
    return itemgetter(*dict.fromkeys(h.group_key for h in d.hyper))


def _scalar(x, name):
    """A float hyperparameter that may arrive as a one-element array or Tensor."""
    if type(x) is float:
        return x
    arr = getattr(x, "_np", x)
    if isinstance(arr, np.ndarray):
        if arr.size != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return float(arr.reshape(-1)[0])
    if isinstance(arr, (int, float, np.number, np.bool_)):
        return float(arr)
    raise TypeError(f"{name} must be a number (or a one-element Tensor), got "
                    f"{type(x).__name__} {x!r}")


_PLAIN = frozenset((float, int, bool))   # numbers the glue takes as they are
_FACTS: dict[str, tuple] = {}


def _facts(d: Description) -> tuple:
    """(plan, hyperparameter names, their labels in torch's messages -- ``betas[0]`` for
    beta1 --, the number of doubles, the names of the call's lists and whether each is
    written) of a description, made once."""
    f = _FACTS.get(d.name)
    if f is None:
        f = _FACTS[d.name] = (
            plan(d), tuple(h.name for h in d.hyper),
            tuple(h.name if h.index is None else f"{h.group_key}[{h.index}]" for h in d.hyper),
            len(d.scalars),
            ("params", "grads", *(s.list_name for s in d.state))
            + (("state_steps",) if d.step else ()),
            (True, False, *(True,) * len(d.state)) + ((True,) if d.step else ()))
    return f


# ---- the classes -----------------------------------------------------------------------------

def grouped_step(d: Description):
    """The ``step`` of the class ``d`` describes: run ``closure`` (with grad enabled) for the
    loss, then update each run of equal groups (``_batched_groups`` over the description's
    group keys). Made per class so that it carries torch's name (``SGD.step``) and costs no
    extra Python frame on every step."""
    kplan = plan(d)
    settings = _settings_getter(d)
    names = d.group_keys
    fused_once = d.fused_check == "once"

    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with fastoptim.enable_grad():
                loss = closure()
        groups = self.param_groups
        if len(groups) > 1:
            groups = self._batched_groups(names)
        caches = self._step_caches          # (Optimizer.__init__ makes the first one)
        if len(groups) == 1:
            group = groups[0]
            if fused_once and group["fused"]:
                self._fused_dtype_check_once(group)
            # Steady state: collected, validated and updated in one C call (False: not done).
            if not group_step(kplan, settings(group), group["params"], self.state, caches[0]):
                _prepare_group(self, group)()
            return loss
        if len(caches) < len(groups):
            caches.extend(_optim.StepCache() for _ in range(len(groups) - len(caches)))
        state = self.state
        # Several runs: every one is collected and validated before any is written, so that
        # an error in a later group leaves the earlier ones as they were.  The steady ones are
        # left pending and run with the last one's kernels (one parallel region in team mode).
        pending, commits = [], []
        last = len(groups) - 1
        for i, (group, cache) in enumerate(zip(groups, caches)):
            if fused_once and group["fused"]:
                self._fused_dtype_check_once(group)
            if i < last:
                if group_step(kplan, settings(group), group["params"], state, cache, False):
                    pending.append(cache)
                else:
                    commits.append(_prepare_group(self, group))
            elif not group_step(kplan, settings(group), group["params"], state, cache, True,
                                tuple(pending)):
                commits.append(_prepare_group(self, group))
                for cache in pending:
                    cache.run()
        for commit in commits:
            commit()
        return loss

    step.__qualname__ = f"{d.cls}.step"
    return _use_grad_for_differentiable(step)


def _hyper(d: Description, group: dict[str, Any]) -> tuple:
    values = [h.read(group) for h in d.hyper]
    fixed = dict(d.fixed)
    if fixed:
        values = [fixed.get(h.name, v) for h, v in zip(d.hyper, values)]
    return tuple(values)


def _noop() -> None:
    return None


def _update_group(opt, group: dict[str, Any]) -> None:
    """The general path of one run of equal groups, validated and then applied."""
    _prepare_group(opt, group)()


def _prepare_group(opt, group: dict[str, Any]):
    """The general path of one run of equal groups, up to the write: torch's ``_init_group``
    (collect the lists, make the lazy state of params that have none -- not yet installed),
    then every check of the kernel call; returns the function that runs it and installs the
    new state.  Nothing is written before that function is called, so a step can prepare every
    group before it writes any.  Reads the instance's description (AdamW runs Adam's step, as
    in torch, under its own name)."""
    d = opt._DESCRIPTION

    params = group["params"]
    present = [s for s in d.state if s.present(group)]
    keys = tuple(s.key for s in present)
    outs: dict[str, list] = {k: [] for k in keys}
    params_with_grad: list = []
    grads: list = []
    steps: list | None = None
    fresh: dict = {}
    if d.first_step == "from_grad":
        # None for a param without a buffer yet: run() makes it from the grad.
        _optim._collect(params, opt.state, 0, keys, False, params_with_grad, grads,
                 tuple(outs.values()))
    else:
        steps = []
        order = {k: n for n, k in enumerate(d.torch_order or keys)}
        made = tuple(sorted(keys, key=lambda k: order.get(k, len(order))))
        init = {s.key: s.init for s in present}
        if d.fill_from is not None:
            fills = (opt.defaults[d.fill_from],) * len(made)
        else:
            fills = tuple(float(group["lr"]) if init[k] == "lr" else init[k] for k in made)

        def make(i):   # the state of every param still without one, packed
            if d.fused_check == "lazy" and group["fused"]:
                for p in params[i:]:
                    if p.grad is not None and not opt.state.get(p):
                        _device_dtype_check_for_fused(p)
            return _fresh_state(opt.state, params, i, made, fills, scalars=d.scalar_keys)

        fresh = opt._collect_lazy(params, (*keys, "step"), (*outs.values(), steps),
                                  params_with_grad, grads, make)
    if not params_with_grad:
        return _noop if not fresh else lambda: opt._install(fresh)
    states = [outs.get(s.key) for s in d.state]
    args, made = _prepare_run(d, _hyper(d, group), params_with_grad, grads, states, steps)
    _call(*args, execute=False)

    def commit():
        _call(*args)
        if made:
            # First step of some params: keep the buffers _prepare_run made, the kernel filled.
            state = opt.state
            for key in keys:
                for p, buf in zip(params_with_grad, outs[key]):
                    state[p][key] = buf
        opt._install(fresh)
    return commit


# ---- the functionals -------------------------------------------------------------------------

def run(d: Description, params, grads, states: list, steps=None, **hyper) -> bool:
    """One kernel call of the optimizer ``d`` describes over one group's lists: ``states``
    every state list of the kernel in its order (None where these settings make none),
    ``steps`` the counters, ``hyper`` every hyperparameter of the description, by name.  A
    description whose first buffer is taken from the grad (SGD) has None entries in its state
    list replaced in place by new buffers (Tensors), flagged for the kernel; returns whether
    any was made."""
    names = _facts(d)[1]
    if len(hyper) != len(names) or not hyper.keys() <= set(names):
        raise TypeError(f"{d.name}: hyperparameters {sorted(hyper)}; expected {list(names)}")
    hyper = tuple([hyper[n] for n in names])
    lists = [params, grads, *states] + ([steps] if d.step else [])
    views = call_views(d.name, _facts(d)[4], lists)
    if views is None:
        args, made = _prepare_run(d, hyper, params, grads, states, steps)
        _call(*args)
        return made
    # torch tensors: the call runs on views of their memory; a buffer made from the grad
    # (None in a state list) goes back to the caller's list as a torch tensor over it; the
    # torch tensors written get their version counters bumped, as torch's ops would
    written = written_by_call(lists, _facts(d)[5])
    vstates = views[2:2 + len(states)]
    args, made = _prepare_run(d, hyper, views[0], views[1], vstates,
                              views[-1] if d.step else steps)
    _call(*args)
    bump_versions(written)
    for orig, new in zip(states, vstates):
        if orig is None or new is None:
            continue
        for i, (a, b) in enumerate(zip(orig, new)):
            if a is None and b is not None:
                orig[i] = _torch_value(b) if is_torch_tensor(params[i]) else b
    return made


def _prepare_run(d: Description, hyper: tuple, params, grads, states: list, steps=None):
    """:func:`run` up to the kernel call: (the arguments of :func:`_call`, whether buffers
    were made from the grad)."""
    kplan, names, labels, ns, list_names, writeable = _facts(d)
    for k in range(ns):
        if type(hyper[k]) not in _PLAIN:     # a one-element array or Tensor lr, betas
            hyper = tuple(v if j >= ns or type(v) in _PLAIN else _scalar(v, labels[j])
                          for j, v in enumerate(hyper))
            break
    named = dict(zip(names, hyper))
    states = [lst if s.present(named) else None for lst, s in zip(states, d.state)]
    is_new = None
    if d.first_step == "from_grad":
        for bufs in states:
            # a list of another length than params is left to the kernel's gather, whose length
            # check names it ("len(momentum_buffers) is 2; expected 1 (= len(params))")
            if bufs is None or len(bufs) != len(params):
                continue
            missing = [i for i, b in enumerate(bufs) if b is None]
            if missing:
                is_new = [False] * len(bufs)
                for i, buf in zip(missing, _packed_like([params[i] for i in missing], None)):
                    is_new[i] = True
                    bufs[i] = buf
    lists = [params, grads, *states] + ([steps] if d.step else [])
    return ((kplan, hyper, lists, writeable, list_names, len(d.state), d.step, is_new),
            is_new is not None)


def _step(kplan, hyper, lists, nstates, has_step, is_new, **kw):
    states = tuple(lists[2:2 + nstates])
    steps = lists[2 + nstates] if has_step else None
    _optim.step(kplan, hyper, lists[0], lists[1], states, steps, is_new, **kw)


def _overlap_error(op, a, i, b, j):
    return ValueError(f"{op}: {a}[{i}] and {b}[{j}] overlap in memory; every array that is "
                      "updated in place must have its own storage")


def _check_copied(op, names, lists, writeable, writebacks):
    """The checks a contiguous copy would hide, on the caller's own arrays: a written array must
    be writeable (its copy always is) and must not share memory with any other array of the
    call (two copies never do).  Only the strided (copied) arrays need it: the kernel's own
    check covers every pair of contiguous ones."""
    copied = {id(orig) for orig, _ in writebacks}
    originals = [(k, i, getattr(x, "_np", x)) for k, lst in enumerate(lists) if lst is not None
                 for i, x in enumerate(lst)]
    originals = [(k, i, x) for k, i, x in originals if isinstance(x, np.ndarray)]
    for k, i, x in originals:
        if not writeable[k] or id(x) not in copied:
            continue
        if not x.flags.writeable:
            raise ValueError(f"{op}: {names[k]}[{i}] is read-only; expected a writeable array "
                             "(it is updated in place)")
        for k2, i2, y in originals:
            # the same array at the same position of another entry is a repeated param
            if (k2, i2) != (k, i) and not (y is x and k2 == k) and np.shares_memory(x, y):
                first, second = sorted([(k, i), (k2, i2)], key=lambda t: (t[1], t[0]))
                raise _overlap_error(op, names[first[0]], first[1], names[second[0]], second[1])


def _rounds(params):
    """``params``' indices split into rounds: the first occurrence of every param, then the
    second, ...; one round (None) when no param repeats.  torch steps a repeated param once per
    occurrence, in order; elements of different params are independent, so running the rounds
    in turn is torch's loop."""
    seen = {}
    rounds = []
    for i, p in enumerate(params):
        r = seen.get(id(p), 0)
        seen[id(p)] = r + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
    return rounds


def _call(kplan, hyper, lists, writeable, names, nstates, has_step, is_new, execute=True):
    """One multi-tensor kernel call over a group's lists (None for an unused list).

    The direct call is the common case.  Two cases are decided here, by explicit tests, before
    anything is written: strided arrays (updated through contiguous copies, written back once
    the kernel has succeeded; ``_check_copied`` first), and params repeated in the group
    (``_rounds``: every check runs over the whole call, each round's overlap check too, then
    the rounds run).  A call that is wrong raises the kernel's message, once.  With
    ``execute=False`` every check runs and nothing is written.
    """
    params = lists[0]
    copy = _optim._needs_copy(lists)
    rounds = None
    if isinstance(params, (list, tuple)) and len(set(map(id, params))) != len(params):
        rounds = _rounds(params)
    if not copy and rounds is None:
        _step(kplan, hyper, lists, nstates, has_step, is_new, run=execute)
        return
    writebacks: list = []
    if copy:
        arrays = [None if lst is None else _optim._unwrap(lst, w, writebacks)
                  for lst, w in zip(lists, writeable)]
        _check_copied(kplan.op, names, lists, writeable, writebacks)
    else:
        arrays = list(lists)
    if rounds is None:
        _step(kplan, hyper, arrays, nstates, has_step, is_new, run=execute)
    else:
        _step(kplan, hyper, arrays, nstates, has_step, is_new, run=False, overlaps=False)
        calls = [([None if lst is None else [lst[i] for i in r] for lst in arrays],
                  None if is_new is None else [is_new[i] for i in r]) for r in rounds]
        for sub, new in calls:
            _step(kplan, hyper, sub, nstates, has_step, new, run=False)
        if not execute:
            return
        for sub, new in calls:
            _step(kplan, hyper, sub, nstates, has_step, new)
    if not execute:
        return
    for arr, tmp in writebacks:   # only once the kernel has succeeded
        arr[...] = tmp
