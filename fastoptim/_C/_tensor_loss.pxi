# nn's fused losses and softmax: one autograd node each, forward and backward in C
# (csrc/tensor_loss.c), as torch's own kernels are:
#   N_SOFTMAX    softmax / log_softmax along dim d    saved y, or (when the layout has them:
#                fo_softmax_saved_size) the forward's probabilities p; _sub = log |
#                (p saved) << 1 | d << 2
#   N_NLL        nll_loss, and cross_entropy with class indices (log_softmax fused in)
#                saved (lp, target, weight, ignore_index); _sub = reduction | fused << 2;
#                fused: lp is softmax(logits), which the backward takes its gradient from
#   N_SOFT_CE    cross_entropy with class probabilities   saved (lp, target, weight, ...)
#   N_POINTWISE  l1 / smooth_l1 / huber / bce / bce_with_logits   saved (x, y, w, pw, e),
#                e: bce_with_logits' exp(-|x|), which its backward's sigmoid reuses (else None);
#                _sub = reduction | (fo_loss_kind << 2), _p0 = beta / delta
# For the reduced forms _sub is the reduction (0 none, 1 mean, 2 sum) and _p1 the scale the
# scalar gradient is multiplied by (1/denominator for 'mean', 1 for 'sum').

cdef inline const fo_loss_kernels *_lkern(cnp.ndarray a) noexcept:
    """The loss kernels' dtype table of a float32/float64 array (as _kern)."""
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT:
        return &fo_loss_kernels_f32
    return &fo_loss_kernels_f64


cdef int _loss_reduction(object reduction) except -1:
    if reduction == "mean":
        return 1
    if reduction == "sum":
        return 2
    if reduction == "none":
        return 0
    raise ValueError(f"{reduction} is not a valid value for reduction")


cdef int _loss_reduction_arg(object size_average, object reduce, object reduction) except -1:
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _loss_reduction(reduction)


cdef Tensor _loss_tensor_arg(object x, str fn, str name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' (position {1 if name == 'input' else 2}) "
                        f"must be Tensor, not {type(x).__name__}")
    return <Tensor>x


cdef Tensor _loss_float_input(Tensor a, str fn):
    if not _is_float(a._np):
        raise RuntimeError(f"{fn}(): expected a floating-point input (float32 or float64), got "
                           f"{_dtype_of(a._np)}")
    return a


cdef cnp.ndarray _loss_opt_array(object w, cnp.ndarray like, object shape, str name):
    """An optional weight as a contiguous array of like's dtype, broadcast to `shape`."""
    if w is None:
        return None
    if not isinstance(w, Tensor):
        raise TypeError(f"argument '{name}' must be Tensor, not {type(w).__name__}")
    arr = (<Tensor>w)._np.astype(like.dtype, copy=False)
    if shape is not None and _shp(arr) != shape:
        arr = np.ascontiguousarray(np.broadcast_to(arr, shape))
    return _contig(arr)


cdef void _sm_layout(cnp.ndarray x, int d, int64_t *lay) noexcept:
    """lay = (outer, n, inner) of x around its dim d (n = 1 for a 0-dim x), from the dims."""
    cdef int nd = cnp.PyArray_NDIM(x), k
    cdef cnp.npy_intp *s = cnp.PyArray_DIMS(x)
    lay[0], lay[1], lay[2] = 1, (s[d] if nd else 1), 1
    for k in range(d):
        lay[0] *= s[k]
    for k in range(d + 1, nd):
        lay[2] *= s[k]


cdef int _sm_dim(object dim, int ndim) except? -9:
    cdef int lo = -ndim if ndim > 0 else -1
    cdef int hi = ndim - 1 if ndim > 0 else 0
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if dim < lo or dim > hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but "
                         f"got {dim})")
    return dim + ndim if dim < 0 and ndim > 0 else (0 if dim < 0 else dim)


# ---------------------------------------------------------------------------------------------
# softmax / log_softmax
# ---------------------------------------------------------------------------------------------

cdef Tensor _softmax(object input, object dim, object dt, bint log_, str fn):
    cdef Tensor a = _loss_tensor_arg(input, fn, "input")
    cdef cnp.ndarray x, y, p = None
    cdef int d
    cdef int64_t lay[3]
    cdef cnp.npy_intp np_
    cdef bint grad
    cdef Tensor t
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {fn} has been deprecated. Change the call "
                      "to include dim=X as an argument.", UserWarning, stacklevel=3)
        nd = a._np.ndim
        dim = 0 if nd in (0, 1, 3) else 1
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    if not _is_float(a._np):
        raise RuntimeError(f'"{fn}_lastdim_kernel_impl" not implemented for '
                           f"'{_dtype_of(a._np).name.capitalize()}'")
    d = _sm_dim(dim, cnp.PyArray_NDIM(a._np))
    x = _contig(a._np)
    _sm_layout(x, d, lay)
    y = _empty_like(x)
    grad = _grad_enabled and a._requires_grad
    if grad:
        np_ = fo_softmax_saved_size(lay[0], lay[1], lay[2])
        if np_:
            p = _empty(1, &np_, cnp.PyArray_TYPE(x))
    _lkern(x).softmax(lay[0], lay[1], lay[2], _ptr(x), log_, _ptr(y), _optr(p))
    t = _wrap(y)
    if grad:
        _record1(t, N_SOFTMAX, a, y if p is None else p)
        t._sub = log_ | ((p is not None) << 1) | (d << 2)
    return t


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """softmax along `dim`: exp(x - max) / sum(exp(x - max)), one fused node (as torch)."""
    return _softmax(input, dim, dtype, False, "softmax")


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log_softmax along `dim`: x - max - log(sum(exp(x - max))) (log-sum-exp, stable)."""
    return _softmax(input, dim, dtype, True, "log_softmax")


cdef object _softmax_name(Tensor t):
    return "LogSoftmaxBackward0" if t._sub & 1 else "SoftmaxBackward0"


cdef void _softmax_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """gx = y (g - sum(g y)) for softmax, g - exp(y) sum(g) for log_softmax, along the dim."""
    cdef cnp.ndarray y = t._saved, gx
    cdef int64_t lay[3]
    cdef bint with_p = (t._sub >> 1) & 1
    g = _contig(g)
    _sm_layout(g, t._sub >> 2, lay)
    gx = _empty_like(g)
    _lkern(g).softmax_backward(lay[0], lay[1], lay[2], NULL if with_p else _ptr(y), _ptr(g),
                               t._sub & 1, _ptr(gx), _ptr(y) if with_p else NULL)
    _accumulate(_input(t, 0), gx, True)


_register(N_SOFTMAX, NULL, _softmax_name, _softmax_backward, _release_all)


# ---------------------------------------------------------------------------------------------
# nll_loss / cross_entropy
# ---------------------------------------------------------------------------------------------

cdef str _scalar_type_name(cnp.ndarray a):
    """torch's name of an array's dtype, as its error messages print it."""
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT:
        return "Float"
    if t == cnp.NPY_DOUBLE:
        return "Double"
    if t == cnp.NPY_INT64:
        return "Long"
    if t == cnp.NPY_INT32:
        return "Int"
    if t == cnp.NPY_UINT8:
        return "Byte"
    if t == cnp.NPY_BOOL:
        return "Bool"
    return _dtype_of(a).name.capitalize()


cdef int _class_layout(Tensor a, Tensor target, bint probs, int64_t *lay) except -1:
    """lay = (outer, C, inner) of an input [C], [N, C] or [N, C, d1, ...], with the target's
    shape checked as torch checks it: from the arrays' dims (no shape tuples: this runs on
    every call), the message built by _class_layout_error only when the check fails."""
    cdef int nd = cnp.PyArray_NDIM(a._np), tnd = cnp.PyArray_NDIM(target._np), k
    cdef cnp.npy_intp *s = cnp.PyArray_DIMS(a._np)
    cdef cnp.npy_intp *ts = cnp.PyArray_DIMS(target._np)
    cdef bint ok
    if nd == 0:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if probs:                   # the target has the input's shape
        ok = tnd == nd
        for k in range(nd if ok else 0):
            ok = ok and ts[k] == s[k]
    elif nd == 1:               # unbatched: a 0-d target
        ok = tnd == 0
    else:                       # [N, d1, ...] against [N, C, d1, ...]
        ok = tnd == nd - 1 and ts[0] == s[0]
        for k in range(1, tnd if ok else 0):
            ok = ok and ts[k] == s[k + 1]
    if not ok:
        _class_layout_error(a, target, probs)
    _class_dims(a._np, lay)
    return 0


cdef void _class_dims(cnp.ndarray x, int64_t *lay) noexcept:
    """lay = (outer, C, inner) of a class-loss input x [C], [N, C] or [N, C, d1, ...]."""
    cdef int nd = cnp.PyArray_NDIM(x), k
    cdef cnp.npy_intp *s = cnp.PyArray_DIMS(x)
    if nd == 1:
        lay[0], lay[1], lay[2] = 1, s[0], 1
        return
    lay[0], lay[1], lay[2] = s[0], s[1], 1
    for k in range(2, nd):
        lay[2] *= s[k]


cdef int _class_layout_error(Tensor a, Tensor target, bint probs) except -1:
    """torch's error for a target whose shape does not fit the input's (_class_layout found
    that it does not)."""
    cdef tuple s = _shp(a._np)
    cdef tuple ts = _shp(target._np)
    cdef int nd = len(s)
    if probs:
        raise RuntimeError(f"Expected target size {list(s)}, got {list(ts)}")
    if nd == 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if len(ts) == 0 or ts[0] != s[0]:
        raise ValueError(f"Expected input batch_size ({s[0]}) to match target batch_size "
                         f"({ts[0] if len(ts) else 0}).")
    if nd == 2:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    raise RuntimeError(f"Expected target size {list(s[:1] + s[2:])}, got {list(ts)}")


cdef Tensor _class_loss(Tensor a, Tensor target, object weight, int64_t ignore_index, int red,
                        double smoothing, bint fused):
    """nll_loss (fused = False: `a` holds log-probabilities) or cross_entropy with class
    indices (fused: log_softmax of the logits `a` inside the same node)."""
    cdef int64_t outer, C, inner, bad
    cdef int64_t lay[3]
    cdef cnp.ndarray x, lp, tgt, w, out = None
    cdef double total, wsum = 0.0
    cdef Tensor t
    cdef int ttype = cnp.PyArray_TYPE(target._np)
    _class_layout(a, target, False, lay)        # torch checks the shapes first
    outer, C, inner = lay[0], lay[1], lay[2]
    if ttype != cnp.NPY_INT64 and ttype != cnp.NPY_UINT8:
        raise RuntimeError("expected target dtype to be Long or Byte, but got "
                           f"{_scalar_type_name(target._np)}")
    x = _contig(a._np)
    tgt = target._np if ttype == cnp.NPY_INT64 else target._np.astype(np.int64)
    tgt = _contig(tgt)
    w = _loss_opt_array(weight, x, None, "weight")
    if w is not None and cnp.PyArray_SIZE(w) != C:
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no "
                           f"classes but got weight tensor of shape: {list(_shp(w))}")
    bad = fo_first_bad_target(outer * inner, <int64_t*>_ptr(tgt), C, ignore_index)
    if bad >= 0:
        raise IndexError(f"Target {tgt.reshape(-1)[bad]} is out of bounds.")
    if red == 0:
        out = _empty_shape(_shp(tgt), cnp.PyArray_TYPE(x))
    if fused:       # lp: the softmax probabilities here (what the backward needs)
        lp = _empty_like(x)
        total = _lkern(x).cross_entropy(outer, C, inner, _ptr(x), <int64_t*>_ptr(tgt),
                                        _optr(w), ignore_index, smoothing, _optr(out), _ptr(lp),
                                        &wsum)
    else:
        lp = x
        total = _lkern(x).nll(outer, C, inner, _ptr(lp), <int64_t*>_ptr(tgt), _optr(w),
                              ignore_index, smoothing, _optr(out), &wsum)
    if red == 0:
        t = _wrap(out)
    else:
        if red == 1:
            total = total / wsum if wsum != 0 else NAN
        t = _wrap(_scalar_array(total, cnp.PyArray_TYPE(x)))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_NLL, a, (lp, tgt, w, ignore_index))
        t._sub = red | (fused << 2)
        t._p0 = smoothing
        t._p1 = (1.0 / wsum if wsum != 0 else NAN) if red == 1 else 1.0
    return t


cdef void _nll_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef cnp.ndarray lp, tgt, w, gx
    cdef int64_t ignore_index
    cdef int64_t lay[3]
    cdef bint fused = t._sub >> 2, reduced = (t._sub & 3) != 0
    lp, tgt, w, ignore_index = t._saved
    _class_dims(lp, lay)
    # cross_entropy's saved softmax becomes the gradient in place when this walk drops the
    # saved values anyway (no retain_graph): one array fewer per step
    gx = lp if fused and not _walk_keeps_saved else _empty_like(lp)
    g = _contig(g)
    cdef const void *gp = NULL if reduced else _ptr(g)
    cdef double g0 = _first(g) * t._p1 if reduced else 0.0
    if fused:
        _lkern(lp).cross_entropy_backward(lay[0], lay[1], lay[2], _ptr(lp),
                                          <int64_t*>_ptr(tgt), _optr(w), ignore_index, t._p0,
                                          gp, g0, _ptr(gx))
    else:
        _lkern(lp).nll_backward(lay[0], lay[1], lay[2], _ptr(lp), <int64_t*>_ptr(tgt),
                                _optr(w), ignore_index, t._p0, gp, g0, 0, _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


cdef object _nll_name(Tensor t):
    return "AddBackward0" if t._p0 > 0 else "NllLossBackward0"


_register(N_NLL, NULL, _nll_name, _nll_backward, _release_all)


cdef Tensor _soft_ce(Tensor a, Tensor target, object weight, int red, double smoothing):
    cdef int64_t outer, C, inner
    cdef int64_t lay[3]
    cdef cnp.ndarray x, lp, tg, w, out = None
    cdef double total
    cdef Tensor t
    _class_layout(a, target, True, lay)
    outer, C, inner = lay[0], lay[1], lay[2]
    if cnp.PyArray_TYPE(target._np) != cnp.PyArray_TYPE(a._np):
        raise RuntimeError(f"expected scalar type {_dtype_of(a._np).name.capitalize()} but "
                           f"found {_dtype_of(target._np).name.capitalize()}")
    x = _contig(a._np)
    tg = _contig(target._np)
    w = _loss_opt_array(weight, x, None, "weight")
    if w is not None and cnp.PyArray_SIZE(w) != C:
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no "
                           f"classes but got weight tensor of shape: {list(_shp(w))}")
    lp = _empty_like(x)
    _lkern(x).softmax(outer, C, inner, _ptr(x), 1, _ptr(lp), NULL)
    if red == 0:
        out = _empty_shape(_shp(x)[:1] + _shp(x)[2:] if cnp.PyArray_NDIM(x) > 1 else (),
                           cnp.PyArray_TYPE(x))
    total = _lkern(x).soft_ce(outer, C, inner, _ptr(lp), _ptr(tg), _optr(w), smoothing,
                              _optr(out))
    if red == 0:
        t = _wrap(out)
    else:
        if red == 1:
            total = total / (outer * inner) if outer * inner else NAN
        t = _wrap(_scalar_array(total, cnp.PyArray_TYPE(x)))
    if _needs_grad(a, target):
        _record2(t, N_SOFT_CE, a, target, (lp, tg, w, outer, C, inner))
        t._sub = red
        t._p0 = smoothing
        t._p1 = (1.0 / (outer * inner) if outer * inner else NAN) if red == 1 else 1.0
    return t


cdef void _soft_ce_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef Tensor a = _input(t, 0)
    cdef Tensor b = _input(t, 1)
    cdef cnp.ndarray lp, tg, w, gx = None, gt = None
    cdef int64_t outer, C, inner
    lp, tg, w, outer, C, inner = t._saved
    if a is not None:
        gx = _empty_like(lp)
    if b is not None:
        gt = _empty_like(lp)
    g = _contig(g)
    _lkern(lp).soft_ce_backward(outer, C, inner, _ptr(lp), _ptr(tg), _optr(w), t._p0,
                                _ptr(g) if t._sub == 0 else NULL,
                                _first(g) * t._p1 if t._sub != 0 else 0.0, _optr(gx),
                                _optr(gt))
    if a is not None:
        _accumulate(a, gx, True)
    if b is not None:
        _accumulate(b, gt, True)


cdef object _soft_ce_name(Tensor t):
    return ("NegBackward0", "DivBackward1", "NegBackward0")[t._sub]


_register(N_SOFT_CE, NULL, _soft_ce_name, _soft_ce_backward, _release_all)


cdef Tensor _nll_loss(object input, object target, object weight, object ignore_index,
                      object size_average, object reduce, object reduction):
    cdef Tensor a = _loss_float_input(_loss_tensor_arg(input, "nll_loss", "input"), "nll_loss")
    cdef Tensor b = _loss_tensor_arg(target, "nll_loss", "target")
    cdef int red = _loss_reduction_arg(size_average, reduce, reduction)
    return _class_loss(a, b, weight, ignore_index, red, 0.0, False)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` at class indices `target`."""
    return _nll_loss(input, target, weight, ignore_index, size_average, reduce, reduction)


cdef Tensor _cross_entropy(object input, object target, object weight, object ignore_index,
                           object size_average, object reduce, object reduction,
                           object label_smoothing):
    cdef Tensor a = _loss_float_input(_loss_tensor_arg(input, "cross_entropy", "input"),
                                      "cross_entropy")
    cdef Tensor b = _loss_tensor_arg(target, "cross_entropy", "target")
    cdef int red = _loss_reduction_arg(size_average, reduce, reduction)
    cdef double ls = label_smoothing
    if not (0.0 <= ls <= 1.0):
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {ls:g}")
    if cnp.PyArray_SAMESHAPE(a._np, b._np):    # torch: a target of input's shape holds
        if not _is_float(b._np):                # class probabilities, any other class indices
            raise RuntimeError("Expected floating point type for target with class "
                               f"probabilities, got {_scalar_type_name(b._np)}")
        return _soft_ce(a, b, weight, red, ls)
    return _class_loss(a, b, weight, ignore_index, red, ls, True)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits `input` against class indices (int64 target) or class
    probabilities (a float target of input's shape): log_softmax and the loss in one node."""
    return _cross_entropy(input, target, weight, ignore_index, size_average, reduce, reduction,
                          label_smoothing)


# ---------------------------------------------------------------------------------------------
# point-wise losses
# ---------------------------------------------------------------------------------------------

cdef dict _POINTWISE_NAMES = {
    FO_LOSS_L1: "MeanBackward0", FO_LOSS_SMOOTH_L1: "SmoothL1LossBackward0",
    FO_LOSS_HUBER: "HuberLossBackward0", FO_LOSS_BCE: "BinaryCrossEntropyBackward0",
    FO_LOSS_BCE_LOGITS: "BinaryCrossEntropyWithLogitsBackward0",
}


cdef Tensor _pointwise_loss(str fn, int kind, object input, object target, object weight,
                            object pos_weight, double p, int red):
    cdef Tensor a = _loss_float_input(_loss_tensor_arg(input, fn, "input"), fn)
    cdef Tensor b = _loss_tensor_arg(target, fn, "target")
    cdef cnp.ndarray x, y, w, pw, out = None, e = None
    cdef int64_t n
    cdef double total
    cdef bint grad
    cdef Tensor t
    if not cnp.PyArray_SAMESHAPE(a._np, b._np):
        if kind == FO_LOSS_BCE:
            raise ValueError(f"Using a target size ({Size(_shp(b._np))}) that is different to "
                             f"the input size ({Size(_shp(a._np))}) is deprecated. Please "
                             "ensure they have the same size.")
        if kind == FO_LOSS_BCE_LOGITS:
            raise ValueError(f"Target size ({Size(_shp(b._np))}) must be the same as input size "
                             f"({Size(_shp(a._np))})")
        warnings.warn(
            f"Using a target size ({Size(_shp(b._np))}) that is different to the input size "
            f"({Size(_shp(a._np))}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=3)
        # broadcast both through a differentiable add, so each gradient sums back to its shape
        shape = _broadcast_shape(a._np, b._np)
        zero = _wrap(np.zeros(shape, dtype=a._np.dtype))
        a = _binary(a, zero, FO_ADD)
        b = _binary(_as_float_like(b, a), zero, FO_ADD)
    if cnp.PyArray_TYPE(a._np) != cnp.PyArray_TYPE(b._np):
        d = _promote(a, b)
        a = _cast(a, d)
        b = _cast(b, d)
    x = _contig(a._np)
    y = _contig(b._np)
    n = cnp.PyArray_SIZE(x)
    if kind == FO_LOSS_BCE:
        if _lkern(x).first_outside(n, _ptr(x), 0.0, 1.0) >= 0:
            raise RuntimeError("all elements of input should be between 0 and 1")
        if _lkern(y).first_outside(n, _ptr(y), 0.0, 1.0) >= 0:
            raise RuntimeError("all elements of target should be between 0 and 1")
    w = _loss_opt_array(weight, x, _shp(x), "weight") if weight is not None else None
    pw = _loss_opt_array(pos_weight, x, _shp(x), "pos_weight") if pos_weight is not None else None
    if red == 0:
        out = _empty_like(x)
    grad = _needs_grad(a, b)
    if grad and kind == FO_LOSS_BCE_LOGITS:
        e = _empty_like(x)
    total = _lkern(x).pointwise(kind, n, _ptr(x), _ptr(y), _optr(w), _optr(pw), p, _optr(out),
                                _optr(e))
    if red == 0:
        t = _wrap(out)
    else:
        if red == 1:
            total = total / n if n > 0 else NAN
        t = _wrap(_scalar_array(total, cnp.PyArray_TYPE(x)))
    if grad:
        _record2(t, N_POINTWISE, a, b, (x, y, w, pw, e))
        t._sub = red | (kind << 2)
        t._p0 = p
        t._p1 = (1.0 / n if n > 0 else NAN) if red == 1 else 1.0
    return t


cdef Tensor _as_float_like(Tensor b, Tensor a):
    if _is_float(b._np):
        return b
    return _cast(b, _dtype_of(a._np))


cdef void _pointwise_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef Tensor a = _input(t, 0)
    cdef Tensor b = _input(t, 1)
    cdef cnp.ndarray x, y, w, pw, e, gx = None, gy = None
    cdef int kind = t._sub >> 2, red = t._sub & 3
    x, y, w, pw, e = t._saved
    if a is not None:
        gx = _empty_like(x)
    if b is not None:
        gy = _empty_like(y)
    g = _contig(g)
    _lkern(x).pointwise_backward(kind, cnp.PyArray_SIZE(x), _ptr(x), _ptr(y), _optr(w),
                                 _optr(pw), t._p0, _ptr(g) if red == 0 else NULL,
                                 _first(g) * t._p1 if red != 0 else 0.0, _optr(gx),
                                 _optr(gy), _optr(e))
    if a is not None:
        _accumulate(a, gx, True)
    if b is not None:
        _accumulate(b, gy, True)


cdef object _pointwise_name(Tensor t):
    cdef int kind = t._sub >> 2, red = t._sub & 3
    if kind == FO_LOSS_L1 and red != 1:
        return "SumBackward0" if red == 2 else "AbsBackward0"
    return _POINTWISE_NAMES[kind]


_register(N_POINTWISE, NULL, _pointwise_name, _pointwise_backward, _release_all)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error |input - target|, one fused node."""
    if weight is not None:
        raise NotImplementedError("l1_loss(): weight= is not supported by fastoptim")
    return _pointwise_loss("l1_loss", FO_LOSS_L1, input, target, None, None, 0.0,
                           _loss_reduction_arg(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Smooth L1: 0.5 z^2 / beta below beta, z - 0.5 beta above (z = |input - target|)."""
    cdef int red = _loss_reduction_arg(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return _pointwise_loss("smooth_l1_loss", FO_LOSS_L1, input, target, None, None, 0.0, red)
    return _pointwise_loss("smooth_l1_loss", FO_LOSS_SMOOTH_L1, input, target, None, None,
                           beta, red)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """Huber: 0.5 z^2 below delta, delta (z - 0.5 delta) above (z = |input - target|)."""
    cdef int red = _loss_reduction(reduction)
    if weight is not None:
        raise NotImplementedError("huber_loss(): weight= is not supported by fastoptim")
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return _pointwise_loss("huber_loss", FO_LOSS_HUBER, input, target, None, None, delta, red)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross-entropy of probabilities `input` (log terms clamped at -100, as torch)."""
    return _pointwise_loss("binary_cross_entropy", FO_LOSS_BCE, input, target, weight, None,
                           0.0, _loss_reduction_arg(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """BCE of sigmoid(input), computed from the logits with a stable log-sigmoid."""
    return _pointwise_loss("binary_cross_entropy_with_logits", FO_LOSS_BCE_LOGITS, input,
                           target, weight, pos_weight, 0.0,
                           _loss_reduction_arg(size_average, reduce, reduction))


# ---------------------------------------------------------------------------------------------
# the loss modules' forward
# ---------------------------------------------------------------------------------------------
# fastoptim/nn/loss.py makes these the forward of NLLLoss, CrossEntropyLoss, BCELoss and
# BCEWithLogitsLoss (``forward = _nll_loss_forward``): a compiled function binds as a method
# like a Python one, so ``criterion(x, y)`` runs no Python frame between the module call and
# the kernels.  Each reads its module's attributes at call time, as torch's forward does (a
# changed ``criterion.reduction`` takes effect).

def _nll_loss_forward(self, input, target):
    """NLLLoss.forward: nll_loss with the module's weight, ignore_index and reduction."""
    return _nll_loss(input, target, self.weight, self.ignore_index, None, None,
                     self.reduction)


def _cross_entropy_forward(self, input, target):
    """CrossEntropyLoss.forward: cross_entropy with the module's weight, ignore_index,
    reduction and label_smoothing."""
    return _cross_entropy(input, target, self.weight, self.ignore_index, None, None,
                          self.reduction, self.label_smoothing)


def _bce_forward(self, input, target):
    """BCELoss.forward: binary_cross_entropy with the module's weight and reduction."""
    return _pointwise_loss("binary_cross_entropy", FO_LOSS_BCE, input, target, self.weight,
                           None, 0.0, _loss_reduction(self.reduction))


def _bce_with_logits_forward(self, input, target):
    """BCEWithLogitsLoss.forward: binary_cross_entropy_with_logits with the module's weight,
    pos_weight and reduction."""
    return _pointwise_loss("binary_cross_entropy_with_logits", FO_LOSS_BCE_LOGITS, input,
                           target, self.weight, self.pos_weight, 0.0,
                           _loss_reduction(self.reduction))
