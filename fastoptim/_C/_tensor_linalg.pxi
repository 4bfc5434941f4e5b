# Linear algebra: matmul (N_MATMUL) and the fused linear layer (N_LINEAR, torch's addmm, with
# its three inputs x, weight, bias).  Tiny products run the plain C loop, larger ones BLAS.

# Products with at least this many multiply-adds go to BLAS (numpy.matmul); below it the plain C
# loop wins because dispatch costs more than the arithmetic (measured by
# benchmarks/bench_matmul_threshold.py).
cdef int64_t _BLAS_MIN_FLOPS = 2048   # crossover measured between 1024 and 4096


cdef void _mm(cnp.ndarray A, bint ta, cnp.ndarray B, bint tb, object bias, cnp.ndarray C,
              int64_t M, int64_t N, int64_t K):
    """C[M,N] = op(A) @ op(B) (+ bias), A/B contiguous in their stored layouts."""
    if M * N * K >= _BLAS_MIN_FLOPS:
        a2 = A.reshape(K, M).T if ta else A.reshape(M, K)
        b2 = B.reshape(N, K).T if tb else B.reshape(K, N)
        np.matmul(a2, b2, out=C.reshape(M, N))
        if bias is not None:
            C += bias
        return
    _kern(C).matmul(M, N, K, _ptr(A), ta, _ptr(B), tb, _optr(bias), _ptr(C))


def _matmul_c(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out):
    """The plain C product out = a @ b for 2-D float32/float64 contiguous arrays (no BLAS,
    whatever the size): for benchmarks/bench_matmul_threshold.py."""
    cdef int t = cnp.PyArray_TYPE(out)
    if (cnp.PyArray_TYPE(a) != t or cnp.PyArray_TYPE(b) != t or not _is_float(out)
            or a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]
            or _shp(out) != (a.shape[0], b.shape[1])
            or not (_kernel_ready(a) and _kernel_ready(b) and _kernel_ready(out))):
        raise ValueError("_matmul_c needs contiguous, aligned 2-D arrays of one float dtype "
                         "with matching shapes")
    _kern(out).matmul(a.shape[0], b.shape[1], a.shape[1], _ptr(a), 0, _ptr(b), 0, NULL,
                      _ptr(out))


def _blas_min_flops():
    return _BLAS_MIN_FLOPS


def matmul(input, other):
    """Matrix product, as torch.matmul: 1-D and 2-D operands on the C loop or BLAS; batches of
    matrices (either operand over 2-D) broadcast their batch dims, through numpy.matmul."""
    cdef Tensor a = <Tensor>input if isinstance(input, Tensor) else tensor(input)
    cdef Tensor b = _as_tensor(other, a)
    cdef cnp.ndarray x, y, out
    cdef int na, nb, kind
    cdef int64_t M, N, K
    cdef Tensor t
    if cnp.PyArray_TYPE(a._np) != cnp.PyArray_TYPE(b._np):
        d = _promote(a, b)
        a = _cast(a, d)
        b = _cast(b, d)
    x = a._np
    y = b._np
    na = cnp.PyArray_NDIM(x)
    nb = cnp.PyArray_NDIM(y)
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {na}D "
                           f"and {nb}D")
    if na > 2 or nb > 2:
        return _bmm(a, b, 0)
    sx, sy = _shp(x), _shp(y)
    if na == 1 and nb == 1:
        kind = 0
        if sx[0] != sy[0]:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{sx[0]}] and src "
                               f"[{sy[0]}] to have the same number of elements, but got {sx[0]} "
                               f"and {sy[0]} elements respectively")
        M, K, N = 1, sx[0], 1
        oshape = ()
    elif na == 2 and nb == 1:
        kind = 1
        if sx[1] != sy[0]:
            raise RuntimeError(f"size mismatch, got input ({sx[0]}), mat ({sx[0]}x{sx[1]}), "
                               f"vec ({sy[0]})")
        M, K, N = sx[0], sx[1], 1
        oshape = (M,)
    elif na == 1 and nb == 2:
        kind = 2
        if sx[0] != sy[0]:
            raise RuntimeError(f"size mismatch, got input ({sy[1]}), mat ({sy[1]}x{sy[0]}), "
                               f"vec ({sx[0]})")
        M, K, N = 1, sx[0], sy[1]
        oshape = (N,)
    else:
        kind = 3
        if sx[1] != sy[0]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sx[0]}x{sx[1]} and "
                               f"{sy[0]}x{sy[1]})")
        M, K, N = sx[0], sx[1], sy[1]
        oshape = (M, N)
    if not _is_float(x):
        return _wrap(np.asarray(np.matmul(x, y)))
    x = _contig(x)
    y = _contig(y)
    out = np.empty(oshape, dtype=x.dtype)
    _mm(x, False, y, False, None, out, M, N, K)
    t = _wrap(out)
    if _needs_grad(a, b):
        _record2(t, N_MATMUL, a, b, (x, y, M, N, K))
        t._sub = kind
    return t


cdef object _matmul_name(Tensor t):
    return ("DotBackward0", "MvBackward0", "SqueezeBackward4", "MmBackward0")[t._sub]


cdef void _matmul_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """dA[M,K] = g[M,N] @ B^T ; dB[K,N] = A^T @ g[M,N]."""
    cdef Tensor a = _input(t, 0)
    cdef Tensor b = _input(t, 1)
    cdef cnp.ndarray x, y, ga, gb
    cdef int64_t M, N, K
    x, y, M, N, K = t._saved
    if a is not None:
        ga = _empty_like(x)
        _mm(g, False, y, True, None, ga, M, K, N)
        _accumulate(a, ga, True)
    if b is not None:
        gb = _empty_like(y)
        _mm(x, True, g, False, None, gb, K, N, M)
        _accumulate(b, gb, True)


_register(N_MATMUL, NULL, _matmul_name, _matmul_backward, _release_all)


# ---------------------------------------------------------------------------------------------
# batched matmul (N_BMM): a 1-D operand becomes a (1, K) / (K, 1) matrix, batch dims broadcast
# ---------------------------------------------------------------------------------------------

def bmm(input, mat2, *, out=None):
    """Batched product of two 3-D tensors with the same batch size, as torch.bmm."""
    if out is not None:
        raise NotImplementedError("bmm(out=...) is not supported by fastoptim")
    cdef Tensor a = <Tensor>input
    cdef Tensor b = <Tensor>mat2
    if cnp.PyArray_NDIM(a._np) != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if cnp.PyArray_NDIM(b._np) != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if cnp.PyArray_TYPE(a._np) != cnp.PyArray_TYPE(b._np):
        raise RuntimeError(f"expected scalar type {_dtype_of(a._np)._legacy[:-6]} but found "
                           f"{_dtype_of(b._np)._legacy[:-6]}")
    sa, sb = _shp(a._np), _shp(b._np)
    if sb[0] != sa[0] or sb[1] != sa[2]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{sa[0]}, {sa[2]}] but got: [{sb[0]}, {sb[1]}].")
    return _bmm(a, b, 1)


cdef Tensor _bmm(Tensor a, Tensor b, int sub):
    """a @ b with at least one operand over 2-D (same dtype; matmul has promoted)."""
    cdef cnp.ndarray x = a._np, y = b._np
    cdef Tensor t
    sx, sy = _shp(x), _shp(y)
    x2 = x if len(sx) > 1 else x.reshape(1, -1)
    y2 = y if len(sy) > 1 else y.reshape(-1, 1)
    M, K = x2.shape[-2:]
    K2, N = y2.shape[-2:]
    bx, by = x2.shape[:-2], y2.shape[:-2]
    if len(sy) <= 2 and K != K2:        # torch folds the batch into rows: mm / mv messages
        rows = x2.size // K if K else 0
        if len(sy) == 1:
            raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{K}), vec "
                               f"({sy[0]})")
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{K} and "
                           f"{K2}x{N})")
    n = max(len(bx), len(by))
    px, py = (1,) * (n - len(bx)) + bx, (1,) * (n - len(by)) + by
    for k in range(n):
        if px[k] != py[k] and px[k] != 1 and py[k] != 1:
            raise RuntimeError(f"The size of tensor a ({px[k]}) must match the size of tensor b "
                               f"({py[k]}) at non-singleton dimension {k}")
    if K != K2:
        batch = 1
        for k in range(n):
            batch *= max(px[k], py[k])
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{batch}, {K}] but got: [{batch}, {K2}].")
    out = np.matmul(x2, y2)
    if len(sx) == 1:
        out = out[..., 0, :]
    if len(sy) == 1:
        out = out[..., 0]
    t = _wrap(_ascontig(out))
    if _is_float(x) and _needs_grad(a, b):
        _record2(t, N_BMM, a, b, (x2, y2, len(sx) == 1, len(sy) == 1))
        t._sub = sub
    return t


cdef object _bmm_name(Tensor t):
    return ("UnsafeViewBackward0", "BmmBackward0")[t._sub]


cdef void _bmm_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """dA = g @ B^T and dB = A^T @ g, each summed over the batch dims it was broadcast along."""
    cdef Tensor a = _input(t, 0)
    cdef Tensor b = _input(t, 1)
    x2, y2, vx, vy = t._saved
    g2 = g
    if vy:
        g2 = g2[..., None]
    if vx:
        g2 = g2[..., None, :]
    if a is not None:
        ga = _sum_to(np.matmul(g2, np.swapaxes(y2, -1, -2)), _shp(x2))
        _accumulate_any(a, ga.reshape(_shp(a._np)))
    if b is not None:
        gb = _sum_to(np.matmul(np.swapaxes(x2, -1, -2), g2), _shp(y2))
        _accumulate_any(b, gb.reshape(_shp(b._np)))


_register(N_BMM, NULL, _bmm_name, _bmm_backward, _release_all)


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias as one fused node (torch's addmm), for 1-D or N-D input."""
    cdef Tensor x = <Tensor>input
    cdef Tensor w = <Tensor>weight
    cdef Tensor b = <Tensor>bias if bias is not None else None
    cdef cnp.ndarray xa, wa, ba, out
    cdef int64_t M, N, K
    cdef int nd
    cdef Tensor t
    cdef cnp.npy_intp dims[64]
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor) or \
            (bias is not None and not isinstance(bias, Tensor)):
        raise TypeError("linear(): input, weight and bias must be Tensors")
    if cnp.PyArray_TYPE(x._np) != cnp.PyArray_TYPE(w._np) or \
            (b is not None and cnp.PyArray_TYPE(b._np) != cnp.PyArray_TYPE(w._np)):
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{_dtype_of(x._np)._legacy[:-6]} and {_dtype_of(w._np)._legacy[:-6]}")
    if not _is_float(w._np):
        raise TypeError("linear(): weight must be a floating tensor")
    wa = _contig(w._np)
    xa = _contig(x._np)
    nd = cnp.PyArray_NDIM(xa)
    if cnp.PyArray_NDIM(wa) != 2:
        raise RuntimeError(f"linear(): weight must be 2-D, got shape {list(_shp(wa))}")
    N = cnp.PyArray_DIMS(wa)[0]
    K = cnp.PyArray_DIMS(wa)[1]
    if nd == 0 or cnp.PyArray_DIMS(xa)[nd - 1] != K:
        xs = list(_shp(xa))
        if nd == 1:
            rows = f"1x{xs[0]}"
        elif nd == 0:
            rows = "1x1"
        else:
            lead = 1
            for s in xs[:-1]:
                lead *= s
            rows = f"{lead}x{xs[-1]}"
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows} and {K}x{N})")
    M = cnp.PyArray_SIZE(xa) // K if K > 0 else 1
    if nd > 1:
        for i in range(nd - 1):
            dims[i] = cnp.PyArray_DIMS(xa)[i]
        M = 1
        for i in range(nd - 1):
            M *= dims[i]
    dims[nd - 1] = N
    ba = None
    if b is not None:
        ba = _contig(b._np)
        if cnp.PyArray_NDIM(ba) != 1 or cnp.PyArray_DIMS(ba)[0] != N:
            raise RuntimeError(f"linear(): bias must have shape [{N}], got {list(_shp(ba))}")
    out = _empty(nd, dims, cnp.PyArray_TYPE(wa))
    _mm(xa, False, wa, True, ba, out, M, N, K)
    t = _wrap(out)
    if _grad_enabled and (x._requires_grad or w._requires_grad or
                          (b is not None and b._requires_grad)):
        _record3(t, N_LINEAR, x, w, b, (xa, wa, M, N, K))
    return t


cdef void _linear_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """y = x W^T + b:  dx = g @ W ; dW = g^T @ x ; db = column sums of g."""
    cdef Tensor a = _input(t, 0)
    cdef Tensor w = _input(t, 1)
    cdef Tensor bias = _input(t, 2)
    cdef cnp.ndarray x, y, ga, gw, gb
    cdef int64_t M, N, K
    x, y, M, N, K = t._saved
    if a is not None:
        ga = _empty_like(x)
        _mm(g, False, y, False, None, ga, M, K, N)
        _accumulate(a, ga, True)
    if w is not None:
        gw = _empty_like(y)
        _mm(g, True, x, False, None, gw, N, K, M)
        _accumulate(w, gw, True)
    if bias is not None:
        gb = _empty(1, <cnp.npy_intp*>&N, cnp.PyArray_TYPE(g))
        _kern(g).sum_axis(1, M, N, _ptr(g), 1.0, _ptr(gb))
        _accumulate(bias, gb, True)


_register(N_LINEAR, "AddmmBackward0", NULL, _linear_backward, _release_all)

