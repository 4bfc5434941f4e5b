"""Slow, obvious NumPy twins of the optimizer kernels (csrc/optim_*.c).

Why this file exists: it is the readable statement of what each C kernel computes, and the
tests hold the kernels against it.  Each function takes the same arguments as its public
functional counterpart in ``fastoptim.optim.functional`` (torch's names), works on lists of numpy
arrays in place, and follows torch 2.13's single-tensor order of operations line by line:
arithmetic on arrays happens in the array's dtype, and per-step scalars (``1 - beta1``,
``lr / bias_correction1``, ...) are Python floats (float64) that NumPy casts to the array dtype
when they meet an array, exactly as torch does with its scalar arguments.

``state_steps`` entries are one-element float32 arrays (torch's 0-dim ``state['step']``),
incremented in place before they are used.  Nothing here is fast; nothing here is clever.
"""

import numpy as np


def _increment(step):
    """torch's ``step_t += 1`` on a float32 scalar tensor; returns ``step.item()``."""
    step[...] = step + np.float32(1)
    return float(step.reshape(-1)[0])


def _lerp_(start, end, weight):
    """ATen's ``start.lerp_(end, weight)`` for a Python-float weight.

    ATen rounds the weight to the array dtype, then uses ``start + w * (end - start)`` when
    ``|w| < 0.5`` and ``end - (end - start) * (1 - w)`` otherwise (exact at ``w == 1``).
    """
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        start[...] = start + w * (end - start)
    else:
        start[...] = end - (end - start) * (start.dtype.type(1) - w)


def sgd(params, d_p_list, momentum_buffer_list, *, weight_decay, momentum, lr, dampening,
        nesterov, maximize):
    """SGD: buffer = grad on the first step (no dampening), then momentum*buf + (1-damp)*grad."""
    for i, param in enumerate(params):
        grad = -d_p_list[i] if maximize else d_p_list[i]
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buf = momentum_buffer_list[i]
            if buf is None:
                buf = np.array(grad, copy=True)   # an array even when grad is 0-dim
                momentum_buffer_list[i] = buf
            else:
                buf[...] = buf * momentum + (1 - dampening) * grad
            grad = grad + momentum * buf if nesterov else buf
        param[...] = param + (-lr) * grad


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, amsgrad, beta1,
         beta2, lr, weight_decay, eps, maximize, decoupled_weight_decay=False):
    """Adam (AdamW when decoupled_weight_decay): bias-corrected moments, eps after the sqrt."""
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        step = _increment(state_steps[i])
        if weight_decay != 0:
            if decoupled_weight_decay:
                param[...] = param * (1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq[...] = exp_avg_sq * beta2 + (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if amsgrad:
            np.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            denom = np.sqrt(max_exp_avg_sqs[i]) / bias_correction2_sqrt + eps
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        param[...] = param + (-step_size) * exp_avg / denom


def adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, amsgrad, beta1,
          beta2, lr, weight_decay, eps, maximize):
    """AdamW: Adam with the weight decay applied to the param, before the moments."""
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad,
         beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize,
         decoupled_weight_decay=True)


def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps, *, lr,
            alpha, eps, weight_decay, momentum, centered, maximize):
    """RMSprop: eps outside the sqrt; the momentum buffer starts at zero."""
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        square_avg = square_avgs[i]
        _increment(state_steps[i])     # a counter only: the math does not use it
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg[...] = square_avg * alpha + (1 - alpha) * grad * grad
        if centered:
            grad_avg = grad_avgs[i]
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg = avg + eps
        if momentum > 0:
            buf = momentum_buffer_list[i]
            buf[...] = buf * momentum + grad / avg
            param[...] = param + (-lr) * buf
        else:
            param[...] = param + (-lr) * grad / avg


def adagrad(params, grads, state_sums, state_steps, *, lr, weight_decay, lr_decay, eps,
            maximize):
    """Adagrad (dense grads): lr decays as lr / (1 + (t - 1) * lr_decay)."""
    for i, param in enumerate(params):
        step = _increment(state_steps[i])
        grad = -grads[i] if maximize else grads[i]
        state_sum = state_sums[i]
        if weight_decay != 0:
            grad = grad + weight_decay * param
        clr = lr / (1 + (step - 1) * lr_decay)
        state_sum[...] = state_sum + grad * grad
        std = np.sqrt(state_sum) + eps
        param[...] = param + (-clr) * grad / std


def adadelta(params, grads, square_avgs, acc_deltas, state_steps, *, lr, rho, eps, weight_decay,
             maximize):
    """Adadelta: eps inside both square roots; delta uses the previous acc_delta."""
    for i, param in enumerate(params):
        _increment(state_steps[i])     # a counter only
        grad = -grads[i] if maximize else grads[i]
        square_avg, acc_delta = square_avgs[i], acc_deltas[i]
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg[...] = square_avg * rho + (1 - rho) * grad * grad
        std = np.sqrt(square_avg + eps)
        delta = np.sqrt(acc_delta + eps) / std * grad
        acc_delta[...] = acc_delta * rho + (1 - rho) * delta * delta
        param[...] = param + (-lr) * delta


# ---- Adamax, NAdam, RAdam, ASGD, Rprop ---------------------------------------------------------
# The per-tensor scalar states (NAdam's mu_product, ASGD's eta and mu) are 0-dim or one-element
# arrays like state_steps (float32 as torch keeps them, or float64 under a float64 default
# dtype), updated in place: arithmetic on them happens in their own dtype, as torch's
# ``mu_product *= mu`` on a 0-dim tensor does.


def _scalar(x):
    """``x.item()`` of a 0-dim or one-element array, as a Python float."""
    return float(np.asarray(x).reshape(-1)[0])


def _torch_sign(x):
    """torch.sign: -1, 0 or 1, and 0 (not NaN) for NaN, +0 for -0 (``(0 < x) - (x < 0)``)."""
    one = x.dtype.type(1)
    return np.where(x > 0, one, x.dtype.type(0)) - np.where(x < 0, one, x.dtype.type(0))


def adamax(params, grads, exp_avgs, exp_infs, state_steps, *, eps, beta1, beta2, lr,
           weight_decay, maximize):
    """Adamax: the infinity norm u = max(beta2*u, |g| + eps) in place of Adam's second moment."""
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_inf = exp_avgs[i], exp_infs[i]
        step = _increment(state_steps[i])
        if weight_decay != 0:
            grad = grad + weight_decay * param
        _lerp_(exp_avg, grad, 1 - beta1)
        # torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps)): NaN-propagating
        np.maximum(exp_inf * beta2, np.abs(grad) + eps, out=exp_inf)
        bias_correction = 1 - beta1**step
        clr = lr / bias_correction
        param[...] = param + (-clr) * exp_avg / exp_inf


def nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps, *, beta1, beta2, lr,
          weight_decay, momentum_decay, eps, decoupled_weight_decay=False, maximize=False):
    """NAdam: Adam with Nesterov momentum through the momentum schedule mu_t (Dozat, 2016).

    mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay)); mu_product (a per-tensor scalar
    state, starting at 1) accumulates prod(mu_1..mu_t) in its own dtype (float32).
    """
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_avg_sq, mu_product = exp_avgs[i], exp_avg_sqs[i], mu_products[i]
        step = _increment(state_steps[i])
        bias_correction2 = 1 - beta2**step
        if weight_decay != 0:
            if decoupled_weight_decay:
                param[...] = param * (1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product[...] = mu_product * mu          # the Python float rounds to mu_product's dtype
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq[...] = exp_avg_sq * beta2 + (1 - beta2) * grad * grad
        denom = np.sqrt(exp_avg_sq / bias_correction2) + eps
        mu_product_value = _scalar(mu_product)
        mu_product_next = mu_product_value * mu_next          # a Python float, not rounded
        param[...] = param + (-lr * (1.0 - mu) / (1.0 - mu_product_value)) * grad / denom
        param[...] = param + ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom


def radam(params, grads, exp_avgs, exp_avg_sqs, state_steps, *, beta1, beta2, lr, weight_decay,
          eps, decoupled_weight_decay=False, maximize=False):
    """RAdam: Adam's step rectified by r_t once the SMA length rho_t exceeds 5, plain
    bias-corrected momentum SGD before that (Liu et al., 2019)."""
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        step = _increment(state_steps[i])
        if weight_decay != 0:
            if decoupled_weight_decay:
                param[...] = param * (1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq[...] = exp_avg_sq * beta2 + (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        bias_corrected_exp_avg = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            # torch's `float / tensor` is tensor.reciprocal() * float
            adaptive_lr = (1 / (np.sqrt(exp_avg_sq) + eps)) * (bias_correction2**0.5)
            param[...] = param - bias_corrected_exp_avg * lr * adaptive_lr * rect
        else:
            param[...] = param - bias_corrected_exp_avg * lr


def asgd(params, grads, axs, mus, etas, state_steps, *, lambd, lr, t0, alpha, weight_decay,
         maximize):
    """ASGD: SGD with step size eta_t = lr / (1 + lambd*lr*t)**alpha and the running average
    ax of the iterates, which starts once t exceeds t0 (Polyak and Juditsky, 1992).

    etas and mus are per-tensor scalar states: the update reads them (eta decays the param and
    scales the grad; mu != 1 switches ax from a copy of the param to an average), then
    overwrites them with eta_{t+1} and mu_{t+1} = 1 / max(1, t - t0), rounded to their dtype.
    """
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        mu, ax, eta = mus[i], axs[i], etas[i]
        _increment(state_steps[i])
        if weight_decay != 0:
            grad = grad + weight_decay * param
        eta_value = _scalar(eta)
        param[...] = param * (1 - lambd * eta_value)          # decay term
        param[...] = param + (-eta_value) * grad             # update parameter
        mu_value = _scalar(mu)
        if mu_value != 1:
            # the 0-dim mu tensor takes the param's dtype (no promotion between float types)
            ax[...] = ax + (param - ax) * param.dtype.type(mu_value)
        else:
            ax[...] = param
        step = _scalar(state_steps[i])
        eta[...] = lr / ((1 + lambd * lr * step) ** alpha)
        mu[...] = 1 / max(1, step - t0)


def rprop(params, grads, prevs, step_sizes, state_steps, *, step_size_min, step_size_max,
          etaminus, etaplus, maximize):
    """Rprop: per-element step sizes grown by etaplus while the grad keeps its sign and shrunk
    by etaminus when it flips (that element then does not move and forgets its grad).

    torch's three masked assignments run in order on the same array, and the grad is zeroed
    where the *resulting* factor equals etaminus; sign() is torch's (0 for NaN).
    """
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        prev, step_size = prevs[i], step_sizes[i]
        _increment(state_steps[i])     # a counter only
        t = param.dtype.type
        sign = np.array(_torch_sign(grad * prev))
        sign[sign > 0] = t(etaplus)
        sign[sign < 0] = t(etaminus)
        sign[sign == 0] = t(1)
        # step_size.mul_(sign).clamp_(min, max): ATen's min(max(x, lo), hi), NaN stays NaN
        x = step_size * sign
        x = np.where(x < t(step_size_min), t(step_size_min), x)
        step_size[...] = np.where(t(step_size_max) < x, t(step_size_max), x)
        grad = np.array(grad, copy=True)
        grad[sign == t(etaminus)] = 0
        param[...] = param + t(-1) * _torch_sign(grad) * step_size
        prev[...] = grad


# ---- model averaging (swa_utils.AveragedModel) ----

AVERAGE_LERP, AVERAGE_MEAN = 0, 1


def average(averaged, model, mode, weight):
    """The twin of ``fastoptim._C._optim._average`` (csrc/optim_average.c), in place.

    ``AVERAGE_LERP``: ``torch._foreach_lerp_(averaged, model, weight)`` (EMA with
    ``weight = 1 - decay``, SWA with ``weight = 1 / (n + 1)``).  ``AVERAGE_MEAN``: torch's
    ``get_swa_avg_fn`` with ``weight = n_averaged + 1``:
    ``averaged + (model - averaged) / (n_averaged + 1)``, the divisor in the array's dtype.
    """
    for a, m in zip(averaged, model, strict=True):
        if mode == AVERAGE_LERP:
            _lerp_(a, m, weight)
        else:
            a[...] = a + (m - a) / a.dtype.type(weight)
