# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The checked entry points of Adafactor's kernel (csrc/optim_adafactor.c).

Why it exists: ``fo_adafactor_update_f32/_f64`` trust their caller (raw pointers, shapes taken
as given).  This module is that careful caller.  Before anything is written it proves that
every list has one entry per param, that each param's grad and state have its dtype (float32
or float64) and torch's shapes (``row_var``: the param's shape with the last dim 1, ``col_var``:
with the second-to-last dim 1, for params of two or more dims; ``variance``: the param's shape
otherwise), that everything is C-contiguous and aligned, that what is written is writeable and
overlaps nothing else of the call; then it fills one ``fo_adafactor_tensor`` struct per param
(by field name) and calls the kernel once per dtype (and group), without the GIL when the call
is big enough to be worth it.

Two entries, one gather (``StepCache._take``: a param's arrays checked from their C-level facts,
``_arrays.pxd``, the same facts and predicates as the elementwise glue's):

* ``step``: the functional's lists (Tensors or numpy arrays).  A check that fails is explained
  by ``_explain``, which walks the failing param's arrays in Python and raises the exact error
  (naming the list, the index, what was found and what was expected);
* ``group_steps``: the class's steady step, straight from ``param_groups`` and the optimizer's
  ``state`` at C level, every group gathered before any is written.  It declines (returns False,
  having written nothing) when the class must take its general path: a param without state (its
  first step), a setting that is not a plain number (a Tensor ``lr``), anything that the
  general path would refuse (it then raises the error).

Everything is re-read from the dicts and the arrays on every step, so any change between steps
(a new grad, a rebound or replaced param, loaded state) is seen.  What a ``StepCache`` keeps
between steps is only what follows from the arrays' addresses: its struct arrays (no allocation
in a steady step), the work buffer, and the byte ranges of the last call proven overlap-free --
a call over the same ranges, in the same order, needs no new proof (a sort of ~5 ranges per
param otherwise).

The kernel's column sums need a work buffer of ``fo_adafactor_work_size`` doubles: the cache
keeps one (``work``), replaced by a bigger one only when a param needs more.
"""
cimport cython
cimport numpy as cnp
import numpy as np
from cpython.dict cimport PyDict_GetItemWithError
from cpython.float cimport PyFloat_AsDouble, PyFloat_Check
from cpython.long cimport PyLong_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from libc.float cimport DBL_EPSILON, FLT_EPSILON
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy

from fastoptim._C._arrays cimport (
    FLAGS_READ, FLAGS_WRITE, Arr, _arr_of, _matches, _param_ok, _step_ok,
)
from fastoptim._C._tensor cimport Tensor
from fastoptim._C.kernels cimport (
    fo_adafactor_hyper, fo_adafactor_tensor_f32, fo_adafactor_tensor_f64,
    fo_adafactor_update_f32, fo_adafactor_update_f64, fo_adafactor_work_size,
)

cnp.import_array()

_NAMES = ("params", "grads", "row_vars", "col_vars", "variances", "state_steps")

cdef enum:
    # below this many elements in a call the kernels run in about a microsecond: keep the GIL
    NOGIL_MIN_ELEMS = 4096
    # spans per param at most: param, grad, step, and row_var + col_var or variance
    SPANS_PER = 5

cdef str _S_PARAMS = "params"
cdef str _S_LR = "lr"
cdef str _S_BETA2 = "beta2_decay"
cdef str _S_EPS = "eps"
cdef str _S_D = "d"
cdef str _S_WD = "weight_decay"
cdef str _S_MAXIMIZE = "maximize"
cdef str _S_FOREACH = "foreach"
cdef str _S_STEP = "step"
cdef str _S_ROW = "row_var"
cdef str _S_COL = "col_var"
cdef str _S_VAR = "variance"


cdef struct Span:
    # The bytes of one array of the call (no padding: spans are compared with memcmp).
    uintptr_t lo
    uintptr_t hi
    uintptr_t written


cdef struct GroupCall:
    # One group's settings and its params' slots in the cache's struct arrays.
    fo_adafactor_hyper h
    bint eps1_none                  # eps1 is the machine epsilon of the first param's dtype
    Py_ssize_t lo32, hi32, lo64, hi64


cdef int _span_cmp(const void *a, const void *b) noexcept nogil:
    cdef uintptr_t x = (<const Span *>a).lo, y = (<const Span *>b).lo
    return -1 if x < y else (1 if x > y else 0)


cdef inline bint _dims_but_one(const Arr *x, const Arr *p, int axis) noexcept:
    # x has p's dims except dim ``axis``, which is 1 (a row_var or col_var of a param of 2+ dims)
    cdef cnp.npy_intp *xd = cnp.PyArray_DIMS(<cnp.ndarray>x.np)
    cdef cnp.npy_intp *pd = cnp.PyArray_DIMS(<cnp.ndarray>p.np)
    cdef int d
    for d in range(p.ndim):
        if xd[d] != (1 if d == axis else pd[d]):
            return False
    return True


cdef inline bint _factor_ok(const Arr *x, const Arr *p, int axis) noexcept:
    return (x.tnum == p.tnum and x.ndim == p.ndim and (x.flags & FLAGS_WRITE) == FLAGS_WRITE
            and _dims_but_one(x, p, axis))


cdef inline bint _plain_number(PyObject *v) noexcept:
    # a float or an int (bool included): what the general path turns into the same double
    return v != NULL and (PyFloat_Check(<object>v) or PyLong_Check(<object>v))


cdef class StepCache:
    """The gather of one Adafactor call, kept between steps (see the module docstring): struct
    arrays, group records, the work buffer (``work``: float64 ndarray or None) and the byte
    ranges of the last call proven overlap-free."""
    cdef fo_adafactor_tensor_f32 *t32
    cdef fo_adafactor_tensor_f64 *t64
    cdef Py_ssize_t n32, n64, cap          # tensors per dtype, and room for each
    cdef Span *spans                       # this call's, in call order
    cdef Span *proven                      # the last call's proven overlap-free, in call order
    cdef Span *scratch                     # the sort's copy
    cdef Py_ssize_t nspans, nproven, scap, pcap
    cdef GroupCall *groups
    cdef Py_ssize_t ngroups, gcap
    cdef int64_t need                      # work doubles the call needs
    cdef int64_t total                     # elements of the call
    cdef public object work

    def __dealloc__(self):
        PyMem_Free(self.t32)
        PyMem_Free(self.t64)
        PyMem_Free(self.spans)
        PyMem_Free(self.proven)
        PyMem_Free(self.scratch)
        PyMem_Free(self.groups)

    def __reduce__(self):
        # never copied or pickled with its optimizer: a copy starts empty
        return (StepCache, ())

    cdef int _reset(self, Py_ssize_t n, Py_ssize_t ngroups) except -1:
        # Room for n more tensors per dtype and ngroups groups; nothing gathered.
        self.n32 = self.n64 = self.nspans = self.ngroups = 0
        self.need = 1
        self.total = 0
        return self._reserve(n, ngroups)

    cdef int _reserve(self, Py_ssize_t n, Py_ssize_t ngroups) except -1:
        # Room for n tensors beyond those gathered, and ngroups groups in all.
        cdef Py_ssize_t want = max(self.n32, self.n64) + n
        if want > self.cap or self.t32 == NULL:
            want = max(want, 2 * self.cap, 4)
            self._grow(<void **>&self.t32, self.n32 * sizeof(fo_adafactor_tensor_f32),
                       want * sizeof(fo_adafactor_tensor_f32))
            self._grow(<void **>&self.t64, self.n64 * sizeof(fo_adafactor_tensor_f64),
                       want * sizeof(fo_adafactor_tensor_f64))
            self.cap = want
        want = self.nspans + SPANS_PER * n
        if want > self.scap or self.spans == NULL:
            want = max(want, 2 * self.scap, SPANS_PER * 4)
            self._grow(<void **>&self.spans, self.nspans * sizeof(Span), want * sizeof(Span))
            PyMem_Free(self.scratch)
            self.scratch = NULL
            self._grow(<void **>&self.scratch, 0, want * sizeof(Span))
            self.scap = want
        if ngroups > self.gcap or self.groups == NULL:
            want = max(ngroups, 2 * self.gcap, 1)
            self._grow(<void **>&self.groups, self.ngroups * sizeof(GroupCall),
                       want * sizeof(GroupCall))
            self.gcap = want
        return 0

    cdef int _grow(self, void **ptr, size_t keep, size_t size) except -1:
        # *ptr replaced by a block of size bytes holding its first keep bytes
        cdef void *mem = PyMem_Malloc(size)
        if mem == NULL:
            raise MemoryError()
        if keep:
            memcpy(mem, ptr[0], keep)
        PyMem_Free(ptr[0])
        ptr[0] = mem
        return 0

    cdef inline void _span(self, const Arr *a, bint written, int64_t itemsize) noexcept:
        cdef Span *s = &self.spans[self.nspans]
        s.lo = <uintptr_t>a.data
        s.hi = s.lo + <uintptr_t>(a.numel * itemsize)
        s.written = written
        self.nspans += 1

    cdef bint _take(self, object po, object go, object ro, object co, object vo,
                    object so) noexcept:
        # Check one param's arrays and append its struct and spans (room reserved); False when
        # any check fails, and the gather is then abandoned (the caller explains or declines).
        cdef Arr p, g, r, s
        cdef int64_t rows, cols, batch, itemsize
        cdef cnp.npy_intp *pd
        cdef void *rp = NULL
        cdef void *cp = NULL
        cdef void *vp = NULL
        cdef fo_adafactor_tensor_f32 *t
        cdef fo_adafactor_tensor_f64 *u
        if not _arr_of(&p, po) or not _param_ok(&p) or p.numel == 0:
            return False
        if not _arr_of(&g, go) or not _matches(&g, &p, FLAGS_READ):
            return False
        if not _arr_of(&s, so) or not _step_ok(&s) or s.ndim != 0:
            return False
        itemsize = 4 if p.tnum == cnp.NPY_FLOAT32 else 8
        self._span(&p, True, itemsize)
        self._span(&g, False, itemsize)
        self._span(&s, True, 4)
        if p.ndim >= 2:
            if vo is not None:
                return False
            if not _arr_of(&r, ro) or not _factor_ok(&r, &p, p.ndim - 1):
                return False
            self._span(&r, True, itemsize)
            rp = r.data
            if not _arr_of(&r, co) or not _factor_ok(&r, &p, p.ndim - 2):
                return False
            self._span(&r, True, itemsize)
            cp = r.data
            pd = cnp.PyArray_DIMS(<cnp.ndarray>p.np)
            rows, cols = pd[p.ndim - 2], pd[p.ndim - 1]
            batch = p.numel // (rows * cols)
            self.need = max(self.need, fo_adafactor_work_size(p.numel, cols, 1))
        else:
            if ro is not None or co is not None:
                return False
            if not _arr_of(&r, vo) or not _matches(&r, &p, FLAGS_WRITE):
                return False
            self._span(&r, True, itemsize)
            vp = r.data
            batch, rows, cols = 1, 1, p.numel
            self.need = max(self.need, fo_adafactor_work_size(p.numel, cols, 0))
        self.total += p.numel
        if p.tnum == cnp.NPY_FLOAT32:
            t = &self.t32[self.n32]
            self.n32 += 1
            t.param, t.grad, t.step = <float *>p.data, <const float *>g.data, <float *>s.data
            t.row_var, t.col_var, t.variance = <float *>rp, <float *>cp, <float *>vp
            t.batch, t.rows, t.cols = batch, rows, cols
        else:
            u = &self.t64[self.n64]
            self.n64 += 1
            u.param, u.grad, u.step = <double *>p.data, <const double *>g.data, <float *>s.data
            u.row_var, u.col_var, u.variance = <double *>rp, <double *>cp, <double *>vp
            u.batch, u.rows, u.cols = batch, rows, cols
        return True

    cdef bint _overlap_free(self) noexcept:
        # Whether no written array of the call shares a byte with another array.  The spans
        # sorted by start, one sweep keeping the span that reaches furthest: a span starting
        # before its end overlaps it, and if neither is written, no written span can be among
        # the ones it overlaps (that one would have overlapped the furthest one first).
        cdef Py_ssize_t k, m = self.nspans
        cdef uintptr_t far = 0, far_written = 0
        cdef Span *s
        if m == self.nproven and memcmp(self.spans, self.proven, m * sizeof(Span)) == 0:
            return True
        memcpy(self.scratch, self.spans, m * sizeof(Span))
        qsort(self.scratch, m, sizeof(Span), _span_cmp)
        for k in range(m):
            s = &self.scratch[k]
            if s.lo < far and (s.written or far_written):
                return False
            if s.hi > far:
                far, far_written = s.hi, s.written
        if m > self.pcap:
            PyMem_Free(self.proven)
            self.proven = NULL
            self.nproven = self.pcap = 0
            self.proven = <Span *>PyMem_Malloc(m * sizeof(Span))
            if self.proven == NULL:
                return True         # proven all the same; only the memory of it is lost
            self.pcap = m
        memcpy(self.proven, self.spans, m * sizeof(Span))
        self.nproven = m
        return True

    cdef int _run(self) except -1:
        # The kernels of every gathered group, after the work buffer is big enough.
        cdef double *wp
        work = self.work
        if (not isinstance(work, np.ndarray) or work.dtype != np.float64
                or not work.flags.c_contiguous or not work.flags.writeable
                or work.size < self.need):
            work = self.work = np.empty(self.need, np.float64)
        wp = <double *>cnp.PyArray_DATA(<cnp.ndarray>work)
        if self.total >= NOGIL_MIN_ELEMS:
            with nogil:
                self._kernels(wp)
        else:
            self._kernels(wp)
        return 0

    cdef void _kernels(self, double *wp) noexcept nogil:
        cdef Py_ssize_t k
        cdef GroupCall *gc
        for k in range(self.ngroups):
            gc = &self.groups[k]
            if gc.hi32 > gc.lo32:
                fo_adafactor_update_f32(self.t32 + gc.lo32, gc.hi32 - gc.lo32, &gc.h, wp)
            if gc.hi64 > gc.lo64:
                fo_adafactor_update_f64(self.t64 + gc.lo64, gc.hi64 - gc.lo64, &gc.h, wp)

    cdef inline GroupCall *_open_group(self) noexcept:
        cdef GroupCall *gc = &self.groups[self.ngroups]
        self.ngroups += 1
        gc.lo32, gc.lo64 = self.n32, self.n64
        return gc

    cdef inline void _close_group(self, GroupCall *gc) noexcept:
        gc.hi32, gc.hi64 = self.n32, self.n64

    def _info(self):
        """(tensors gathered last, spans proven overlap-free) for tests."""
        return self.n32 + self.n64, self.nproven


# ---- the functional's lists ---------------------------------------------------------------------

cdef inline object _arr(x):
    """A fastoptim Tensor's array, or the object itself."""
    a = getattr(x, "_np", None)
    return x if a is None else a


cdef object _check(object x, str name, Py_ssize_t i, object dtype, tuple shape, bint written):
    """``x`` (an entry of list ``name``) as a C-contiguous ndarray of ``dtype`` and ``shape``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"adafactor: {name}[{i}] must be a fastoptim Tensor or numpy array, "
                        f"got {type(x).__name__}")
    if x.dtype != dtype or not x.dtype.isnative:
        raise TypeError(f"adafactor: {name}[{i}] has dtype {x.dtype}, expected {dtype}")
    if x.shape != shape:
        raise ValueError(f"adafactor: {name}[{i}] has shape {x.shape}, expected {shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"adafactor: {name}[{i}] must be C-contiguous")
    if not x.flags.aligned:
        raise ValueError(f"adafactor: {name}[{i}] is not aligned; expected an aligned array")
    if written and not x.flags.writeable:
        raise ValueError(f"adafactor: {name}[{i}] is read-only; expected a writeable array "
                         "(it is updated in place)")
    return x


@cython.wraparound(True)
cdef int _explain(Py_ssize_t i, list lists) except -1:
    """Raise the error of param ``i``, whose arrays ``StepCache._take`` refused."""
    params, grads, row_vars, col_vars, variances, state_steps = lists
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
    _check(_arr(grads[i]), "grads", i, dtype, shape, False)
    _check(_arr(state_steps[i]), "state_steps", i, np.dtype(np.float32), (), True)
    if len(shape) >= 2:
        _check(_arr(row_vars[i]), "row_vars", i, dtype, shape[:-1] + (1,), True)
        _check(_arr(col_vars[i]), "col_vars", i, dtype, shape[:-2] + (1, shape[-1]), True)
        if variances[i] is not None:
            raise ValueError(f"adafactor: variances[{i}] must be None for a param of "
                             f"{len(shape)} dims (it has row_var and col_var)")
    else:
        if row_vars[i] is not None or col_vars[i] is not None:
            raise ValueError(f"adafactor: row_vars[{i}] and col_vars[{i}] must be None for "
                             f"a param of {len(shape)} dims (it has variance)")
        _check(_arr(variances[i]), "variances", i, dtype, shape, True)
    raise AssertionError(f"adafactor: params[{i}]: unexplained validation failure")


cdef int _explain_overlap(list lists) except -1:
    """Raise the overlap error of a call ``StepCache._overlap_free`` refused: the first pair
    (by index, then list) of arrays sharing bytes where one of them is written."""
    spans = []
    for name, lst in zip(_NAMES, lists):
        for i, x in enumerate(lst):
            if x is None:
                continue
            a = _arr(x)
            if a.nbytes:
                start = <uintptr_t>cnp.PyArray_DATA(<cnp.ndarray>a)
                spans.append((start, start + <uintptr_t>a.nbytes, name != "grads", name, i))
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
    raise AssertionError("adafactor: unexplained overlap")


def step(params, grads, row_vars, col_vars, variances, state_steps, *, double lr,
         double beta2_decay, double eps1, double eps2, double d, double weight_decay,
         bint maximize, work=None, StepCache cache=None):
    """One Adafactor step over a group's lists (``eps1`` resolved, not None).  Entries are
    fastoptim Tensors or numpy arrays; ``row_vars``/``col_vars`` entries are None for params
    of fewer than two dims, ``variances`` entries None for the others; ``state_steps``: 0-dim
    float32 counters.  ``cache``: a ``StepCache`` kept by the caller (else a fresh one); its
    work buffer is ``work`` when given.  Returns the work buffer used (``work`` itself when big
    enough)."""
    cdef Py_ssize_t n = len(params), i
    cdef StepCache cc = StepCache() if cache is None else cache
    cdef GroupCall *gc
    cdef list lists = [params, grads, row_vars, col_vars, variances, state_steps]
    for k in range(6):
        lst = lists[k]
        if not isinstance(lst, (list, tuple)):
            raise TypeError(f"adafactor: {_NAMES[k]} must be a list, got {type(lst).__name__}")
        if len(lst) != n:
            raise ValueError(f"adafactor: {_NAMES[k]} has {len(lst)} entries but params has "
                             f"{n}")
    if work is not None:
        cc.work = work
    cc._reset(n, 1)
    gc = cc._open_group()
    gc.eps1_none = False
    gc.h.lr = lr
    gc.h.beta2_decay = beta2_decay
    gc.h.eps1 = eps1
    gc.h.eps2 = eps2
    gc.h.d = d
    gc.h.weight_decay = weight_decay
    gc.h.maximize = maximize
    for i in range(n):
        if not cc._take(params[i], grads[i], row_vars[i], col_vars[i], variances[i],
                        state_steps[i]):
            _explain(i, lists)
    cc._close_group(gc)
    if not cc._overlap_free():
        _explain_overlap(lists)
    cc._run()
    return cc.work


# ---- the class's steady step ---------------------------------------------------------------------

cdef inline PyObject *_get(object d, str key) except? NULL:
    # d[key] (borrowed) or NULL; d is a dict
    return PyDict_GetItemWithError(d, key)


cdef bint _settings(GroupCall *gc, object group) except -1:
    # The group's settings as the general path reads them (Adafactor.step), when they are plain
    # numbers; False (decline) otherwise.  eps1 None is left for the first param to resolve.
    cdef PyObject *v
    cdef PyObject *e1
    cdef PyObject *e2
    v = _get(group, _S_LR)
    if not _plain_number(v):
        return False
    gc.h.lr = PyFloat_AsDouble(<object>v)
    v = _get(group, _S_BETA2)
    if not _plain_number(v):
        return False
    gc.h.beta2_decay = PyFloat_AsDouble(<object>v)
    v = _get(group, _S_D)
    if not _plain_number(v):
        return False
    gc.h.d = PyFloat_AsDouble(<object>v)
    v = _get(group, _S_WD)
    if not _plain_number(v):
        return False
    gc.h.weight_decay = PyFloat_AsDouble(<object>v)
    v = _get(group, _S_MAXIMIZE)
    if v == NULL or (<object>v is not True and <object>v is not False):
        return False
    gc.h.maximize = <object>v is True
    if _get(group, _S_FOREACH) == NULL:
        return False
    v = _get(group, _S_EPS)
    if v == NULL or type(<object>v) is not tuple or len(<tuple>v) != 2:
        return False
    e1 = <PyObject *>(<tuple>v)[0]
    e2 = <PyObject *>(<tuple>v)[1]
    if not _plain_number(e2) or (<object>e1 is not None and not _plain_number(e1)):
        return False
    gc.h.eps2 = PyFloat_AsDouble(<object>e2)
    gc.eps1_none = <object>e1 is None
    gc.h.eps1 = 0.0 if gc.eps1_none else PyFloat_AsDouble(<object>e1)
    return True


cdef Py_ssize_t _steady = 0      # steps group_steps took (for tests)


def _steady_steps():
    """How many steps ``group_steps`` has taken (rather than declined), for tests."""
    return _steady


def group_steps(object groups, object state, StepCache cache):
    """The class's steady step (``Adafactor.step``): every group's params with a grad, their
    state read from ``state`` (the optimizer's), gathered and checked, then updated, one kernel
    call per group and dtype.  Returns False, having written nothing, when the general path
    must run instead (see the module docstring); True when done."""
    cdef Py_ssize_t gi, i, n
    cdef PyObject *v
    cdef PyObject *st
    cdef PyObject *x
    cdef object group, params, po, so, ro, co, vo
    cdef Tensor p
    cdef GroupCall *gc
    cdef bint first
    global _steady
    if type(groups) is not list or not isinstance(state, dict):  # (state: a defaultdict, read
        return False                                             # without inserting)
    cache._reset(0, len(groups))
    for gi in range(len(groups)):
        group = groups[gi]
        if type(group) is not dict:
            return False
        v = _get(group, _S_PARAMS)
        if v == NULL or type(<object>v) is not list:
            return False
        params = <list>v
        n = len(params)
        cache._reserve(n, len(groups))
        gc = cache._open_group()
        if not _settings(gc, group):
            return False
        first = True
        for i in range(n):
            po = params[i]
            if not isinstance(po, Tensor):
                return False
            p = <Tensor>po
            if p._grad is None:
                continue
            st = PyDict_GetItemWithError(state, po)
            if st == NULL or type(<object>st) is not dict or len(<dict>st) == 0:
                return False         # its first step: the general path makes its state
            x = _get(<object>st, _S_STEP)
            if x == NULL:
                return False
            so = <object>x
            x = _get(<object>st, _S_ROW)
            ro = None if x == NULL else <object>x
            x = _get(<object>st, _S_COL)
            co = None if x == NULL else <object>x
            x = _get(<object>st, _S_VAR)
            vo = None if x == NULL else <object>x
            if first and gc.eps1_none:
                # torch: eps1 None is the machine epsilon of the group's first param's dtype
                gc.h.eps1 = FLT_EPSILON if p._tnum == cnp.NPY_FLOAT32 else DBL_EPSILON
            first = False
            if not cache._take(p, p._grad, ro, co, vo, so):
                return False
        cache._close_group(gc)
    if not cache._overlap_free():
        return False
    cache._run()
    _steady += 1
    return True
