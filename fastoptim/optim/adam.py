"""``Adam``: torch's class (validation, defaults, lazy state) over our fused kernel.

``AdamW`` subclasses it, as in torch 2.13, with ``decoupled_weight_decay=True``.
"""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .optimizer import (
    Optimizer,
    _check_fused_flags,
    _to_scalar,
)

__all__ = ["Adam"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["adam"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), optionally AMSGrad, in torch's order of operations.

    For each param with a grad (``g = -grad`` if ``maximize``), with ``t`` the param's step::

        p = p * (1 - lr * weight_decay)       if decoupled_weight_decay   (AdamW)
        g = g + weight_decay * p              otherwise, if weight_decay != 0
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                 (amsgrad; then v_max replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``eps`` is added after bias-correcting ``v``. State (created at a param's first step with
    a grad): ``step`` (0-dim float32 Tensor), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
    ``max_exp_avg_sq``.

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-3).
        betas (tuple of two floats or two Tensors): (beta1, beta2) (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty, or decoupled decay (default: 0).
        amsgrad (bool): use AMSGrad (default: False).
        maximize (bool): maximize the objective (default: False).
        decoupled_weight_decay (bool): AdamW-style decay (default: False).
        foreach, fused (bool or None), capturable, differentiable (bool): accepted so torch
            code runs unchanged, with torch's flag-combination errors. fastoptim always runs
            its fused C kernel on the CPU (one call per group); ``capturable`` has no effect and
            ``differentiable`` only keeps grad mode on during ``step``.

    Example:
        >>> optimizer = fastoptim.optim.Adam(model.parameters(), lr=1e-3)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if isinstance(lr, Tensor):
            if foreach and not capturable:
                raise ValueError(
                    "lr as a Tensor is not supported for capturable=False and foreach=True"
                )
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        # torch's quirk, kept: an int beta such as 0 is rejected here.
        if not (
            (isinstance(betas[0], float) and isinstance(betas[1], float))
            or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
        ):
            raise ValueError("betas must be either both floats or both Tensors")  # noqa: TRY004
        for i in (0, 1):
            if isinstance(betas[i], Tensor):
                if not capturable and foreach:
                    raise ValueError(
                        f"betas[{i}] as a Tensor is not supported for capturable=False and "
                        "foreach=True"
                    )
                if betas[i].numel() != 1:
                    raise ValueError(f"Tensor betas[{i}] must be 1-element")
        betas = tuple(map(_to_scalar, betas))

        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

        _check_fused_flags(fused, foreach, differentiable)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
        self._steps_to_tensors()

    step = grouped_step(_DESCRIPTION)
