"""Learning-rate schedulers with torch 2.13's behaviour: every class of
``torch.optim.lr_scheduler``.

Schedulers only rewrite ``group['lr']`` (and, for the cyclic ones, ``group['momentum']`` or
``group['betas']``) between steps, so they are bookkeeping, written in torch's order of
operations so that the float64 sequences are torch's to the last bit.  What users rely on, and
is kept exactly: the chainable form (the new lr is computed from the current ``group['lr']``, so
schedulers compose) and the closed form (``step(epoch)``, with torch's deprecation warning),
``initial_lr``/``base_lrs`` and the resume rules of ``last_epoch=N``, ``_step_count``,
``get_last_lr()``, the state dicts (every attribute but the optimizer, with torch's exceptions
for callables), tensor learning rates (filled in place), and the warnings, with torch's texts so
that user warning filters keep working.

A scheduler never asks which optimizer it drives: the cyclic schedulers cycle ``betas`` when the
optimizer's defaults have them and ``momentum`` otherwise, as torch does.

Beyond torch: a param group added to the optimizer after the scheduler was created is followed
(torch ignores it or fails with IndexError, pytorch issues #79888, #53712, #20997): at the next
step its lr becomes its ``initial_lr`` and base lr, and per-group settings given once for all
groups (one lambda, one ``max_lr``, ...) extend to it.  ``ReduceLROnPlateau.step`` takes a
fastoptim or torch 0-dim tensor or a numpy scalar as the metric.

The hot path (``step``) is one pass over the groups: compute, write back, record ``_last_lr``.
A training loop may step a scheduler every iteration, so the steady-state ``step`` of most
schedulers is a C function (``fastoptim/_C/_optim_lr.pxi``) that declines to the general path
(``LRScheduler.step``) for anything unusual: the schedulers whose rule is
``group['lr'] * factor`` (StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR,
PolynomialLR; ``_UniformLR``) state only the factor, which the C step computes from the same
attributes; CosineAnnealingLR's recurrence, OneCycleLR's annealing, CyclicLR's cycle and
CosineAnnealingWarmRestarts' periods (its chainable and ``step(epoch)`` forms) run there in
double arithmetic in Python's order of operations, which is Python float arithmetic bit for
bit; LambdaLR and MultiplicativeLR call their lambdas from the C loop, CyclicLR its scale
function (unless it is the 'triangular' or 'triangular2' one, computed in C).  A class names in
``_C_RULE`` the methods its C step replicates; a subclass overriding one of them gets the
Python path.  The Python methods (``get_lr``, ``_chain_factor``, ``CyclicLR._scaled``,
``CosineAnnealingWarmRestarts._step_rule``) stay the rule's statement and its general path.
ReduceLROnPlateau (a float or int metric) and SWALR step in C too; the composites step in
Python, through their children's C steps (ChainedScheduler's ``_last_lr`` is read in C).
"""

from __future__ import annotations

import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter
from functools import partial, wraps
from typing import Any, Callable, Iterable, Sequence
from weakref import ref

import numpy as np

from fastoptim import Tensor
from fastoptim._C._optim import (
    UNIFORM_RULES,
    _anneal_groups,
    _cosine_step,
    _cyclic_step,
    _float_lrs,
    _lambda_step,
    _one_cycle_step,
    _plateau_step,
    _set_cyclic_scale_fns,
    _set_general_lr_step,
    _set_momenta,
    _uniform_step,
    _warm_restarts_step,
    _write_float_lrs,
)

from .optimizer import Optimizer, _to_scalar

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
    "LRScheduler",
]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)

_HOW_TO = "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"


def _copy(value: Any) -> Any:
    # A Tensor lr must never alias the optimizer's: schedulers hand out copies.
    return value.clone() if isinstance(value, Tensor) else value


def _is_tensor(value: Any) -> bool:
    # A fastoptim Tensor, or a torch tensor (recognised without importing torch).
    return isinstance(value, Tensor) or (hasattr(value, "fill_") and hasattr(value, "clone"))


def _group_values(optimizer: Optimizer, key: str) -> list:
    """``[group[key] ...]``, tensors cloned (torch's ``_param_groups_val_list``)."""
    return [
        v.clone() if isinstance(v, Tensor) else v
        for v in [group[key] for group in optimizer.param_groups]
    ]


def _lr_values(optimizer: Optimizer) -> list:
    """``_group_values(optimizer, "lr")``, at C level when every lr is a Python float."""
    groups = optimizer.param_groups
    last = _float_lrs(groups) if type(groups) is list else None
    return last if last is not None else _group_values(optimizer, "lr")


def _set_group_value(group: dict, key: str, value: Any) -> None:
    # A Tensor value is filled in place, so that anything holding it sees the new value.
    current = group[key]
    if isinstance(current, Tensor):
        current.fill_(_to_scalar(value))
    else:
        group[key] = value


def _format_param(name: str, optimizer: Optimizer, param: Any) -> list:
    """One value per param group: a list/tuple of that length, or a value for all groups."""
    if isinstance(param, (list, tuple)):
        if len(param) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has "
                f"{len(optimizer.param_groups)}."
            )
    else:
        param = [param] * len(optimizer.param_groups)
    return list(map(_copy, param))


def _extend_shared(owner: Any, values: list, n: int, name: str) -> None:
    """Extend a per-group list to ``n`` groups for groups added after the scheduler was made.

    Only a setting given once for all groups (every entry the same) extends: a per-group list
    says nothing about a new group, so that raises."""
    if len(values) >= n:
        return
    first = values[0] if values else None
    if not values or any(v is not first and not _same_value(v, first) for v in values):
        raise ValueError(
            f"{type(owner).__name__}: param group {len(values)} was added to the optimizer after "
            f"the scheduler was created, and {name} was given per param group; set "
            f"{name} for the new group (one value for every group is extended to new groups)"
        )
    values.extend(_copy(first) for _ in range(n - len(values)))


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a value without a plain == is simply not shared
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)) or isinstance(
        value, Tensor)


def _is_lr_list(value: Any) -> bool:
    return isinstance(value, list) and all(map(_is_number, value))


class LRScheduler:
    r"""Base class of the learning-rate schedulers.

    Subclasses implement :meth:`get_lr` (the chainable rule, from the current ``group['lr']``)
    and optionally ``_get_closed_form_lr`` (from ``base_lrs``, used by the deprecated
    ``step(epoch)``).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        last_epoch (int): index of the last epoch; keep -1 except when resuming.

    Constructing a scheduler writes ``group['lr']``: when resuming, build the scheduler
    before calling ``optimizer.load_state_dict``.
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False
    # A class whose ``step`` is a C steady-state step (fastoptim/_C/_optim_lr.pxi) names in
    # ``_C_RULE`` the methods that state the rule the C step replicates; ``_fast_step`` (which
    # the C step reads) is True for it and for a subclass that overrides none of them.
    _C_RULE: tuple[str, ...] = ()
    _fast_step = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = next((c for c in cls.__mro__ if "_C_RULE" in vars(c)), LRScheduler)
        cls._fast_step = bool(owner._C_RULE) and all(
            getattr(cls, name) is getattr(owner, name) for name in owner._C_RULE)

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming scheduler with last_epoch >= 0.\n"
                        "This typically happens when:\n"
                        "1. You're trying to resume training from a checkpoint but haven't "
                        "properly loaded the optimizer state\n"
                        "2. You're using last_epoch >= 0 for a fresh training run "
                        "(not recommended)"
                    )
        self.base_lrs: list = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch

        self._track_optimizer_step(optimizer)
        self._initial_step()

    @staticmethod
    def _track_optimizer_step(opt: Optimizer) -> None:
        """Mark ``opt._opt_called`` on each ``opt.step()`` to detect a wrong call order.

        The per-instance wrapper holds the optimizer weakly: a strong reference would make
        optimizer -> wrapper -> optimizer a cycle that only the garbage collector could free.
        """
        if hasattr(opt.step, "_wrapped_by_lr_sched"):
            return
        opt_ref = ref(opt)
        func = opt.step.__func__

        @wraps(func)
        def wrapper(*args, **kwargs):
            o = opt_ref()
            o._opt_called = True
            return func.__get__(o, o.__class__)(*args, **kwargs)

        wrapper._wrapped_by_lr_sched = True
        opt.step = wrapper

    def _initial_step(self) -> None:
        """Move ``last_epoch`` from -1 to 0 and write the epoch-0 lr into the optimizer."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (whose own state dict carries the lr)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    # What a loaded state dict may hold under the keys this class's state_dict writes (other
    # keys, such as a subclass's own attributes, are restored as they are).
    _STATE_CHECKS: dict[str, tuple[str, Any]] = {
        "last_epoch": ("an int", lambda v: _is_int(v)),
        "_step_count": ("an int >= 0", lambda v: _is_int(v) and v >= 0),
        "base_lrs": ("a list of numbers or Tensors", lambda v: _is_lr_list(v)),
        "_last_lr": ("a list of numbers or Tensors", lambda v: _is_lr_list(v)),
        "_is_initial": ("a bool", lambda v: isinstance(v, bool)),
        "_get_lr_called_within_step": ("a bool", lambda v: isinstance(v, bool)),
    }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes; the optimizer's lr is left as it is until the next step.

        Checked first, then applied at once (stricter than torch, which updates attribute by
        attribute): a dict whose known entries have the wrong type, or that names the
        optimizer, raises and leaves the scheduler as it was."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"{type(self).__name__}.load_state_dict expects a dict (from "
                            f"state_dict()), but got {type(state_dict).__name__}")
        for key, value in state_dict.items():
            if not isinstance(key, str):
                raise TypeError(f"scheduler state dict keys are attribute names, but got "
                                f"{key!r}")
            if key == "optimizer":
                raise ValueError("scheduler state dict must not hold 'optimizer' (state_dict() "
                                 "leaves it out; the scheduler keeps its own optimizer)")
            check = self._STATE_CHECKS.get(key)
            if check is not None and not check[1](value):
                raise TypeError(f"scheduler state dict entry {key!r} must be {check[0]}, but "
                                f"got {value!r}")
        self.__dict__.update(state_dict)

    def get_last_lr(self) -> list:
        """The learning rates set by the last ``step()``, one per param group (copies)."""
        return self._last_lr

    def get_lr(self) -> list:
        """The next learning rates (chainable form); call through ``step()`` only."""
        raise NotImplementedError

    def _warn_if_not_in_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, "
                "please use `get_last_lr()`.",
                UserWarning,
                stacklevel=3,
            )

    def _follow_new_groups(self) -> None:
        """Adopt param groups added to the optimizer since the last step (beyond torch): the
        group's lr becomes its ``initial_lr`` (unless it has one) and its base lr."""
        groups = self.optimizer.param_groups
        n_old = len(self.base_lrs)
        if len(groups) < n_old:
            raise ValueError(
                f"{type(self).__name__}: the optimizer has {len(groups)} param groups, fewer "
                f"than the {n_old} the scheduler was created with"
            )
        for group in groups[n_old:]:
            group.setdefault("initial_lr", _copy(group["lr"]))
            self.base_lrs.append(_copy(group["initial_lr"]))
        self._extend_group_settings(n_old)

    def _extend_group_settings(self, n_old: int) -> None:
        """Hook: extend per-group settings to the groups from ``n_old`` on."""

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch. Call it after ``optimizer.step()``."""
        if self._step_count == 1:
            if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
                warnings.warn(
                    "Seems like `optimizer.step()` has been overridden after learning rate "
                    "scheduler initialization. Please, make sure to call `optimizer.step()` "
                    f"before `lr_scheduler.step()`. See more details at {_HOW_TO}",
                    UserWarning,
                    stacklevel=2,
                )
            elif not getattr(self.optimizer, "_opt_called", False):
                warnings.warn(
                    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
                    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
                    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
                    "will result in PyTorch skipping the first value of the learning rate "
                    f"schedule. See more details at {_HOW_TO}",
                    UserWarning,
                    stacklevel=2,
                )
        self._step_count += 1

        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            self._follow_new_groups()
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                if hasattr(self, "_get_closed_form_lr"):
                    values = self._get_closed_form_lr()
                else:
                    values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        self._last_lr: list = _write_lrs(groups, values)


def _write_lrs(groups: list, values: list) -> list:
    """Set each group's lr (a Tensor lr in place) and return copies of the new lrs."""
    last = _write_float_lrs(groups, values)   # all floats: at C level
    if last is not None:
        return last
    last = []
    for group, lr in zip(groups, values, strict=True):
        current = group["lr"]
        if isinstance(current, Tensor):
            current.fill_(_to_scalar(lr))
            last.append(current.clone())
        else:
            group["lr"] = lr
            last.append(lr.clone() if isinstance(lr, Tensor) else lr)
    return last


_set_general_lr_step(LRScheduler.step, _write_lrs)


class _LRScheduler(LRScheduler):
    """Backward-compatible alias kept by torch."""


class _UniformLR(LRScheduler):
    """A scheduler whose chainable rule scales every group's lr by one factor,
    ``_chain_factor()`` (None: unchanged), as torch's ``group['lr'] * factor``.

    That shape lets the steady-state ``step()`` run at C level
    (``_optim._uniform_lr_step``: one C loop over the groups); it declines, and the general
    path runs, for anything unusual (Tensor lrs, the first step, a subclass that overrides
    ``get_lr``, ``step`` or ``_update_lr``).
    """

    _C_RULE = ("get_lr", "step", "_update_lr")
    # How the C step finds the factor: "call" ``_chain_factor()``, or the rule of StepLR,
    # MultiStepLR, ExponentialLR, ConstantLR, LinearLR or PolynomialLR computed in C from the
    # same attributes (no Python frame); a subclass that overrides ``_chain_factor`` goes back
    # to "call".
    _factor_rule = UNIFORM_RULES["call"]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = next(c for c in cls.__mro__ if "_factor_rule" in vars(c))
        if cls._chain_factor is not owner._chain_factor:
            cls._factor_rule = UNIFORM_RULES["call"]

    def _chain_factor(self) -> Any:
        raise NotImplementedError

    def get_lr(self) -> list:
        """``group['lr'] * _chain_factor()`` for each group (copies when the factor is None)."""
        self._warn_if_not_in_step()
        factor = self._chain_factor()
        if factor is None:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    # Advance one epoch (call it after ``optimizer.step()``): a C function, whose general path
    # is LRScheduler.step.
    step = _uniform_step


def _callables_state(lr_lambdas: list) -> list:
    # torch keeps a callable object's __dict__ and nothing of a plain function or lambda.
    return [
        None if isinstance(fn, types.FunctionType) else fn.__dict__.copy() for fn in lr_lambdas
    ]


class _LambdaScheduler(LRScheduler):
    """LambdaLR and MultiplicativeLR: one callable per group, state dicts without functions."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        if not isinstance(lr_lambda, (list, tuple)):
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        else:
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(
                    f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        self._check_lambdas()
        super().__init__(optimizer, last_epoch)

    def _check_lambdas(self) -> None:
        pass

    # Advance one epoch (call it after ``optimizer.step()``): a C function calling the lambdas,
    # whose general path is LRScheduler.step.
    step = _lambda_step

    def _extend_group_settings(self, n_old: int) -> None:
        _extend_shared(self, self.lr_lambdas, len(self.optimizer.param_groups), "lr_lambda")

    def state_dict(self) -> dict[str, Any]:
        """The attributes, with ``lr_lambdas`` as each callable object's ``__dict__`` (None for
        plain functions and lambdas, which are not saved)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = _callables_state(self.lr_lambdas)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes and each callable object's ``__dict__``."""
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        state_dict["lr_lambdas"] = lr_lambdas  # the caller's dict is left as it was (#32756)
        for idx, fn in enumerate(lr_lambdas):
            if fn is not None:
                self.lr_lambdas[idx].__dict__.update(fn)


class LambdaLR(_LambdaScheduler):
    """Set each group's lr to its initial lr times ``lr_lambda(epoch)`` (not chainable).

    Args:
        optimizer (Optimizer): wrapped optimizer.
        lr_lambda (function or list): the factor as a function of the epoch, or one per group.
        last_epoch (int): index of the last epoch (default: -1).

    Example:
        >>> scheduler = LambdaLR(optimizer, lr_lambda=lambda epoch: 0.95**epoch)
    """

    _C_RULE = ("get_lr", "step", "_update_lr")
    _multiplicative = False     # the C step's rule: base_lr * lmbda(epoch)

    def get_lr(self) -> list:
        """``base_lr * lmbda(last_epoch)`` for each group."""
        self._warn_if_not_in_step()
        return [
            base_lr * lmbda(self.last_epoch)
            for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]


class MultiplicativeLR(_LambdaScheduler):
    """Multiply each group's lr by ``lr_lambda(epoch)`` at every step after the first.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        lr_lambda (function or list): the factor as a function of the epoch, or one per group.
        last_epoch (int): index of the last epoch (default: -1).
    """

    _C_RULE = ("get_lr", "step", "_update_lr")
    _multiplicative = True      # the C step's rule: group['lr'] * lmbda(epoch)

    def _check_lambdas(self) -> None:
        for lr_lambda in self.lr_lambdas:
            if not callable(lr_lambda):
                raise TypeError(
                    f"lr_lambda should be a function, but got {type(lr_lambda).__name__}"
                )

    def get_lr(self) -> list:
        """``group['lr'] * lmbda(last_epoch)``, except in the constructor's initial step."""
        self._warn_if_not_in_step()
        if not self._is_initial:
            return [
                group["lr"] * lmbda(self.last_epoch)
                for lmbda, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)
            ]
        return _group_values(self.optimizer, "lr")


class StepLR(_UniformLR):
    """Multiply each group's lr by ``gamma`` every ``step_size`` epochs.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        step_size (int): period of the decay, in epochs.
        gamma (float): multiplicative factor (default: 0.1).
        last_epoch (int): index of the last epoch (default: -1).

    Example:
        >>> scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
        >>> for epoch in range(100):
        ...     train(...); scheduler.step()
    """

    _STATE_CHECKS = {**LRScheduler._STATE_CHECKS,
                     "step_size": ("an int > 0", lambda v: _is_int(v) and v > 0),
                     "gamma": ("a number", _is_number)}
    _factor_rule = UNIFORM_RULES["step"]

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _chain_factor(self) -> Any:
        """``gamma`` at every non-zero multiple of ``step_size``."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return None
        return self.gamma

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class MultiStepLR(_UniformLR):
    """Multiply each group's lr by ``gamma`` at each milestone (by ``gamma**k`` at a milestone
    listed k times).

    Args:
        optimizer (Optimizer): wrapped optimizer.
        milestones (list): epoch indices, increasing.
        gamma (float): multiplicative factor (default: 0.1).
        last_epoch (int): index of the last epoch (default: -1).
    """

    _factor_rule = UNIFORM_RULES["multistep"]

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _chain_factor(self) -> Any:
        """``gamma ** count`` when the epoch is a milestone (listed count times)."""
        if self.last_epoch not in self.milestones:
            return None
        return self.gamma ** self.milestones[self.last_epoch]

    def _get_closed_form_lr(self) -> list:
        milestones = sorted(self.milestones.elements())
        return [
            base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
            for base_lr in self.base_lrs
        ]


class ConstantLR(_UniformLR):
    """Multiply each group's lr by ``factor`` until epoch ``total_iters``.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        factor (float): the factor, in [0, 1] (default: 1/3).
        total_iters (int): epochs the factor applies for (default: 5).
        last_epoch (int): index of the last epoch (default: -1).
    """

    _factor_rule = UNIFORM_RULES["constant"]

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _chain_factor(self) -> Any:
        """``factor`` at epoch 0 and ``1 / factor`` at ``total_iters``."""
        if self.last_epoch == 0:
            return self.factor
        if self.last_epoch != self.total_iters:
            return None
        return 1.0 / self.factor

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(_UniformLR):
    """Scale each group's lr by a factor moving linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        start_factor (float): factor at epoch 0, in (0, 1] (default: 1/3).
        end_factor (float): factor from ``total_iters`` on, in [0, 1] (default: 1.0).
        total_iters (int): epochs of the ramp (default: 5).
        last_epoch (int): index of the last epoch (default: -1).
    """

    _factor_rule = UNIFORM_RULES["linear"]

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or "
                "equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _chain_factor(self) -> Any:
        """The ratio of consecutive factors (``start_factor`` at epoch 0)."""
        if self.last_epoch == 0:
            return self.start_factor
        if self._is_initial or self.last_epoch > self.total_iters:
            return None
        delta = self.end_factor - self.start_factor
        return 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr
            * (
                self.start_factor
                + (self.end_factor - self.start_factor)
                * min(self.total_iters, self.last_epoch)
                / self.total_iters
            )
            for base_lr in self.base_lrs
        ]


class ExponentialLR(_UniformLR):
    """Multiply each group's lr by ``gamma`` every epoch.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        gamma (float): multiplicative factor.
        last_epoch (int): index of the last epoch (default: -1).
    """

    _STATE_CHECKS = {**LRScheduler._STATE_CHECKS, "gamma": ("a number", _is_number)}
    _factor_rule = UNIFORM_RULES["exponential"]

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _chain_factor(self) -> Any:
        """``gamma`` (None in the constructor's initial step)."""
        # When resuming, the constructor's step must not move the lr one epoch ahead.
        if self._is_initial:
            return None
        return self.gamma

    def _get_closed_form_lr(self) -> list:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


def _check_composed(owner: Any, optimizer: Any, schedulers: Sequence) -> None:
    # SequentialLR's and ChainedScheduler's checks, with torch's messages.
    name = type(owner).__name__
    for idx, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{name} at index {idx} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{name} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {idx} in the given schedulers sequence."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{name} expects all schedulers to belong to the same optimizer, but "
                f"got scheduler {type(scheduler).__name__} at index {idx} has "
                f"{scheduler.optimizer}, which is different from {type(optimizer).__name__}."
            )


class _ComposedState:
    """State dicts of a scheduler made of schedulers: the children's state dicts nested."""

    def state_dict(self) -> dict[str, Any]:
        """The attributes, with ``_schedulers`` as the children's state dicts."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes and each child's state."""
        schedulers = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        state_dict["_schedulers"] = schedulers  # the caller's dict is left as it was (#32756)
        for idx, s in enumerate(schedulers):
            self._schedulers[idx].load_state_dict(s)


class SequentialLR(_ComposedState, LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i - 1]`` on (the usual warmup-then-decay).

    Args:
        optimizer (Optimizer): wrapped optimizer.
        schedulers (list): the schedulers, in order.
        milestones (list): the epochs at which the next scheduler takes over.
        last_epoch (int): index of the last epoch (default: -1).

    Example:
        >>> warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        >>> decay = CosineAnnealingLR(opt, T_max=95)
        >>> scheduler = SequentialLR(opt, schedulers=[warmup, decay], milestones=[5])
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list,
        milestones: list,
        last_epoch: int = -1,
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{type(self).__name__} expects at least one scheduler, but got no scheduler."
            )
        _check_composed(self, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the number of milestones to be equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        # Back to the initial lrs, and undo the constructors' steps of the children.
        for group in self.optimizer.param_groups:
            _set_group_value(group, "lr", group["initial_lr"])
        self.recursive_undo()
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def recursive_undo(self, sched: Any = None) -> None:
        """Step back ``last_epoch`` of every (nested) child by one."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        """Step the scheduler in charge of this epoch (restarting it at its milestone)."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class PolynomialLR(_UniformLR):
    """Decay each group's lr as ``base_lr * (1 - epoch / total_iters) ** power``.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        total_iters (int): epochs of the decay (default: 5).
        power (float): the power of the polynomial (default: 1.0).
        last_epoch (int): index of the last epoch (default: -1).
    """

    _factor_rule = UNIFORM_RULES["polynomial"]

    def __init__(
        self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _chain_factor(self) -> Any:
        """The ratio of consecutive decay factors."""
        if self._is_initial or self.last_epoch > self.total_iters:
            return None
        return (
            (1.0 - self.last_epoch / self.total_iters)
            / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
            ** self.power
            for base_lr in self.base_lrs
        ]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base lr to ``eta_min`` over ``T_max`` epochs (SGDR without
    restarts; past ``T_max`` the chainable form climbs back, as torch's).

    Args:
        optimizer (Optimizer): wrapped optimizer.
        T_max (int): half period, in epochs.
        eta_min (float): the minimum lr (default: 0.0).
        last_epoch (int): index of the last epoch (default: -1).
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    # Advance one epoch (call it after ``optimizer.step()``): a C function (the recurrence of
    # get_lr in C doubles), whose general path is LRScheduler.step.
    _C_RULE = ("get_lr", "step", "_update_lr")
    step = _cosine_step

    def get_lr(self) -> list:
        """torch's recurrence (closed form on the first step after resuming)."""
        self._warn_if_not_in_step()
        groups = self.optimizer.param_groups
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        if self._step_count == 1 and self.last_epoch > 0:
            return [
                self.eta_min
                + (base_lr - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max))
                / 2
                for base_lr, _ in zip(self.base_lrs, groups, strict=True)
            ]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [
                group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups, strict=True)
            ]
        ratio = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / (
            1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)
        )
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]

    def _get_closed_form_lr(self) -> list:
        return [
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class ChainedScheduler(_ComposedState, LRScheduler):
    """Step every scheduler of a list at each ``step()``, in order (their effects compose).

    Args:
        schedulers (sequence): the chained schedulers.
        optimizer (Optimizer, optional): their optimizer (default: the first one's).
    """

    def __init__(self, schedulers: Sequence, optimizer: Optimizer | None = None) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{type(self).__name__} expects at least one scheduler to be chained, but got "
                "no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_composed(self, optimizer, schedulers)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = _group_values(self._schedulers[-1].optimizer, "lr")

    def step(self) -> None:  # type: ignore[override]
        """Step each scheduler once."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _lr_values(self._schedulers[-1].optimizer)


def _metric_value(metrics: Any) -> float:
    """The metric as a float: a number, or a one-element fastoptim/torch tensor or numpy value
    (beyond torch, which takes whatever ``float()`` takes)."""
    if isinstance(metrics, (float, int)):
        return float(metrics)
    if isinstance(metrics, (np.ndarray, np.generic, Tensor)) or _is_tensor(metrics):
        size = metrics.numel() if callable(getattr(metrics, "numel", None)) else metrics.size
        if size != 1:
            raise ValueError(
                "ReduceLROnPlateau.step: metrics must be a number or a tensor with one element, "
                f"got {type(metrics).__name__} of shape {tuple(metrics.shape)}"
            )
        return float(metrics.item())
    return float(metrics)


class ReduceLROnPlateau(LRScheduler):
    """Multiply each group's lr by ``factor`` when a metric has stopped improving for
    ``patience`` epochs.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        mode (str): ``'min'`` (lower is better) or ``'max'`` (default: ``'min'``).
        factor (float): ``new_lr = lr * factor``, < 1 (default: 0.1).
        patience (int): bad epochs tolerated before a reduction (default: 10).
        threshold (float): what counts as an improvement (default: 1e-4).
        threshold_mode (str): ``'rel'`` or ``'abs'`` (default: ``'rel'``).
        cooldown (int): epochs to wait after a reduction (default: 0).
        min_lr (float or list): lower bound of the lr, or one per group (default: 0).
        eps (float): a reduction smaller than this is skipped (default: 1e-8).

    ``step(metrics)`` takes a number, or (beyond torch) a fastoptim or torch 0-dim tensor or a
    numpy scalar.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list | float = 0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = factor
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _group_values(self.optimizer, "lr")
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    # Record one epoch's metric and reduce the lrs if it has plateaued: a C function (the
    # comparisons and the counters, each group's reduction in C doubles) for a float or int
    # metric, whose general path is ``_step_rule``.
    _C_RULE = ("step", "_step_rule", "_is_better", "_reduce_lr", "in_cooldown")
    step = _plateau_step

    def _step_rule(self, metrics: Any, epoch: int | None = None) -> None:
        """Record one epoch's metric and reduce the lrs if it has plateaued."""
        current = _metric_value(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch

        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # ignore any bad epochs in cooldown
        if self.num_bad_epochs > self.patience:
            self._reduce_lr(epoch)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _lr_values(self.optimizer)

    def _reduce_lr(self, epoch: int) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    "The number of param groups in the `optimizer` "
                    f"({len(self.optimizer.param_groups)}) differs from when `ReduceLROnPlateau` "
                    f"was initialized ({len(self.min_lrs)}), usually due to a new param group "
                    "being added to the optimizer. Please modify the `min_lrs` field to match "
                    "the length of the `optimizer` param groups."
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for i, param_group in enumerate(self.optimizer.param_groups):
            old_lr = float(param_group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                _set_group_value(param_group, "lr", new_lr)

    @property
    def in_cooldown(self) -> bool:
        """Whether the scheduler is waiting after a reduction."""
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        if self.mode == "max" and self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in {"min", "max"}:
            raise ValueError("mode " + mode + " is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError("threshold mode " + threshold_mode + " is unknown!")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes."""
        self.__dict__.update(state_dict)
        self._init_is_better(
            mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode
        )


def _momentum_key(optimizer: Optimizer) -> bool:
    """True when the optimizer's momentum is ``betas[0]`` (the Adam family), False when it is
    ``momentum``; raises when it has neither.  Decided by the defaults, never by the class."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(
            "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
        )
    return "betas" in optimizer.defaults


def _set_momentum(group: dict, use_beta1: bool, momentum: Any) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


class CyclicLR(LRScheduler):
    """Cycle each group's lr between ``base_lr`` and ``max_lr`` (and the momentum the other
    way), per batch (Smith, "Cyclical Learning Rates for Training Neural Networks").

    Args:
        optimizer (Optimizer): wrapped optimizer.
        base_lr (float or list): lower lr bound, per group or for all.
        max_lr (float or list): upper lr bound, per group or for all.
        step_size_up (int): iterations of the rising half (default: 2000).
        step_size_down (int): iterations of the falling half (default: ``step_size_up``).
        mode (str): ``'triangular'``, ``'triangular2'`` or ``'exp_range'``.
        gamma (float): ``exp_range``'s factor per iteration (default: 1.0).
        scale_fn (callable): custom amplitude scaling (overrides ``mode``).
        scale_mode (str): ``'cycle'`` or ``'iterations'``: what ``scale_fn`` is given.
        cycle_momentum (bool): cycle ``momentum`` or ``betas[0]`` too (default: True).
        base_momentum, max_momentum (float or list): the momentum bounds.
        last_epoch (int): index of the last batch (default: -1).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list,
        max_lr: float | list,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list = 0.8,
        max_momentum: float | list = 0.9,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        base_lrs = _format_param("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                _set_group_value(group, "lr", lr)

        self.max_lrs = _format_param("max_lr", optimizer, max_lr)

        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size

        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")

        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer)
            self.base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            self.max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_momentum, b_momentum, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups, strict=True
                ):
                    _set_momentum(group, self.use_beta1, m_momentum)
                    group["max_momentum"] = m_momentum
                    group["base_momentum"] = b_momentum

        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _extend_group_settings(self, n_old: int) -> None:
        groups = self.optimizer.param_groups
        _extend_shared(self, self.max_lrs, len(groups), "max_lr")
        if self.cycle_momentum:
            _extend_shared(self, self.base_momentums, len(groups), "base_momentum")
            _extend_shared(self, self.max_momentums, len(groups), "max_momentum")
            for group, b, m in zip(groups[n_old:], self.base_momentums[n_old:],
                                   self.max_momentums[n_old:]):
                group.setdefault("max_momentum", m)
                group.setdefault("base_momentum", b)

    def _init_scale_fn(self) -> None:
        if self._scale_fn_custom is not None:
            return
        if self.mode == "triangular":
            self._scale_fn_ref = self._triangular_scale_fn
            self.scale_mode = "cycle"
        elif self.mode == "triangular2":
            self._scale_fn_ref = self._triangular2_scale_fn
            self.scale_mode = "cycle"
        elif self.mode == "exp_range":
            self._scale_fn_ref = partial(self._exp_range_scale_fn, self.gamma)
            self.scale_mode = "iterations"

    def scale_fn(self, x: Any) -> float:
        """The amplitude scale at cycle (or iteration) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return self._scale_fn_ref(x)

    @staticmethod
    def _triangular_scale_fn(x: float) -> float:
        return 1.0

    @staticmethod
    def _triangular2_scale_fn(x: float) -> float:
        return 1 / (2.0 ** (x - 1))

    @staticmethod
    def _exp_range_scale_fn(gamma: float, x: float) -> float:
        return gamma**x

    def get_lr(self) -> list:
        """The lr (and momentum, written into the groups) at iteration ``last_epoch``."""
        self._warn_if_not_in_step()
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        return self._scaled(scale_factor, scale)

    def _scaled(self, scale_factor: float, scale: Any) -> list:
        """The lrs at ``scale_factor`` (the position in the cycle) and ``scale`` (the
        amplitude); the momenta are written into the groups."""
        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True):
            base_height = (max_lr - base_lr) * scale_factor
            lrs.append(base_lr + base_height * scale)

        if self.cycle_momentum:
            momentums = []
            for base_momentum, max_momentum in zip(
                self.base_momentums, self.max_momentums, strict=True
            ):
                base_height = (max_momentum - base_momentum) * scale_factor
                momentums.append(max_momentum - base_height * scale)
            for group, momentum in zip(self.optimizer.param_groups, momentums, strict=True):
                _set_momentum(group, self.use_beta1, momentum)
        return lrs

    # Advance one batch (call it after ``optimizer.step()``): a C function (the 'triangular'
    # and 'triangular2' scales computed in C, any other scale function called), whose general
    # path is LRScheduler.step.
    _C_RULE = ("get_lr", "_scaled", "scale_fn", "step", "_update_lr")
    step = _cyclic_step

    def state_dict(self) -> dict[str, Any]:
        """The attributes without the scale functions (a custom callable object's
        ``__dict__`` is kept, as torch)."""
        state = super().state_dict()
        state.pop("_scale_fn_ref", None)
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = None
        if fn is not None and not isinstance(fn, types.FunctionType):
            state["_scale_fn_custom"] = fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes and rebuild the scale function."""
        fn = state_dict.pop("_scale_fn_custom")
        super().load_state_dict(state_dict)
        if fn is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._init_scale_fn()


_set_cyclic_scale_fns(CyclicLR._triangular_scale_fn, CyclicLR._triangular2_scale_fn)


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing with warm restarts every ``T_i`` epochs, ``T_i`` growing by ``T_mult``
    (SGDR); ``step`` accepts fractional epochs.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        T_0 (int): epochs until the first restart.
        T_mult (int): factor by which ``T_i`` grows after a restart (default: 1).
        eta_min (float): the minimum lr (default: 0.0).
        last_epoch (int): index of the last epoch (default: -1).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(
                f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}"
            )
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        """The closed form at ``T_cur`` within the current period ``T_i``."""
        self._warn_if_not_in_step()
        return [
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base_lr in self.base_lrs
        ]

    # Advance one epoch, or go to ``epoch`` (which may be fractional): a C function (the
    # period's arithmetic in Python's order, in C doubles), whose general path is _step_rule.
    _C_RULE = ("get_lr", "step", "_step_rule")
    step = _warm_restarts_step

    def _step_rule(self, epoch: float | None = None) -> None:
        """Advance one epoch, or go to ``epoch`` (which may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0

        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)

        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            self._follow_new_groups()
        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        self._last_lr = _write_lrs(groups, values)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, "Super-Convergence"): the lr rises from
    ``max_lr / div_factor`` to ``max_lr`` and anneals to ``initial_lr / final_div_factor``
    over ``total_steps`` batches, the momentum the other way.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        max_lr (float or list): peak lr, per group or for all.
        total_steps (int): steps of the cycle (or give ``epochs`` and ``steps_per_epoch``).
        epochs, steps_per_epoch (int): ``total_steps = epochs * steps_per_epoch``.
        pct_start (float): fraction of the cycle spent rising (default: 0.3).
        anneal_strategy (str): ``'cos'`` or ``'linear'`` (default: ``'cos'``).
        cycle_momentum (bool): cycle ``momentum`` or ``betas[0]`` too (default: True).
        base_momentum, max_momentum (float or list): the momentum bounds (0.85, 0.95).
        div_factor (float): ``initial_lr = max_lr / div_factor`` (default: 25).
        final_div_factor (float): ``min_lr = initial_lr / final_div_factor`` (default: 1e4).
        three_phase (bool): fall back to ``initial_lr`` before annealing to ``min_lr``.
        last_epoch (int): index of the last batch (default: -1).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list = 0.85,
        max_momentum: float | list = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}"
                )
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")

        if three_phase:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum",
                 "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum",
                 "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum",
                 "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]

        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")

        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(
                "anneal_strategy must be one of 'cos' or 'linear', instead got "
                f"{anneal_strategy}"
            )
        self._anneal_func_type = anneal_strategy

        max_lrs = _format_param("max_lr", self.optimizer, max_lr)
        if last_epoch == -1:
            for idx, group in enumerate(self.optimizer.param_groups):
                group["initial_lr"] = max_lrs[idx] / div_factor
                group["max_lr"] = max_lrs[idx]
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = cycle_momentum
        if self.cycle_momentum:
            self.use_beta1 = _momentum_key(self.optimizer)
            max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m_momentum, b_momentum, group in zip(
                    max_momentums, base_momentums, optimizer.param_groups, strict=True
                ):
                    _set_momentum(group, self.use_beta1, m_momentum)
                    group["max_momentum"] = m_momentum
                    group["base_momentum"] = b_momentum

        super().__init__(optimizer, last_epoch)

    _custom_anneal = False
    # What the C step (``_optim._one_cycle_step``) replicates: a subclass that changes one of
    # them (the rule, the annealing) gets the Python path.
    _C_RULE = ("get_lr", "_anneal_func", "_annealing_cos", "_annealing_linear", "step",
               "_update_lr")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._custom_anneal = (cls._annealing_cos is not OneCycleLR._annealing_cos
                              or cls._annealing_linear is not OneCycleLR._annealing_linear)

    # Advance one batch (call it after ``optimizer.step()``): a C function, whose general path
    # is LRScheduler.step.
    step = _one_cycle_step

    def _follow_new_groups(self) -> None:
        # A new group's lr is its initial lr; its peak, floor and momenta follow group 0's
        # ratios and values (they live in the groups, not in the scheduler).
        groups = self.optimizer.param_groups
        n_old = len(self.base_lrs)
        first = groups[0]
        for group in groups[n_old:]:
            if "max_lr" not in group:
                group.setdefault("initial_lr", _copy(group["lr"]))
                group["max_lr"] = group["initial_lr"] * (first["max_lr"] / first["initial_lr"])
                group["min_lr"] = group["initial_lr"] * (first["min_lr"] / first["initial_lr"])
            if self.cycle_momentum:
                group.setdefault("max_momentum", first["max_momentum"])
                group.setdefault("base_momentum", first["base_momentum"])
        super()._follow_new_groups()

    def _anneal_func(self, *args: Any, **kwargs: Any) -> Any:
        if hasattr(self, "_anneal_func_type"):
            if self._anneal_func_type == "cos":
                return self._annealing_cos(*args, **kwargs)
            if self._anneal_func_type == "linear":
                return self._annealing_linear(*args, **kwargs)
            raise ValueError(f"Unknown _anneal_func_type: {self._anneal_func_type}")
        # state dicts saved before torch 2.2 carry the function itself
        return self.anneal_func(*args, **kwargs)

    @staticmethod
    def _annealing_cos(start: Any, end: Any, pct: float) -> Any:
        """Cosine anneal from ``start`` to ``end`` as pct goes from 0.0 to 1.0."""
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    @staticmethod
    def _annealing_linear(start: Any, end: Any, pct: float) -> Any:
        """Linear anneal from ``start`` to ``end`` as pct goes from 0.0 to 1.0."""
        return (end - start) * pct + start

    def get_lr(self) -> list:
        """The lr (and momentum, written into the groups) at step ``last_epoch``."""
        self._warn_if_not_in_step()
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"Tried to step {step_num} times. The specified number of total steps is "
                f"{self.total_steps}"
            )
        # The phase and its progress are the same for every group: found once.
        phases = self._schedule_phases
        last = len(phases) - 1
        start_step = 0.0
        for i, phase in enumerate(phases):
            end_step = phase["end_step"]
            if step_num <= end_step or i == last:
                pct = (step_num - start_step) / (end_step - start_step)
                break
            start_step = phase["end_step"]
        start_lr, end_lr = phase["start_lr"], phase["end_lr"]
        start_m, end_m = phase["start_momentum"], phase["end_momentum"]
        groups = self.optimizer.param_groups
        if type(self)._anneal_func is OneCycleLR._anneal_func and getattr(
            self, "_anneal_func_type", None
        ) in ("cos", "linear") and not type(self)._custom_anneal:
            # torch's _annealing_cos/_linear over all groups at C level, their Python
            # arithmetic unchanged (cos_out, the same for every group, computed once)
            cos = self._anneal_func_type == "cos"
            c = math.cos(math.pi * pct) + 1 if cos else pct
            lrs = _anneal_groups(groups, start_lr, end_lr, cos, c)
            if self.cycle_momentum:
                moms = _anneal_groups(groups, start_m, end_m, cos, c)
        else:
            lrs = [self._anneal_func(g[start_lr], g[end_lr], pct) for g in groups]
            if self.cycle_momentum:
                moms = [self._anneal_func(g[start_m], g[end_m], pct) for g in groups]
        if self.cycle_momentum:
            _set_momenta(groups, moms, self.use_beta1)
        return lrs
