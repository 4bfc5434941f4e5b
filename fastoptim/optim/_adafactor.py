r"""``Adafactor``: torch 2.13's Adafactor (factored second moments, relative step size, update
clipping), and its functional ``adafactor`` (torch's ``torch.optim._adafactor.adafactor``).

Why this file exists: Adafactor is not an elementwise kernel row.  A param of two or more dims
keeps a row factor and a column factor of its second moment (``row_var``: the param's shape
with the last dim 1; ``col_var``: with the second-to-last dim 1), a vector or scalar a full
``variance``; and each step needs three reductions per param that gate what follows (the
param's norm, the row/column means of the squared grad, the update's norm).  So its state is
not "arrays like the param" and its kernel is not the multi-tensor elementwise one: it has a
small ``WholeStepDescription`` (kind ``"factored"``) in ``_descriptions``, and this file holds
torch's surface (constructor checks and messages, defaults, lazy state, ``__setstate__``,
loading checks) over the C glue ``fastoptim._C._adafactor`` (the kernel is
``csrc/optim_adafactor.c``, which says how many passes a step makes).  A steady step is one
call, ``_adafactor.group_steps``, which reads every group's params, grads and state at C level
and updates them (declining, having written nothing, when a param has no state yet or a
setting is not a plain number); otherwise each group takes torch's path here
(``_init_group``, then the functional's one checked call, ``_adafactor.step``).  The NumPy
twin, torch's single-tensor loop transcribed, is ``_reference_adafactor.adafactor``.

Numbers: as torch's default (single-tensor) path, in torch's order of operations; per-step
scalars (``t ** beta2_decay``, ``rho``, ``alpha``, the clipping denominator) in double; the
norms' sums in double.  float64 agrees with torch to ~1e-15 per step; float32 within torch's
tolerances (torch sums in float32 in another order).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import fastoptim
from fastoptim import Tensor
from fastoptim._C import _adafactor

from ._state import _as_numpy, _cast_array, _cast_step, _new_step
from .optimizer import Optimizer, _to_scalar

__all__ = ["Adafactor", "adafactor"]


def _float(x: Any) -> float:
    """A float hyperparameter that may be a one-element Tensor or array."""
    if isinstance(x, Tensor):
        x = x._np
    if isinstance(x, np.ndarray):
        if x.size != 1:
            raise ValueError("Tensor lr must be 1-element")
        return float(x.reshape(-1)[0])
    return float(x)


def _state_shapes(shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """torch's state arrays of a param (grad) of this shape, and their shapes."""
    if len(shape) > 1:
        return {"row_var": shape[:-1] + (1,), "col_var": shape[:-2] + (1, shape[-1])}
    return {"variance": shape}


def adafactor(params, grads, row_vars, col_vars, variances, state_steps,
              foreach: bool | None = None, grad_scale=None, found_inf=None,
              has_complex: bool = False, *, d: float, lr, beta2_decay: float,
              weight_decay: float, eps1: float | None, eps2: float, maximize: bool,
              _work: Any = None) -> None:
    r"""Functional Adafactor (torch's ``torch.optim._adafactor.adafactor``): updates ``params``,
    the state lists and ``state_steps`` in place, in one C call per dtype.  Lists of fastoptim
    Tensors or numpy arrays (float32 or float64, C-contiguous); ``row_vars``/``col_vars`` hold
    None for params of fewer than two dims, ``variances`` None for the others; ``state_steps``
    0-dim float32 counters.  ``eps1=None`` means the machine epsilon of the first param's dtype,
    as in torch.  ``_work``: a ``_adafactor.StepCache`` kept between calls (its work buffer and
    struct arrays are reused).  See :class:`Adafactor` for the rule."""
    if grad_scale is not None or found_inf is not None:
        raise AssertionError("Grad scaling should occur outside of optimizer.step()")
    if not all(isinstance(t, (Tensor, np.ndarray)) for t in state_steps):
        raise RuntimeError("`state_steps` argument must contain a list of singleton tensors")
    lr = _float(_to_scalar(lr))
    if eps1 is None:
        if not params:
            return
        eps1 = float(np.finfo(_as_numpy(params[0]).dtype).eps)
    _adafactor.step(list(params), list(grads), list(row_vars), list(col_vars), list(variances),
                    list(state_steps), lr=lr, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d,
                    weight_decay=weight_decay, maximize=maximize, cache=_work)


class Adafactor(Optimizer):
    r"""Adafactor, torch 2.13's: a second moment kept as row and column factors for params of
    two or more dims (sublinear memory), a relative step size, and update clipping.

    At step ``t``, for each param ``p`` with a grad (``G = -grad`` if ``maximize``)::

        beta2_t' = t ** beta2_decay                   # 1 - beta2_t
        rho      = min(lr, 1 / sqrt(t))
        alpha    = max(eps2, RMS(p)) * rho
        p        = p * (1 - lr * weight_decay)
        if p.ndim > 1:                                 # the last two dims are factored
            R = lerp(R, mean_j G**2, beta2_t')         # row_var
            C = lerp(C, mean_i G**2, beta2_t')         # col_var
            V = R @ C / max(mean_i R, eps1)
        else:
            V = lerp(V, G**2, beta2_t')                # variance
        U = G / sqrt(max(V, eps1**2))
        p = p - alpha / max(1, RMS(U) / d) * U

    ``eps1=None`` is the machine epsilon of the param's dtype.  Like torch (and unlike the
    paper), ``lr`` caps the relative step size and scales the decoupled weight decay, and
    ``eps1`` is applied to the variance estimate rather than to the squared grad.

    Paper: N. Shazeer and M. Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
    Cost" (ICML 2018, https://arxiv.org/abs/1804.04235).

    Args:
        params: iterable of Tensors or param-group dicts.
        lr (float or 1-element Tensor): the relative step size's cap (default: 1e-2).
        beta2_decay (float): the decay rate of beta2, <= 0 (default: -0.8).
        eps (tuple of (float or None, float)): (eps1, eps2) (default: (None, 1e-3)).
        d (float): the clipping threshold of the update's RMS, >= 1 (default: 1.0).
        weight_decay (float): decoupled weight decay (default: 0.0).
        foreach (bool, optional): accepted as torch accepts it; both run the same C kernel.
        maximize (bool): maximize the objective (default: False).

    Example:
        >>> opt = fastoptim.optim.Adafactor(model.parameters())
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": eps,
            "d": d,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
        }
        super().__init__(params, defaults)
        self._cache = _adafactor.StepCache()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._cache = _adafactor.StepCache()
        for group in self.param_groups:
            group.setdefault("foreach", None)

    def _check_and_cast_state(self, param, value, gi: int, pos: int, key_id, group) -> Any:
        """A loaded param state: torch's keys for this param's dims, torch's shapes, cast to the
        param's dtype (checked before anything is installed)."""
        where = f"parameter {pos} of parameter group {gi} (state dict index {key_id!r})"
        if not isinstance(value, dict):
            raise ValueError(  # noqa: TRY004 (a bad value in the dict, as the others)
                f"loaded state dict has state of type {type(value).__name__} for {where}; "
                "Adafactor expects a dict of state tensors")
        if len(value) == 0:
            return {}
        shapes = _state_shapes(tuple(param.shape))
        expected = ["step", *shapes]
        if sorted(value) != sorted(expected):
            raise ValueError(f"loaded state dict has state {sorted(value)} for {where}; "
                             f"Adafactor expects {expected} for a parameter of "
                             f"{len(param.shape)} dims")
        out = {"step": _cast_step(value["step"])}
        for k, shape in shapes.items():
            got = tuple(_as_numpy(value[k]).shape)
            if got != shape:
                raise ValueError(f"loaded state dict has state {k!r} of shape {got} for "
                                 f"{where}, but Adafactor expects {shape}")
            out[k] = _cast_array(param, value[k])
        return out

    def _init_group(self, group, params_with_grad, grads, row_vars, col_vars, variances,
                    state_steps, fresh) -> bool:
        """torch's ``_init_group``; the state of a param's first step goes to ``fresh`` (made
        from its grad, as torch), installed by the caller once the step has succeeded."""
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if _as_numpy(p).dtype.kind == "c":
                raise RuntimeError("Adafactor does not support complex parameters")
            params_with_grad.append(p)
            grads.append(g)
            state = self.state.get(p)
            if not state:
                dtype = g.dtype
                state = {"step": _new_step(0.0)}
                for k, shape in _state_shapes(tuple(g.shape)).items():
                    state[k] = fastoptim.zeros(shape, dtype=dtype)
                fresh[p] = state
            row_vars.append(state.get("row_var"))
            col_vars.append(state.get("col_var"))
            variances.append(state.get("variance"))
            state_steps.append(state["step"])
        return False

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with fastoptim.enable_grad():
                loss = closure()
        # steady state: every group in one C call (False: declined, nothing written)
        if _adafactor.group_steps(self.param_groups, self.state, self._cache):
            return loss
        with fastoptim.no_grad():
            for group in self.param_groups:
                params_with_grad: list = []
                grads: list = []
                row_vars: list = []
                col_vars: list = []
                variances: list = []
                state_steps: list = []
                fresh: dict = {}
                eps1, eps2 = group["eps"]
                has_complex = self._init_group(group, params_with_grad, grads, row_vars,
                                               col_vars, variances, state_steps, fresh)
                adafactor(params_with_grad, grads, row_vars, col_vars, variances, state_steps,
                          d=group["d"], lr=group["lr"], beta2_decay=group["beta2_decay"],
                          weight_decay=group["weight_decay"], eps1=eps1, eps2=eps2,
                          foreach=group["foreach"], maximize=group["maximize"],
                          has_complex=has_complex, _work=self._cache)
                for p, s in fresh.items():
                    self.state[p] = s
        return loss
