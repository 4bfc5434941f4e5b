"""``RMSprop``: torch's class (validation, defaults, lazy state) over our fused kernel."""

from __future__ import annotations

from operator import itemgetter

from fastoptim import Tensor
from fastoptim._C._optim import _collect, rmsprop_group_step

from .functional import _rmsprop
from .optimizer import Optimizer, _fresh_state, _grouped_step

__all__ = ["RMSprop"]

# Everything step reads from a group; groups agreeing on all of it share one kernel call.
_HYPER = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")
_hyper = itemgetter(*_HYPER)


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

    _HYPER = _HYPER

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

    def _expected_state_keys(self, group):
        required, optional = ["step", "square_avg"], []
        (required if group.get("momentum", 0) > 0 else optional).append("momentum_buffer")
        (required if group.get("centered", False) else optional).append("grad_avg")
        return tuple(required), tuple(optional)

    def _init_group(
        self,
        group,
        params_with_grad,
        grads,
        square_avgs,
        momentum_buffer_list,
        grad_avgs,
        state_steps,
    ):
        momentum = group["momentum"] > 0
        centered = group["centered"]
        keys = ("square_avg", "step")
        outs = (square_avgs, state_steps)
        if momentum:
            keys += ("momentum_buffer",)
            outs += (momentum_buffer_list,)
        if centered:
            keys += ("grad_avg",)
            outs += (grad_avgs,)
        params = group["params"]
        i = 0
        fresh = None
        # C-level collection; it stops at each param whose state must be created first
        while (i := _collect(params, self.state, i, keys, True, params_with_grad, grads,
                             outs)) >= 0:
            if fresh is None:   # the state of every param still without one, packed
                fresh = _fresh_state(self.state, params, i,
                                     tuple(k for k in keys if k != "step"))
            self.state[params[i]].update(fresh[params[i]])
        return False

    step = _grouped_step("RMSprop")

    def _update_group(self, group):
        """Update one run of equal groups: in one C call from the group in the steady state,
        else through ``_init_group`` and the functional."""
        lr, alpha, eps, weight_decay, momentum, centered, maximize = _hyper(group)
        # Steady state: collected, validated and updated in one C call (False: do it here).
        if type(lr) is float and rmsprop_group_step(group["params"], self.state, lr, alpha,
                                                    eps, weight_decay, momentum, centered,
                                                    maximize):
            return
        params_with_grad: list = []
        grads: list = []
        square_avgs: list = []
        grad_avgs = [] if centered else None
        momentum_buffer_list = [] if momentum > 0 else None
        state_steps: list = []
        self._init_group(group, params_with_grad, grads, square_avgs, momentum_buffer_list,
                         grad_avgs, state_steps)
        if params_with_grad:
            _rmsprop(params_with_grad, grads, square_avgs, grad_avgs, momentum_buffer_list,
                     state_steps, lr, alpha, eps, weight_decay, momentum, centered, maximize)
