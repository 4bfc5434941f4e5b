"""``SGD``: torch's class (validation, defaults, lazy momentum buffer) over our fused kernel.

The class keeps torch's surface (constructor checks, defaults, ``__setstate__``); its step is
the one every built-in optimizer shares (``_step.grouped_step``), driven by its description.
"""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .optimizer import Optimizer, _check_fused_flags

__all__ = ["SGD"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["sgd"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum -- torch's variant.

    For each param with a grad (``g = -grad`` if ``maximize``)::

        g = g + weight_decay * p                       (if weight_decay != 0)
        b = g                   on the first step      (no dampening then)
        b = momentum * b + (1 - dampening) * g          afterwards
        g = g + momentum * b  if nesterov else  b       (if momentum != 0)
        p = p - lr * g

    This is ``v = mu v + g; p -= lr v`` (torch's form), not Sutskever et al.'s
    ``v = mu v + lr g``. With ``momentum == 0`` no state is stored at all.

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-3).
        momentum (float): momentum factor (default: 0).
        dampening (float): dampening for momentum (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        nesterov (bool): Nesterov momentum (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        foreach, fused (bool or None), differentiable (bool): accepted so torch code runs
            unchanged, with torch's flag-combination errors. fastoptim always runs its fused
            C kernel (one call per group), whatever these say; ``differentiable`` only keeps
            grad mode on during ``step`` (no autograd through the update).

    Example:
        >>> optimizer = fastoptim.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")

        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

        if fused:
            self._need_device_dtype_check_for_fused = True
        _check_fused_flags(fused, foreach, differentiable)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    step = grouped_step(_DESCRIPTION)
