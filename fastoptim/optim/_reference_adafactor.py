"""The NumPy twin of Adafactor's kernel (csrc/optim_adafactor.c): torch 2.13's single-tensor
loop (``torch/optim/_adafactor.py``) transcribed line by line over numpy arrays, for clarity,
not speed.  Same signature as the functional ``_adafactor.adafactor``; the tests hold the kernel
against it (and both against torch).

Where torch rounds a scalar to the param's dtype (the lerp weight, ``eps1 ** 2``, the ``add_``
alpha, the weight-decay factor) this does the same; sums are taken in double.
"""

from __future__ import annotations

import numpy as np

__all__ = ["adafactor"]


def _lerp(start: np.ndarray, end: np.ndarray, weight) -> np.ndarray:
    """ATen's lerp with a scalar weight in the arrays' dtype."""
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (start.dtype.type(1) - w)


def _norm(x: np.ndarray, axis=None) -> np.ndarray:
    """torch.norm(x, 2) (over ``axis``, keepdim), summed in double, rounded to x's dtype."""
    s = np.sum(x.astype(np.float64) ** 2, axis=axis, keepdims=axis is not None)
    return np.sqrt(s).astype(x.dtype)


def adafactor(params, grads, row_vars, col_vars, variances, state_steps, foreach=None,
              grad_scale=None, found_inf=None, has_complex=False, *, d, lr, beta2_decay,
              weight_decay, eps1, eps2, maximize):
    """torch's ``_single_tensor_adafactor`` over numpy arrays, in place."""
    lr = float(lr)
    for i, param in enumerate(params):
        T = param.dtype.type
        grad = grads[i] if not maximize else -grads[i]
        step_t = state_steps[i]
        row_var, col_var, variance = row_vars[i], col_vars[i], variances[i]
        if eps1 is None:
            eps1 = float(np.finfo(param.dtype).eps)

        step_t[...] = step_t + np.float32(1)
        step_float = float(step_t)
        one_minus_beta2_t = step_float ** beta2_decay
        rho_t = min(lr, 1 / (step_float ** 0.5))
        alpha = max(eps2, float(_norm(param)) / (param.size ** 0.5)) * rho_t

        if weight_decay != 0:
            param *= T(1 - lr * weight_decay)

        if grad.ndim > 1:
            nrm = _norm(grad, axis=-1)
            row_mean = (nrm * nrm) / T(grad.shape[-1])
            row_var[...] = _lerp(row_var, row_mean, one_minus_beta2_t)
            nrm = _norm(grad, axis=-2)
            col_mean = (nrm * nrm) / T(grad.shape[-2])
            col_var[...] = _lerp(col_var, col_mean, one_minus_beta2_t)
            var_estimate = row_var @ col_var
            rm = (np.sum(row_var.astype(np.float64), axis=-2, keepdims=True)
                  .astype(param.dtype) / T(row_var.shape[-2]))
            var_estimate = var_estimate / np.maximum(rm, T(eps1))
        else:
            variance[...] = _lerp(variance, grad * grad, one_minus_beta2_t)
            var_estimate = variance.copy()

        update = T(1) / np.sqrt(np.maximum(var_estimate, T(eps1 * eps1)))
        update = update * grad
        denom = max(1.0, float(_norm(update)) / ((update.size ** 0.5) * d))
        param += T(-alpha / denom) * update
