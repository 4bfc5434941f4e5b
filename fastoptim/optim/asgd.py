"""``ASGD``: torch's class (validation, defaults, lazy state) over our fused kernel, and its
functional ``asgd`` (``torch.optim.asgd.asgd``)."""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .functional import asgd
from .optimizer import Optimizer

__all__ = ["ASGD", "asgd"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["asgd"]


class ASGD(Optimizer):
    r"""Averaged Stochastic Gradient Descent (Polyak & Juditsky, 1992), as torch's for-loop
    implementation (the CPU default) computes it.

    Each param has a step size ``eta`` (starting at ``lr``) and an averaging weight ``mu``
    (starting at 1). For each param with a grad (``g = -grad`` if ``maximize``), with ``t``
    the param's step after this one::

        g = g + weight_decay * p                       (if weight_decay != 0)
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)    if mu != 1,  else  ax = p
        eta = lr / (1 + lambd * lr * t)**alpha
        mu = 1 / max(1, t - t0)

    so ``ax``, the average of the iterates, starts averaging at step ``t0 + 2``. State
    (created at a param's first step with a grad): ``step``, ``eta``, ``mu`` (0-dim float32
    Tensors; ``eta`` and ``mu`` take the param's dtype once loaded, as torch), ``ax``.

    Paper: "Acceleration of stochastic approximation by averaging",
    https://meyn.ece.ufl.edu/wp-content/uploads/sites/77/archive/spm_files/Courses/ECE555-2011/555media/poljud92.pdf

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-2).
        lambd (float): decay term (default: 1e-4).
        alpha (float): power for the eta update (default: 0.75).
        t0 (float): point at which to start averaging (default: 1e6).
        weight_decay (float): L2 penalty (default: 0).
        maximize (bool): maximize the objective (default: False).
        foreach, differentiable, capturable: accepted so torch code runs unchanged (torch's
            ASGD has no ``fused``); fastoptim always runs its fused C kernel on the CPU (the
            for-loop's math: torch's ``foreach=True`` rounds differently), ``capturable`` has
            no effect and ``differentiable`` only keeps grad mode on during ``step``.

    Example:
        >>> optimizer = fastoptim.optim.ASGD(model.parameters(), lr=1e-2)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")

        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
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
        self._steps_to_tensors()   # (and numeric eta and mu, as torch)

    step = grouped_step(_DESCRIPTION)
