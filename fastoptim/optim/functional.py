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

from ._state import _packed_like

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


def _overlap_error(op, a, i, b, j):
    return ValueError(f"{op}: {a}[{i}] and {b}[{j}] overlap in memory; every array that is "
                      "updated in place must have its own storage")


def _check_copied(op, names, lists, writeable, writebacks):
    """The checks a contiguous copy would hide, on the caller's own arrays: a written array must
    be writeable (its copy always is) and must not share memory with any other array of the
    call (two copies never do).  Only the strided (copied) arrays need it: the kernel's own
    check covers every pair of contiguous ones."""
    copied = {id(orig) for orig, _ in writebacks}
    originals = [(k, i, getattr(x, "_np", x)) for k, lst in enumerate(lists) if lst is not None
                 for i, x in enumerate(lst)]
    originals = [(k, i, x) for k, i, x in originals if isinstance(x, np.ndarray)]
    for k, i, x in originals:
        if not writeable[k] or id(x) not in copied:
            continue
        if not x.flags.writeable:
            raise ValueError(f"{op}: {names[k]}[{i}] is read-only; expected a writeable array "
                             "(it is updated in place)")
        for k2, i2, y in originals:
            # the same array at the same position of another entry is a repeated param
            if (k2, i2) != (k, i) and not (y is x and k2 == k) and np.shares_memory(x, y):
                first, second = sorted([(k, i), (k2, i2)], key=lambda t: (t[1], t[0]))
                raise _overlap_error(op, names[first[0]], first[1], names[second[0]], second[1])


def _rounds(params):
    """``params``' indices split into rounds: the first occurrence of every param, then the
    second, ...; one round (None) when no param repeats.  torch steps a repeated param once per
    occurrence, in order; elements of different params are independent, so running the rounds
    in turn is torch's loop."""
    seen = {}
    rounds = []
    for i, p in enumerate(params):
        r = seen.get(id(p), 0)
        seen[id(p)] = r + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
    return rounds


def _call(op, step, lists, writeable, names, scalars, extra=()):
    """One multi-tensor kernel call (``step``, an ``_optim.*_step``) over a group's lists (None
    for an unused list; ``extra``: lists that hold no arrays, SGD's buffer_is_new).

    The direct call is the common case.  Two cases are decided here, by explicit tests, before
    anything is written: strided arrays (updated through contiguous copies, written back once
    the kernel has succeeded; ``_check_copied`` first), and params repeated in the group
    (``_rounds``: every check runs over the whole call, each round's overlap check too, then
    the rounds run).  A call that is wrong raises the kernel's message, once.
    """
    params = lists[0]
    copy = _optim._needs_copy(lists)
    rounds = None
    if isinstance(params, (list, tuple)) and len(set(map(id, params))) != len(params):
        rounds = _rounds(params)
    if not copy and rounds is None:
        step(*lists, *extra, *scalars)
        return
    writebacks = []
    if copy:
        arrays = [None if lst is None else _unwrap(lst, w, writebacks)
                  for lst, w in zip(lists, writeable)]
        _check_copied(op, names, lists, writeable, writebacks)
    else:
        arrays = list(lists)
    if rounds is None:
        step(*arrays, *extra, *scalars)
    else:
        step(*arrays, *extra, *scalars, run=False, overlaps=False)
        calls = [[None if lst is None else [lst[i] for i in r] for lst in (*arrays, *extra)]
                 for r in rounds]
        for sub in calls:
            step(*sub, *scalars, run=False)
        for sub in calls:
            step(*sub, *scalars)
    _write_back(writebacks)


# (list, writeable, writebacks) -> the numpy arrays behind a list: Tensors unwrapped, strided arrays
# replaced by contiguous copies, (original, copy) pairs appended to writebacks when writeable.
_unwrap = _optim._unwrap


def _write_back(writebacks):
    """Copy updates made in contiguous temporaries back into the caller's strided arrays; only
    called once the kernel has succeeded, so a failed step leaves everything untouched."""
    for arr, tmp in writebacks:
        arr[...] = tmp


# ---- the classes' entry points ---------------------------------------------------------------
# Positional, no defaults to resolve, no flags to ignore: what ``step`` calls for every batch of
# param groups.  Each is the public functional's body after argument handling.


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
    _call("sgd", _optim.sgd_step, (params, grads, bufs), (True, False, True),
          ("params", "grads", "momentum_buffers"),
          (lr, momentum, dampening, weight_decay, nesterov, maximize), (is_new,))
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
    _call("adamw" if decoupled_weight_decay else "adam", _optim.adam_step,
          (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps),
          (True, False, True, True, True, True),
          ("params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs", "state_steps"),
          (lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay))


def _rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps, lr, alpha,
             eps, weight_decay, momentum, centered, maximize):
    """:func:`rmsprop` for the classes."""
    if type(lr) is not float:
        lr = _scalar(lr)
    _call("rmsprop", _optim.rmsprop_step,
          (params, grads, square_avgs, grad_avgs if centered else None,
           momentum_buffer_list if momentum > 0 else None, state_steps),
          (True, False, True, True, True, True),
          ("params", "grads", "square_avgs", "grad_avgs", "momentum_buffers", "state_steps"),
          (lr, alpha, eps, weight_decay, momentum, centered, maximize))


def _adagrad(params, grads, state_sums, state_steps, lr, weight_decay, lr_decay, eps, maximize):
    """:func:`adagrad` for the classes."""
    if type(lr) is not float:
        lr = _scalar(lr)
    _call("adagrad", _optim.adagrad_step, (params, grads, state_sums, state_steps),
          (True, False, True, True), ("params", "grads", "state_sums", "state_steps"),
          (lr, weight_decay, lr_decay, eps, maximize))


def _adadelta(params, grads, square_avgs, acc_deltas, state_steps, lr, rho, eps, weight_decay,
              maximize):
    """:func:`adadelta` for the classes."""
    if type(lr) is not float:
        lr = _scalar(lr)
    _call("adadelta", _optim.adadelta_step,
          (params, grads, square_avgs, acc_deltas, state_steps), (True, False, True, True, True),
          ("params", "grads", "square_avgs", "acc_deltas", "state_steps"),
          (lr, rho, eps, weight_decay, maximize))


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
