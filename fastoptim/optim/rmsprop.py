"""``RMSprop``: torch's class (validation, defaults, lazy state) over our fused kernel."""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .optimizer import Optimizer

__all__ = ["RMSprop"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["rmsprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), optionally centered and with momentum, as torch does it.

    For each param with a grad (``g = -grad`` if ``maximize``)::

        g = g + weight_decay * p                     (if weight_decay != 0)
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g;  d = sqrt(v - a * a) + eps     (centered)
        d = sqrt(v) + eps                                               (otherwise)
        b = momentum * b + g / d;  p = p - lr * b    (momentum > 0; b starts at zero)
        p = p - lr * g / d                           (otherwise)

    ``eps`` is outside the square root (TensorFlow puts it inside). State: ``step``,
    ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-2).
        alpha (float): smoothing constant (default: 0.99).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        momentum (float): momentum factor (default: 0).
        centered (bool): normalise by an estimate of the gradient variance (default: False).
        maximize (bool): maximize the objective (default: False).
        capturable, foreach, differentiable: accepted for torch source compatibility (torch's
            RMSprop has no ``fused``); fastoptim always runs its fused C kernel.

    Example:
        >>> optimizer = fastoptim.optim.RMSprop(model.parameters(), lr=1e-2)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")

        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
        self._steps_to_tensors()

    step = grouped_step(_DESCRIPTION)
