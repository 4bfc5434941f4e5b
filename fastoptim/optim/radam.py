"""``RAdam``: torch's class (validation, defaults, lazy state) over our fused kernel, and its
functional ``radam`` (``torch.optim.radam.radam``)."""

from __future__ import annotations

from fastoptim import Tensor

from ._descriptions import BY_NAME
from ._step import grouped_step
from .functional import radam
from .optimizer import Optimizer

__all__ = ["RAdam", "radam"]

# This optimizer's row: the shared step (_step.grouped_step) and state loading read it.
_DESCRIPTION = BY_NAME["radam"]


class RAdam(Optimizer):
    r"""RAdam, Adam with the variance of its adaptive learning rate rectified (Liu et al.,
    2019), optionally with decoupled weight decay (RAdamW), in torch's order of operations.

    For each param with a grad (``g = -grad`` if ``maximize``), with ``t`` the param's step and
    ``rho_inf = 2 / (1 - beta2) - 1``::

        p = p * (1 - lr * weight_decay)       if decoupled_weight_decay
        g = g + weight_decay * p              otherwise, if weight_decay != 0
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        if rho_t > 5:
            l = sqrt(1 - beta2**t) / (sqrt(v) + eps)
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p = p - lr * m / (1 - beta1**t) * l * r
        else:
            p = p - lr * m / (1 - beta1**t)

    ``decoupled_weight_decay=True`` is the AdamW-style decay, closer to the authors'
    implementation. State (created at a param's first step with a grad): ``step`` (0-dim
    float32 Tensor), ``exp_avg``, ``exp_avg_sq``.

    Papers: "On the Variance of the Adaptive Learning Rate and Beyond",
    https://arxiv.org/abs/1908.03265 (authors' implementation:
    https://github.com/LiyuanLucasLiu/RAdam); "Decoupled Weight Decay Regularization",
    https://arxiv.org/abs/1711.05101 .

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-3).
        betas (tuple of two floats): coefficients of the running averages of the gradient and
            of its square (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty, or decoupled decay (default: 0).
        decoupled_weight_decay (bool): AdamW-style decay, RAdamW (default: False).
        maximize (bool): maximize the objective (default: False).
        foreach, capturable, differentiable: accepted so torch code runs unchanged (torch's
            RAdam has no ``fused``); fastoptim always runs its fused C kernel on the CPU,
            ``capturable`` has no effect and ``differentiable`` only keeps grad mode on during
            ``step``.

    Example:
        >>> optimizer = fastoptim.optim.RAdam(model.parameters(), lr=1e-3)
    """

    _DESCRIPTION = _DESCRIPTION

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
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

        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("capturable", False)
        self._steps_to_tensors()

    step = grouped_step(_DESCRIPTION)
