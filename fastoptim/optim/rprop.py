"""``Rprop``: torch's class (validation, defaults, lazy state) over our fused kernel, and its
functional ``rprop`` (``torch.optim.rprop.rprop``)."""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .functional import rprop
from .optimizer import Optimizer

__all__ = ["Rprop", "rprop"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["rprop"]


class Rprop(Optimizer):
    r"""Rprop, resilient backpropagation (Riedmiller & Braun, 1993), in torch's order of
    operations.

    Each element has its own step size ``eta``, started at ``lr``. For each param with a grad
    (``g = -grad`` if ``maximize``), elementwise, with ``g_prev`` the previous step's grad::

        if g * g_prev > 0:   eta = min(eta * etaplus, step_size_max)
        elif g * g_prev < 0: eta = max(eta * etaminus, step_size_min);  g = 0
        else:                eta unchanged
        p = p - eta * sign(g)
        g_prev = g

    ``lr`` enters only the first step size. State (created at a param's first step with a
    grad): ``step`` (0-dim float32 Tensor, a counter only), ``prev``, ``step_size``.

    Paper: "A Direct Adaptive Method for Faster Backpropagation Learning: The RPROP
    Algorithm", http://citeseerx.ist.psu.edu/viewdoc/summary?doi=10.1.1.21.1417 .

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate, the first step size (default: 1e-2).
        etas (tuple of two floats): (etaminus, etaplus), the multiplicative decrease and
            increase factors (default: (0.5, 1.2)).
        step_sizes (tuple of two floats): the minimal and maximal allowed step sizes (default:
            (1e-6, 50)).
        maximize (bool): maximize the objective (default: False).
        capturable, foreach, differentiable: accepted so torch code runs unchanged (torch's
            Rprop has no ``fused``); fastoptim always runs its fused C kernel on the CPU,
            ``capturable`` has no effect and ``differentiable`` only keeps grad mode on during
            ``step``.

    Example:
        >>> optimizer = fastoptim.optim.Rprop(model.parameters(), lr=1e-2)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")

        defaults = {
            "lr": lr,
            "etas": etas,
            "step_sizes": step_sizes,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
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
