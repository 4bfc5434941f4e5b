"""``AdamW``: Adam with decoupled weight decay, a thin subclass exactly as in torch 2.13.

Being a subclass keeps torch's observable surface: the same validation messages, and
``decoupled_weight_decay: True`` in ``param_groups`` and ``repr``.
"""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam whose weight decay bypasses the moments.

    Each step first decays the param, ``p = p * (1 - lr * weight_decay)`` (with the current,
    scheduled lr, and even when the grad is zero), then applies the Adam update described in
    :class:`Adam`. The only default that differs from Adam is ``weight_decay=1e-2``.

    Args:
        params, lr, betas, eps, amsgrad, maximize: as for :class:`Adam`.
        weight_decay (float): decoupled decay coefficient (default: 1e-2).
        foreach, fused, capturable, differentiable: accepted for torch source compatibility;
            fastoptim always runs its fused C kernel (see :class:`Adam`).

    Example:
        >>> optimizer = fastoptim.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    """

    _DESCRIPTION = BY_NAME["adamw"]

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state):
        super().__setstate__(state)
        # A dict saved by plain Adam must not turn this back into L2-coupled decay.
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
