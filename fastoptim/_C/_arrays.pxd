# cython: language_level=3
"""What the optimizer glue checks about an array, read once: shared by ``_optim.pyx`` (the
elementwise kernels' glue) and ``_adafactor.pyx`` (Adafactor's), so that both accept and refuse
exactly the same arrays.

``Arr`` holds the facts of one array (data pointer, size, type number, flags, ndim), taken from
a fastoptim Tensor's cached copy (``_tensor.pxd``: one cache line, no Python attribute lookup)
or from a numpy array through numpy's C macros; the predicates below test them.  Everything is
``inline`` and touches no Python object beyond the borrowed array whose dims are compared.
"""
cimport numpy as cnp
from cpython.object cimport PyObject
from libc.stdint cimport int64_t

from fastoptim._C._tensor cimport Tensor


cdef inline int64_t _numel(cnp.npy_intp *dims, int ndim) noexcept:
    # inline: PyArray_SIZE goes through numpy's API table (a call per array)
    cdef int64_t n = 1
    cdef int d
    for d in range(ndim):
        n *= dims[d]
    return n


cdef inline bint _same_dims(cnp.npy_intp *a, cnp.npy_intp *b, int ndim) noexcept:
    # inline: a libc memcmp call per array costs more than comparing one or two dims
    cdef int d
    for d in range(ndim):
        if a[d] != b[d]:
            return False
    return True


cdef struct Arr:
    # What the checks need to know about one array: read from a Tensor's cached facts (one
    # cache line, _tensor.pxd) or from a numpy array itself.
    void *data
    int64_t numel
    int tnum           # numpy type number; -1 when the byte order is not native
    int flags
    int ndim
    PyObject *np       # the numpy array (borrowed): its dims, compared when ndim > 1


cdef inline void _arr_of_tensor(Arr *a, Tensor t) noexcept:
    a.data, a.numel, a.tnum, a.flags, a.ndim = t._data, t._numel, t._tnum, t._flags, t._ndim
    a.np = <PyObject *>t._np


cdef inline void _arr_of_numpy(Arr *a, cnp.ndarray x) noexcept:
    a.data = cnp.PyArray_DATA(x)
    a.ndim = cnp.PyArray_NDIM(x)
    a.numel = _numel(cnp.PyArray_DIMS(x), a.ndim)
    a.tnum = cnp.PyArray_TYPE(x) if cnp.PyArray_ISNOTSWAPPED(x) else -1
    a.flags = cnp.PyArray_FLAGS(x)
    a.np = <PyObject *>x


cdef inline bint _arr_of(Arr *a, object x) noexcept:
    # A Tensor's facts or a numpy array's; False for anything else.
    if isinstance(x, Tensor):
        _arr_of_tensor(a, <Tensor>x)
        return True
    if isinstance(x, cnp.ndarray):
        _arr_of_numpy(a, <cnp.ndarray>x)
        return True
    return False


cdef enum:
    FLAGS_READ = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED
    FLAGS_WRITE = FLAGS_READ | cnp.NPY_ARRAY_WRITEABLE
    # one element is contiguous whatever its strides; it must still be aligned and writeable
    FLAGS_STEP = cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE


cdef inline bint _param_ok(const Arr *p) noexcept:
    # A param: native float32 or float64, C-contiguous, aligned, writeable.
    return ((p.tnum == cnp.NPY_FLOAT32 or p.tnum == cnp.NPY_FLOAT64)
            and (p.flags & FLAGS_WRITE) == FLAGS_WRITE)


cdef inline bint _matches(const Arr *x, const Arr *p, int need) noexcept:
    # A grad or state array of param p: p's dtype and shape, and the flags in need.  Equal
    # numels and ndims are equal shapes up to one dimension; beyond, the dims are compared.
    return (x.tnum == p.tnum and x.ndim == p.ndim and x.numel == p.numel
            and (x.flags & need) == need
            and (p.ndim < 2 or _same_dims(cnp.PyArray_DIMS(<cnp.ndarray>x.np),
                                          cnp.PyArray_DIMS(<cnp.ndarray>p.np), p.ndim)))


cdef inline bint _step_ok(const Arr *x) noexcept:
    # torch's step: one native float32 element, aligned and writeable.
    return x.tnum == cnp.NPY_FLOAT32 and x.numel == 1 and (x.flags & FLAGS_STEP) == FLAGS_STEP
