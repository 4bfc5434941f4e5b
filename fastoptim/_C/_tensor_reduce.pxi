# Reductions: sum/mean over everything (N_SUM) or one dim (N_SUM_AXIS), max/min over
# everything (N_EXTREME).  Each backward sits under its forward, registered in the op table.

cdef Tensor _sum(Tensor a, object dim, bint keepdim, bint mean, object dt):
    cdef cnp.ndarray x
    cdef cnp.ndarray out
    cdef int64_t n, outer, inner
    cdef double total, scale
    cdef Tensor t
    cdef int nd, d
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    if not _is_float(a._np):
        if mean:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either "
                               "a floating point or complex dtype. Got: "
                               f"{_dtype_of(a._np)._legacy[:-6]}")
        return _wrap(np.asarray(a._np.sum(axis=dim, keepdims=keepdim)))
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
        return t
    if isinstance(dim, (tuple, list)):
        dims = sorted({_norm_dim(dd, nd) for dd in dim}, reverse=True)
        t = a
        for dd in dims:
            t = _sum(t, dd, True, mean, None)
        if not keepdim:
            shp = tuple(s for k, s in enumerate(_shp(t._np)) if k not in dims)
            t = _view(t, shp, False)
        return t
    d = _norm_dim(dim, nd)
    if nd == 0:
        return _sum(a, None, keepdim, mean, None)
    shp = _shp(x)
    outer = 1
    for k in range(d):
        outer *= shp[k]
    n = shp[d]
    inner = 1
    for k in range(d + 1, nd):
        inner *= shp[k]
    scale = (1.0 / n if n > 0 else NAN) if mean else 1.0
    oshape = shp[:d] + ((1,) if keepdim else ()) + shp[d + 1:]
    out = np.empty(oshape, dtype=x.dtype)
    _kern(x).sum_axis(outer, n, inner, _ptr(x), scale, _ptr(out))
    t = _wrap(out)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_SUM_AXIS, a, (outer, n, inner, shp))
        t._p0 = scale
    return t


cdef object _sum_name(Tensor t):
    return "MeanBackward0" if t._p0 != 1.0 else "SumBackward0"


cdef void _sum_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """Every input element gets scale * g (g has one element)."""
    cdef cnp.ndarray gx = _empty_shape(t._saved, cnp.PyArray_TYPE(g))
    _kern(g).expand_axis(1, cnp.PyArray_SIZE(gx), 1, _ptr(g), t._p0, _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


_register(N_SUM, NULL, _sum_name, _sum_backward, NULL)


cdef object _sum_axis_name(Tensor t):
    return "MeanBackward1" if t._p0 != 1.0 else "SumBackward1"


cdef void _sum_axis_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g broadcast back along the reduced (middle) axis of [outer, n, inner], times scale."""
    outer, n, inner, in_shape = t._saved
    cdef cnp.ndarray gx = _empty_shape(in_shape, cnp.PyArray_TYPE(g))
    _kern(g).expand_axis(outer, n, inner, _ptr(g), t._p0, _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


_register(N_SUM_AXIS, NULL, _sum_axis_name, _sum_axis_backward, NULL)


cdef Tensor _extreme(Tensor a, bint want_max, tuple args, dict kwargs):
    cdef cnp.ndarray x
    cdef int64_t n, count = 0
    cdef double m
    cdef Tensor t
    name = "max" if want_max else "min"
    if args and isinstance(args[0], Tensor):
        # element-wise maximum/minimum of two tensors
        return _binary(a, <Tensor>args[0], FO_MAXIMUM if want_max else FO_MINIMUM)
    if args or kwargs:
        raise NotImplementedError(f"{name}(dim) is not supported by fastoptim; {name}() over "
                                  "all elements is")
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

