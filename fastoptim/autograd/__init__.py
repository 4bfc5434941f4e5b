"""fastoptim.autograd: torch.autograd's user-facing API over fastoptim's graph engine.

``Function`` (custom ops with a hand-written backward), ``grad`` and ``backward`` (the engine
run from Python), and the grad-mode switches.  The engine itself is compiled
(fastoptim/_C/_tensor_autograd.pxi, _tensor_function.pxi); this package checks and shapes the
arguments the way torch does, then makes one call into it.
"""
from fastoptim._C._tensor import (  # noqa: F401
    Tensor,
    _autograd_grad,
    _backward_many,
    enable_grad,
    no_grad,
    set_grad_enabled,
)
from fastoptim.autograd.function import Function, FunctionCtx, once_differentiable  # noqa: F401
from fastoptim.autograd.grad_mode import (  # noqa: F401
    inference_mode,
    is_inference_mode_enabled,
)

__all__ = ["Function", "FunctionCtx", "backward", "enable_grad", "grad", "inference_mode",
           "is_inference_mode_enabled", "no_grad", "once_differentiable", "set_grad_enabled"]


def _as_tuple(x, name):
    if isinstance(x, Tensor):
        return (x,)
    if isinstance(x, (list, tuple)):
        for k, t in enumerate(x):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: expected a Tensor at index {k}, got "
                                f"{type(t).__name__}")
        return tuple(x)
    raise TypeError(f"{name}: expected a Tensor or a sequence of Tensors, got "
                    f"{type(x).__name__}")


def _grad_tensors(grads, n, name):
    if grads is None:
        return (None,) * n
    if isinstance(grads, Tensor):
        grads = (grads,)
    grads = tuple(grads)
    if len(grads) != n:
        raise RuntimeError(f"got {n} tensors and {len(grads)} gradients")
    return grads


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned (no ``.grad`` is touched),
    as torch.autograd.grad.  create_graph and is_grads_batched are not supported."""
    if create_graph:
        raise NotImplementedError("autograd.grad(create_graph=True) (higher-order gradients) is "
                                  "not supported by fastoptim")
    if is_grads_batched:
        raise NotImplementedError("autograd.grad(is_grads_batched=True) is not supported by "
                                  "fastoptim")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads="
                         "True, but got: allow_unused=False.")
    outs = _as_tuple(outputs, "grad(): outputs")
    ins = _as_tuple(inputs, "grad(): inputs")
    if not ins:
        raise RuntimeError("grad requires non-empty inputs.")
    gos = _grad_tensors(grad_outputs, len(outs), "grad_outputs")
    retain = bool(create_graph) if retain_graph is None else bool(retain_graph)
    return _autograd_grad(outs, ins, gos, retain, bool(allow_unused), bool(materialize_grads))


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` into the leaves' ``.grad`` (only into `inputs`'
    when given), as torch.autograd.backward."""
    if create_graph:
        raise NotImplementedError("autograd.backward(create_graph=True) (higher-order "
                                  "gradients) is not supported by fastoptim")
    ts = _as_tuple(tensors, "backward(): tensors")
    gs = _grad_tensors(grad_tensors, len(ts), "grad_tensors")
    ins = None
    if inputs is not None:
        ins = _as_tuple(inputs, "backward(): inputs")
        if not ins:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    _backward_many(ts, gs, bool(retain_graph), ins)

from fastoptim._unsupported import module_getattr as _module_getattr  # noqa: E402

# a torch name not defined here: an AttributeError saying it is unsupported (README)
__getattr__ = _module_getattr(__name__)
