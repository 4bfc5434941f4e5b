# Element-wise ops: unary and scalar forms (N_UNARY), broadcasting binary ops (N_BINARY), dtype
# casts (N_CAST), clone (N_CLONE), where (N_WHERE), clamp with tensor bounds (N_CLAMP_T) and
# lerp (N_LERP) -- these three in numpy, broadcasting, with torch's type promotion --,
# comparisons, and the in-place updates.  Each differentiable
# op's backward sits under its forward and is registered in the op table (_tensor_ops.pxi).

cdef inline bint _is_scalar(object x):
    return isinstance(x, (float, int)) or isinstance(x, (np.floating, np.integer, np.bool_))


cdef Tensor _as_tensor(object x, Tensor like):
    if isinstance(x, Tensor):
        return <Tensor>x
    if isinstance(x, np.ndarray):
        return from_numpy(x) if x.dtype.isnative else tensor(x)
    if isinstance(x, (list, tuple)):
        return tensor(x, dtype=like.dtype if _is_float(like._np) else None)
    err = _foreign_operand(x)
    if err is not None:
        raise err
    raise TypeError(f"unsupported operand type: {type(x).__name__} (expected a Tensor, a number "
                    "or an array)")


cdef void _unary_arr(cnp.ndarray out, cnp.ndarray x, int op, double p0, double p1):
    _kern(x).unary(op, cnp.PyArray_SIZE(x), _ptr(out), _ptr(x), p0, p1)


cdef Tensor _unary(Tensor a, int op, double p0, double p1):
    """Element-wise op (including tensor-op-scalar forms) on a float tensor."""
    cdef cnp.ndarray x = a._np
    cdef cnp.ndarray out
    cdef Tensor t
    if not _is_float(x):
        return _unary(_cast(a, _default_dtype), op, p0, p1)
    x = _contig(x)
    out = _empty_like(x)
    _unary_arr(out, x, op, p0, p1)
    t = _wrap(out)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_UNARY, a, (x, out))
        t._sub = op
        t._p0 = p0
        t._p1 = p1
    return t


cdef dict _UNARY_NAMES = {
    FO_NEG: "NegBackward0", FO_EXP: "ExpBackward0", FO_LOG: "LogBackward0",
    FO_SQRT: "SqrtBackward0", FO_ABS: "AbsBackward0", FO_RELU: "ReluBackward0",
    FO_TANH: "TanhBackward0", FO_SIGMOID: "SigmoidBackward0", FO_CLAMP: "ClampBackward1",
    FO_POW: "PowBackward0", FO_ADD_S: "AddBackward0", FO_MUL_S: "MulBackward0",
    FO_RSUB_S: "RsubBackward1", FO_RDIV_S: "MulBackward0", FO_DIV_S: "DivBackward0",
    FO_RPOW_S: "PowBackward2", FO_SIN: "SinBackward0", FO_COS: "CosBackward0",
    FO_TAN: "TanBackward0", FO_ASIN: "AsinBackward0", FO_ACOS: "AcosBackward0",
    FO_ATAN: "AtanBackward0", FO_SINH: "SinhBackward0", FO_COSH: "CoshBackward0",
    FO_EXP2: "Exp2Backward0", FO_EXPM1: "Expm1Backward0", FO_LOG1P: "Log1PBackward0",
    FO_LOG2: "Log2Backward0", FO_LOG10: "Log10Backward0", FO_SIGN: "SignBackward0",
    FO_FLOOR: "FloorBackward0", FO_CEIL: "CeilBackward0", FO_ROUND: "RoundBackward0",
    FO_TRUNC: "TruncBackward0", FO_RECIPROCAL: "ReciprocalBackward0",
    FO_RSQRT: "RsqrtBackward0", FO_SQUARE: "PowBackward0", FO_ERF: "ErfBackward0",
    FO_SOFTPLUS: "SoftplusBackward0",
}

# ops that keep an integer tensor's dtype (torch computes them in the integer type); every
# other unary op computes an integer tensor in the default float dtype
cdef dict _INT_KEEPING = {FO_SIGN: np.sign, FO_FLOOR: None, FO_CEIL: None, FO_ROUND: None,
                          FO_TRUNC: None, FO_SQUARE: np.square, FO_NEG: np.negative,
                          FO_ABS: np.abs, FO_RELU: lambda x: np.maximum(x, 0)}


cdef Tensor _unary_op(Tensor a, int op):
    """A parameterless unary op (sin, floor, ...) as torch types it: floor/ceil/round/trunc
    of an integer tensor is the tensor's values, sign/square/neg/abs stay integer."""
    if not _is_float(a._np) and op in _INT_KEEPING:
        f = _INT_KEEPING[op]
        return _wrap(np.array(a._np) if f is None else np.asarray(f(a._np)))
    return _unary(a, op, 0.0, 0.0)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, reverting to x where beta * x > threshold (as torch's
    nn.functional.softplus)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"softplus(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    return _unary(<Tensor>input, FO_SOFTPLUS, float(beta), float(threshold))


cdef object _unary_name(Tensor t):
    return _UNARY_NAMES[t._sub]


cdef void _unary_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """gx = g * op'(x), from the saved input x and output y (fo_unary_backward)."""
    cdef cnp.ndarray gx
    if t._freed == 2:   # an op whose derivative needs no values: they were dropped
        x = None
        y = None
    else:
        x, y = t._saved
    gx = _empty_like(g)
    _kern(g).unary_backward(t._sub, cnp.PyArray_SIZE(g), _ptr(g), _optr(x), _optr(y), t._p0,
                            t._p1, _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


cdef void _unary_release(Tensor t) except *:
    if t._freed:
        return
    if t._sub in (FO_NEG, FO_ADD_S, FO_MUL_S, FO_RSUB_S, FO_DIV_S):
        t._saved = None
        t._freed = 2    # the derivative is a constant: the node may run backward again
        return
    _release_all(t)


_register(N_UNARY, NULL, _unary_name, _unary_backward, _unary_release)


cdef void _unary_inplace(Tensor a, int op, double p0, double p1):
    cdef cnp.ndarray x = a._np
    cdef cnp.ndarray c
    if not _is_float(x):
        raise TypeError(f"this in-place op needs a floating tensor, got {_dtype_of(x)}")
    c = _contig(x)
    _unary_arr(c, c, op, p0, p1)
    if c is not x:
        x[...] = c


def clamp(input, min=None, max=None):
    """Clamp every element into [min, max]; a None bound is not applied.  The bounds are
    numbers, or tensors (broadcast with input; differentiable in all three)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if not isinstance(input, Tensor):
        raise TypeError(f"clamp(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if (isinstance(min, Tensor) and cnp.PyArray_NDIM((<Tensor>min)._np) > 0) or \
            (isinstance(max, Tensor) and cnp.PyArray_NDIM((<Tensor>max)._np) > 0) or \
            (isinstance(min, Tensor) and (<Tensor>min)._requires_grad) or \
            (isinstance(max, Tensor) and (<Tensor>max)._requires_grad):
        return _clamp_tensor(<Tensor>input, min, max)
    if isinstance(min, Tensor):
        min = (<Tensor>min).item()
    if isinstance(max, Tensor):
        max = (<Tensor>max).item()
    if not _is_float((<Tensor>input)._np) and not isinstance(min, float) and \
            not isinstance(max, float):
        return _wrap(np.asarray(np.clip((<Tensor>input)._np, min, max)))   # stays integer
    return _unary(<Tensor>input, FO_CLAMP, NAN if min is None else float(min),
                  NAN if max is None else float(max))


def _broadcast_shapes(*shapes):
    """The broadcast of shapes, or torch's error at the first dim that does not match."""
    nd = max([len(s) for s in shapes] or [0])
    out = [1] * nd
    for shp in shapes:
        for k in range(1, len(shp) + 1):
            d = shp[-k]
            if d == out[-k] or d == 1:
                continue
            if out[-k] != 1:
                raise RuntimeError(f"The size of tensor a ({out[-k]}) must match the size of "
                                   f"tensor b ({d}) at non-singleton dimension {nd - k}")
            out[-k] = d
    return tuple(out)


cdef object _sum_to(object g, tuple shape):
    """g summed over the dims a broadcast added or stretched, back to `shape` (C-contiguous)."""
    g = np.asarray(g)
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(k for k, s in enumerate(shape) if s == 1 and g.shape[k] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return _ascontig(g.reshape(shape))


cdef void _acc_to(Tensor a, object g) except *:
    """Accumulate a broadcast gradient into input a (None: a needs none)."""
    if a is not None:
        _accumulate(a, _sum_to(g, _shp(a._np)).astype(a._np.dtype, copy=False), True)


cdef tuple _promoted(list operands):
    """The operands (tensors, numbers or None) as tensors of torch's common dtype: tensors
    decide (dimensioned ones over 0-dim ones within a category), a Python float makes an
    integer result float (the default dtype), as torch's type promotion."""
    cdef Tensor t
    cdef dtype d = None
    for o in operands:
        if isinstance(o, Tensor):
            d = (<Tensor>o).dtype if d is None else _promote_dt(d, o)
    for o in operands:
        if d is not None and not d.is_floating_point and isinstance(o, (float, np.floating)):
            d = _default_dtype
        elif d is bool_ and isinstance(o, (int, np.integer)) and not isinstance(o, bool):
            d = int64
    out = []
    for o in operands:
        if o is None:
            out.append(None)
        elif isinstance(o, Tensor):
            out.append(_cast(<Tensor>o, d))
        else:
            out.append(_wrap(np.asarray(o, dtype=d._np_dtype)))
    return tuple(out)


cdef dtype _promote_dt(dtype d, Tensor b):
    """d (a dimensioned tensor's dtype so far) promoted with tensor b."""
    cdef dtype db = b.dtype
    if d is db:
        return d
    if d.is_floating_point and db.is_floating_point:
        return d if cnp.PyArray_NDIM(b._np) == 0 else float64
    if d.is_floating_point:
        return d
    if db.is_floating_point:
        return db
    if d is bool_:
        return db
    if db is bool_:
        return d
    return int64


cdef Tensor _clamp_tensor(Tensor x, object lo, object hi):
    """min(max(x, lo), hi) with tensor bounds, NaN propagating (torch's clamp.Tensor)."""
    cdef Tensor t, tl, th
    if (lo is not None and not isinstance(lo, Tensor)) or \
            (hi is not None and not isinstance(hi, Tensor)):
        raise TypeError("clamp(): min and max must both be Tensors (or None) when one is a "
                        "Tensor, as in torch's clamp(Tensor input, Tensor? min, Tensor? max)")
    x, tl, th = _promoted([x, lo, hi])
    r = x._np
    if tl is not None:
        r = np.maximum(r, tl._np)
    if th is not None:
        r = np.minimum(r, th._np)
    t = _wrap(_ascontig(np.broadcast_to(r, _broadcast_shapes(
        _shp(x._np), *[_shp(b._np) for b in (tl, th) if b is not None]))))
    if _grad_enabled and (x._requires_grad or (tl is not None and tl._requires_grad) or
                          (th is not None and th._requires_grad)):
        _record3(t, N_CLAMP_T, x, tl, th,
                 (x._np, None if tl is None else tl._np, None if th is None else th._np))
    return t


cdef void _clamp_tensor_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """torch's clamp_backward_min_max: x gets g where lo <= x <= hi; lo where x < lo (and
    lo < hi); hi where x > hi (or hi < lo)."""
    x, lo, hi = t._saved
    if lo is not None and hi is not None:
        _acc_to(_input(t, 0), np.where((x >= lo) & (x <= hi), g, 0))
        _acc_to(_input(t, 1), np.where((x < lo) & (lo < hi), g, 0))
        _acc_to(_input(t, 2), np.where((x > hi) | (hi < lo), g, 0))
    elif lo is not None:
        _acc_to(_input(t, 0), np.where(x >= lo, g, 0))
        _acc_to(_input(t, 1), np.where(x < lo, g, 0))
    else:
        _acc_to(_input(t, 0), np.where(x <= hi, g, 0))
        _acc_to(_input(t, 2), np.where(x > hi, g, 0))


_register(N_CLAMP_T, "ClampBackward0", NULL, _clamp_tensor_backward, _release_all)


def where(condition, input=None, other=None):
    """where(condition, input, other): input where condition is True, else other (tensors or
    numbers, broadcast, promoted as torch; differentiable in input and other).
    where(condition) is condition.nonzero(as_tuple=True)."""
    cdef Tensor c, a, b, t
    if not isinstance(condition, Tensor):
        raise TypeError(f"where(): argument 'condition' (position 1) must be Tensor, not "
                        f"{type(condition).__name__}")
    c = <Tensor>condition
    if input is None and other is None:
        return tuple(_wrap(_ascontig(i, dtype=np.int64))
                     for i in np.nonzero(np.atleast_1d(c._np)))
    if input is None or other is None:
        raise TypeError("where() takes a condition and both input and other (or the "
                        "condition alone)")
    if c.dtype is not bool_:
        raise RuntimeError("where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {c.dtype._legacy[:-6]}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two numbers: a Python float gives the default dtype, as torch
        a, b = _promoted([tensor(input), tensor(other)])
    else:
        a, b = _promoted([input, other])
    _broadcast_shapes(_shp(c._np), _shp(a._np), _shp(b._np))
    t = _wrap(_ascontig(np.where(c._np, a._np, b._np)))
    if _needs_grad(a, b):
        _record2(t, N_WHERE, a, b, c._np)
    return t


cdef void _where_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef cnp.ndarray cond = t._saved
    _acc_to(_input(t, 0), np.where(cond, g, 0))
    _acc_to(_input(t, 1), np.where(cond, 0, g))


_register(N_WHERE, "WhereBackward0", NULL, _where_backward, NULL)


# the C++ type names torch's dtype-check messages use
cdef dict _CPP_NAMES = {"float32": "float", "float64": "double", "int64": "long int",
                        "int32": "int", "bool": "bool"}


def lerp(input, end, weight):
    """input + weight * (end - input), in torch's two-sided form (weight < 0.5 from input,
    else from end); weight a number or a tensor.  Differentiable in all tensor operands."""
    cdef Tensor x, e, w, t
    if not isinstance(input, Tensor):
        raise TypeError(f"lerp(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if not isinstance(end, Tensor):
        raise TypeError(f"lerp(): argument 'end' (position 2) must be Tensor, not "
                        f"{type(end).__name__}")
    x, e = <Tensor>input, <Tensor>end
    if e.dtype is not x.dtype:
        raise RuntimeError(f"expected dtype {_CPP_NAMES[x.dtype.name]} for `end` but got "
                           f"dtype {_CPP_NAMES[e.dtype.name]}")
    if not _is_float(x._np):
        raise RuntimeError(f"\"lerp_kernel_scalar\" not implemented for '{x.dtype._legacy[:-6]}'")
    if isinstance(weight, Tensor):
        w = <Tensor>weight
        if w.dtype is not x.dtype:
            raise RuntimeError(f"expected dtype {_CPP_NAMES[x.dtype.name]} for `weight` but "
                               f"got dtype {_CPP_NAMES[w.dtype.name]}")
        wv = w._np
    else:
        w = None
        wv = x._np.dtype.type(float(weight))
    _broadcast_shapes(_shp(x._np), _shp(e._np), np.shape(wv))
    d = e._np - x._np
    r = np.where(np.abs(wv) < 0.5, x._np + wv * d, e._np - d * (1 - wv)).astype(x._np.dtype)
    t = _wrap(_ascontig(r))
    if _grad_enabled and (x._requires_grad or e._requires_grad or
                          (w is not None and w._requires_grad)):
        _record3(t, N_LERP, x, e, w, (x._np, e._np, wv))
        t._sub = w is not None
    return t


cdef object _lerp_name(Tensor t):
    return "LerpBackward1" if t._sub else "LerpBackward0"


cdef void _lerp_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """input: g (1 - weight); end: g weight; weight (a tensor): g (end - input)."""
    x, e, w = t._saved
    _acc_to(_input(t, 0), g * (1 - w))
    _acc_to(_input(t, 1), g * w)
    if t._sub:
        _acc_to(_input(t, 2), g * (e - x))


_register(N_LERP, NULL, _lerp_name, _lerp_backward, _release_all)


cdef dtype _promote(Tensor a, Tensor b):
    """torch's promotion for two tensors: the wider float wins, except that a 0-dim tensor
    does not widen a dimensioned one of the same category."""
    cdef dtype da = _dtype_of(a._np)
    cdef dtype db = _dtype_of(b._np)
    if da is db:
        return da
    cdef bint fa = da.is_floating_point
    cdef bint fb = db.is_floating_point
    cdef int na = cnp.PyArray_NDIM(a._np)
    cdef int nb = cnp.PyArray_NDIM(b._np)
    if fa and not fb:
        return da
    if fb and not fa:
        return db
    if fa and fb:
        if na == 0 and nb != 0:
            return db
        if nb == 0 and na != 0:
            return da
        return float64
    return int64


cdef Tensor _cast(Tensor a, dtype d):
    cdef Tensor t
    if cnp.PyArray_TYPE(a._np) == d._typenum:
        return a
    t = _wrap(a._np.astype(d._np_dtype))
    if _grad_enabled and a._requires_grad and d.is_floating_point:
        _record1(t, N_CAST, a, None)
    return t


cdef void _cast_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef Tensor a = _input(t, 0)
    if cnp.PyArray_TYPE(g) == cnp.PyArray_TYPE(a._np):
        _accumulate(a, g, gown)
    else:
        _accumulate(a, g.astype(a._np.dtype), True)


_register(N_CAST, "ToCopyBackward0", NULL, _cast_backward, NULL)


cdef void _clone_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    _accumulate(_input(t, 0), g, False)


_register(N_CLONE, "CloneBackward0", NULL, _clone_backward, NULL)


cdef int _broadcast(cnp.ndarray a, cnp.ndarray b, int64_t *shape, int64_t *sa,
                    int64_t *sb) except -1:
    """Broadcast the (contiguous) arrays a and b; fill the out shape and the element strides
    of a and b (0 along broadcast dims), with mergeable dims merged.  Returns the ndim."""
    cdef int na = cnp.PyArray_NDIM(a)
    cdef int nb = cnp.PyArray_NDIM(b)
    cdef int nd = na if na > nb else nb
    cdef int64_t da, db, d_out, st_a = 1, st_b = 1
    cdef int64_t rs[64]
    cdef int64_t ra[64]
    cdef int64_t rb[64]
    cdef int k, i, m = 0
    if nd > 64:
        raise ValueError("too many dimensions")
    # walk dims from the last, computing contiguous strides as we go
    for k in range(nd):
        i = nd - 1 - k
        da = cnp.PyArray_DIMS(a)[na - 1 - k] if k < na else 1
        db = cnp.PyArray_DIMS(b)[nb - 1 - k] if k < nb else 1
        if da != db and da != 1 and db != 1:
            raise RuntimeError(f"The size of tensor a ({da}) must match the size of tensor b "
                               f"({db}) at non-singleton dimension {i}")
        d_out = da if db == 1 else db
        rs[i] = d_out
        ra[i] = st_a if (da != 1 or d_out == 1) else 0
        rb[i] = st_b if (db != 1 or d_out == 1) else 0
        st_a *= da
        st_b *= db
    # merge: drop size-1 dims, fuse a dim into the previous kept one when both layouts agree
    for i in range(nd):
        if rs[i] == 1:
            continue
        if m > 0 and sa[m - 1] == ra[i] * rs[i] and sb[m - 1] == rb[i] * rs[i]:
            shape[m - 1] *= rs[i]
            sa[m - 1] = ra[i]
            sb[m - 1] = rb[i]
            continue
        shape[m] = rs[i]
        sa[m] = ra[i]
        sb[m] = rb[i]
        m += 1
    return m


cdef tuple _broadcast_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int na = cnp.PyArray_NDIM(a)
    cdef int nb = cnp.PyArray_NDIM(b)
    cdef int nd = na if na > nb else nb
    cdef list out = [0] * nd
    cdef int k
    for k in range(nd):
        da = cnp.PyArray_DIMS(a)[na - 1 - k] if k < na else 1
        db = cnp.PyArray_DIMS(b)[nb - 1 - k] if k < nb else 1
        out[nd - 1 - k] = da if db == 1 else db
    return tuple(out)


cdef Tensor _binary(Tensor a, Tensor b, int op):
    """Broadcasting a (op) b for two tensors, on the C kernel."""
    cdef dtype d
    cdef cnp.ndarray x, y, out
    cdef int64_t shape[64]
    cdef int64_t sa[64]
    cdef int64_t sb[64]
    cdef cnp.npy_intp odims[64]
    cdef int nd, m, i
    cdef Tensor t
    if cnp.PyArray_TYPE(a._np) != cnp.PyArray_TYPE(b._np):
        d = _promote(a, b)
        a = _cast(a, d)
        b = _cast(b, d)
    x = a._np
    y = b._np
    if not _is_float(x):
        return _wrap(np.asarray(_np_binary(op, x, y)))   # 0-dim numpy results are scalars
    x = _contig(x)
    y = _contig(y)
    m = _broadcast(x, y, shape, sa, sb)
    oshape = _broadcast_shape(x, y)
    nd = len(oshape)
    for i in range(nd):
        odims[i] = oshape[i]
    out = _empty(nd, odims, cnp.PyArray_TYPE(x))
    if cnp.PyArray_SIZE(out) > 0:
        _kern(x).binary(op, m, shape, _ptr(out), _ptr(x), sa, _ptr(y), sb)
    t = _wrap(out)
    if _needs_grad(a, b):
        _record2(t, N_BINARY, a, b, (x, y))
        t._sub = op
    return t


cdef dict _BINARY_NAMES = {FO_ADD: "AddBackward0", FO_SUB: "SubBackward0",
                           FO_MUL: "MulBackward0", FO_DIV: "DivBackward0",
                           FO_POW_T: "PowBackward1", FO_MAXIMUM: "MaximumBackward0",
                           FO_MINIMUM: "MinimumBackward0"}


cdef object _binary_name(Tensor t):
    return _BINARY_NAMES[t._sub]


cdef void _binary_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """Gradients of a (op) b, summed over broadcast dims (fo_binary_backward)."""
    cdef Tensor a = _input(t, 0)
    cdef Tensor b = _input(t, 1)
    cdef cnp.ndarray x, y, ga, gb
    cdef int64_t shape[64]
    cdef int64_t sa[64]
    cdef int64_t sb[64]
    cdef int m
    if t._freed == 2:
        # add/sub after the values were freed: only the shapes are needed
        x = np.empty(t._saved[0], dtype=t._saved[2])
        y = np.empty(t._saved[1], dtype=t._saved[2])
    else:
        x, y = t._saved
    if (t._sub == FO_ADD or t._sub == FO_SUB) and cnp.PyArray_SAMESHAPE(x, y):
        # identical shapes: the gradient passes through (negated for b in a - b)
        if a is not None:
            _accumulate(a, g, False)
        if b is not None:
            if t._sub == FO_ADD:
                _accumulate(b, g, False)
            else:
                gb = _empty_like(g)
                _unary_arr(gb, g, FO_NEG, 0.0, 0.0)
                _accumulate(b, gb, True)
        return
    ga = _zeros_like(x) if a is not None else None
    gb = _zeros_like(y) if b is not None else None
    m = _broadcast(x, y, shape, sa, sb)
    if cnp.PyArray_SIZE(g) > 0:
        _kern(g).binary_backward(t._sub, m, shape, _ptr(g), _ptr(x), sa, _ptr(y), sb,
                                 _optr(ga), _optr(gb))
    if a is not None:
        _accumulate(a, ga, True)
    if b is not None:
        _accumulate(b, gb, True)


cdef void _binary_release(Tensor t) except *:
    if t._freed:
        return
    if t._sub == FO_ADD or t._sub == FO_SUB:
        t._saved = (_shp(t._saved[0]), _shp(t._saved[1]), t._saved[0].dtype)
        t._freed = 2   # shapes kept: add/sub need no values
        return
    _release_all(t)


_register(N_BINARY, NULL, _binary_name, _binary_backward, _binary_release)


cdef object _np_binary(int op, cnp.ndarray x, cnp.ndarray y):
    if op == FO_ADD:
        return x + y
    if op == FO_SUB:
        return x - y
    if op == FO_MUL:
        return x * y
    if op == FO_POW_T:
        # torch's integer pow: a negative exponent truncates 1 / x**|y| (0 unless |x| == 1)
        r = np.power(x, np.abs(y))
        if np.any(y < 0):
            odd = (np.abs(y) % 2) == 1
            r = np.where(y < 0, np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0)),
                         r).astype(r.dtype)
        return r
    if op == FO_MAXIMUM:
        return np.maximum(x, y)
    if op == FO_MINIMUM:
        return np.minimum(x, y)
    return np.true_divide(x, y).astype(_default_dtype._np_dtype)


cdef Tensor _add(Tensor a, object other, object alpha):
    if _is_scalar(other):
        if not _is_float(a._np) and not isinstance(other, (float, np.floating)) and \
                (alpha == 1 or not isinstance(alpha, (float, np.floating))):
            return _wrap(np.asarray(a._np + (other if alpha == 1 else other * int(alpha))))
        return _unary(a, FO_ADD_S, float(other) * float(alpha), 0.0)
    cdef Tensor b = _as_tensor(other, a)
    if alpha != 1:
        b = _mul(b, alpha)
    return _binary(a, b, FO_ADD)


cdef Tensor _sub(Tensor a, object other):
    if _is_scalar(other):
        if not _is_float(a._np) and not isinstance(other, (float, np.floating)):
            return _wrap(np.asarray(a._np - other))
        return _unary(a, FO_ADD_S, -float(other), 0.0)
    return _binary(a, _as_tensor(other, a), FO_SUB)


cdef Tensor _rsub(Tensor a, object other):
    if _is_scalar(other):
        if not _is_float(a._np) and not isinstance(other, (float, np.floating)):
            return _wrap(np.asarray(other - a._np))
        return _unary(a, FO_RSUB_S, float(other), 0.0)
    return _binary(_as_tensor(other, a), a, FO_SUB)


cdef Tensor _mul(Tensor a, object other):
    if _is_scalar(other):
        if not _is_float(a._np):
            if isinstance(other, float):
                return _unary(a, FO_MUL_S, other, 0.0)
            return _wrap(np.asarray(a._np * other))
        return _unary(a, FO_MUL_S, float(other), 0.0)
    return _binary(a, _as_tensor(other, a), FO_MUL)


cdef Tensor _div(Tensor a, object other):
    if _is_scalar(other):
        return _unary(a, FO_DIV_S, float(other), 0.0)
    return _binary(a, _as_tensor(other, a), FO_DIV)


cdef Tensor _rdiv(Tensor a, object other):
    if _is_scalar(other):
        return _unary(a, FO_RDIV_S, float(other), 0.0)
    return _binary(_as_tensor(other, a), a, FO_DIV)


cdef Tensor _pow(Tensor a, object exponent):
    if isinstance(exponent, Tensor) and cnp.PyArray_NDIM((<Tensor>exponent)._np) == 0 \
            and not (<Tensor>exponent)._requires_grad:
        exponent = (<Tensor>exponent).item()
    if not _is_scalar(exponent):
        return _binary(a, _as_tensor(exponent, a), FO_POW_T)
    if not _is_float(a._np) and isinstance(exponent, (int, np.integer)):
        # an integer tensor to an integer power stays integer, as torch
        if exponent < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _wrap(np.asarray(np.power(a._np, exponent)))
    return _unary(a, FO_POW, float(exponent), 0.0)


cdef Tensor _rpow(Tensor a, object base):
    if not _is_scalar(base):
        return _binary(_as_tensor(base, a), a, FO_POW_T)
    if not _is_float(a._np) and isinstance(base, (int, np.integer)):
        return _binary(tensor(base), a, FO_POW_T)     # integer, as torch
    return _unary(a, FO_RPOW_S, float(base), 0.0)


def maximum(input, other):
    """The element-wise maximum of two tensors, broadcasting; NaN propagates (as torch)."""
    cdef Tensor a = <Tensor>input if isinstance(input, Tensor) else tensor(input)
    if not isinstance(other, Tensor):
        raise TypeError(f"maximum(): argument 'other' (position 2) must be Tensor, not "
                        f"{type(other).__name__}")
    return _binary(a, <Tensor>other, FO_MAXIMUM)


def minimum(input, other):
    """The element-wise minimum of two tensors, broadcasting; NaN propagates (as torch)."""
    cdef Tensor a = <Tensor>input if isinstance(input, Tensor) else tensor(input)
    if not isinstance(other, Tensor):
        raise TypeError(f"minimum(): argument 'other' (position 2) must be Tensor, not "
                        f"{type(other).__name__}")
    return _binary(a, <Tensor>other, FO_MINIMUM)


cdef Tensor _compare(Tensor a, object other, int kind):
    y = _np_of(other)
    x = a._np
    if kind == 0:
        r = x < y
    elif kind == 1:
        r = x <= y
    elif kind == 2:
        r = x == y
    elif kind == 3:
        r = x != y
    elif kind == 4:
        r = x > y
    else:
        r = x >= y
    return _wrap(np.asarray(r))


cdef Tensor _iop(Tensor self, int op, object other, object alpha):
    """self (op)= alpha * other (FO_ADD/FO_SUB) or other (FO_MUL/FO_DIV): the operators += -=
    *= /= and add_/sub_/mul_/div_.  Updates self's storage in place.  In grad mode:
    * self a leaf that requires grad: torch's error (under no_grad the update just runs: the
      hand-written SGD step ``p -= lr * p.grad``);
    * self needs no grad but other does: recorded, as torch does, so self becomes the op's node
      (``acc = zeros(()); acc += loss``);
    * self already part of a graph: refused (fastoptim keeps no version counters, so it could
      not tell whether a node saved self's old values)."""
    cdef Tensor o, r, old
    cdef bint other_rg = isinstance(other, Tensor) and (<Tensor>other)._requires_grad
    if not (_grad_enabled and (self._requires_grad or other_rg)):
        self._check_inplace()
        _inplace(self, op, other, alpha)
        return self
    self._check_inplace()           # raises for self requiring grad (leaf or not)
    # other requires grad, self does not: check everything before touching self
    o = <Tensor>other
    if not _is_float(self._np):
        raise RuntimeError("result type Float can't be cast to the desired output type "
                           f"{_dtype_of(self._np)._legacy[:-6]}")
    if _broadcast_shape(self._np, o._np) != _shp(self._np):
        raise RuntimeError(f"output with shape {list(_shp(self._np))} doesn't match the "
                           f"broadcast shape {list(_broadcast_shape(self._np, o._np))}")
    old = _wrap(np.array(self._np, order="C"))   # the node may save self's old values
    if op == FO_ADD:
        r = _add(old, o, alpha)
    elif op == FO_SUB:
        r = _add(old, o, -alpha) if alpha != 1 else _sub(old, o)
    elif op == FO_MUL:
        r = _mul(old, o)
    else:
        r = _div(old, o)
    r = _cast(r, _dtype_of(self._np))
    self._np[...] = r._np
    # self becomes r's node
    self._op, self._sub, self._ins, self._saved = r._op, r._sub, r._ins, r._saved
    self._p0, self._p1, self._freed = r._p0, r._p1, r._freed
    self._requires_grad = True
    return self


cdef void _inplace(Tensor self, int op, object other, object alpha) except *:
    """self (op)= alpha*other / other, in place, broadcasting other to self's shape."""
    cdef cnp.ndarray x = self._np
    cdef cnp.ndarray xc, o
    cdef double s
    cdef int64_t n
    if not _is_float(x):
        y = _np_of(other)
        if isinstance(y, (float, np.floating)) or \
                (isinstance(y, np.ndarray) and (<cnp.ndarray>y).dtype.kind == "f") or \
                op == FO_DIV:
            raise RuntimeError("result type Float can't be cast to the desired output type "
                               f"{_dtype_of(x)._legacy[:-6]}")
        if x.dtype.kind == "b":
            # a bool tensor stays bool: + is a logical or, * an and (torch); an integer
            # operand would need a Long result
            if not (isinstance(y, (bool, np.bool_)) or
                    (isinstance(y, np.ndarray) and (<cnp.ndarray>y).dtype.kind == "b")):
                raise RuntimeError("result type Long can't be cast to the desired output type "
                                   "Bool")
            if op == FO_SUB:
                raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                                   "supported. Use the `^` or `logical_xor()` operator instead.")
            if op == FO_ADD:
                x |= np.logical_and(y, bool(alpha))
            else:
                x &= y
            return
        if op == FO_ADD:
            x += y * alpha
        elif op == FO_SUB:
            x -= y * alpha
        else:
            x *= y
        return
    xc = _contig(x)
    n = cnp.PyArray_SIZE(xc)
    if isinstance(other, Tensor) and cnp.PyArray_SIZE((<Tensor>other)._np) == 1 and \
            cnp.PyArray_NDIM((<Tensor>other)._np) == 0:
        other = (<Tensor>other).item()
    if _is_scalar(other):
        s = float(other)
        if op == FO_ADD:
            _unary_arr(xc, xc, FO_ADD_S, s * float(alpha), 0.0)
        elif op == FO_SUB:
            _unary_arr(xc, xc, FO_ADD_S, -s * float(alpha), 0.0)
        elif op == FO_MUL:
            _unary_arr(xc, xc, FO_MUL_S, s, 0.0)
        else:
            _unary_arr(xc, xc, FO_DIV_S, s, 0.0)
    else:
        o = np.asarray(_np_of(other))
        if _shp(o) != _shp(x):
            try:
                o = np.broadcast_to(o, _shp(x))
            except ValueError:
                raise RuntimeError(f"output with shape {list(_shp(x))} doesn't match the "
                                   f"broadcast shape {list(np.broadcast_shapes(_shp(x), _shp(o)))}"
                                   if _broadcastable(_shp(x), _shp(o)) else
                                   f"The size of tensor a ({list(_shp(x))}) must match the "
                                   f"size of tensor b ({list(_shp(o))})")
        if cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(xc) or not _kernel_ready(o) \
                or not o.dtype.isnative or np.may_share_memory(o, xc):
            o = _ascontig(o, dtype=xc.dtype).copy() if np.may_share_memory(o, xc) \
                else _ascontig(o, dtype=xc.dtype)
        _kern(xc).inplace_binary(op, n, _ptr(xc), _ptr(o), n, float(alpha))
    if xc is not x:
        x[...] = xc


def _broadcastable(s1, s2):
    try:
        np.broadcast_shapes(s1, s2)
        return True
    except ValueError:
        return False


cdef cnp.ndarray _operand_like(cnp.ndarray x, object v, str name):
    """`v` as a contiguous array of x's shape and dtype that does not overlap x."""
    o = np.asarray(_np_of(v))
    if _shp(o) != _shp(x):
        try:
            o = np.broadcast_to(o, _shp(x))
        except ValueError:
            raise RuntimeError(f"The size of {name} ({list(_shp(o))}) must match the size of "
                               f"the tensor being updated ({list(_shp(x))})")
    if np.may_share_memory(o, x):
        return np.array(o, dtype=x.dtype, order="C")
    return _ascontig(o, dtype=x.dtype)


cdef void _ternary_inplace(Tensor self, int kind, object t1, object t2, object value) except *:
    """addcmul_ (kind 0), addcdiv_ (1), lerp_ (2) on the C kernels."""
    cdef cnp.ndarray x = self._np
    cdef cnp.ndarray xc, a, b
    cdef int64_t n
    if not _is_float(x):
        raise TypeError(f"this in-place op needs a floating tensor, got {_dtype_of(x)}")
    xc = _contig(x)
    n = cnp.PyArray_SIZE(xc)
    a = _operand_like(xc, t1, "tensor1" if kind < 2 else "end")
    if kind == 2:
        _kern(xc).lerp(n, _ptr(xc), _ptr(a), float(value))
    else:
        b = _operand_like(xc, t2, "tensor2")
        if kind == 0:
            _kern(xc).addcmul(n, _ptr(xc), _ptr(a), _ptr(b), float(value))
        else:
            _kern(xc).addcdiv(n, _ptr(xc), _ptr(a), _ptr(b), float(value))
    if xc is not x:
        x[...] = xc

