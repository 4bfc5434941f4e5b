"""autograd.Function: a custom op with a hand-written backward, as torch.autograd.Function.

Write ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as staticmethods and call
``MyOp.apply(*args)``.  ``apply`` runs forward with grad mode off and, when an argument requires
grad, hangs the outputs on the graph through one compiled call (fastoptim/_C/
_tensor_function.pxi); the engine later calls backward with one gradient per output and wants
one gradient (or None) per argument back.  torch's newer style -- ``forward(*args)`` plus
``setup_context(ctx, inputs, output)`` -- works too.  ``ctx`` is an instance of a per-Function
class named ``<Function>Backward``, which is also the outputs' ``grad_fn`` name, as in torch.
"""
import functools

from fastoptim._C._tensor import _FREED_MSG, Tensor, _function_node, _swap_grad_mode


class FunctionCtx:
    """What forward/backward get as ``ctx``: save tensors for backward, and see which inputs
    need a gradient."""

    def save_for_backward(self, *tensors):
        for k, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {k} "
                                f"is of type {type(t).__name__}")
        self._fo_saved = tensors

    @property
    def saved_tensors(self):
        if getattr(self, "_fo_freed", False):
            raise RuntimeError(_FREED_MSG)
        return getattr(self, "_fo_saved", ())

    def mark_non_differentiable(self, *tensors):
        self._fo_non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value):
        if not value:
            raise NotImplementedError("ctx.set_materialize_grads(False) is not supported by "
                                      "fastoptim: backward always gets zeros for outputs "
                                      "without a gradient")

    def mark_dirty(self, *tensors):
        raise NotImplementedError("ctx.mark_dirty (in-place autograd.Function) is not supported "
                                  "by fastoptim")

    def _fo_release(self):
        self._fo_saved = ()
        self._fo_freed = True


class Function:
    """Base class of custom differentiable ops: subclass with staticmethods forward and
    backward, then call ``apply``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__name__ + "Backward"
        cls._backward_cls = type(name, (FunctionCtx,), {
            "_fo_function": cls, "_fo_backward_name": name, "__module__": cls.__module__})

    def __init__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method. (Example: https://pytorch.org/docs/stable/autograd"
                           ".html#torch.autograd.Function)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode "
                                  "AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls is Function:
            raise RuntimeError("apply() is called on the base autograd.Function")
        if kwargs:
            raise NotImplementedError("autograd.Function.apply with keyword arguments is not "
                                      "supported by fastoptim (nor by torch)")
        ctx = cls._backward_cls()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        new_style = cls.setup_context is not Function.setup_context
        prev = _swap_grad_mode(False)
        try:
            out = cls.forward(*args) if new_style else cls.forward(ctx, *args)
        finally:
            _swap_grad_mode(prev)
        if new_style:
            cls.setup_context(ctx, args, out)
        if not (prev and any(ctx.needs_input_grad)):
            return out
        outs = out if isinstance(out, tuple) else (out,)
        non_diff = getattr(ctx, "_fo_non_diff", ())
        made = _function_node(ctx, args, outs, tuple(id(o) not in non_diff for o in outs))
        return made if isinstance(out, tuple) else made[0]


def once_differentiable(fn):
    """Mark a backward as not itself differentiable: fastoptim's backward never is, so this is
    the identity (kept for torch code that uses it)."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        return fn(ctx, *args)
    return wrapper
