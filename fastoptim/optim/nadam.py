"""``NAdam``: torch's class (validation, defaults, lazy state) over our fused kernel, and its
functional ``nadam`` (``torch.optim.nadam.nadam``)."""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .functional import nadam
from .optimizer import Optimizer

__all__ = ["NAdam", "nadam"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["nadam"]


class NAdam(Optimizer):
    r"""NAdam, Adam with Nesterov momentum (Dozat, 2016), optionally with decoupled weight
    decay (NAdamW), in torch's order of operations.

    For each param with a grad (``g = -grad`` if ``maximize``), with ``t`` the param's step and
    ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``::

        p = p * (1 - lr * weight_decay)       if decoupled_weight_decay
        g = g + weight_decay * p              otherwise, if weight_decay != 0
        mu_product = mu_product * mu_t        (the product of mu_1 .. mu_t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - mu_product) * g / d
        p = p - lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / d

    State (created at a param's first step with a grad): ``step`` (0-dim float32 Tensor),
    ``mu_product`` (0-dim float32 Tensor, starting at 1; the param's dtype once loaded, as
    torch), ``exp_avg``, ``exp_avg_sq``.

    Papers: "Incorporating Nesterov Momentum into Adam",
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ ; "Decoupled Weight Decay
    Regularization", https://arxiv.org/abs/1711.05101 .

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 2e-3).
        betas (tuple of two floats): coefficients of the running averages of the gradient and
            of its square (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty, or decoupled decay (default: 0).
        momentum_decay (float): the momentum schedule's decay psi (default: 4e-3).
        decoupled_weight_decay (bool): AdamW-style decay, NAdamW (default: False).
        maximize (bool): maximize the objective (default: False).
        foreach, capturable, differentiable: accepted so torch code runs unchanged (torch's
            NAdam has no ``fused``); fastoptim always runs its fused C kernel on the CPU,
            ``capturable`` has no effect and ``differentiable`` only keeps grad mode on during
            ``step``.

    Example:
        >>> optimizer = fastoptim.optim.NAdam(model.parameters(), lr=2e-3)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
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
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")

        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
        self._steps_to_tensors()   # (and a numeric mu_product, as torch)

    step = grouped_step(_DESCRIPTION)
