"""``Adadelta``: torch's class (validation, defaults, lazy state) over our fused kernel."""

from __future__ import annotations

from operator import itemgetter

from fastoptim import Tensor
from fastoptim._C._optim import adadelta_group_step

from ._descriptions import BY_NAME
from ._state import _fresh_state
from .functional import _adadelta
from .optimizer import Optimizer, _grouped_step

__all__ = ["Adadelta"]

# Everything step reads from a group (the description's group keys, in the order unpacked in
# _update_group); groups agreeing on all of it share one kernel call.
_DESCRIPTION = BY_NAME["adadelta"]
_HYPER = _DESCRIPTION.group_keys
_hyper = itemgetter(*_HYPER)


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
    _HYPER = _HYPER

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

    def _init_group(self, group, params_with_grad, grads, square_avgs, acc_deltas, state_steps):
        params = group["params"]
        return self._collect_lazy(
            params, ("square_avg", "acc_delta", "step"), (square_avgs, acc_deltas, state_steps),
            params_with_grad, grads,
            lambda i: _fresh_state(self.state, params, i, ("square_avg", "acc_delta")))

    step = _grouped_step("Adadelta")

    def _update_group(self, group):
        """Update one run of equal groups: in one C call from the group in the steady state,
        else through ``_init_group`` and the functional."""
        lr, rho, eps, weight_decay, maximize = _hyper(group)
        # Steady state: collected, validated and updated in one C call (False: do it here).
        if type(lr) is float and adadelta_group_step(group["params"], self.state, lr, rho, eps,
                                                     weight_decay, maximize):
            return
        params_with_grad: list = []
        grads: list = []
        square_avgs: list = []
        acc_deltas: list = []
        state_steps: list = []
        fresh = self._init_group(group, params_with_grad, grads, square_avgs, acc_deltas,
                                 state_steps)
        if params_with_grad:
            _adadelta(params_with_grad, grads, square_avgs, acc_deltas, state_steps, lr, rho,
                      eps, weight_decay, maximize)
        self._install(fresh)
