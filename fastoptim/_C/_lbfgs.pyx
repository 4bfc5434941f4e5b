# cython: language_level=3, boundscheck=False, wraparound=False
"""The checked entry points of L-BFGS's flat-vector kernels (csrc/optim_lbfgs.c).

Why it exists: ``fastoptim.optim.LBFGS`` runs torch's algorithm over one flat numpy vector of
all params; the kernels (``fo_lbfgs_*_f32/_f64``) trust their caller with raw pointers.  Each
function here is that careful caller: it proves that every array is a C-contiguous numpy array
of one dtype (float32 or float64, native byte order) and the expected size, that what is
written is writeable and overlaps nothing else of the call; then it fills the kernel's struct by
field name and makes one call without the GIL.  The checks read numpy's C fields (no Python
attribute lookups), so a call over a history of m pairs costs well under a microsecond per pair.

``axpy`` (``y += alpha * x``, one rounding) is also used by ``optim.Muon``; its signature is
kept.  The plain NumPy twins are in ``fastoptim.optim._reference_lbfgs``.

``reclaim`` is the one place that decides whether a vector LBFGS handed out in its state may be
written again: only when nothing but the optimizer's own list can reach its memory (reference
counts of the Tensor, its array and the array's owner), see its docstring.
"""
cimport numpy as cnp
import numpy as np
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from libc.stdint cimport uintptr_t

from fastoptim._C._tensor cimport Tensor

from fastoptim._C.kernels cimport (
    fo_lbfgs_add_grad_f32, fo_lbfgs_add_grad_f64, fo_lbfgs_axpy_f32, fo_lbfgs_axpy_f64,
    fo_lbfgs_direction_args_f32, fo_lbfgs_direction_args_f64, fo_lbfgs_direction_f32,
    fo_lbfgs_direction_f64, fo_lbfgs_gather_f32, fo_lbfgs_gather_f64,
    fo_lbfgs_gather_pair_args_f32, fo_lbfgs_gather_pair_args_f64, fo_lbfgs_gather_pair_f32,
    fo_lbfgs_gather_pair_f64, fo_lbfgs_pair_args_f32,
    fo_lbfgs_pair_args_f64, fo_lbfgs_pair_f32, fo_lbfgs_pair_f64, fo_lbfgs_segment_f32,
    fo_lbfgs_segment_f64,
)

cnp.import_array()

cdef extern from "Python.h":
    Py_ssize_t Py_REFCNT(PyObject *o)
    PyObject *_type_of "(PyObject *)Py_TYPE" (PyObject *o)


cdef int _typenum(object x, str what) except -1:
    """NPY_FLOAT or NPY_DOUBLE: ``x`` must be a native float32/float64 numpy array."""
    if not cnp.PyArray_Check(x):
        raise TypeError(f"{what} must be a numpy array, got {type(x).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(a)
    if (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or not cnp.PyArray_ISNOTSWAPPED(a):
        raise TypeError(f"{what} must be float32 or float64, got {a.dtype}")
    return t


cdef str _name(str what, Py_ssize_t i):
    """An argument's name in a message: ``what``, or ``what[i]`` for ``i >= 0``.  Called only
    on an error path: the checks of a call pass constants and indices, and a name is formatted
    only for the message of an exception (a call over m pairs would format 6m names)."""
    return what if i < 0 else f"{what}[{i}]"


cdef cnp.ndarray _vec(object x, str what, Py_ssize_t i, int typenum, Py_ssize_t n,
                      bint written):
    """``x`` as a C-contiguous array of ``typenum`` with ``n`` elements (writeable if
    ``written``); ``what`` and ``i``: its name (``_name``)."""
    if not cnp.PyArray_Check(x):
        raise TypeError(f"{_name(what, i)} must be a numpy array, got {type(x).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray>x
    if cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_ISNOTSWAPPED(a):
        want = "float32" if typenum == cnp.NPY_FLOAT else "float64"
        raise TypeError(f"{_name(what, i)} has dtype {a.dtype}, expected {want} (the dtype of "
                        "the call)")
    if cnp.PyArray_SIZE(a) != n:
        raise ValueError(f"{_name(what, i)} has {cnp.PyArray_SIZE(a)} elements, expected {n}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{_name(what, i)} must be C-contiguous")
    if written and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{_name(what, i)} is read-only; expected a writeable array (it is "
                         "written in place)")
    return a


cdef inline uintptr_t _lo(cnp.ndarray a):
    return <uintptr_t>cnp.PyArray_DATA(a)


cdef inline uintptr_t _hi(cnp.ndarray a):
    return <uintptr_t>cnp.PyArray_DATA(a) + <uintptr_t>cnp.PyArray_NBYTES(a)


cdef int _disjoint(cnp.ndarray w, str wname, Py_ssize_t wi, cnp.ndarray r, str rname,
                   Py_ssize_t ri) except -1:
    """Raise if the written array ``w`` shares bytes with ``r`` (empty arrays share none);
    ``wname``/``wi`` and ``rname``/``ri``: their names (``_name``)."""
    if cnp.PyArray_NBYTES(w) and cnp.PyArray_NBYTES(r) and _lo(w) < _hi(r) and _lo(r) < _hi(w):
        wn = _name(wname, wi)
        raise ValueError(f"{wn} and {_name(rname, ri)} overlap in memory; {wn} is written and "
                         "must have its own storage")
    return 0


def axpy(double alpha, x, y):
    """``y += alpha * x`` in place (fused: ``fma(x, alpha, y)`` per element); returns ``y``.

    ``x`` and ``y``: C-contiguous float32 or float64 numpy arrays of the same dtype and size,
    not sharing memory; ``y`` writeable.
    """
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(f"axpy: x and y must be numpy arrays, got {type(x).__name__} and "
                        f"{type(y).__name__}")
    if x.dtype != y.dtype or x.dtype not in (np.float32, np.float64) or not x.dtype.isnative:
        raise TypeError(f"axpy: x and y must both be float32 or float64, got {x.dtype} and "
                        f"{y.dtype}")
    if x.size != y.size:
        raise ValueError(f"axpy: x has {x.size} elements but y has {y.size}")
    if not (x.flags.c_contiguous and y.flags.c_contiguous):
        raise ValueError("axpy: x and y must be C-contiguous")
    if not y.flags.writeable:
        raise ValueError("axpy: y is read-only")
    if np.may_share_memory(x, y):
        raise ValueError("axpy: x and y may share memory")
    cdef Py_ssize_t n = x.size
    if n == 0:
        return y
    cdef void *xp = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    if x.dtype == np.float32:
        with nogil:
            fo_lbfgs_axpy_f32(n, alpha, <const float *>xp, <float *>yp)
    else:
        with nogil:
            fo_lbfgs_axpy_f64(n, alpha, <const double *>xp, <double *>yp)
    return y


cdef list _grads(str fn, str flat_name, str grads_name, grads, numels, cnp.ndarray f, int tn):
    """The grads of a gather into ``f``, checked (``None`` stays None), as a list; ``fn`` the
    caller's name, ``flat_name``/``grads_name`` the names of ``f`` and ``grads`` in messages."""
    cdef Py_ssize_t k = len(grads), i, total = 0
    if len(numels) != k:
        raise ValueError(f"{fn}: numels has {len(numels)} entries but grads has {k}")
    for i in range(k):
        if numels[i] < 0:
            raise ValueError(f"{fn}: numels[{i}] is {numels[i]}, expected >= 0")
        total += numels[i]
    _vec(f, flat_name, -1, tn, total, True)
    cdef list keep = []
    cdef cnp.ndarray a
    for i in range(k):
        if grads[i] is not None:
            a = _vec(grads[i], grads_name, i, tn, numels[i], False)
            _disjoint(f, flat_name, -1, a, grads_name, i)
            keep.append(a)
        else:
            keep.append(None)
    return keep


cdef void *_segments(list keep, numels, int tn) except NULL:
    """The kernels' segment array for checked grads (PyMem_Malloc'd: the caller frees it)."""
    cdef Py_ssize_t k = len(keep), i
    cdef fo_lbfgs_segment_f32 *s32
    cdef fo_lbfgs_segment_f64 *s64
    if tn == cnp.NPY_FLOAT:
        s32 = <fo_lbfgs_segment_f32 *>PyMem_Malloc((k + 1) * sizeof(fo_lbfgs_segment_f32))
        if s32 == NULL:
            raise MemoryError()
        for i in range(k):
            s32[i].data = NULL if keep[i] is None else \
                <float *>cnp.PyArray_DATA(<cnp.ndarray>keep[i])
            s32[i].numel = numels[i]
        return s32
    s64 = <fo_lbfgs_segment_f64 *>PyMem_Malloc((k + 1) * sizeof(fo_lbfgs_segment_f64))
    if s64 == NULL:
        raise MemoryError()
    for i in range(k):
        s64[i].data = NULL if keep[i] is None else \
            <double *>cnp.PyArray_DATA(<cnp.ndarray>keep[i])
        s64[i].numel = numels[i]
    return s64


def gather(grads, numels, flat):
    """torch's ``_gather_flat_grad`` into ``flat``: ``flat = concat(grads)`` (zeros where a
    grad is None); returns ``max|flat|`` as a float (NaN if ``flat`` holds one, 0.0 if empty).

    ``grads[i]``: None or a C-contiguous array of ``flat``'s dtype with ``numels[i]`` elements
    (any shape); ``flat``: writeable, ``sum(numels)`` elements, overlapping no grad.
    """
    cdef int tn = _typenum(flat, "gather: flat")
    cdef cnp.ndarray f = <cnp.ndarray>flat
    cdef list keep = _grads("gather", "gather: flat", "gather: grads", grads, numels, f, tn)
    cdef Py_ssize_t k = len(keep)
    cdef void *segs = _segments(keep, numels, tn)
    cdef double result
    cdef void *fp = cnp.PyArray_DATA(f)
    try:
        if tn == cnp.NPY_FLOAT:
            with nogil:
                result = fo_lbfgs_gather_f32(<fo_lbfgs_segment_f32 *>segs, k, <float *>fp)
        else:
            with nogil:
                result = fo_lbfgs_gather_f64(<fo_lbfgs_segment_f64 *>segs, k, <double *>fp)
    finally:
        PyMem_Free(segs)
    return result


def gather_pair(grads, numels, flat, prev, d, double t, y, s, q):
    """``gather`` and then ``pair`` (and the recursion's first dot) in one pass: ``flat =
    concat(grads)``, ``y = flat - prev``, ``s = d * t`` and, unless ``q`` is None, ``q =
    -flat``; returns ``(max|flat|, y.s, y.y, s.q)`` as floats (``s.q`` summed in double, not
    rounded; 0.0 without ``q``) -- bit for bit what ``gather``, ``pair`` and ``direction``'s
    first pass give.  ``grads``/``numels`` as for ``gather``; every vector of ``flat``'s dtype
    and size, C-contiguous; ``flat``, ``y``, ``s``, ``q`` writeable and overlapping nothing
    else of the call.
    """
    cdef int tn = _typenum(flat, "gather_pair: flat")
    cdef cnp.ndarray f = <cnp.ndarray>flat
    cdef list keep = _grads("gather_pair", "gather_pair: flat", "gather_pair: grads", grads,
                              numels, f, tn)
    cdef Py_ssize_t k = len(keep), n = cnp.PyArray_SIZE(f), i
    cdef cnp.ndarray pa = _vec(prev, "gather_pair: prev", -1, tn, n, False)
    cdef cnp.ndarray da = _vec(d, "gather_pair: d", -1, tn, n, False)
    cdef cnp.ndarray ya = _vec(y, "gather_pair: y", -1, tn, n, True)
    cdef cnp.ndarray sa = _vec(s, "gather_pair: s", -1, tn, n, True)
    cdef cnp.ndarray qa = None if q is None else _vec(q, "gather_pair: q", -1, tn, n, True)
    written = [(f, "gather_pair: flat"), (ya, "gather_pair: y"), (sa, "gather_pair: s")]
    if qa is not None:
        written.append((qa, "gather_pair: q"))
    read = ((pa, "gather_pair: prev"), (da, "gather_pair: d"))
    cdef Py_ssize_t j
    for i in range(len(written)):
        w, wn = written[i]
        for r, rn in read:
            _disjoint(w, wn, -1, r, rn, -1)
        for j in range(k):
            if keep[j] is not None:
                _disjoint(w, wn, -1, keep[j], "gather_pair: grads", j)
        for j in range(i + 1, len(written)):
            _disjoint(w, wn, -1, written[j][0], written[j][1], -1)
    cdef fo_lbfgs_gather_pair_args_f32 w32
    cdef fo_lbfgs_gather_pair_args_f64 w64
    cdef void *segs = _segments(keep, numels, tn)
    try:
        if tn == cnp.NPY_FLOAT:
            w32.segs = <const fo_lbfgs_segment_f32 *>segs
            w32.nsegs = k
            w32.n = n
            w32.prev = <const float *>cnp.PyArray_DATA(pa)
            w32.d = <const float *>cnp.PyArray_DATA(da)
            w32.t = t
            w32.g = <float *>cnp.PyArray_DATA(f)
            w32.y = <float *>cnp.PyArray_DATA(ya)
            w32.s = <float *>cnp.PyArray_DATA(sa)
            w32.q = NULL if qa is None else <float *>cnp.PyArray_DATA(qa)
            w32.sq = 0.0
            with nogil:
                fo_lbfgs_gather_pair_f32(&w32)
            return w32.gmax, w32.ys, w32.yy, w32.sq
        w64.segs = <const fo_lbfgs_segment_f64 *>segs
        w64.nsegs = k
        w64.n = n
        w64.prev = <const double *>cnp.PyArray_DATA(pa)
        w64.d = <const double *>cnp.PyArray_DATA(da)
        w64.t = t
        w64.g = <double *>cnp.PyArray_DATA(f)
        w64.y = <double *>cnp.PyArray_DATA(ya)
        w64.s = <double *>cnp.PyArray_DATA(sa)
        w64.q = NULL if qa is None else <double *>cnp.PyArray_DATA(qa)
        w64.sq = 0.0
        with nogil:
            fo_lbfgs_gather_pair_f64(&w64)
        return w64.gmax, w64.ys, w64.yy, w64.sq
    finally:
        PyMem_Free(segs)


def pair(g, prev, d, double t, y, s):
    """A curvature pair in one pass: ``y = g - prev``, ``s = d * t`` (``t`` cast to the dtype),
    written in place; returns ``(y.s, y.y)`` as floats (dots summed in double, rounded to the
    dtype).  All six arrays: one dtype and size, C-contiguous; ``y`` and ``s`` writeable and
    overlapping nothing else."""
    cdef int tn = _typenum(g, "pair: g")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>g)
    cdef cnp.ndarray ga = _vec(g, "pair: g", -1, tn, n, False)
    cdef cnp.ndarray pa = _vec(prev, "pair: prev", -1, tn, n, False)
    cdef cnp.ndarray da = _vec(d, "pair: d", -1, tn, n, False)
    cdef cnp.ndarray ya = _vec(y, "pair: y", -1, tn, n, True)
    cdef cnp.ndarray sa = _vec(s, "pair: s", -1, tn, n, True)
    for w, wn in ((ya, "pair: y"), (sa, "pair: s")):
        for r, rn in ((ga, "pair: g"), (pa, "pair: prev"), (da, "pair: d")):
            _disjoint(w, wn, -1, r, rn, -1)
    _disjoint(ya, "pair: y", -1, sa, "pair: s", -1)
    cdef fo_lbfgs_pair_args_f32 w32
    cdef fo_lbfgs_pair_args_f64 w64
    if tn == cnp.NPY_FLOAT:
        w32.n = n
        w32.g = <const float *>cnp.PyArray_DATA(ga)
        w32.prev = <const float *>cnp.PyArray_DATA(pa)
        w32.d = <const float *>cnp.PyArray_DATA(da)
        w32.t = t
        w32.y = <float *>cnp.PyArray_DATA(ya)
        w32.s = <float *>cnp.PyArray_DATA(sa)
        with nogil:
            fo_lbfgs_pair_f32(&w32)
        return w32.ys, w32.yy
    w64.n = n
    w64.g = <const double *>cnp.PyArray_DATA(ga)
    w64.prev = <const double *>cnp.PyArray_DATA(pa)
    w64.d = <const double *>cnp.PyArray_DATA(da)
    w64.t = t
    w64.y = <double *>cnp.PyArray_DATA(ya)
    w64.s = <double *>cnp.PyArray_DATA(sa)
    with nogil:
        fo_lbfgs_pair_f64(&w64)
    return w64.ys, w64.yy


def direction(g, dirs, stps, ro, double h_diag, d, al, sq=None):
    """The two-loop recursion, torch's order: ``d = -H g`` from the pairs ``(dirs[i], stps[i],
    ro[i])`` (oldest first), written into ``d``, with ``al[0..m)`` (numpy array of the dtype,
    at least m long); returns ``g.d`` (torch's ``gtd``) as a float.

    ``g``, every ``dirs[i]``/``stps[i]`` and ``d``: one dtype and size, C-contiguous; ``ro``: m
    numbers (cast to the dtype), ``h_diag`` too; ``d`` and ``al`` writeable and overlapping
    nothing else.  ``sq``: None, or (m >= 1) ``d`` already holds ``-g`` and ``sq`` is
    ``stps[m-1].(-g)`` summed in double -- ``gather_pair``'s ``q`` and ``s.q`` over the newest
    pair -- and the recursion's first pass is skipped (the same result).
    """
    cdef int tn = _typenum(g, "direction: g")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>g), m = len(dirs), i
    if len(stps) != m or len(ro) != m:
        raise ValueError(f"direction: dirs, stps and ro must have one entry per pair, got "
                         f"{m}, {len(stps)} and {len(ro)}")
    cdef cnp.ndarray ga = _vec(g, "direction: g", -1, tn, n, False)
    cdef cnp.ndarray da = _vec(d, "direction: d", -1, tn, n, True)
    _disjoint(da, "direction: d", -1, ga, "direction: g", -1)
    cdef int altn = _typenum(al, "direction: al")
    cdef cnp.ndarray ala = <cnp.ndarray>al
    if altn != tn:
        raise TypeError(f"direction: al has dtype {ala.dtype}, expected {ga.dtype}")
    if cnp.PyArray_SIZE(ala) < m or not cnp.PyArray_IS_C_CONTIGUOUS(ala) \
            or not cnp.PyArray_ISWRITEABLE(ala):
        raise ValueError(f"direction: al must be a writeable C-contiguous array of at least "
                         f"{m} elements")
    _disjoint(ala, "direction: al", -1, ga, "direction: g", -1)
    _disjoint(ala, "direction: al", -1, da, "direction: d", -1)
    cdef cnp.ndarray a
    for lst, name in ((dirs, "direction: dirs"), (stps, "direction: stps")):
        for i in range(m):
            a = _vec(lst[i], name, i, tn, n, False)
            _disjoint(da, "direction: d", -1, a, name, i)
            _disjoint(ala, "direction: al", -1, a, name, i)
    cdef int q_ready = sq is not None and m > 0
    cdef double sqv = <double>sq if q_ready else 0.0
    cdef fo_lbfgs_direction_args_f32 w32
    cdef fo_lbfgs_direction_args_f64 w64
    cdef void **ptrs = <void **>PyMem_Malloc((2 * m + 1) * sizeof(void *))
    cdef void *rov = PyMem_Malloc((m + 1) * sizeof(double))
    try:
        if ptrs == NULL or rov == NULL:
            raise MemoryError()
        for i in range(m):
            ptrs[i] = cnp.PyArray_DATA(<cnp.ndarray>dirs[i])
            ptrs[m + i] = cnp.PyArray_DATA(<cnp.ndarray>stps[i])
        if tn == cnp.NPY_FLOAT:
            for i in range(m):
                (<float *>rov)[i] = <float>(<double>ro[i])
            w32.n = n
            w32.m = m
            w32.dirs = <const float *const *>ptrs
            w32.stps = <const float *const *>(ptrs + m)
            w32.ro = <const float *>rov
            w32.h_diag = <float>h_diag
            w32.g = <const float *>cnp.PyArray_DATA(ga)
            w32.d = <float *>cnp.PyArray_DATA(da)
            w32.al = <float *>cnp.PyArray_DATA(ala)
            w32.q_ready = q_ready
            w32.sq = sqv
            with nogil:
                fo_lbfgs_direction_f32(&w32)
            return w32.gtd
        for i in range(m):
            (<double *>rov)[i] = <double>ro[i]
        w64.n = n
        w64.m = m
        w64.dirs = <const double *const *>ptrs
        w64.stps = <const double *const *>(ptrs + m)
        w64.ro = <const double *>rov
        w64.h_diag = h_diag
        w64.g = <const double *>cnp.PyArray_DATA(ga)
        w64.d = <double *>cnp.PyArray_DATA(da)
        w64.al = <double *>cnp.PyArray_DATA(ala)
        w64.q_ready = q_ready
        w64.sq = sqv
        with nogil:
            fo_lbfgs_direction_f64(&w64)
        return w64.gtd
    finally:
        PyMem_Free(ptrs)
        PyMem_Free(rov)


def add_grad(params, d, double t):
    """torch's ``_add_grad``: ``params[i] += t * d[segment i]`` in place (fma, ``t`` cast to
    the dtype), the segments of ``d`` in order; returns ``max|d * t|`` as a float (NaN if one,
    0.0 if empty).  ``params[i]``: writeable C-contiguous arrays of ``d``'s dtype whose sizes add
    up to ``d``'s, none overlapping ``d``."""
    cdef int tn = _typenum(d, "add_grad: d")
    cdef cnp.ndarray da = <cnp.ndarray>d
    cdef Py_ssize_t k = len(params), i, total = 0
    cdef list keep = []
    cdef cnp.ndarray a
    for i in range(k):
        p = params[i]
        if not cnp.PyArray_Check(p):
            raise TypeError(f"add_grad: params[{i}] must be a numpy array, got "
                            f"{type(p).__name__}")
        a = _vec(p, "add_grad: params", i, tn, cnp.PyArray_SIZE(<cnp.ndarray>p), True)
        total += cnp.PyArray_SIZE(a)
        keep.append(a)
    _vec(d, "add_grad: d", -1, tn, total, False)
    for i in range(k):
        _disjoint(<cnp.ndarray>keep[i], "add_grad: params", i, da, "add_grad: d", -1)
    cdef fo_lbfgs_segment_f32 *s32 = NULL
    cdef fo_lbfgs_segment_f64 *s64 = NULL
    cdef double result
    cdef void *dp = cnp.PyArray_DATA(da)
    try:
        if tn == cnp.NPY_FLOAT:
            s32 = <fo_lbfgs_segment_f32 *>PyMem_Malloc((k + 1) * sizeof(fo_lbfgs_segment_f32))
            if s32 == NULL:
                raise MemoryError()
            for i in range(k):
                a = <cnp.ndarray>keep[i]
                s32[i].data = <float *>cnp.PyArray_DATA(a)
                s32[i].numel = cnp.PyArray_SIZE(a)
            with nogil:
                result = fo_lbfgs_add_grad_f32(s32, k, <const float *>dp, t)
        else:
            s64 = <fo_lbfgs_segment_f64 *>PyMem_Malloc((k + 1) * sizeof(fo_lbfgs_segment_f64))
            if s64 == NULL:
                raise MemoryError()
            for i in range(k):
                a = <cnp.ndarray>keep[i]
                s64[i].data = <double *>cnp.PyArray_DATA(a)
                s64[i].numel = cnp.PyArray_SIZE(a)
            with nogil:
                result = fo_lbfgs_add_grad_f64(s64, k, <const double *>dp, t)
    finally:
        PyMem_Free(s32)
        PyMem_Free(s64)
    return result


def reclaim(list holder, Py_ssize_t i):
    """Remove ``holder[i]`` (a fastoptim Tensor LBFGS put in its state) and return the numpy
    array owning its memory if nothing else can reach that memory any more, else None.

    "Nothing else" is read from reference counts, before the removal: the Tensor is referenced
    only by its slot in ``holder``, its array only by the Tensor, and that array is either the
    owner of its data or a view whose base owns it and is referenced only by the view.  Any
    other holder -- the Tensor kept by a user, a ``numpy()`` view or anything made from one
    (``torch.as_tensor``, a memoryview), a Tensor view, a state dict that lists it -- adds a
    reference somewhere on that chain, and the vector is then left alone (None).  The owner
    returned is C-contiguous, aligned and writeable; its size and dtype are the caller's to
    check.
    """
    cdef Py_ssize_t n = PyList_GET_SIZE(holder)
    if i < 0 or i >= n:
        raise IndexError(f"reclaim: index {i} out of range for a list of {n}")
    cdef PyObject *t = PyList_GET_ITEM(holder, i)   # borrowed: the counts read are others'
    cdef PyObject *v
    cdef PyObject *owner = NULL
    cdef PyObject *nd = <PyObject *>cnp.ndarray
    cdef Tensor tt
    if Py_REFCNT(t) == 1 and _type_of(t) == <PyObject *>Tensor:
        tt = <Tensor><object>t      # (counted: t's count was read before)
        v = <PyObject *>tt._np
        if v != NULL and Py_REFCNT(v) == 1 and _type_of(v) == nd:
            if cnp.PyArray_CHKFLAGS(<cnp.ndarray><object>v, cnp.NPY_ARRAY_OWNDATA):
                owner = v
            else:
                owner = cnp.PyArray_BASE(<cnp.ndarray><object>v)
                if owner != NULL and not (
                        Py_REFCNT(owner) == 1 and _type_of(owner) == nd
                        and cnp.PyArray_CHKFLAGS(<cnp.ndarray><object>owner,
                                                 cnp.NPY_ARRAY_OWNDATA)):
                    owner = NULL
        if owner != NULL and not (
                cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray><object>owner)
                and cnp.PyArray_ISALIGNED(<cnp.ndarray><object>owner)
                and cnp.PyArray_ISWRITEABLE(<cnp.ndarray><object>owner)):
            owner = NULL
    cdef object result = None if owner == NULL else <object>owner   # a new reference
    tt = None
    del holder[i]      # the Tensor (and its view) go; the owner lives on in result
    return result
