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
