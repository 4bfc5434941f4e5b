"""nn.Parameter: a Tensor subclass that Modules register as a learnable parameter."""
from fastoptim._C._tensor import Tensor, _make_subclass, empty


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that a Module registers when assigned.
    ``Parameter(t)`` shares t's storage (no copy), as in torch."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        return _make_subclass(cls, data, requires_grad)

    def __init__(self, data=None, requires_grad=True):
        pass  # everything happened in __new__ (Tensor.__init__ would copy the data)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (self.detach().clone(), self.requires_grad))


def _rebuild_parameter(data, requires_grad):
    return Parameter(data, requires_grad)
