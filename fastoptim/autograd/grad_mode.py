"""inference_mode: torch's faster no_grad, here no_grad with torch's switches.

fastoptim has no inference tensors (no version counters or view tracking to switch off), so
inference mode is grad mode off plus a per-thread flag that ``is_inference_mode_enabled`` reads;
``inference_mode(False)`` turns grad mode on, as torch's does.  Tensors made inside it are
ordinary tensors (torch's refuse later use in autograd): see README's "Known differences".
"""
import functools
import threading

from fastoptim._C._tensor import _swap_grad_mode

_state = threading.local()


def is_inference_mode_enabled():
    """True inside an ``inference_mode()`` block (this thread)."""
    return getattr(_state, "on", False)


class inference_mode:
    """Context manager and decorator: ``with inference_mode():``, ``@inference_mode()``,
    ``@inference_mode``; ``inference_mode(False)`` leaves it (grad mode on)."""

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)              # bare @inference_mode on a function

    def __init__(self, mode=True):
        self.mode = mode
        self._prev = []

    def __enter__(self):
        self._prev.append((_swap_grad_mode(not self.mode), is_inference_mode_enabled()))
        _state.on = self.mode

    def __exit__(self, *exc):
        grad, inference = self._prev.pop()
        _swap_grad_mode(grad)
        _state.on = inference
        return False

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return func(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)(self.mode)
