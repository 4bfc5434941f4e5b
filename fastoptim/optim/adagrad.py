"""``Adagrad``: torch's class over our fused kernel.

Unlike the others its state is created eagerly in ``__init__`` for the initial groups (so
``state_dict()`` is non-empty before any step); groups added later get state lazily, from
``defaults['initial_accumulator_value']`` rather than the group's own value, as torch does.
"""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._state import _fresh_state
from ._step import grouped_step
from .optimizer import (
    Optimizer,
    _check_fused_flags,
)

__all__ = ["Adagrad"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011) with torch's learning-rate decay.

    For each param with a grad (``g = -grad`` if ``maximize``), ``t`` its step count::

        g = g + weight_decay * p                 (if weight_decay != 0)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (sqrt(s) + eps)

    State: ``step`` (0-dim float32 Tensor) and ``sum`` (starts at
    ``initial_accumulator_value``).

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-2).
        lr_decay (float): learning-rate decay (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        initial_accumulator_value (float): starting value of ``sum`` (default: 0).
        eps (float): added to the denominator (default: 1e-10).
        maximize (bool): maximize the objective (default: False).
        foreach, fused (bool or None), differentiable (bool): accepted so torch code runs
            unchanged, with torch's flag-combination errors; fastoptim always runs its fused
            C kernel.

    Example:
        >>> optimizer = fastoptim.optim.Adagrad(model.parameters(), lr=0.1)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")

        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

        _check_fused_flags(fused, foreach, differentiable)
        if fused:
            self._need_device_dtype_check_for_fused = True

        # Eager state, from the constructor's value, for the groups given here only (packed:
        # see _fresh_state).
        # Over torch params the state is made for their kernel views, and kept as torch
        # tensors over the same memory (see _torch_params).
        tp = self._torch_params
        for group in self.param_groups:
            params = group["params"]
            like = params if tp is None else tp.views(params)
            fresh = _fresh_state(self.state if tp is None else {}, like, 0, ("sum",),
                                 initial_accumulator_value, with_grad_only=False)
            for p, q in zip(params, like):
                self.state[p].update(fresh[q] if tp is None else tp.torch_state(fresh[q]))

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)
        self._steps_to_tensors()

    step = grouped_step(_DESCRIPTION)
