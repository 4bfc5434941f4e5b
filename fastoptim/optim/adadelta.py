"""``Adadelta``: torch's class (validation, defaults, lazy state) over our fused kernel."""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .optimizer import Optimizer

__all__ = ["Adadelta"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), with torch's extra ``lr`` factor.

    For each param with a grad (``g = -grad`` if ``maximize``)::

        g = g + weight_decay * p                            (if weight_decay != 0)
        v = rho * v + (1 - rho) * g * g
        d = sqrt(u + eps) / sqrt(v + eps) * g               (u: the previous acc_delta)
        u = rho * u + (1 - rho) * d * d
        p = p - lr * d

    ``eps`` is inside both square roots. State: ``step``, ``square_avg``, ``acc_delta``.

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): scale of the update (default: 1.0).
        rho (float): decay of the running averages, in [0, 1] (default: 0.9).
        eps (float): numerical stabiliser (default: 1e-6).
        weight_decay (float): L2 penalty (default: 0).
        maximize (bool): maximize the objective (default: False).
        foreach, capturable, differentiable: accepted for torch source compatibility (torch's
            Adadelta has no ``fused``); fastoptim always runs its fused C kernel.

    Example:
        >>> optimizer = fastoptim.optim.Adadelta(model.parameters())
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")

        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
        self._steps_to_tensors()

    step = grouped_step(_DESCRIPTION)
