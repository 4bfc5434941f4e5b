"""Public functional optimizer API: torch.optim's functional names and signatures, run in C.

Why this file exists: torch splits each optimizer into a class (param groups, state, hooks) and a
functional that does the math over lists of tensors.  These are fastoptim's functionals: public,
with torch's signatures, and they also work on plain numpy arrays.  The optimizer classes call
their positional twins (``_sgd``, ``_adam``, ...: the same code after argument handling) on
their general path (first steps, unusual arrays; the steady state goes straight to
``fastoptim._C._optim.*_group_step``).  Each hands its lists to one multi-tensor C kernel
(``fastoptim._C._optim``); the math they compute is written out in
``fastoptim.optim._reference`` and in ``csrc/fastoptim.h``.

List elements may be numpy arrays or fastoptim Tensors (anything with a ``_np`` attribute: the
Tensor's zero-copy numpy storage).  Non-contiguous params or state are updated through a
contiguous copy that is written back; non-contiguous grads are copied.  ``state_steps`` entries
are one-element float32 arrays/Tensors, incremented in place.  ``lr`` may be a float or a
one-element array/Tensor.  The ``foreach``, ``fused``, ``capturable``, ``differentiable``,
``has_complex`` and ``has_sparse_grad`` flags are accepted for signature compatibility and do not
change the result (there is one CPU implementation); ``grad_scale``/``found_inf`` must be None.
"""

import numpy as np

from fastoptim._C import _optim

__all__ = ["adadelta", "adagrad", "adam", "adamw", "rmsprop", "sgd"]


def _scalar(x, name="lr"):
    """A float hyperparameter that may arrive as a one-element array or Tensor."""
    if type(x) is float:
        return x
    arr = getattr(x, "_np", x)
    if isinstance(arr, np.ndarray):
        if arr.size != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return float(arr.reshape(-1)[0])
    return float(arr)


def _no_scaling(grad_scale, found_inf):
    if grad_scale is not None or found_inf is not None:
        raise NotImplementedError("grad_scale and found_inf are not supported by fastoptim's "
                                  "CPU optimizers; pass None")


# (list, writeable, writebacks) -> the numpy arrays behind a list: Tensors unwrapped, strided arrays
# replaced by contiguous copies, (original, copy) pairs appended to writebacks when writeable.
_unwrap = _optim._unwrap


def _write_back(writebacks):
    """Copy updates made in contiguous temporaries back into the caller's strided arrays; only
    called once the kernel has succeeded, so a failed step leaves everything untouched."""
    for arr, tmp in writebacks:
        arr[...] = tmp


def _run(kernel, lists, *scalars):
    """One multi-tensor kernel call over the group's array lists (None for an unused list).

    torch steps a param that appears twice in a group twice (it warns at construction).  The
    kernels refuse overlapping arrays, so on that refusal, when the cause is a repeated param,
    the group runs one param at a time, in order, as torch's loop does; the common path pays
    nothing for this."""
    try:
        kernel(*lists, *scalars)
    except ValueError:
        ps = lists[0]
        if len({id(p) for p in ps}) == len(ps):
            raise
        for i in range(len(ps)):
            kernel(*[None if lst is None else [lst[i]] for lst in lists], *scalars)


def _retry(kernel, lists, writeable, scalars):
    """The slow path after the kernel refused a call (having written nothing): retry with
    contiguous copies of strided arrays (written back after success) and repeated params
    stepped in turn.  A call that is really wrong fails again here with the kernel's message."""
    wb = []
    arrays = [None if lst is None else _unwrap(lst, w, wb) for lst, w in zip(lists, writeable)]
    _run(kernel, arrays, *scalars)
    _write_back(wb)


# ---- the classes' entry points ---------------------------------------------------------------
# Positional, no defaults to resolve, no flags to ignore: what ``step`` calls for every batch of
# param groups.  Each is the public functional's body after argument handling, and tries the
# kernel inline (one Python frame from the class to C); a refused call takes ``_retry``.


def _sgd(params, grads, bufs, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """:func:`sgd` for the classes: ``params`` are Tensors and ``bufs`` is the caller's own
    list (None entries are replaced in place by new Tensor buffers, flagged for the kernel).
    Returns whether any buffer was created (the caller then stores them in its state)."""
    if type(lr) is not float:
        lr = _scalar(lr)
    is_new = None
    if momentum != 0:
        missing = [i for i, b in enumerate(bufs) if b is None]
        if missing:
            is_new = [False] * len(bufs)
            for i, buf in zip(missing, _packed_like([params[i] for i in missing], None)):
                is_new[i] = True
                bufs[i] = buf
    else:
        bufs = None
    lists = (params, grads, bufs, is_new)
    try:
        _optim.sgd_step(*lists, lr, momentum, dampening, weight_decay, nesterov, maximize)
    except (ValueError, TypeError):
        _retry(_optim.sgd_step, lists, (True, False, True, False),
               (lr, momentum, dampening, weight_decay, nesterov, maximize))
    return is_new is not None


def _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, beta1, beta2,
          eps, weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """:func:`adam` for the classes (``max_exp_avg_sqs`` may be None unless amsgrad)."""
    if type(lr) is not float:
        lr = _scalar(lr)
    if type(beta1) is not float:
        beta1 = _scalar(beta1, "betas[0]")
    if type(beta2) is not float:
        beta2 = _scalar(beta2, "betas[1]")
    if not amsgrad:
        max_exp_avg_sqs = None
    try:
        _optim.adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr,
                         beta1, beta2, eps, weight_decay, amsgrad, maximize,
                         decoupled_weight_decay)
    except (ValueError, TypeError):
        _retry(_optim.adam_step,
               (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps),
               (True, False, True, True, True, True),
               (lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay))


def _rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps, lr, alpha,
             eps, weight_decay, momentum, centered, maximize):
    """:func:`rmsprop` for the classes."""
    if type(lr) is not float:
        lr = _scalar(lr)
    lists = (params, grads, square_avgs, grad_avgs if centered else None,
             momentum_buffer_list if momentum > 0 else None, state_steps)
    try:
        _optim.rmsprop_step(*lists, lr, alpha, eps, weight_decay, momentum, centered, maximize)
    except (ValueError, TypeError):
        _retry(_optim.rmsprop_step, lists, (True, False, True, True, True, True),
               (lr, alpha, eps, weight_decay, momentum, centered, maximize))


def _adagrad(params, grads, state_sums, state_steps, lr, weight_decay, lr_decay, eps, maximize):
    """:func:`adagrad` for the classes."""
    if type(lr) is not float:
        lr = _scalar(lr)
    try:
        _optim.adagrad_step(params, grads, state_sums, state_steps, lr, weight_decay, lr_decay,
                            eps, maximize)
    except (ValueError, TypeError):
        _retry(_optim.adagrad_step, (params, grads, state_sums, state_steps),
               (True, False, True, True), (lr, weight_decay, lr_decay, eps, maximize))


def _adadelta(params, grads, square_avgs, acc_deltas, state_steps, lr, rho, eps, weight_decay,
              maximize):
    """:func:`adadelta` for the classes."""
    if type(lr) is not float:
        lr = _scalar(lr)
    try:
        _optim.adadelta_step(params, grads, square_avgs, acc_deltas, state_steps, lr, rho, eps,
                             weight_decay, maximize)
    except (ValueError, TypeError):
        _retry(_optim.adadelta_step, (params, grads, square_avgs, acc_deltas, state_steps),
               (True, False, True, True, True), (lr, rho, eps, weight_decay, maximize))


# ---- the public functionals -------------------------------------------------------------------


def sgd(params, d_p_list, momentum_buffer_list, has_sparse_grad=False, foreach=None, fused=None,
        grad_scale=None, found_inf=None, *, weight_decay, momentum, lr, dampening, nesterov,
        maximize):
    r"""SGD over one param group (torch.optim.SGD's math), in place.

    .. math::
        g \leftarrow \pm\nabla + \lambda\theta,\quad
        b \leftarrow \mu b + (1-\tau) g \ (b_1 = g),\quad
        \theta \leftarrow \theta - \gamma\,(\text{nesterov} ? g + \mu b : b)

    ``momentum_buffer_list[i]`` may be None (first step): a new buffer is created, filled with
    the (decayed) grad by the kernel and stored back into the list (as a Tensor when
    ``params[i]`` is a Tensor).  With ``momentum == 0`` the list is not touched.
    """
    _no_scaling(grad_scale, found_inf)
    # The kernel works on a copy of the list: new buffers reach the caller's list only once
    # the step has succeeded.
    bufs = list(momentum_buffer_list) if momentum != 0 else None
    if _sgd(params, d_p_list, bufs, lr, momentum, dampening, weight_decay, nesterov, maximize):
        for i, b in enumerate(momentum_buffer_list):
            if b is None:
                momentum_buffer_list[i] = bufs[i]


# Packed state layout (see _packed_like).  Measured on a 16M-element param, 1 thread: RMSprop ran
# 15-20% slower with its state array 48 or 64 bytes past the param modulo 4 KiB than half a page
# away (loads of p then falsely depend on stores to the state at the same address bits, "4K
# aliasing"), and half a page was also ~10% faster than the same offset; Adam with both state
# arrays half a page from the param was as fast as any spread tried, and 7% faster than one
# third and two thirds of a page.
_PAGE = 4096
_STAGGER = _PAGE // 2   # a large view starts this far past its param, modulo a page
_STAGGER_MIN = 4096     # arrays at least this big (bytes) are placed by page offset
_LINE = 64              # smaller ones start on their own cache line


def _packed_like(like, fill=0.0):
    """New C-contiguous state arrays shaped and typed like each of ``like`` (params), filled
    with ``fill`` (left uninitialised when None): Tensors for Tensor-likes (with ``_np``), numpy
    arrays otherwise.

    Why packed: the arrays of one dtype are views laid out in order in one buffer. A kernel step
    streams each param's p, g and state; state that follows itself in memory streams faster
    than arrays scattered between other allocations (Adam, 1000 params of 1024 elements: about
    5% of the step). Where each view starts matters too: one of at least ``_STAGGER_MIN`` bytes
    starts half a page past its param's address, modulo a page (see the measurements above); a
    smaller one starts on a cache line. The padding costs less than a page per view. Each view
    is an ordinary C-contiguous array; the buffer lives as long as any of its views.
    """
    arrays = [np.asarray(getattr(p, "_np", p)) for p in like]
    out = [None] * len(arrays)
    by_dtype = {}
    for i, arr in enumerate(arrays):
        by_dtype.setdefault(np.dtype(arr.dtype), []).append(i)
    for dtype, idx in by_dtype.items():
        size = dtype.itemsize
        # (where, modulo what) each view must start: at most `modulo` bytes of padding before it
        places = [(arrays[i].__array_interface__["data"][0] + _STAGGER, _PAGE)
                  if arrays[i].nbytes >= _STAGGER_MIN else (0, _LINE) for i in idx]
        bound = sum(arrays[i].nbytes + modulo for i, (_, modulo) in zip(idx, places))
        raw = np.empty(-(-bound // size), dtype)
        base = raw.__array_interface__["data"][0]
        offsets, cur = [], 0
        for i, (want, modulo) in zip(idx, places):
            arr = arrays[i]
            # the next position at or after cur that is congruent to want, in whole elements
            cur += (want - (base + cur)) % modulo // size * size
            offsets.append(cur // size)
            cur += arr.nbytes
        if fill is not None:
            raw.fill(fill)
        for i, off in zip(idx, offsets):
            out[i] = raw[off:off + arrays[i].size].reshape(arrays[i].shape)
    if any(hasattr(p, "_np") for p in like):
        import fastoptim  # lazily: the Tensor module imports the optimizers, not vice versa

        out = [fastoptim.from_numpy(a) if hasattr(p, "_np") else a for p, a in zip(like, out)]
    return out


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, foreach=None,
         capturable=False, differentiable=False, fused=None, grad_scale=None, found_inf=None,
         has_complex=False, decoupled_weight_decay=False, *, amsgrad, beta1, beta2, lr,
         weight_decay, eps, maximize):
    r"""Adam over one param group (torch.optim.Adam's math; AdamW's with
    ``decoupled_weight_decay=True``), in place.

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
        \theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
        \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}

    with ``g = ±grad + weight_decay * θ`` (coupled) or ``θ *= 1 - lr*weight_decay`` first
    (decoupled), and ``v`` replaced by its running max when ``amsgrad``.
    """
    _no_scaling(grad_scale, found_inf)
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, beta1, beta2,
          eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)


def adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, foreach=None,
          capturable=False, differentiable=False, fused=None, grad_scale=None, found_inf=None,
          has_complex=False, *, amsgrad, beta1, beta2, lr, weight_decay, eps, maximize):
    """AdamW over one param group: :func:`adam` with ``decoupled_weight_decay=True``."""
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
         grad_scale=grad_scale, found_inf=found_inf, decoupled_weight_decay=True,
         amsgrad=amsgrad, beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps,
         maximize=maximize)


def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps,
            foreach=None, maximize=False, differentiable=False, capturable=False,
            has_complex=False, *, lr, alpha, eps, weight_decay, momentum, centered):
    r"""RMSprop over one param group (torch.optim.RMSprop's math), in place.

    .. math::
        v \leftarrow \alpha v + (1-\alpha) g^2,\quad
        \bar g \leftarrow \alpha \bar g + (1-\alpha) g \ (\text{centered}),\quad
        d = \sqrt{v - \bar g^2} + \epsilon,\quad
        b \leftarrow \mu b + g/d,\quad \theta \leftarrow \theta - \gamma b

    (``b = g/d`` when momentum is 0; ``\bar g = 0`` when not centered.)  ``grad_avgs`` is used
    only if centered, ``momentum_buffer_list`` only if momentum > 0 (buffers start at zero).
    """
    _rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps, lr, alpha,
             eps, weight_decay, momentum, centered, maximize)


def adagrad(params, grads, state_sums, state_steps, fused=None, grad_scale=None, found_inf=None,
            has_sparse_grad=False, foreach=None, differentiable=False, has_complex=False, *, lr,
            weight_decay, lr_decay, eps, maximize):
    r"""Adagrad over one param group (torch.optim.Adagrad's math, dense grads), in place.

    .. math::
        s \leftarrow s + g^2,\quad
        \theta \leftarrow \theta - \frac{\gamma}{1 + (t-1)\eta}\,\frac{g}{\sqrt{s} + \epsilon}
    """
    _no_scaling(grad_scale, found_inf)
    _adagrad(params, grads, state_sums, state_steps, lr, weight_decay, lr_decay, eps, maximize)


def adadelta(params, grads, square_avgs, acc_deltas, state_steps, capturable=False, foreach=None,
             differentiable=False, has_complex=False, *, lr, rho, eps, weight_decay, maximize):
    r"""Adadelta over one param group (torch.optim.Adadelta's math), in place.

    .. math::
        v \leftarrow \rho v + (1-\rho) g^2,\quad
        \Delta = \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}}\, g,\quad
        u \leftarrow \rho u + (1-\rho)\Delta^2,\quad \theta \leftarrow \theta - \gamma\Delta
    """
    _adadelta(params, grads, square_avgs, acc_deltas, state_steps, lr, rho, eps, weight_decay,
              maximize)
