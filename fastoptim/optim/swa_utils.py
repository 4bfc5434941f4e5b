"""Stochastic Weight Averaging and EMA, as torch 2.13's ``torch.optim.swa_utils``.

``AveragedModel`` keeps a copy of a model whose params (and, with ``use_buffers``, buffers)
are a running average of the model's: SWA (equal weights) or an EMA.  ``SWALR`` anneals each
group's lr to a fixed SWA lr.  ``update_bn`` recomputes batch-norm statistics.

Design: averaging a model is one fused multi-tensor C call over all its tensors
(``fastoptim._C._optim._average``, csrc/optim_average.c; NumPy twin
``fastoptim.optim._reference.average``), not a Python loop of tensor ops.  torch's arithmetic is
kept exactly: ``get_ema_multi_avg_fn``/``get_swa_multi_avg_fn`` are ATen's ``_foreach_lerp_``
(the SWA weight ``1 / (n + 1)`` is a float32 tensor in torch, so it is rounded to float32 here
too), and the default averaging is what torch runs on the CPU, ``get_swa_avg_fn``'s
``a + (m - a) / (n + 1)`` per tensor.  The per-tensor ``avg_fn`` path and integer tensors
(buffers such as counters) run torch's formulas in Python.

``update_bn``: fastoptim has no batch-norm module yet, so for a fastoptim model it finds none and
returns at once, which is what torch does for a model without batch norm.
"""

from __future__ import annotations

import math
import warnings
from copy import deepcopy
from typing import Any, Callable, Iterable

import numpy as np

import fastoptim
from fastoptim import Tensor
from fastoptim._C._optim import _all_floating, _average, _swalr_step, _unique_values
from fastoptim.nn import Module

from ._reference import AVERAGE_LERP, AVERAGE_MEAN
from .lr_scheduler import LRScheduler, _extend_shared, _format_param
from .optimizer import Optimizer

__all__ = [
    "AveragedModel",
    "update_bn",
    "SWALR",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
]


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )


def _n_value(num_averaged: Any) -> int:
    return int(num_averaged.item()) if isinstance(num_averaged, Tensor) else num_averaged


def _int_update(averaged: Tensor, value: np.ndarray) -> None:
    # torch's copy_ of a float result into an integer tensor truncates toward zero.
    with fastoptim.no_grad():
        averaged.copy_(fastoptim.from_numpy(value.astype(averaged._np.dtype)))


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """An EMA ``multi_avg_fn``: ``ema = lerp(ema, param, 1 - decay)`` over all tensors at once
    (one C call); integer tensors ``ema * decay + param * (1 - decay)``, truncated."""
    _check_decay(decay)

    def ema_update(ema_param_list: list, current_param_list: list, _: Any) -> None:
        if ema_param_list[0].is_floating_point():
            _average(list(ema_param_list), list(current_param_list), AVERAGE_LERP, 1 - decay)
        else:
            f32 = np.float32
            for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                _int_update(p_ema, p_ema._np.astype(f32) * f32(decay)
                            + p_model._np.astype(f32) * f32(1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """An SWA ``multi_avg_fn``: ``avg = lerp(avg, param, 1 / (n + 1))`` over all tensors at once
    (one C call).  With a tensor ``n`` (as AveragedModel passes it) the weight is a float32
    division, as torch's ``1 / (n_averaged + 1)`` is."""

    def swa_update(averaged_param_list: list, current_param_list: list,
                   num_averaged: Any) -> None:
        if averaged_param_list[0].is_floating_point():
            if isinstance(num_averaged, Tensor):
                weight = float(np.float32(1) / np.float32(_n_value(num_averaged) + 1))
            else:
                weight = 1 / (num_averaged + 1)
            _average(list(averaged_param_list), list(current_param_list), AVERAGE_LERP, weight)
        else:
            if isinstance(num_averaged, Tensor):
                # torch: _foreach_addcdiv_ refuses integer tensors
                raise RuntimeError(
                    "Integer division with addcdiv is no longer supported, and in a future "
                    "release addcdiv will perform a true division of tensor1 and tensor2. The "
                    "historic addcdiv behavior can be implemented as (input + value * "
                    "torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as "
                    "(input + value * tensor1 / tensor2) for float inputs. The future addcdiv "
                    "behavior is just the latter implementation: (input + value * tensor1 / "
                    "tensor2), for all dtypes."
                )
            for p_avg, p_model in zip(averaged_param_list, current_param_list, strict=True):
                diff = p_model._np - p_avg._np
                _int_update(p_avg, p_avg._np + diff * (1.0 / (num_averaged + 1)))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """An EMA ``avg_fn`` for one tensor: ``decay * ema + (1 - decay) * param``."""
    _check_decay(decay)

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with fastoptim.no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable:
    """An SWA ``avg_fn`` for one tensor: ``avg + (param - avg) / (n + 1)``."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with fastoptim.no_grad():
            return averaged_param + (current_param - averaged_param) / (_n_value(num_averaged) + 1)

    return swa_update


def _params(module: Module) -> list:
    """``list(module.parameters())`` (the same tensors, in the same order, shared ones once)
    without building every parameter's name."""
    return _unique_values([m._parameters for m in module.modules()])


def _buffers(module: Module) -> list:
    """``list(module.buffers())``, the same way."""
    return _unique_values([m._buffers for m in module.modules()])


def _by_dtype(averaged: list, model: list) -> list:
    """torch's ``_group_tensors_by_device_and_dtype`` on the CPU: (averaged, model) lists per
    dtype, in order of first appearance."""
    groups: dict = {}
    for a, m in zip(averaged, model):
        pair = groups.get(a.dtype)
        if pair is None:
            pair = groups[a.dtype] = ([], [])
        pair[0].append(a)
        pair[1].append(m)
    return list(groups.values())


class AveragedModel(Module):
    r"""A running average of a model's parameters (SWA by default, or an EMA).

    Args:
        model (Module): the model to average; it is deep-copied.
        device (str, optional): where the average lives (fastoptim is CPU-only: ``'cpu'``).
        avg_fn (callable, optional): ``avg_fn(averaged, param, n_averaged) -> Tensor`` per tensor.
        multi_avg_fn (callable, optional): ``multi_avg_fn(averaged_list, param_list,
            n_averaged)``, in place, over all tensors of one dtype (e.g.
            :func:`get_ema_multi_avg_fn`, which is one C call).
        use_buffers (bool): average buffers too (default: False: buffers are copied).

    Example:
        >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
        >>> for x, y in loader:
        ...     opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        ...     ema.update_parameters(model)
    """

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable | None = None,
        multi_avg_fn: Callable | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", fastoptim.tensor(0, dtype=fastoptim.int64))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The averaged model's forward."""
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current parameters into this model (the first call copies)."""
        if self.use_buffers:
            self_param = _params(self.module) + _buffers(self.module)
            model_param = _params(model) + _buffers(model)
        else:
            self_param = _params(self)
            model_param = _params(model)
        # torch zips without strict here: the shorter list decides
        n_pairs = min(len(self_param), len(model_param))
        del self_param[n_pairs:], model_param[n_pairs:]
        n = _n_value(self.n_averaged)
        with fastoptim.no_grad():
            if n == 0:
                for p_averaged, p_model in zip(self_param, model_param):
                    p_averaged.detach().copy_(p_model.detach())
            elif self.avg_fn is not None:
                for p_averaged, p_model in zip(self_param, model_param, strict=True):
                    p_averaged.detach().copy_(
                        self.avg_fn(p_averaged.detach(), p_model.detach(), self.n_averaged)
                    )
            else:
                self._average_all(self_param, model_param, n)
            if not self.use_buffers:
                for b_swa, b_model in zip(self.module.buffers(), model.buffers(), strict=True):
                    b_swa.detach().copy_(b_model.detach())
        self.n_averaged.fill_(n + 1)

    def _average_all(self, self_param: list, model_param: list, n: int) -> None:
        fn = self.multi_avg_fn
        ours = fn is None or getattr(fn, "__module__", None) == __name__
        if ours and _all_floating(self_param):
            # Our averaging functions round their weight per dtype inside the C call, so all
            # dtypes go in one call; torch's per-dtype grouping only matters to other functions.
            groups = [(self_param, model_param)]
        else:
            groups = _by_dtype(self_param, model_param)
        for averaged, current in groups:
            if fn is not None:
                if ours:
                    fn(averaged, current, self.n_averaged)  # ours: no detached copies needed
                else:
                    fn([a.detach() for a in averaged], [m.detach() for m in current],
                       self.n_averaged)
            elif averaged[0].is_floating_point():
                # torch's CPU default: get_swa_avg_fn per tensor, a + (m - a) / (n + 1)
                _average(averaged, current, AVERAGE_MEAN, float(n + 1))
            else:
                f32 = np.float32
                for a, m in zip(averaged, current, strict=True):
                    d = (m._np - a._np).astype(f32) / f32(n + 1)
                    _int_update(a, a._np.astype(f32) + d)


def update_bn(loader: Iterable, model: Module, device: Any = None) -> None:
    """Recompute the running statistics of every batch-norm module of ``model`` with one pass
    over ``loader`` (cumulative averages, as torch).

    fastoptim has no batch-norm module yet: a fastoptim model has none, and this returns at
    once without touching the loader, as torch does for a model without batch norm.  A module
    is treated as batch norm when it has ``reset_running_stats``, ``running_mean`` and
    ``momentum`` (torch's ``_BatchNorm`` interface)."""
    momenta = {}
    for module in model.modules():
        if (hasattr(module, "reset_running_stats") and hasattr(module, "running_mean")
                and hasattr(module, "momentum")):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with fastoptim.no_grad():
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            if device is not None:
                input = input.to(device)
            model(input)
    for bn_module in momenta:
        bn_module.momentum = momenta[bn_module]
    model.train(was_training)


class SWALR(LRScheduler):
    r"""Anneal each group's lr to its ``swa_lr`` over ``anneal_epochs`` epochs (cosine or
    linear), then hold it: the schedule of the SWA phase.

    Args:
        optimizer (Optimizer): wrapped optimizer.
        swa_lr (float or list): the SWA lr, for all groups or one per group.
        anneal_epochs (int): epochs of the annealing (default: 10).
        anneal_strategy (str): ``'cos'`` or ``'linear'`` (default: ``'cos'``).
        last_epoch (int): index of the last epoch (default: -1).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list,
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = lr
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(
                "anneal_strategy must be one of 'cos' or 'linear', instead got "
                f"{anneal_strategy}"
            )
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(
                f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}"
            )
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    # Advance one epoch (call it after ``optimizer.step()``): a C function (get_lr's two
    # annealing factors once per step, the interpolation per group in C doubles), whose
    # general path is LRScheduler.step.
    _C_RULE = ("get_lr", "step", "_update_lr", "_get_initial_lr", "_cosine_anneal",
               "_linear_anneal", "_set_anneal_func")
    step = _swalr_step

    def _extend_group_settings(self, n_old: int) -> None:
        groups = self.optimizer.param_groups
        swa_lrs = [g["swa_lr"] for g in groups[:n_old]]
        _extend_shared(self, swa_lrs, len(groups), "swa_lr")
        for group, lr in zip(groups[n_old:], swa_lrs[n_old:]):
            group.setdefault("swa_lr", lr)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: Any, swa_lr: Any, alpha: float) -> Any:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list:
        """Interpolate from the lr the annealing started at towards ``swa_lr``."""
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, "
                "please use `get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev_lrs = [
            self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in groups
        ]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [
            group["swa_lr"] * alpha + lr * (1 - alpha)
            for group, lr in zip(groups, prev_lrs, strict=True)
        ]

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        if anneal_strategy == "cos":
            self.anneal_func = self._cosine_anneal
        else:
            self.anneal_func = self._linear_anneal

    def state_dict(self) -> dict[str, Any]:
        """The attributes without the optimizer and the annealing function."""
        return {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "anneal_func")
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes and the annealing function."""
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
