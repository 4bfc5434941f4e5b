"""Public functional optimizer API: torch.optim's functional names and signatures, run in C.

Why this file exists: torch splits each optimizer into a class (param groups, state, hooks) and a
functional that does the math over lists of tensors.  These are fastoptim's functionals: public,
with torch's signatures, and they also work on plain numpy arrays.  Each only hands its
arguments (the hyperparameters by name, the state lists in its description's order) to
``_step.run``, the plumbing every
optimizer shares (the classes' general path calls it too): one multi-tensor C kernel call
through ``fastoptim._C._optim.step``.  The math they compute is written out in
``fastoptim.optim._reference`` and in ``csrc/fastoptim.h``.

List elements may be numpy arrays, fastoptim Tensors (anything with a ``_np`` attribute: the
Tensor's zero-copy numpy storage) or CPU torch tensors (updated in place through views of
their memory, as the optimizer classes update torch params; a new SGD momentum buffer is then
a torch tensor).  Non-contiguous params or state are updated through a
contiguous copy that is written back; non-contiguous grads are copied.  ``state_steps`` entries
are one-element float32 arrays/Tensors, incremented in place.  ``lr`` may be a float or a
one-element array/Tensor.  The ``foreach``, ``fused``, ``capturable``, ``differentiable``,
``has_complex`` and ``has_sparse_grad`` flags are accepted for signature compatibility and do not
change the result (there is one CPU implementation); ``grad_scale``/``found_inf`` must be None.
"""

from ._descriptions import BY_NAME
from ._step import run

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
]


def _no_scaling(grad_scale, found_inf):
    if grad_scale is not None or found_inf is not None:
        raise NotImplementedError("grad_scale and found_inf are not supported by fastoptim's "
                                  "CPU optimizers; pass None")


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
    if run(BY_NAME["sgd"], params, d_p_list, [bufs], lr=lr, momentum=momentum,
           dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize):
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
    run(BY_NAME["adamw" if decoupled_weight_decay else "adam"], params, grads,
        [exp_avgs, exp_avg_sqs, max_exp_avg_sqs], state_steps, lr=lr, beta1=beta1, beta2=beta2,
        eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
        decoupled_weight_decay=decoupled_weight_decay)


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
    run(BY_NAME["rmsprop"], params, grads, [square_avgs, grad_avgs, momentum_buffer_list],
        state_steps, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
        centered=centered, maximize=maximize)


def adagrad(params, grads, state_sums, state_steps, fused=None, grad_scale=None, found_inf=None,
            has_sparse_grad=False, foreach=None, differentiable=False, has_complex=False, *, lr,
            weight_decay, lr_decay, eps, maximize):
    r"""Adagrad over one param group (torch.optim.Adagrad's math, dense grads), in place.

    .. math::
        s \leftarrow s + g^2,\quad
        \theta \leftarrow \theta - \frac{\gamma}{1 + (t-1)\eta}\,\frac{g}{\sqrt{s} + \epsilon}
    """
    _no_scaling(grad_scale, found_inf)
    run(BY_NAME["adagrad"], params, grads, [state_sums], state_steps, lr=lr,
        weight_decay=weight_decay, lr_decay=lr_decay, eps=eps, maximize=maximize)


def adadelta(params, grads, square_avgs, acc_deltas, state_steps, capturable=False, foreach=None,
             differentiable=False, has_complex=False, *, lr, rho, eps, weight_decay, maximize):
    r"""Adadelta over one param group (torch.optim.Adadelta's math), in place.

    .. math::
        v \leftarrow \rho v + (1-\rho) g^2,\quad
        \Delta = \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}}\, g,\quad
        u \leftarrow \rho u + (1-\rho)\Delta^2,\quad \theta \leftarrow \theta - \gamma\Delta
    """
    run(BY_NAME["adadelta"], params, grads, [square_avgs, acc_deltas], state_steps, lr=lr,
        rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)


def adamax(params, grads, exp_avgs, exp_infs, state_steps, foreach=None, maximize=False,
           differentiable=False, capturable=False, has_complex=False, *, eps, beta1, beta2, lr,
           weight_decay):
    r"""Adamax over one param group (torch.optim.Adamax's math), in place.

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
        u \leftarrow \max(\beta_2 u, |g| + \epsilon),\quad
        \theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,\frac{m}{u}

    with ``g = ±grad + weight_decay * θ``.
    """
    run(BY_NAME["adamax"], params, grads, [exp_avgs, exp_infs], state_steps, lr=lr,
        beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, maximize=maximize)


def radam(params, grads, exp_avgs, exp_avg_sqs, state_steps, decoupled_weight_decay=False,
          foreach=None, differentiable=False, capturable=False, has_complex=False,
          maximize=False, *, beta1, beta2, lr, weight_decay, eps):
    r"""RAdam over one param group (torch.optim.RAdam's math; RAdamW's with
    ``decoupled_weight_decay=True``), in place.

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t},\quad
        \theta \leftarrow \theta - \gamma\,\frac{m}{1-\beta_1^t}\,
        \Big(r_t\,\frac{\sqrt{1-\beta_2^t}}{\sqrt{v}+\epsilon}\ \text{if}\ \rho_t > 5\
        \text{else}\ 1\Big)

    with ``g = ±grad + weight_decay * θ`` (coupled) or ``θ *= 1 - lr*weight_decay`` first
    (decoupled), ``ρ∞ = 2/(1-β2) - 1`` and ``r_t`` the variance rectification.
    """
    run(BY_NAME["radam"], params, grads, [exp_avgs, exp_avg_sqs], state_steps, lr=lr,
        beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)


def rprop(params, grads, prevs, step_sizes, state_steps, foreach=None, capturable=False,
          maximize=False, differentiable=False, has_complex=False, *, step_size_min,
          step_size_max, etaminus, etaplus):
    r"""Rprop over one param group (torch.optim.Rprop's math), in place.

    .. math::
        s = \operatorname{sign}(g\,g_{prev}),\quad
        \eta \leftarrow \operatorname{clamp}(\eta \cdot (\eta_+ | \eta_- | 1),
        \Gamma_{min}, \Gamma_{max}),\quad
        g \leftarrow 0 \ \text{where}\ s < 0,\quad
        \theta \leftarrow \theta - \eta \operatorname{sign}(g),\quad g_{prev} \leftarrow g

    ``step_sizes`` are the per-element step sizes (a first step's start at the lr).
    """
    run(BY_NAME["rprop"], params, grads, [prevs, step_sizes], state_steps, etaminus=etaminus,
        etaplus=etaplus, step_size_min=step_size_min, step_size_max=step_size_max,
        maximize=maximize)


def nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps,
          decoupled_weight_decay=False, foreach=None, capturable=False, differentiable=False,
          has_complex=False, maximize=False, *, beta1, beta2, lr, weight_decay, momentum_decay,
          eps):
    r"""NAdam over one param group (torch.optim.NAdam's math; NAdamW's with
    ``decoupled_weight_decay=True``), in place.

    .. math::
        \mu_t = \beta_1(1 - \tfrac12 0.96^{t\psi}),\quad
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\\
        \theta \leftarrow \theta - \gamma\Big(\frac{(1-\mu_t) g}{1-\prod_{i\le t}\mu_i}
        + \frac{\mu_{t+1} m}{1-\prod_{i\le t+1}\mu_i}\Big) \Big/
        \Big(\sqrt{v/(1-\beta_2^t)} + \epsilon\Big)

    ``mu_products[i]``: a one-element float32 (or float64) array, the running product of the
    mu_t (torch's 0-dim ``state['mu_product']``, starting at 1), updated in place.
    """
    run(BY_NAME["nadam"], params, grads, [exp_avgs, exp_avg_sqs, mu_products], state_steps,
        lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize)


def asgd(params, grads, axs, mus, etas, state_steps, foreach=None, maximize=False,
         differentiable=False, capturable=False, has_complex=False, *, lambd, lr, t0, alpha,
         weight_decay):
    r"""ASGD over one param group (torch.optim.ASGD's math, its for-loop), in place.

    .. math::
        \theta \leftarrow \theta(1 - \lambda\eta) - \eta g,\quad
        ax \leftarrow (\mu \ne 1)\ ?\ ax + \mu(\theta - ax) : \theta,\quad
        \eta \leftarrow \frac{\gamma}{(1 + \lambda\gamma t)^\alpha},\quad
        \mu \leftarrow \frac{1}{\max(1, t - t_0)}

    with ``g = ±grad + weight_decay * θ``.  ``mus[i]`` and ``etas[i]``: one-element float32 (or
    float64) arrays, torch's 0-dim ``state['mu']`` (starting at 1) and ``state['eta']``
    (starting at lr), updated in place.
    """
    run(BY_NAME["asgd"], params, grads, [axs, mus, etas], state_steps, lr=lr, lambd=lambd,
        alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
