# Reductions: sum/mean over everything (N_SUM) or one dim (N_SUM_AXIS), max/min over
# everything (N_EXTREME), on the C kernels; and over dims (``dim=`` an int or a tuple,
# ``keepdim=``) prod, var/std, norm, logsumexp, cumsum, max/min with indices, argmax/argmin,
# any/all, computed with numpy in torch's formulas and accumulation types.  Each backward sits
# under its forward, registered in the op table.
#
# The over-dims ops share one shape discipline: the forward reduces with the reduced axes kept
# (size 1), saves that "kept" shape, and reshapes to what the caller asked for; the backward
# reshapes the incoming gradient back to the kept shape, so numpy broadcasting does the rest.

cdef Tensor _sum(Tensor a, object dim, bint keepdim, bint mean, object dt):
    cdef cnp.ndarray x
    cdef cnp.ndarray out
    cdef int64_t n, outer, inner
    cdef double total, scale
    cdef Tensor t
    cdef int nd
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    if not _is_float(a._np):
        if mean:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either "
                               "a floating point or complex dtype. Got: "
                               f"{_dtype_of(a._np)._legacy[:-6]}")
        return _wrap(np.asarray(a._np.sum(axis=_red_axes(dim, cnp.PyArray_NDIM(a._np)),
                                          keepdims=keepdim)))
    x = _contig(a._np)
    nd = cnp.PyArray_NDIM(x)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        n = cnp.PyArray_SIZE(x)
        total = _kern(x).sum(n, _ptr(x))
        scale = 1.0
        if mean:
            scale = 1.0 / n if n > 0 else NAN
            total = total / n if n > 0 else NAN
        out = _scalar_array(total, cnp.PyArray_TYPE(x))
        if keepdim:
            out = out.reshape((1,) * nd)
        t = _wrap(out)
        if _grad_enabled and a._requires_grad:
            _record1(t, N_SUM, a, _shp(x))
            t._p0 = scale
            t._sub = mean
        return t
    axes = _red_axes(dim, nd)
    perm = None
    shp = _shp(x)
    if axes and axes[-1] - axes[0] + 1 != len(axes):
        # dims that are not adjacent: reduce a copy with them moved to the end (the backward
        # moves the gradient back)
        perm = [k for k in range(nd) if k not in axes] + list(axes)
        x = _ascontig(np.transpose(x, perm))
        lo, hi = nd - len(axes), nd - 1
    elif axes:
        lo, hi = axes[0], axes[-1]
    else:
        lo, hi = 0, -1                     # a 0-dim tensor: nothing to reduce, n = 1
    # the dims lo..hi (adjacent) reduce as one middle axis of [outer, n, inner]
    xs = _shp(x)
    outer = 1
    for k in range(lo):
        outer *= xs[k]
    n = 1
    for k in range(lo, hi + 1):
        n *= xs[k]
    inner = 1
    for k in range(hi + 1, nd):
        inner *= xs[k]
    scale = (1.0 / n if n > 0 else NAN) if mean else 1.0
    out = np.empty(_out_shape(shp, axes, keepdim), dtype=x.dtype)
    _kern(x).sum_axis(outer, n, inner, _ptr(x), scale, _ptr(out))
    t = _wrap(out)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_SUM_AXIS, a, (outer, n, inner, xs, perm))
        t._p0 = scale
        t._sub = mean
    return t


cdef object _sum_name(Tensor t):
    return "MeanBackward0" if t._sub else "SumBackward0"


cdef void _sum_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """Every input element gets scale * g (g has one element)."""
    cdef cnp.ndarray gx = _empty_shape(t._saved, cnp.PyArray_TYPE(g))
    _kern(g).expand_axis(1, cnp.PyArray_SIZE(gx), 1, _ptr(g), t._p0, _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


_register(N_SUM, NULL, _sum_name, _sum_backward, NULL)


cdef object _sum_axis_name(Tensor t):
    return "MeanBackward1" if t._sub else "SumBackward1"


cdef void _sum_axis_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g broadcast back along the reduced (middle) axis of [outer, n, inner], times scale (and
    its dims put back in the input's order when the forward moved them: perm)."""
    outer, n, inner, in_shape, perm = t._saved
    cdef cnp.ndarray gx = _empty_shape(in_shape, cnp.PyArray_TYPE(g))
    _kern(g).expand_axis(outer, n, inner, _ptr(g), t._p0, _ptr(gx))
    if perm is not None:
        gx = _ascontig(np.transpose(gx, np.argsort(perm)))
    _accumulate(_input(t, 0), gx, True)


_register(N_SUM_AXIS, NULL, _sum_axis_name, _sum_axis_backward, NULL)


cdef object _extreme(Tensor a, bint want_max, tuple args, dict kwargs):
    cdef cnp.ndarray x
    cdef int64_t n, count = 0
    cdef double m
    cdef Tensor t
    name = "max" if want_max else "min"
    if args and isinstance(args[0], Tensor):
        # element-wise maximum/minimum of two tensors
        return _binary(a, <Tensor>args[0], FO_MAXIMUM if want_max else FO_MINIMUM)
    if "other" in kwargs and not args:
        return _extreme(a, want_max, (kwargs.pop("other"),), kwargs)
    if args or kwargs:
        return _extreme_dim(a, want_max, *args, **kwargs)
    x = _contig(a._np)
    n = cnp.PyArray_SIZE(x)
    if n == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                           "input.numel() == 0. Specify the reduction dim with the 'dim' argument.")
    if not _is_float(x):
        return _wrap(np.asarray(x.max() if want_max else x.min()))
    m = _kern(x).extreme(n, _ptr(x), want_max, &count)
    t = _wrap(_scalar_array(m, cnp.PyArray_TYPE(x)))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_EXTREME, a, x)
        t._p0 = m
        t._p1 = <double>count
        t._sub = want_max
    return t


cdef object _extreme_name(Tensor t):
    return "MaxBackward1" if t._sub else "MinBackward1"


cdef void _extreme_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g shared evenly by the elements equal to the result (torch's rule for ties)."""
    cdef cnp.ndarray x = t._saved
    cdef cnp.ndarray gx = _empty_like(x)
    _kern(x).extreme_backward(cnp.PyArray_SIZE(x), _ptr(x), t._p0, _first(g), <int64_t>t._p1,
                              _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


_register(N_EXTREME, NULL, _extreme_name, _extreme_backward, _release_all)



# ---------------------------------------------------------------------------------------------
# reductions over dims
# ---------------------------------------------------------------------------------------------

cdef tuple _red_axes(object dim, int nd):
    """`dim` (None, an int, or a tuple/list of ints) as the sorted axes to reduce; None and ()
    mean every axis.  A 0-dim tensor accepts dim 0 or -1 and has no axis to reduce."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(nd))
    if isinstance(dim, (tuple, list)):
        axes = []
        for d in dim:
            k = _norm_dim(d, nd)
            if k in axes:
                raise RuntimeError(f"dim {k} appears multiple times in the list of dims")
            axes.append(k)
        return tuple(sorted(axes)) if nd else ()
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int or a tuple of ints, got {type(dim).__name__}")
    k = _norm_dim(dim, nd)          # (checked on a 0-dim tensor too: dim 0 or -1 only)
    return (k,) if nd else ()


cdef tuple _kept_shape(tuple shp, tuple axes):
    return tuple(1 if k in axes else s for k, s in enumerate(shp))


cdef tuple _out_shape(tuple shp, tuple axes, bint keepdim):
    if keepdim:
        return _kept_shape(shp, axes)
    return tuple(s for k, s in enumerate(shp) if k not in axes)


cdef cnp.ndarray _as_grad(object arr, Tensor like):
    """arr as the gradient of `like`: its shape and dtype, C-contiguous, a fresh array."""
    return np.array(np.broadcast_to(arr, _shp(like._np)), dtype=like._np.dtype, order="C")


cdef Tensor _reduced(Tensor a, object kept, tuple axes, bint keepdim, int op, object saved):
    """The result tensor of an over-dims reduction from its keep-dims array; records the node
    when grad is on (saved: what the backward needs beyond the kept shape)."""
    cdef tuple shp = _shp(a._np)
    cdef Tensor t = _wrap(_ascontig(np.reshape(kept, _out_shape(shp, axes, keepdim))))
    if _grad_enabled and a._requires_grad:
        _record1(t, op, a, (_kept_shape(shp, axes), kept, saved))
    return t


cdef object _float_input(Tensor a, str what):
    if not _is_float(a._np):
        raise RuntimeError(what)
    return a._np


# ---- prod ------------------------------------------------------------------------------------

cdef Tensor _prod(Tensor a, object dim, bint keepdim, object dt):
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    x = <object>a._np
    if dim is not None and not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
    axes = _red_axes(dim, cnp.PyArray_NDIM(x))
    if not _is_float(x):
        return _wrap(np.asarray(np.prod(x, axis=axes, keepdims=keepdim, dtype=np.int64)))
    t = _reduced(a, np.prod(x, axis=axes, keepdims=True), axes, keepdim, N_PROD, axes)
    t._sub = dim is not None
    return t


cdef object _prod_name(Tensor t):
    return "ProdBackward1" if t._sub else "ProdBackward0"


cdef void _prod_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """torch's rule: g * prod / x without zeros; with zeros, g times the product of the other
    elements (exclusive cumulative products from both sides)."""
    cdef Tensor a = _input(t, 0)
    kshape, out, axes = t._saved
    x = <object>a._np
    gk = g.reshape(kshape)
    if not np.any(x == 0):
        gx = gk * out / x
    else:
        # move the reduced axes to the end, flattened into one
        keep = [k for k in range(x.ndim) if k not in axes]
        xm = np.transpose(x, keep + list(axes)).reshape([x.shape[k] for k in keep] + [-1])
        ones = np.ones(xm.shape[:-1] + (1,), dtype=x.dtype)
        left = np.cumprod(np.concatenate([ones, xm[..., :-1]], axis=-1), axis=-1)
        right = np.flip(np.cumprod(np.concatenate([ones, np.flip(xm, -1)[..., :-1]], axis=-1),
                                   axis=-1), -1)
        others = (left * right).reshape([x.shape[k] for k in keep] + [x.shape[k] for k in axes])
        others = np.transpose(others, np.argsort(keep + list(axes)))
        gx = gk * others
    _accumulate(a, _as_grad(gx, a), True)


_register(N_PROD, NULL, _prod_name, _prod_backward, _release_all)


# ---- var / std -------------------------------------------------------------------------------

cdef double _correction(object unbiased, object correction) except? -1:
    if correction is not None and unbiased is not None:
        raise RuntimeError("Cannot specify both unbiased and correction")
    if correction is not None:
        return float(correction)
    return 0.0 if unbiased is False else 1.0


cdef Tensor _var(Tensor a, object dim, object unbiased, bint keepdim, object correction,
                 bint take_sqrt):
    """var/std as torch computes them: mean and squared deviations accumulated in double
    (float32 input included), sum / max(0, N - correction), rounded to the input dtype."""
    cdef double corr = _correction(unbiased, correction)
    x = _float_input(a, "std and var only support floating point and complex dtypes")
    axes = _red_axes(dim, cnp.PyArray_NDIM(x))
    n = 1
    for k in axes:
        n *= x.shape[k]
    if n - corr <= 0:
        warnings.warn(f"{'std' if take_sqrt else 'var'}(): degrees of freedom is <= 0. "
                      "Correction should be strictly less than the reduction factor (input "
                      "numel divided by output numel).", UserWarning, stacklevel=1)
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.sum(x64, axis=axes, keepdims=True) / n
        ss = np.sum(np.square(x64 - mean), axis=axes, keepdims=True)
        r = ss / max(0.0, n - corr)
        if take_sqrt:
            r = np.sqrt(r)
    t = _reduced(a, r.astype(x.dtype), axes, keepdim, N_VAR, (mean.astype(x.dtype), n))
    t._sub = take_sqrt
    t._p0 = corr
    return t


cdef object _var_name(Tensor t):
    return "StdBackward0" if t._sub else "VarBackward0"


cdef void _var_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """var: g * 2 (x - mean) / (N - correction); std: g / (2 std) first (0 where std is 0),
    as torch's std_backward."""
    cdef Tensor a = _input(t, 0)
    kshape, out, saved = t._saved
    mean, n = saved
    gk = g.reshape(kshape)
    with np.errstate(invalid="ignore", divide="ignore"):
        if t._sub:
            gk = np.where(out == 0, 0, gk / (2 * out))   # torch masks std == 0 to 0
        gx = (2.0 / max(0.0, n - t._p0)) * gk * (a._np - mean)
    _accumulate(a, _as_grad(gx.astype(a._np.dtype), a), True)


_register(N_VAR, NULL, _var_name, _var_backward, _release_all)


def _std_var_args(dim, unbiased, keepdim):
    """torch's overloads: std(unbiased) and std(dim, unbiased, keepdim) as well as
    std(dim, *, correction, keepdim)."""
    if isinstance(dim, bool):
        if unbiased is not None:
            raise TypeError("std()/var(): unbiased given twice")
        return None, dim, keepdim
    return dim, unbiased, keepdim


# ---- norm ------------------------------------------------------------------------------------

cdef double _norm_ord(object p) except? -1:
    if p is None or p == "fro":
        return 2.0
    if isinstance(p, str):
        raise NotImplementedError(f"norm(p={p!r}) is not supported by fastoptim: only vector "
                                  "norms (p a number, 'fro' over all elements or 1-2 dims; see "
                                  "README.md, 'Known differences')")
    return float(p)


cdef Tensor _norm(Tensor a, object p, object dim, bint keepdim, object dt):
    """The vector norm over dims (torch.linalg.vector_norm's formulas: p = 0, 1, 2, +-inf and
    any other p as sum(|x|^p)^(1/p))."""
    cdef double ordv = _norm_ord(p)
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    x = _float_input(a, "linalg.vector_norm: Expected a floating point or complex tensor as "
                        f"input. Got {_dtype_of(a._np)._legacy[:-6]}")
    axes = _red_axes(dim, cnp.PyArray_NDIM(x))
    ax = np.abs(x)
    if ordv == INFINITY or ordv == -INFINITY:
        for k in axes:
            if x.shape[k] == 0:
                raise RuntimeError("linalg.vector_norm cannot compute the "
                                   f"{'inf' if ordv > 0 else '-inf'} norm on an empty tensor "
                                   "because the operation does not have an identity")
        r = (np.max if ordv > 0 else np.min)(ax, axis=axes, keepdims=True)
    elif ordv == 0:
        r = np.sum(ax != 0, axis=axes, keepdims=True).astype(x.dtype)
    elif ordv == 1:
        r = np.sum(ax, axis=axes, keepdims=True)
    elif ordv == 2:
        r = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
    else:
        with np.errstate(divide="ignore"):
            r = np.power(np.sum(np.power(ax, x.dtype.type(ordv)), axis=axes, keepdims=True),
                         x.dtype.type(1.0 / ordv))
    t = _reduced(a, np.asarray(r, dtype=x.dtype), axes, keepdim, N_NORM, axes)
    t._p0 = ordv
    return t


cdef void _norm_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """torch's linalg_vector_norm_backward, case by case on p."""
    cdef Tensor a = _input(t, 0)
    cdef double p = t._p0
    kshape, norm, axes = t._saved
    x = <object>a._np
    gk = g.reshape(kshape)
    with np.errstate(invalid="ignore", divide="ignore"):
        if p == 0:
            gx = np.zeros_like(x)
        elif p == 1:
            gx = np.sign(x) * gk
        elif p == 2:
            gx = gk * np.where(norm == 0, 0, x / norm)
        elif p == INFINITY or p == -INFINITY:
            mask = (np.abs(x) == norm)
            gx = np.sign(x) * ((gk / np.sum(mask, axis=axes, keepdims=True)) * mask)
        elif p < 1:
            scaled = np.where(x == 0, 0, np.sign(x) * np.power(np.abs(x), x.dtype.type(p - 1)))
            gx = scaled * gk * np.power(norm, x.dtype.type(1 - p))
        elif p < 2:
            scale = np.where(norm == 0, 0, gk / np.power(norm, x.dtype.type(p - 1)))
            gx = np.sign(x) * np.power(np.abs(x), x.dtype.type(p - 1)) * scale
        else:
            scale = np.where(norm == 0, 0, gk / np.power(norm, x.dtype.type(p - 1)))
            gx = x * np.power(np.abs(x), x.dtype.type(p - 2)) * scale
    _accumulate(a, _as_grad(gx, a), True)


_register(N_NORM, "LinalgVectorNormBackward0", NULL, _norm_backward, _release_all)


# ---- logsumexp -------------------------------------------------------------------------------

cdef Tensor _logsumexp(Tensor a, object dim, bint keepdim):
    """log(sum(exp(x - m))) + m with m the max over dims (0 where it is infinite), as torch."""
    if not _is_float(a._np):
        a = _cast(a, _default_dtype)
    x = <object>a._np
    axes = _red_axes(dim, cnp.PyArray_NDIM(x))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if x.size:
            m = np.array(np.max(x, axis=axes, keepdims=True))
            m[np.isinf(m)] = 0
        else:
            m = np.zeros(_kept_shape(x.shape, axes), dtype=x.dtype)
        r = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return _reduced(a, r, axes, keepdim, N_LOGSUMEXP, None)


cdef void _logsumexp_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g * exp(x - logsumexp)."""
    cdef Tensor a = _input(t, 0)
    kshape, out, _ = t._saved
    with np.errstate(invalid="ignore", over="ignore"):
        gx = g.reshape(kshape) * np.exp(a._np - out)
    _accumulate(a, _as_grad(gx, a), True)


_register(N_LOGSUMEXP, "LogsumexpBackward0", NULL, _logsumexp_backward, _release_all)


# ---- cumsum ----------------------------------------------------------------------------------

cdef Tensor _cumsum(Tensor a, object dim, object dt):
    """Running sums along dim; float32 accumulates in double, as torch's CPU kernel."""
    cdef Tensor t
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    x = <object>a._np
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"cumsum(): argument 'dim' must be int, not {type(dim).__name__}")
    axis = _norm_dim(dim, cnp.PyArray_NDIM(x))
    xx = x.reshape(1) if x.ndim == 0 else x
    if not _is_float(x):
        return _wrap(_ascontig(np.cumsum(xx, axis=axis, dtype=np.int64)
                                          .reshape(x.shape)))
    r = np.cumsum(xx, axis=axis, dtype=np.float64).astype(x.dtype).reshape(x.shape)
    t = _wrap(_ascontig(r))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_CUMSUM, a, axis)
    return t


cdef void _cumsum_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """The reversed running sum of g along the dim."""
    cdef Tensor a = _input(t, 0)
    if g.ndim == 0:
        _accumulate(a, g, gown)
        return
    axis = t._saved
    gx = np.flip(np.cumsum(np.flip(g, axis), axis=axis, dtype=np.float64), axis)
    _accumulate(a, _as_grad(gx, a), True)


_register(N_CUMSUM, "CumsumBackward0", NULL, _cumsum_backward, NULL)


# ---- max/min over a dim, argmax/argmin -------------------------------------------------------

from collections import namedtuple as _namedtuple


def _return_type(name):
    """torch.return_types.<name>: a (values, indices) tuple with names, printed as torch's."""
    def __repr__(self):
        return (f"fastoptim.return_types.{name}(\nvalues={self.values!r},\n"
                f"indices={self.indices!r})")
    return type(name, (_namedtuple(name, ("values", "indices")),),
                {"__slots__": (), "__repr__": __repr__, "__module__": "fastoptim.return_types"})


_RT_MAX = _return_type("max")
_RT_MIN = _return_type("min")


def _extreme_dim(Tensor a, bint want_max, dim=None, keepdim=False):
    """max(dim)/min(dim): the (values, indices) pair; NaN wins, the first extreme is taken."""
    cdef Tensor values
    name = "max" if want_max else "min"
    if dim is None or isinstance(dim, (tuple, list)) or isinstance(dim, bool):
        raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")
    x = <object>a._np
    axis = _norm_dim(dim, cnp.PyArray_NDIM(x))
    xx = x.reshape(1) if x.ndim == 0 else x
    if xx.shape[axis] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size.")
    idx = (np.argmax if want_max else np.argmin)(xx, axis=axis, keepdims=True)
    vals = np.take_along_axis(xx, idx, axis=axis)
    if x.ndim == 0:
        idx, vals = idx.reshape(()), vals.reshape(())
    if not keepdim and x.ndim:
        idx, vals = np.squeeze(idx, axis), np.squeeze(vals, axis)
    values = _wrap(_ascontig(vals))
    if _grad_enabled and a._requires_grad:
        _record1(values, N_EXTREME_DIM, a, (idx, axis, bool(keepdim)))
        values._sub = want_max
    return (_RT_MAX if want_max else _RT_MIN)(values, _wrap(_ascontig(idx,
                                                                                dtype=np.int64)))


cdef object _extreme_dim_name(Tensor t):
    return "MaxBackward0" if t._sub else "MinBackward0"


cdef void _extreme_dim_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g goes to the selected element of each slice (torch's value_selecting backward)."""
    cdef Tensor a = _input(t, 0)
    idx, axis, keepdim = t._saved
    x = <object>a._np
    if x.ndim == 0:
        _accumulate(a, np.array(g, order="C"), True)
        return
    if not keepdim:
        idx, g = np.expand_dims(idx, axis), np.expand_dims(g, axis)
    gx = np.zeros(x.shape, dtype=x.dtype)
    np.put_along_axis(gx, idx, g, axis=axis)
    _accumulate(a, gx, True)


_register(N_EXTREME_DIM, NULL, _extreme_dim_name, _extreme_dim_backward, NULL)


cdef Tensor _argextreme(Tensor a, bint want_max, object dim, bint keepdim):
    name = "argmax" if want_max else "argmin"
    f = np.argmax if want_max else np.argmin
    x = <object>a._np
    if dim is None:
        if x.size == 0:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                               "input.numel() == 0.")
        r = np.asarray(f(x.reshape(-1)), dtype=np.int64)
        return _wrap(r.reshape((1,) * x.ndim) if keepdim else r)
    return _extreme_dim(a, want_max, dim, keepdim).indices


# ---- any / all -------------------------------------------------------------------------------

cdef Tensor _any_all(Tensor a, bint want_all, object dim, bint keepdim):
    x = <object>a._np
    axes = _red_axes(dim, cnp.PyArray_NDIM(x))
    r = (np.all if want_all else np.any)(x, axis=axes, keepdims=keepdim)
    return _wrap(_ascontig(r))
