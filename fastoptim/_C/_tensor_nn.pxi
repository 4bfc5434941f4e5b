# nn's compiled pieces: the fused MSE loss (N_MSE, one node as torch's MseLoss), the
# Parameter constructor and nn.Module's base class.

def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error, one fused node (as torch's MseLoss) when shapes match."""
    if weight is not None:      # torch 2.13's per-element weights: not implemented (was ignored)
        raise NotImplementedError("mse_loss(): weight= is not supported by fastoptim")
    return _mse_loss(input, target, size_average, reduce, reduction)


def _mse_loss_forward(self, input, target):
    """MSELoss.forward (nn/modules.py makes it the method: a compiled function binds as one,
    so a call of the module runs no Python frame): mse_loss with the module's reduction."""
    return _mse_loss(input, target, None, None, self.reduction)


cdef object _mse_loss(object input, object target, object size_average, object reduce,
                      object reduction):
    cdef Tensor a = <Tensor>input
    cdef Tensor b
    cdef cnp.ndarray x, y
    cdef int64_t n
    cdef double total
    cdef int red
    cdef Tensor t
    if not isinstance(input, Tensor):
        raise TypeError(f"mse_loss(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    if not isinstance(target, Tensor):
        raise TypeError(f"mse_loss(): argument 'target' must be Tensor, not "
                        f"{type(target).__name__}")
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction == "mean":
        red = 1
    elif reduction == "sum":
        red = 2
    elif reduction == "none":
        red = 0
    else:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    b = <Tensor>target
    if not cnp.PyArray_SAMESHAPE(a._np, b._np):
        warnings.warn(
            f"Using a target size ({Size(_shp(b._np))}) that is different to the input size "
            f"({Size(_shp(a._np))}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=1)
        diff = _binary(a, b, FO_SUB)   # raises torch's message when not broadcastable
        sq = _unary(diff, FO_POW, 2.0, 0.0)
        if red == 0:
            return sq
        return _sum(sq, None, False, red == 1, None)
    if cnp.PyArray_TYPE(a._np) != cnp.PyArray_TYPE(b._np):
        d = _promote(a, b)
        a = _cast(a, d)
        b = _cast(b, d)
    if not _is_float(a._np):
        raise RuntimeError("mse_loss(): expected floating tensors, got "
                           f"{_dtype_of(a._np)}")
    if red == 0:
        return _unary(_binary(a, b, FO_SUB), FO_POW, 2.0, 0.0)
    x = _contig(a._np)
    y = _contig(b._np)
    n = cnp.PyArray_SIZE(x)
    total = _kern(x).mse(n, _ptr(x), _ptr(y))
    if red == 1:
        total = total / n if n > 0 else NAN
    t = _wrap(_scalar_array(total, cnp.PyArray_TYPE(x)))
    if _needs_grad(a, b):
        _record2(t, N_MSE, a, b, (x, y))
        t._sub = red
    return t


cdef void _mse_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """d/da = scale * (a - b) * g, d/db = -d/da, scale 2/n (mean) or 2 (sum)."""
    cdef Tensor a = _input(t, 0)
    cdef Tensor b = _input(t, 1)
    cdef cnp.ndarray x, y, ga, gb
    x, y = t._saved
    cdef int64_t n = cnp.PyArray_SIZE(x)
    ga = _empty_like(x) if a is not None else None
    gb = _empty_like(y) if b is not None else None
    scale = 2.0 / n if t._sub == 1 else 2.0
    _kern(x).mse_backward(n, _ptr(x), _ptr(y), NULL, _first(g), scale, _optr(ga), _optr(gb))
    if a is not None:
        _accumulate(a, ga, True)
    if b is not None:
        _accumulate(b, gb, True)


_register(N_MSE, "MseLossBackward0", NULL, _mse_backward, _release_all)


def _legacy_reduction(size_average, reduce):
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"



def _make_subclass(cls, data, requires_grad=False):
    """A `cls` instance (a Tensor subclass such as nn.Parameter) sharing data's storage."""
    cdef Tensor src = <Tensor>data
    cdef Tensor t = Tensor.__new__(cls)
    _bind(t, src._np)
    if requires_grad:
        t._set_requires_grad(True)
    return t


@cython.auto_pickle(False)   # Modules pickle through their own __getstate__/__setstate__
cdef class _CallsForward:
    """Base class of nn.Module: ``module(*args)`` runs ``self.forward(*args)`` with no Python
    frame of its own (a small model's training step makes several module calls)."""

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)
