# Views and indexing: reshape/view/flatten/squeeze (N_VIEW), transpose (N_TRANSPOSE), basic and
# advanced indexing (N_INDEX).  Views share storage as torch's do.

cdef Tensor _view(Tensor a, tuple shape, bint strict):
    cdef cnp.ndarray x = a._np
    cdef Tensor t
    try:
        if strict and not cnp.PyArray_IS_C_CONTIGUOUS(x):
            # a view must not copy; numpy copies silently, so insist on a compatible layout
            y = x.view()
            _set_shape(y, shape)
        else:
            y = x.reshape(shape)
    except (ValueError, AttributeError) as e:
        msg = str(e)
        if "size" in msg or "reshape" in msg or "cannot" in msg:
            if strict and not cnp.PyArray_IS_C_CONTIGUOUS(x) and _numel_of(shape, x.size):
                raise RuntimeError(
                    "view size is not compatible with input tensor's size and stride (at least "
                    "one dimension spans across two contiguous subspaces). Use .reshape(...) "
                    "instead.")
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {x.size}")
        raise
    t = _wrap(y)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_VIEW, a, _shp(x))
    return t


cdef void _view_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    _accumulate(_input(t, 0), g.reshape(t._saved), False)


_register(N_VIEW, "ViewBackward0", NULL, _view_backward, NULL)


def _numel_of(shape, size):
    n = 1
    for s in shape:
        if s == -1:
            return True
        n *= s
    return n == size


cdef Tensor _transpose(Tensor a, object d0, object d1):
    cdef int nd = cnp.PyArray_NDIM(a._np)
    cdef Tensor t
    i = _norm_dim(d0, nd)
    j = _norm_dim(d1, nd)
    t = _wrap(a._np.swapaxes(i, j) if nd > 0 else a._np)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_TRANSPOSE, a, (i, j))
    return t


cdef void _transpose_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    i, j = t._saved
    _accumulate(_input(t, 0), _ascontig(g.swapaxes(i, j)), True)


_register(N_TRANSPOSE, "TransposeBackward0", NULL, _transpose_backward, NULL)


cdef Tensor _index(Tensor a, object key):
    cdef Tensor t
    if isinstance(key, Tensor):
        key = (<Tensor>key)._np
    elif isinstance(key, tuple):
        key = tuple((<Tensor>k)._np if isinstance(k, Tensor) else k for k in key)
    elif isinstance(key, list):
        key = np.asarray(key)
    try:
        y = a._np[key]
    except IndexError as e:
        raise IndexError(f"{e} (tensor of shape {list(_shp(a._np))})")
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    t = _wrap(y)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_INDEX, a, key)
    return t


cdef void _index_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g scattered (summed, for repeated indices) into zeros of the input's shape."""
    cdef Tensor a = _input(t, 0)
    gx = _zeros_like(_contig(a._np)) if cnp.PyArray_TYPE(a._np) == cnp.PyArray_TYPE(g) \
        else np.zeros(_shp(a._np), dtype=g.dtype)
    np.add.at(gx, t._saved, g)
    _accumulate(a, gx, True)


_register(N_INDEX, "IndexBackward0", NULL, _index_backward, NULL)

