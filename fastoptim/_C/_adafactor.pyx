# cython: language_level=3, boundscheck=False, wraparound=True
"""The checked entry point of Adafactor's kernel (csrc/optim_adafactor.c).

Why it exists: ``fo_adafactor_update_f32/_f64`` trust their caller (raw pointers, shapes taken
as given).  ``step`` is that careful caller for one param group: it proves, before anything is
written, that every list has one entry per param, that each param's grad and state have its
dtype (float32 or float64) and torch's shapes (``row_var``: the param's shape with the last dim
1, ``col_var``: with the second-to-last dim 1, for params of two or more dims; ``variance``:
the param's shape otherwise), that everything is C-contiguous, that what is written is
writeable and overlaps nothing else of the call; then it fills one ``fo_adafactor_tensor``
struct per param (by field name) and makes one call per dtype, without the GIL.

The kernel's column sums need a work buffer of ``fo_adafactor_work_size`` doubles: the caller
passes the one it keeps (the class keeps one per optimizer), and gets back a bigger one only
when a param needs more, so a steady step allocates no array.
"""
import math

cimport numpy as cnp
import numpy as np
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uintptr_t

from fastoptim._C.kernels cimport (
    fo_adafactor_hyper, fo_adafactor_tensor_f32, fo_adafactor_tensor_f64,
    fo_adafactor_update_f32, fo_adafactor_update_f64, fo_adafactor_work_size,
)

cnp.import_array()

_NAMES = ("params", "grads", "row_vars", "col_vars", "variances", "state_steps")


cdef inline object _arr(x):
    """A fastoptim Tensor's array, or the object itself."""
    a = getattr(x, "_np", None)
    return x if a is None else a


cdef object _check(object x, str name, Py_ssize_t i, object dtype, tuple shape, bint written):
    """``x`` (an entry of list ``name``) as a C-contiguous ndarray of ``dtype`` and ``shape``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"adafactor: {name}[{i}] must be a fastoptim Tensor or numpy array, "
                        f"got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"adafactor: {name}[{i}] has dtype {x.dtype}, expected {dtype}")
    if x.shape != shape:
        raise ValueError(f"adafactor: {name}[{i}] has shape {x.shape}, expected {shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"adafactor: {name}[{i}] must be C-contiguous")
    if written and not x.flags.writeable:
        raise ValueError(f"adafactor: {name}[{i}] is read-only; expected a writeable array "
                         "(it is updated in place)")
    return x


def _check_overlaps(list spans):
    """``spans``: (start, end, written, list name, index) of every non-empty array of the call.
    Raises if a written array shares bytes with any other (grads may share with each other)."""
    spans.sort()
    active = []
    for s in spans:
        active = [a for a in active if a[1] > s[0]]
        for a in active:
            if a[2] or s[2]:
                first, second = sorted((a, s), key=lambda t: (t[4], _NAMES.index(t[3])))
                raise ValueError(f"adafactor: {first[3]}[{first[4]}] and {second[3]}"
                                 f"[{second[4]}] overlap in memory; every array that is "
                                 "updated in place must have its own storage")
        active.append(s)


cdef inline void _span(list spans, cnp.ndarray a, bint written, str name, Py_ssize_t i):
    cdef uintptr_t start
    if a.nbytes:
        start = <uintptr_t>cnp.PyArray_DATA(a)
        spans.append((start, start + <uintptr_t>a.nbytes, written, name, i))


def step(params, grads, row_vars, col_vars, variances, state_steps, *, double lr,
         double beta2_decay, double eps1, double eps2, double d, double weight_decay,
         bint maximize, work=None):
    """One Adafactor step over a group's lists (``eps1`` resolved, not None).  Entries are
    fastoptim Tensors or numpy arrays; ``row_vars``/``col_vars`` entries are None for params
    of fewer than two dims, ``variances`` entries None for the others; ``state_steps``: 0-dim
    float32 counters.  Returns the work buffer used (``work`` itself when big enough)."""
    cdef Py_ssize_t n = len(params), i, n32 = 0, n64 = 0
    cdef int64_t need = 0, w, rows, cols, batch
    lists = (params, grads, row_vars, col_vars, variances, state_steps)
    for name, lst in zip(_NAMES, lists):
        if not isinstance(lst, (list, tuple)):
            raise TypeError(f"adafactor: {name} must be a list, got {type(lst).__name__}")
        if len(lst) != n:
            raise ValueError(f"adafactor: {name} has {len(lst)} entries but params has {n}")
    arrays = []
    spans = []
    for i in range(n):
        p = _arr(params[i])
        if not isinstance(p, np.ndarray):
            raise TypeError(f"adafactor: params[{i}] must be a fastoptim Tensor or numpy array, "
                            f"got {type(p).__name__}")
        dtype = p.dtype
        if dtype != np.float32 and dtype != np.float64 or not dtype.isnative:
            raise TypeError(f"adafactor: params[{i}] has dtype {dtype}; expected float32 or "
                            "float64")
        shape = p.shape
        _check(p, "params", i, dtype, shape, True)
        if p.size == 0:
            # torch's step divides the param's norm by sqrt(numel) in Python (before touching
            # it, but after the params before it): an empty param raises there
            raise ZeroDivisionError("float division by zero")
        g = _check(_arr(grads[i]), "grads", i, dtype, shape, False)
        s = _check(_arr(state_steps[i]), "state_steps", i, np.dtype(np.float32), (), True)
        if len(shape) >= 2:
            r = _check(_arr(row_vars[i]), "row_vars", i, dtype, shape[:-1] + (1,), True)
            c = _check(_arr(col_vars[i]), "col_vars", i, dtype,
                       shape[:-2] + (1, shape[-1]), True)
            if variances[i] is not None:
                raise ValueError(f"adafactor: variances[{i}] must be None for a param of "
                                 f"{len(shape)} dims (it has row_var and col_var)")
            v = None
            rows, cols = shape[-2], shape[-1]
            batch = math.prod(shape[:-2])
            w = fo_adafactor_work_size(p.size, cols, 1)
        else:
            if row_vars[i] is not None or col_vars[i] is not None:
                raise ValueError(f"adafactor: row_vars[{i}] and col_vars[{i}] must be None for "
                                 f"a param of {len(shape)} dims (it has variance)")
            v = _check(_arr(variances[i]), "variances", i, dtype, shape, True)
            r = c = None
            batch, rows, cols = 1, 1, p.size
            w = fo_adafactor_work_size(p.size, cols, 0)
        need = max(need, w)
        if dtype == np.float32:
            n32 += 1
        else:
            n64 += 1
        arrays.append((p, g, r, c, v, s, batch, rows, cols))
        _span(spans, p, True, "params", i)
        _span(spans, g, False, "grads", i)
        _span(spans, s, True, "state_steps", i)
        for a, name in ((r, "row_vars"), (c, "col_vars"), (v, "variances")):
            if a is not None:
                _span(spans, a, True, name, i)
    _check_overlaps(spans)
    if work is None or not isinstance(work, np.ndarray) or work.dtype != np.float64 \
            or not work.flags.c_contiguous or not work.flags.writeable or work.size < need:
        work = np.empty(max(need, 1), np.float64)
    if n == 0:
        return work

    cdef fo_adafactor_hyper h
    h.lr = lr
    h.beta2_decay = beta2_decay
    h.eps1 = eps1
    h.eps2 = eps2
    h.d = d
    h.weight_decay = weight_decay
    h.maximize = maximize
    cdef fo_adafactor_tensor_f32 *t32 = NULL
    cdef fo_adafactor_tensor_f64 *t64 = NULL
    cdef Py_ssize_t j32 = 0, j64 = 0
    cdef double *wp = <double *>cnp.PyArray_DATA(work)
    try:
        t32 = <fo_adafactor_tensor_f32 *>PyMem_Malloc((n32 + 1) * sizeof(fo_adafactor_tensor_f32))
        t64 = <fo_adafactor_tensor_f64 *>PyMem_Malloc((n64 + 1) * sizeof(fo_adafactor_tensor_f64))
        if t32 == NULL or t64 == NULL:
            raise MemoryError()
        for p, g, r, c, v, s, batch, rows, cols in arrays:
            if p.dtype == np.float32:
                t32[j32].param = <float *>cnp.PyArray_DATA(p)
                t32[j32].grad = <const float *>cnp.PyArray_DATA(g)
                t32[j32].row_var = NULL if r is None else <float *>cnp.PyArray_DATA(r)
                t32[j32].col_var = NULL if c is None else <float *>cnp.PyArray_DATA(c)
                t32[j32].variance = NULL if v is None else <float *>cnp.PyArray_DATA(v)
                t32[j32].step = <float *>cnp.PyArray_DATA(s)
                t32[j32].batch = batch
                t32[j32].rows = rows
                t32[j32].cols = cols
                j32 += 1
            else:
                t64[j64].param = <double *>cnp.PyArray_DATA(p)
                t64[j64].grad = <const double *>cnp.PyArray_DATA(g)
                t64[j64].row_var = NULL if r is None else <double *>cnp.PyArray_DATA(r)
                t64[j64].col_var = NULL if c is None else <double *>cnp.PyArray_DATA(c)
                t64[j64].variance = NULL if v is None else <double *>cnp.PyArray_DATA(v)
                t64[j64].step = <float *>cnp.PyArray_DATA(s)
                t64[j64].batch = batch
                t64[j64].rows = rows
                t64[j64].cols = cols
                j64 += 1
        with nogil:
            if n32:
                fo_adafactor_update_f32(t32, n32, &h, wp)
            if n64:
                fo_adafactor_update_f64(t64, n64, &h, wp)
    finally:
        PyMem_Free(t32)
        PyMem_Free(t64)
    return work
