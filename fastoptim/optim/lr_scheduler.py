"""Learning-rate schedulers with torch 2.13's behaviour: ``LRScheduler``, ``StepLR``,
``ExponentialLR``.

Schedulers only rewrite ``group['lr']`` between steps, so they are pure Python bookkeeping. What
users rely on, and is kept exactly: the chainable form (the new lr is computed from the current
``group['lr']``, so schedulers compose), ``initial_lr``/``base_lrs``, ``last_epoch`` and
``_step_count``, ``get_last_lr()``, the state dict (everything but the optimizer), and the
call-order warnings, with torch's texts so that user warning filters keep working.
"""

from __future__ import annotations

import numbers
import warnings
from functools import wraps
from typing import Any
from weakref import ref

from fastoptim import Tensor

from .optimizer import Optimizer

__all__ = ["ExponentialLR", "LRScheduler", "StepLR"]

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


def _group_values(optimizer: Optimizer, key: str) -> list:
    return [_copy(group[key]) for group in optimizer.param_groups]


def _set_group_value(group: dict, key: str, value: Any) -> None:
    # A Tensor lr is updated in place so that anything holding it sees the new value.
    current = group[key]
    if isinstance(current, Tensor):
        current.zero_().add_(float(value))
    else:
        group[key] = value


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

        for group, lr in zip(self.optimizer.param_groups, values):
            _set_group_value(group, "lr", lr)
        self._last_lr: list = _group_values(self.optimizer, "lr")


class _LRScheduler(LRScheduler):
    """Backward-compatible alias kept by torch."""


class StepLR(LRScheduler):
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

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        """Scale the current lr by ``gamma`` at every non-zero multiple of ``step_size``."""
        self._warn_if_not_in_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class ExponentialLR(LRScheduler):
    """Multiply each group's lr by ``gamma`` every epoch.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        gamma (float): multiplicative factor.
        last_epoch (int): index of the last epoch (default: -1).
    """

    _STATE_CHECKS = {**LRScheduler._STATE_CHECKS, "gamma": ("a number", _is_number)}

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        """Scale the current lr by ``gamma`` (except in the constructor's initial step)."""
        self._warn_if_not_in_step()
        # When resuming, the constructor's step must not move the lr one epoch ahead.
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]
