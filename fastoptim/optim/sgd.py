"""``SGD``: torch's class (validation, defaults, lazy momentum buffer) over our fused kernel.

The class only collects the params that have a grad and their momentum buffers, and makes one
call into the functional (``fastoptim.optim.functional._sgd``, ``sgd``'s positional core) per
run of consecutive param groups with equal hyperparameters.
"""

from __future__ import annotations

from operator import itemgetter

from fastoptim import Tensor
from fastoptim._C._optim import _collect, sgd_group_step

from ._descriptions import BY_NAME
from .functional import _sgd
from .optimizer import Optimizer, _check_fused_flags, _grouped_step

__all__ = ["SGD"]

# Everything step reads from a group (the description's group keys, in the order unpacked in
# _update_group); groups agreeing on all of it share one kernel call.
_DESCRIPTION = BY_NAME["sgd"]
_HYPER = _DESCRIPTION.group_keys
_hyper = itemgetter(*_HYPER)


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum -- torch's variant.

    For each param with a grad (``g = -grad`` if ``maximize``)::

        g = g + weight_decay * p                       (if weight_decay != 0)
        b = g                   on the first step      (no dampening then)
        b = momentum * b + (1 - dampening) * g          afterwards
        g = g + momentum * b  if nesterov else  b       (if momentum != 0)
        p = p - lr * g

    This is ``v = mu v + g; p -= lr v`` (torch's form), not Sutskever et al.'s
    ``v = mu v + lr g``. With ``momentum == 0`` no state is stored at all.

    Args:
        params: iterable of Tensors, ``(name, Tensor)`` pairs or param-group dicts.
        lr (float or 1-element Tensor): learning rate (default: 1e-3).
        momentum (float): momentum factor (default: 0).
        dampening (float): dampening for momentum (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        nesterov (bool): Nesterov momentum (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        foreach, fused (bool or None), differentiable (bool): accepted so torch code runs
            unchanged, with torch's flag-combination errors. fastoptim always runs its fused
            C kernel (one call per group), whatever these say; ``differentiable`` only keeps
            grad mode on during ``step`` (no autograd through the update).

    Example:
        >>> optimizer = fastoptim.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
    """

    _DESCRIPTION = _DESCRIPTION
    _HYPER = _HYPER

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")

        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

        if fused:
            self._need_device_dtype_check_for_fused = True
        _check_fused_flags(fused, foreach, differentiable)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    def _init_group(self, group, params, grads, momentum_buffer_list):
        self._fused_dtype_check_once(group)
        # None for a param without a buffer yet: the kernel creates it from the grad.
        keys = ("momentum_buffer",) if group["momentum"] != 0 else ()
        _collect(group["params"], self.state, 0, keys, False, params, grads,
                 (momentum_buffer_list,))
        return False

    step = _grouped_step("SGD")

    def _update_group(self, group):
        """Update one run of equal groups: in one C call from the group in the steady state,
        else through ``_init_group`` and the functional."""
        lr, momentum, dampening, weight_decay, nesterov, maximize, fused = _hyper(group)
        if fused:
            self._fused_dtype_check_once(group)
        # Steady state: collected, validated and updated in one C call (False: do it here).
        if type(lr) is float and sgd_group_step(group["params"], self.state, lr, momentum,
                                                dampening, weight_decay, nesterov, maximize):
            return
        params: list = []
        grads: list = []
        momentum_buffer_list: list = []
        self._init_group(group, params, grads, momentum_buffer_list)
        if not params:
            return
        if _sgd(params, grads, momentum_buffer_list, lr, momentum, dampening, weight_decay,
                nesterov, maximize):
            # First step of some params: keep the buffers the kernel created and filled.
            state = self.state
            for p, buf in zip(params, momentum_buffer_list):
                state[p]["momentum_buffer"] = buf
