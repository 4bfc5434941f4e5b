# cython: language_level=3, boundscheck=False, wraparound=False
"""Python entry points of the multi-tensor optimizer kernels (csrc/optim_*.c).

Why it exists: the C kernels trust their caller completely (no checks, raw pointer arrays).  This
module is that careful caller.  Its ``step`` takes Python lists of numpy arrays for one
param group and proves, before touching any memory, that the call is safe:
list lengths, dtypes (float32/float64), shapes, C-contiguity, writeability, and that no array that
is written overlaps another array of the call.  It then builds the pointer arrays and makes one C
call per dtype present (a group may mix float32 and float64 params).  A validation failure raises
before anything is modified, so an update is never half-applied.

The hot path uses only C-level numpy access (PyArray_DATA, flags, dims), or for a fastoptim
Tensor the facts it caches about its array (_tensor.pxd): a group of a few tiny params costs a
fraction of a microsecond here.  Pointer arrays live on the stack for small groups and in one heap
block otherwise.  A steady-state step over many tensors that will run on several threads opens
its parallel region before collecting the group (team mode, csrc/optim_team.c), so that the other
threads wake while this thread collects; nothing is written before the collection succeeds.

Two entries serve every optimizer: ``step`` (the functionals' lists) and ``group_step`` (the
classes' steady-state shortcut: a step straight from a param group and the optimizer state, with
the same checks, declining when the class must take the general path).  Both take a ``Plan``,
made once per optimizer description (fastoptim/optim/_descriptions.py, by _step.py): the
kernel, which settings create which state list, the state keys and list names, the step
counters.  One routine, ``_gather``, collects and validates every call, from the lists
(raising the exact error) or from a param group (declining).  Hyperparameters reach C by name:
``Call`` holds the kernel's ``fo_<kernel>_hyper`` struct (fastoptim.h), filled field by field
by that kernel's filler.  The fillers and runners are generated from the rows at build time
(``include "_optim_kernels.pxi"``, written by setup.py from fastoptim/optim/_kernel_glue.py);
the only per-optimizer code written here is the tests of the per-step scalars torch divides
by.
State is arrays like the params, or per-tensor scalars (a 0-dim float32 or float64 tensor per
param: NAdam's mu_product), whose dtype is recorded per tensor; a batch mixing both scalar
dtypes is ordered float32-first after the checks and runs as two kernel calls.

The optimizer classes' other helpers live here too, because they run over every param or group
on every step: ``_collect`` (the general path's collection loop) and ``_batch_groups``
(merging runs of equal param groups).
"""
cimport numpy as cnp
import sys

import numpy as np
from collections import Counter as _Counter
from cpython.dict cimport PyDict_GetItem, PyDict_GetItemWithError
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport Py_EQ, PyObject, PyObject_RichCompareBool
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.math cimport M_PI, cos, fabs, pow
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memset

from fastoptim._C._arrays cimport (
    FLAGS_READ, FLAGS_STEP, FLAGS_WRITE, Arr, _arr_of, _arr_of_tensor, _matches, _param_ok,
    _step_ok,
)
from fastoptim._C._tensor cimport Tensor, _adopt

cnp.import_array()

cdef extern from *:
    """
    #ifdef FO_HAVE_OPENMP
    #include <omp.h>
    static void fo_optim_set_threads(int n) { omp_set_num_threads(n); }
    static int fo_optim_get_threads(void) { return omp_get_max_threads(); }
    #else
    static void fo_optim_set_threads(int n) { (void)n; }
    static int fo_optim_get_threads(void) { return 1; }
    #endif
    """
    void fo_optim_set_threads(int n) nogil
    int fo_optim_get_threads() nogil


cdef extern from "common.h":
    int FO_OMP_MIN_ELEMS


cdef extern from "optim_team.h":
    int fo_team_run(int (*prepare)(void *) noexcept, void (*run)(void *, int) noexcept nogil,
                    void *ctx) noexcept


cdef extern from *:
    """
    /* A dict's version tag: a value CPython (3.9 to 3.13, with the GIL) gives a dict anew on
     * every change of its contents, unique across the interpreter's dicts (PEP 509).  Two equal
     * readings of one live dict mean it was not changed in between.  Where the tag does not
     * exist or is not kept so (3.14 on, free-threaded builds), FO_DICT_VERSION is 0 and callers
     * look the values up instead. */
    #if PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
    #define FO_DICT_VERSION 1
    #if defined(__GNUC__)
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    #endif
    static inline uint64_t fo_dict_version(PyObject *d) { return ((PyDictObject *)d)->ma_version_tag; }
    #if defined(__GNUC__)
    #pragma GCC diagnostic pop
    #endif
    #else
    #define FO_DICT_VERSION 0
    static inline uint64_t fo_dict_version(PyObject *d) { (void)d; return 0; }
    #endif
    """
    bint FO_DICT_VERSION
    uint64_t fo_dict_version(PyObject *d) noexcept


cdef extern from *:
    """
    /* Torch reads without Python attribute lookup (TorchSteady).  For an object whose type is
     * exactly one noted by fo_treads_note (torch.Tensor, torch.nn.Parameter), with the type's
     * version tag (CPython gives a type a new one on any change of it or of a base) equal to
     * the one under which these were verified: tp_getattro is PyObject_GenericGetAttr and
     * each name resolves through the MRO to torch._C.TensorBase's own descriptor.  Then
     * reading a getset (a data descriptor: the instance dict is not consulted) is calling its
     * get; calling a method is calling its C function with its convention, unless the
     * instance dict holds the name (it would shadow the method).  Anything else takes
     * Python's attribute access, so the result, and any exception, is what it gives.  Only
     * where these CPython internals are as read here (3.9 to 3.13, with the GIL); elsewhere
     * always Python's attribute access. */
    #if PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
    #define FO_TR_FAST 1
    #else
    #define FO_TR_FAST 0
    #endif
    #define FO_TR_NGET 5
    #define FO_TR_NMETH 3
    #define FO_TR_NTYPES 2
    typedef struct {
        PyTypeObject *type;             /* held */
        unsigned int seen;              /* type's version tag when last verified; 0: not yet */
        int ok;                         /* whether it held then */
        PyGetSetDef *get[FO_TR_NGET];
        PyMethodDef *meth[FO_TR_NMETH];
    } fo_tr_type;
    typedef struct {
        PyObject *base;                 /* torch._C.TensorBase (held) */
        PyObject *names[FO_TR_NGET + FO_TR_NMETH];   /* interned (held) */
        PyObject *empty;                /* () (held) */
        fo_tr_type types[FO_TR_NTYPES];
    } fo_treads;
    static fo_treads fo_tr;
    static const char *fo_tr_names[FO_TR_NGET + FO_TR_NMETH] = {
        "grad", "shape", "dtype", "layout", "is_cpu",
        "data_ptr", "is_neg", "is_contiguous"};

    /* Verify e's type (see above): e->ok says whether it holds, e->seen under which tag. */
    static void fo_tr_verify(fo_tr_type *e) {
        PyTypeObject *t = e->type;
        PyObject *bdict = ((PyTypeObject *)fo_tr.base)->tp_dict;
        int k;
        e->ok = 0;
        e->seen = 0;
        if (!FO_TR_FAST) return;
        if (t->tp_getattro != PyObject_GenericGetAttr) return;
        for (k = 0; k < FO_TR_NGET + FO_TR_NMETH; k++) {
            PyObject *d = _PyType_Lookup(t, fo_tr.names[k]);      /* borrowed, no error */
            PyObject *own = PyDict_GetItemWithError(bdict, fo_tr.names[k]);
            if (own == NULL) { PyErr_Clear(); return; }
            if (d == NULL || d != own
                    || ((PyDescrObject *)d)->d_type != (PyTypeObject *)fo_tr.base) return;
            if (k < FO_TR_NGET) {
                PyGetSetDef *gs;
                if (!Py_IS_TYPE(d, &PyGetSetDescr_Type)) return;
                gs = ((PyGetSetDescrObject *)d)->d_getset;
                if (gs->get == NULL) return;
                e->get[k] = gs;
            } else {
                PyMethodDef *m;
                int f;
                if (!Py_IS_TYPE(d, &PyMethodDescr_Type)) return;
                m = ((PyMethodDescrObject *)d)->d_method;
                f = m->ml_flags & ~METH_COEXIST;
                if (f != METH_NOARGS && f != (METH_VARARGS | METH_KEYWORDS)
                        && f != METH_FASTCALL && f != (METH_FASTCALL | METH_KEYWORDS)) return;
                e->meth[k - FO_TR_NGET] = m;
            }
        }
        e->ok = 1;
    }

    static void fo_tr_verify_tagged(fo_tr_type *e) {
        fo_tr_verify(e);
        /* _PyType_Lookup assigned a tag if it could; without one nothing is kept */
        if (e->type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) e->seen = e->type->tp_version_tag;
        else e->ok = 0;
    }

    /* Note the types (at record time); -1 with an exception on failure. */
    static int fo_treads_note(PyObject *base, PyObject *t0, PyObject *t1) {
        PyObject *ts[FO_TR_NTYPES];
        int k;
        ts[0] = t0; ts[1] = t1;
        if (!PyType_Check(base) || !PyType_Check(t0) || !PyType_Check(t1)) {
            PyErr_SetString(PyExc_TypeError, "fo_treads_note: types expected");
            return -1;
        }
        if (fo_tr.empty == NULL) {
            for (k = 0; k < FO_TR_NGET + FO_TR_NMETH; k++) {
                fo_tr.names[k] = PyUnicode_InternFromString(fo_tr_names[k]);
                if (fo_tr.names[k] == NULL) return -1;
            }
            fo_tr.empty = PyTuple_New(0);
            if (fo_tr.empty == NULL) return -1;
        }
        if (fo_tr.base != base) {
            Py_INCREF(base);
            Py_XSETREF(fo_tr.base, base);
            for (k = 0; k < FO_TR_NTYPES; k++) fo_tr.types[k].seen = 0;
        }
        for (k = 0; k < FO_TR_NTYPES; k++) {
            fo_tr_type *e = &fo_tr.types[k];
            if (e->type != (PyTypeObject *)ts[k]) {
                Py_INCREF(ts[k]);
                Py_XSETREF(e->type, (PyTypeObject *)ts[k]);
                e->seen = 0;
            }
            if (e->seen == 0 || e->seen != e->type->tp_version_tag) fo_tr_verify_tagged(e);
        }
        return 0;
    }

    /* o's verified entry, or NULL (Python's attribute access then).  A type changed since it
     * was verified (another tag) is verified again once per change. */
    static inline fo_tr_type *fo_tr_entry(PyObject *o) {
        PyTypeObject *t = Py_TYPE(o);
        int k;
        for (k = 0; k < FO_TR_NTYPES; k++) {
            fo_tr_type *e = &fo_tr.types[k];
            if (e->type == t) {
                if (e->seen == 0 || e->seen != t->tp_version_tag) fo_tr_verify_tagged(e);
                return e->ok ? e : NULL;
            }
        }
        return NULL;
    }

    /* o.<names[k]> (k a getset), a new reference or NULL with an exception. */
    static inline PyObject *fo_tr_get(PyObject *o, int k) {
        fo_tr_type *e = fo_tr_entry(o);
        if (e != NULL) return e->get[k]->get(o, e->get[k]->closure);
        return PyObject_GetAttr(o, fo_tr.names[k]);
    }

    /* o.<names[k]>() (k a method). */
    static inline PyObject *fo_tr_call(PyObject *o, int k) {
        fo_tr_type *e = fo_tr_entry(o);
    #if FO_TR_FAST
        if (e != NULL) {
            PyMethodDef *m = e->meth[k - FO_TR_NGET];
            PyObject **dp = _PyObject_GetDictPtr(o);
            int f = m->ml_flags & ~METH_COEXIST;
            int shadowed = 0;
            if (dp != NULL && *dp != NULL && PyDict_GET_SIZE(*dp) != 0) {
                shadowed = PyDict_GetItemWithError(*dp, fo_tr.names[k]) != NULL;
                if (!shadowed && PyErr_Occurred()) return NULL;
            }
            if (!shadowed) {
                if (f == METH_NOARGS) return ((PyCFunction)(void (*)(void))m->ml_meth)(o, NULL);
                if (f == METH_FASTCALL)
                    return ((_PyCFunctionFast)(void (*)(void))m->ml_meth)(o, NULL, 0);
                if (f == (METH_FASTCALL | METH_KEYWORDS))
                    return ((_PyCFunctionFastWithKeywords)(void (*)(void))m->ml_meth)(
                        o, NULL, 0, NULL);
                return ((PyCFunctionWithKeywords)(void (*)(void))m->ml_meth)(o, fo_tr.empty, NULL);
            }
        }
    #else
        (void)e;
    #endif
        return PyObject_CallMethodNoArgs(o, fo_tr.names[k]);
    }
    """
    int fo_treads_note(object base, object t0, object t1) except -1
    object fo_tr_get(object o, int k)
    object fo_tr_call(object o, int k)
    enum:
        FO_TR_GRAD "0"
        FO_TR_SHAPE "1"
        FO_TR_DTYPE "2"
        FO_TR_LAYOUT "3"
        FO_TR_IS_CPU "4"
        FO_TR_DATA_PTR "5"
        FO_TR_IS_NEG "6"
        FO_TR_IS_CONTIGUOUS "7"


cdef extern from "Python.h":
    ctypedef struct PyThreadState:
        pass
    PyThreadState *PyEval_SaveThread() noexcept
    void PyEval_RestoreThread(PyThreadState *) noexcept
    PyObject *_list_item "PyList_GET_ITEM"(object list, Py_ssize_t i) noexcept
    PyObject *_list_item_t "PyTuple_GET_ITEM"(object t, Py_ssize_t i) noexcept


cdef enum:
    # params, grads and at most three state lists (Adam with amsgrad)
    MAX_LISTS = 5
    # groups up to this many tensors keep their pointer arrays on the stack
    STACK_TENSORS = 16
    # below this many elements in total the kernel runs in well under a microsecond, less than
    # dropping and re-taking the GIL costs, so the GIL is kept
    NOGIL_MIN_ELEMS = 4096
    # up to this many spans an insertion sort beats everything else and nothing is cached
    SMALL_SPANS = 32
    # team mode (fo_team_run) from this many tensors on: waking the other threads during the
    # collection gains what the collection costs (~50 ns a tensor against a wake-up of tens of
    # microseconds), and a few tensors gain nothing worth a waiting thread
    TEAM_MIN_TENSORS = 64
    # the overlap check's radix sort: digit width and bucket count
    RADIX_BITS = 11
    RADIX = 1 << RADIX_BITS
    # the cache of calls already proven overlap-free: entries, and the arrays they cover in all
    # (a key costs 8 bytes per array plus 8 per tensor: at most 16 MiB in all)
    CACHE_SLOTS = 8
    CACHE_MAX_ARRAYS = 1 << 20
    # what a StepCache records per tensor: its state values (at most MAX_LISTS - 2), its step
    VALS_PER = MAX_LISTS - 1


cdef struct Batch:
    # The pointer arrays of the tensors of one dtype, in call order.
    Py_ssize_t n
    void **arr[MAX_LISTS]
    float **steps
    int64_t *numels
    Py_ssize_t *index  # each tensor's index in the call (for messages)
    unsigned char *is_new
    unsigned char *sf64  # each tensor's per-tensor scalar state is float64 (else float32)
    Py_ssize_t nsf64   # how many tensors' scalars are float64 (after _gather: the last ones)
    int64_t total


cdef struct Span:
    # The byte range of one array, for the overlap check.
    uintptr_t lo
    uintptr_t hi
    int list_id        # index into the names tuple; nlists means the steps list
    int shareable      # grads may overlap each other (they are only read)
    Py_ssize_t index


cdef struct Work:
    Batch b32
    Batch b64
    int nlists         # params, grads, states: the lists of arr[] in use
    bint has_steps
    unsigned int scalar_lists  # bit k: list k holds per-tensor scalars (NAdam's mu_product)
    Span *spans        # in call order; built only when the overlap check must run
    uint64_t *keys     # 2 * capacity of spans: the radix sort's keys and its scratch
    Py_ssize_t nspans
    void *heap
    void *stack_ptrs[2 * (MAX_LISTS + 1) * STACK_TENSORS]
    int64_t stack_numels[2 * STACK_TENSORS]
    Py_ssize_t stack_index[2 * STACK_TENSORS]
    unsigned char stack_new[2 * STACK_TENSORS]
    unsigned char stack_sf64[2 * STACK_TENSORS]
    Span stack_spans[(MAX_LISTS + 1) * STACK_TENSORS]
    uint64_t stack_keys[2 * (MAX_LISTS + 1) * STACK_TENSORS]


cdef int _work_init(Work *w, Py_ssize_t n, int nlists) except -1:
    cdef char *mem
    cdef void **ptrs
    cdef int64_t *numels
    cdef Py_ssize_t *index
    cdef unsigned char *is_new
    cdef unsigned char *sf64
    cdef int k
    w.heap = NULL
    w.nspans = 0
    w.nlists = nlists
    w.has_steps = False
    w.scalar_lists = 0
    if n <= STACK_TENSORS:
        ptrs, numels, is_new, w.spans = w.stack_ptrs, w.stack_numels, w.stack_new, w.stack_spans
        w.keys, index, sf64 = w.stack_keys, w.stack_index, w.stack_sf64
    else:
        mem = <char *>PyMem_Malloc(
            2 * (MAX_LISTS + 1) * n * sizeof(void *) + 2 * n * sizeof(int64_t)
            + 2 * n * sizeof(Py_ssize_t) + 2 * (MAX_LISTS + 1) * n * sizeof(uint64_t)
            + (MAX_LISTS + 1) * n * sizeof(Span) + 4 * n)
        if mem == NULL:
            raise MemoryError()
        w.heap = mem
        ptrs = <void **>mem
        mem += 2 * (MAX_LISTS + 1) * n * sizeof(void *)
        numels = <int64_t *>mem
        mem += 2 * n * sizeof(int64_t)
        index = <Py_ssize_t *>mem
        mem += 2 * n * sizeof(Py_ssize_t)
        w.keys = <uint64_t *>mem
        mem += 2 * (MAX_LISTS + 1) * n * sizeof(uint64_t)
        w.spans = <Span *>mem
        mem += (MAX_LISTS + 1) * n * sizeof(Span)
        is_new = <unsigned char *>mem
        sf64 = is_new + 2 * n
    for k in range(MAX_LISTS):
        w.b32.arr[k] = ptrs + k * n
        w.b64.arr[k] = ptrs + (MAX_LISTS + 1 + k) * n
    w.b32.steps = <float **>(ptrs + MAX_LISTS * n)
    w.b64.steps = <float **>(ptrs + (2 * MAX_LISTS + 1) * n)
    w.b32.numels, w.b64.numels = numels, numels + n
    w.b32.index, w.b64.index = index, index + n
    w.b32.is_new, w.b64.is_new = is_new, is_new + n
    w.b32.sf64, w.b64.sf64 = sf64, sf64 + n
    w.b32.n = w.b64.n = 0
    w.b32.nsf64 = w.b64.nsf64 = 0
    w.b32.total = w.b64.total = 0
    return 0


cdef inline void _work_free(Work *w) noexcept:
    if w.heap != NULL:
        PyMem_Free(w.heap)
        w.heap = NULL


# ---- error messages (cold path: built only when something is wrong) ------------------------

cdef object _arg(tuple names, int list_id, Py_ssize_t i):
    return f"{names[list_id]}[{i}]"


cdef str _dtype_str(object x):
    # A byte-swapped float32 prints as "float32" too; show its byte order then.
    return str(x.dtype) if x.dtype.isnative else f"{x.dtype} ({x.dtype.str}, byte-swapped)"


cdef int _fail_type(str op, tuple names, int list_id, Py_ssize_t i, object x) except -1:
    raise TypeError(f"{op}: {_arg(names, list_id, i)} must be a numpy.ndarray, got "
                    f"{type(x).__name__}")


cdef int _fail_array(str op, tuple names, int list_id, Py_ssize_t i, object x, object p,
                     bint need_write) except -1:
    # Find the first property that is wrong and say what was expected instead.
    name = _arg(names, list_id, i)
    if list_id == 0:
        if x.dtype.type not in (np.float32, np.float64) or not x.dtype.isnative:
            raise TypeError(f"{op}: {name} has dtype {_dtype_str(x)}; expected float32 or "
                            "float64")
    else:
        if x.dtype != p.dtype or not x.dtype.isnative:
            raise TypeError(f"{op}: {name} has dtype {_dtype_str(x)}; expected {p.dtype} (the "
                            f"dtype of {names[0]}[{i}])")
        if x.shape != p.shape:
            raise ValueError(f"{op}: {name} has shape {x.shape}; expected {p.shape} "
                             f"(the shape of {names[0]}[{i}])")
    if not x.flags.c_contiguous:
        raise ValueError(f"{op}: {name} is not C-contiguous (shape {x.shape}, strides "
                         f"{x.strides}); expected a C-contiguous array")
    if not x.flags.aligned:
        raise ValueError(f"{op}: {name} is not aligned; expected an aligned array")
    if need_write and not x.flags.writeable:
        raise ValueError(f"{op}: {name} is read-only; expected a writeable array (it is updated "
                         "in place)")
    raise AssertionError(f"{op}: {name}: unexplained validation failure")


cdef int _fail_step(str op, str steps_name, Py_ssize_t i, object x) except -1:
    if not isinstance(x, cnp.ndarray):
        raise TypeError(f"{op}: {steps_name}[{i}] must be a numpy.ndarray (a float32 array with "
                        f"one element: torch's 0-dim step tensor), got {type(x).__name__}")
    if x.dtype != np.float32 or x.size != 1 or not x.dtype.isnative:
        raise TypeError(f"{op}: {steps_name}[{i}] has dtype {_dtype_str(x)} and shape {x.shape}; "
                        "expected a float32 array with one element (torch's 0-dim step tensor)")
    if not x.flags.writeable:
        raise ValueError(f"{op}: {steps_name}[{i}] is read-only; expected a writeable array (the "
                         "step count is incremented in place)")
    raise ValueError(f"{op}: {steps_name}[{i}] is not aligned; expected an aligned array")


cdef int _fail_scalar(str op, tuple names, int list_id, Py_ssize_t i, object x,
                      int first_id) except -1:
    # A per-tensor scalar state (a 0-dim tensor: NAdam's mu_product, ASGD's eta and mu).
    name = _arg(names, list_id, i)
    if not isinstance(x, cnp.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray (a float32 or float64 array with "
                        f"one element: torch's 0-dim state tensor), got {type(x).__name__}")
    if (x.dtype.type not in (np.float32, np.float64) or x.size != 1
            or not x.dtype.isnative):
        raise TypeError(f"{op}: {name} has dtype {_dtype_str(x)} and shape {x.shape}; expected "
                        "a float32 or float64 array with one element (torch's 0-dim state "
                        "tensor)")
    if not x.flags.writeable:
        raise ValueError(f"{op}: {name} is read-only; expected a writeable array (it is updated "
                         "in place)")
    if not x.flags.aligned:
        raise ValueError(f"{op}: {name} is not aligned; expected an aligned array")
    raise TypeError(f"{op}: {name} has dtype {x.dtype}; expected the dtype of "
                    f"{_arg(names, first_id, i)} (one tensor's scalars share a dtype)")


cdef int _fail_len(str op, str name, Py_ssize_t got, Py_ssize_t n, str params_name) except -1:
    raise ValueError(f"{op}: len({name}) is {got}; expected {n} (= len({params_name}))")


cdef int _fail_overlap(str op, tuple names, str steps_name, int nlists, Span *a,
                       Span *b) except -1:
    na = steps_name if a.list_id == nlists else names[a.list_id]
    nb = steps_name if b.list_id == nlists else names[b.list_id]
    raise ValueError(f"{op}: {na}[{a.index}] and {nb}[{b.index}] overlap in memory; every "
                     "array that is updated in place must have its own storage")


# ---- validation and pointer gathering ------------------------------------------------------

cdef int _span_cmp(const void *a, const void *b) noexcept nogil:
    cdef uintptr_t x = (<const Span *>a).lo, y = (<const Span *>b).lo
    return -1 if x < y else (1 if x > y else 0)


cdef inline void _insertion_sort(Span *s, Py_ssize_t m) noexcept:
    cdef Py_ssize_t k, j
    cdef Span tmp
    for k in range(1, m):
        tmp = s[k]
        j = k - 1
        while j >= 0 and s[j].lo > tmp.lo:
            s[j + 1] = s[j]
            j -= 1
        s[j + 1] = tmp


cdef inline list _as_list(object x, str op, str name):
    if type(x) is list:
        return <list>x
    if isinstance(x, (list, tuple)):
        return list(x)
    raise TypeError(f"{op}: {name} must be a list of numpy arrays, got {type(x).__name__}")


cdef inline void _add_span(Work *w, void *data, uintptr_t nbytes, int list_id, Py_ssize_t i,
                           int shareable) noexcept:
    cdef Span *s
    cdef uintptr_t lo = <uintptr_t>data
    if nbytes == 0:
        return
    s = &w.spans[w.nspans]
    w.nspans += 1
    s.lo, s.hi, s.list_id, s.index, s.shareable = lo, lo + nbytes, list_id, i, shareable


cdef inline int _scalar_kind(const Arr *x) noexcept:
    # A per-tensor scalar state: one native float32 (0) or float64 (1) element, aligned and
    # writeable; -1 for anything else.
    if x.numel != 1 or (x.flags & FLAGS_STEP) != FLAGS_STEP:
        return -1
    return 0 if x.tnum == cnp.NPY_FLOAT32 else (1 if x.tnum == cnp.NPY_FLOAT64 else -1)


cdef inline bint _take_scalar(Batch *b, const Arr *x, bint first) noexcept:
    # Record a validated-looking scalar of the tensor in slot b.n: its dtype must be float32 or
    # float64, the same for every scalar of the tensor.  False when it is not.
    cdef int kind = _scalar_kind(x)
    if kind < 0:
        return False
    if first:
        b.sf64[b.n] = <unsigned char>kind
        b.nsf64 += kind
        return True
    return b.sf64[b.n] == kind


cdef inline Batch *_add_param(Work *w, const Arr *p, Py_ssize_t i) noexcept:
    # Append a validated param to its dtype's batch (slot b.n, not yet counted).
    cdef Batch *b = &w.b32 if p.tnum == cnp.NPY_FLOAT32 else &w.b64
    b.arr[0][b.n] = p.data
    b.numels[b.n] = p.numel
    b.index[b.n] = i
    b.total += p.numel
    return b


cdef inline int _bit_length(uint64_t x) noexcept nogil:
    cdef int k = 0
    while x:
        x >>= 1
        k += 1
    return k


cdef uint64_t *_radix_sort(uint64_t *a, uint64_t *tmp, Py_ssize_t m, int shift,
                           int nbits) noexcept nogil:
    # LSD radix sort of a[0:m] on bits [shift, shift + nbits), stable, O(m) per digit; the bits
    # below shift ride along.  A digit that is the same in every key is skipped (addresses of
    # one heap share their high bits).  Returns whichever of a and tmp holds the result.
    cdef uint32_t cnt[RADIX]
    cdef uint32_t total, c
    cdef uint64_t *t
    cdef Py_ssize_t k
    cdef int d, sh = shift
    while sh < shift + nbits:
        memset(cnt, 0, sizeof(cnt))
        for k in range(m):
            cnt[(a[k] >> sh) & (RADIX - 1)] += 1
        if cnt[(a[0] >> sh) & (RADIX - 1)] != m:
            total = 0
            for d in range(RADIX):
                c = cnt[d]
                cnt[d] = total
                total += c
            for k in range(m):
                d = (a[k] >> sh) & (RADIX - 1)
                tmp[cnt[d]] = a[k]
                cnt[d] += 1
            t = a
            a = tmp
            tmp = t
        sh += RADIX_BITS
    return a


cdef uint64_t *_sorted_order(Work *w, uint64_t *mask) noexcept:
    # The spans' indices in order of start address, as keys whose low bits (under *mask) are the
    # index: ((lo - min lo) << ibits) | index, radix-sorted on the address bits only.  Spans stay
    # in call order (the cache compares them so).  When the keys cannot hold an address range
    # and an index in 64 bits (not seen on 64-bit Linux: user addresses span < 2**47), the spans
    # are sorted in place instead and the identity order returned, with *mask = all ones.
    cdef Span *s = w.spans
    cdef Py_ssize_t k, m = w.nspans
    cdef uint64_t *keys = w.keys
    cdef uintptr_t lo_min = s[0].lo, lo_max = s[0].lo
    cdef int ibits, abits
    for k in range(1, m):
        if s[k].lo < lo_min:
            lo_min = s[k].lo
        if s[k].lo > lo_max:
            lo_max = s[k].lo
    ibits = _bit_length(<uint64_t>(m - 1))
    abits = _bit_length(<uint64_t>(lo_max - lo_min))
    if ibits + abits > 64 or m > 0x7fffffff:
        if m <= SMALL_SPANS:
            _insertion_sort(s, m)
        else:
            qsort(s, m, sizeof(Span), _span_cmp)
        for k in range(m):
            keys[k] = <uint64_t>k
        mask[0] = ~(<uint64_t>0)
        return keys
    for k in range(m):
        keys[k] = ((<uint64_t>(s[k].lo - lo_min)) << ibits) | <uint64_t>k
    mask[0] = ((<uint64_t>1) << ibits) - 1
    if m <= SMALL_SPANS:    # a few tiny params: no histograms to clear
        _insertion_sort_u64(keys, m)
        return keys
    return _radix_sort(keys, keys + m, m, ibits, abits)


cdef inline void _insertion_sort_u64(uint64_t *a, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t k, j
    cdef uint64_t tmp
    for k in range(1, m):
        tmp = a[k]
        j = k - 1
        while j >= 0 and a[j] > tmp:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = tmp


# A cache of calls already proven overlap-free.  An optimizer calls with the same arrays every
# step, so the sort is paid once per param group.  The check is a function of each array's
# address and size and of its list (which decides whether it is written), and all of that is in
# the gathered batches: the list count, whether there are step counters, and per dtype the
# pointer arrays and numels.  A call whose batches equal a cached key word for word has the same
# answer; the key is compared in full, never hashed, and only successes are cached.  Comparing
# batches the gather filled anyway (8 bytes per array, 8 per tensor) costs a fraction of
# building and comparing spans (32 bytes per array).  Whether the arrays are still alive does
# not matter: the proof is about the addresses this call will write.  Entries are replaced
# round-robin and their total is bounded by CACHE_MAX_ARRAYS.  Callers hold the GIL, which
# serializes all access.
cdef struct CacheEntry:
    Py_ssize_t nwords
    Py_ssize_t narrays
    uint64_t *key


cdef CacheEntry _cache[CACHE_SLOTS]
cdef int _cache_next = 0
cdef Py_ssize_t _cache_total = 0


cdef inline Py_ssize_t _narrays(const Work *w) noexcept:
    return (w.b32.n + w.b64.n) * (w.nlists + w.has_steps)


cdef inline Py_ssize_t _key_words(const Work *w) noexcept:
    return 4 + (w.b32.n + w.b64.n) * (w.nlists + w.has_steps + 1)


cdef bint _key_walk(const Work *w, uint64_t *key, bint store) noexcept:
    # Compare w's key with key (store: write it there instead); True when equal (or stored).
    cdef uint64_t head[4]
    cdef const Batch *b
    cdef Py_ssize_t nb, off = 4
    cdef int which, k
    cdef void *src
    # (the scalar lists and, when there are any, whether they are float64: their spans' size)
    head[0], head[1], head[2], head[3] = w.nlists, w.has_steps | (w.scalar_lists << 1) | (
        <uint64_t>(w.b32.nsf64 + w.b64.nsf64 != 0) << 32), w.b32.n, w.b64.n
    if store:
        memcpy(key, head, sizeof(head))
    elif memcmp(key, head, sizeof(head)) != 0:
        return False
    for which in range(2):
        b = &w.b32 if which == 0 else &w.b64
        nb = b.n * sizeof(uint64_t)
        if nb == 0:
            continue
        for k in range(w.nlists + w.has_steps + 1):
            if k < w.nlists:
                src = b.arr[k]
            elif w.has_steps and k == w.nlists:
                src = b.steps
            else:
                src = b.numels
            if store:
                memcpy(key + off, src, nb)
            elif memcmp(key + off, src, nb) != 0:
                return False
            off += b.n
    return True


cdef inline bint _cache_hit(const Work *w) noexcept:
    cdef int k
    cdef Py_ssize_t m = _key_words(w)
    for k in range(CACHE_SLOTS):
        if _cache[k].nwords == m and _key_walk(w, _cache[k].key, False):
            return True
    return False


cdef void _cache_evict(int k) noexcept:
    global _cache_total
    if _cache[k].key != NULL:
        PyMem_Free(_cache[k].key)
        _cache_total -= _cache[k].narrays
    _cache[k].key = NULL
    _cache[k].nwords = _cache[k].narrays = 0


cdef void _cache_store(const Work *w) noexcept:
    # Best effort: when memory is short the call is simply not cached.
    global _cache_next, _cache_total
    cdef int k, tries
    cdef Py_ssize_t m = _narrays(w), nwords = _key_words(w)
    cdef uint64_t *key
    if m > CACHE_MAX_ARRAYS:
        return
    k = _cache_next
    _cache_evict(k)
    tries = 1
    while _cache_total + m > CACHE_MAX_ARRAYS and tries < CACHE_SLOTS:
        _cache_evict((k + tries) % CACHE_SLOTS)
        tries += 1
    key = <uint64_t *>PyMem_Malloc(nwords * sizeof(uint64_t))
    if key == NULL:
        return
    _key_walk(w, key, True)
    _cache[k].key, _cache[k].nwords, _cache[k].narrays = key, nwords, m
    _cache_total += m
    _cache_next = (k + 1) % CACHE_SLOTS


def _overlap_cache_clear():
    """Forget every cached overlap-free span set (for tests and benchmarks)."""
    cdef int k
    for k in range(CACHE_SLOTS):
        _cache_evict(k)


def _overlap_cache_info():
    """(entries, total arrays covered) held by the overlap cache (for tests)."""
    cdef int k, used = 0
    for k in range(CACHE_SLOTS):
        used += _cache[k].key != NULL
    return used, _cache_total


cdef void _build_spans(Work *w) noexcept:
    # The spans of every array of the call, in call order (the two dtype batches merged by
    # index); empty arrays have none.
    cdef Py_ssize_t j32 = 0, j64 = 0, j
    cdef Batch *b
    cdef uintptr_t nbytes
    cdef int k
    w.nspans = 0
    while j32 < w.b32.n or j64 < w.b64.n:
        if j64 >= w.b64.n or (j32 < w.b32.n and w.b32.index[j32] < w.b64.index[j64]):
            b, j = &w.b32, j32
            j32 += 1
            nbytes = <uintptr_t>b.numels[j] * 4
        else:
            b, j = &w.b64, j64
            j64 += 1
            nbytes = <uintptr_t>b.numels[j] * 8
        for k in range(w.nlists):
            if w.scalar_lists & (1u << k):     # one float or double per tensor
                _add_span(w, b.arr[k][j], 8 if b.sf64[j] else 4, k, b.index[j], 0)
            else:
                _add_span(w, b.arr[k][j], nbytes, k, b.index[j], k == 1)
        if w.has_steps:
            _add_span(w, b.steps[j], 4, w.nlists, b.index[j], 0)


cdef int _check_overlaps(Work *w, str op, tuple names, str steps_name,
                         bint report=True) except -1:
    # Sorted by start address, an array overlaps an earlier one iff it starts before the furthest
    # end seen so far.  Grads may overlap grads, so two "furthest ends" are tracked: over all
    # arrays (a written array must start after it) and over written arrays only (a grad must).
    # Returns 0 when no array overlaps; on an overlap raises, or returns 1 when not report.
    cdef Py_ssize_t k, m = _narrays(w)
    cdef Span *s = w.spans
    cdef Span *c
    cdef Span *far_all = NULL
    cdef Span *far_written = NULL
    cdef uint64_t *order
    cdef uint64_t mask
    cdef int nlists = w.nlists
    cdef Py_ssize_t nsf64 = w.b32.nsf64 + w.b64.nsf64
    # (a call mixing float32 and float64 scalars is not cached: the key holds one scalar size)
    cdef bint cacheable = m > SMALL_SPANS and (nsf64 == 0 or nsf64 == w.b32.n + w.b64.n)
    if m < 2:
        return 0
    if cacheable and _cache_hit(w):
        return 0
    _build_spans(w)
    m = w.nspans
    if m < 2:
        return 0
    order = _sorted_order(w, &mask)
    for k in range(m):
        c = &s[order[k] & mask]
        if c.shareable:
            if far_written != NULL and c.lo < far_written.hi:
                if not report:
                    return 1
                _fail_overlap(op, names, steps_name, nlists, far_written, c)
        elif far_all != NULL and c.lo < far_all.hi:
            if not report:
                return 1
            # Report a partner that really overlaps (the furthest-ending one does).
            _fail_overlap(op, names, steps_name, nlists, far_all, c)
        if far_all == NULL or c.hi > far_all.hi:
            far_all = c
        if not c.shareable and (far_written == NULL or c.hi > far_written.hi):
            far_written = c
    if cacheable:
        _cache_store(w)
    return 0


cdef struct Source:
    # Where one call's arrays come from (borrowed references), for _gather:
    #   lists:  the functionals' lists: lists[k][i] (0 params, 1 grads, 2.. states), steps[i]
    #           and is_new[i] (either may be NULL);
    #   group:  a param group's params and the optimizer state: p, p.grad, state[p][keys[k]]
    #           and state[p][step_key] (NULL: no counter), for the params whose grad is set.
    PyObject *lists
    PyObject *steps
    PyObject *is_new
    PyObject *group_params
    PyObject *state
    PyObject *keys
    PyObject *step_key
    PyObject *rec              # a StepCache recording the group's gather, or NULL


cdef inline int _take_from_lists(Work *w, Py_ssize_t i, list lists, int nlists, list steps_l,
                                 list new_l, str op, tuple names, str steps_name) except -1:
    # _gather's element i from the functionals' lists: validated, or an exact error raised.
    cdef object po = (<list>lists[0])[i], xo
    cdef Arr pa, xa
    cdef Batch *b
    cdef int k, first_scalar = -1
    memset(&pa, 0, sizeof(Arr))     # (the _fail_* calls always raise; this quiets the compiler)
    memset(&xa, 0, sizeof(Arr))
    if not _arr_of(&pa, po):
        _fail_type(op, names, 0, i, po)
    if not _param_ok(&pa):
        _fail_array(op, names, 0, i, <object>pa.np, <object>pa.np, True)
    b = _add_param(w, &pa, i)
    for k in range(1, nlists):
        xo = (<list>lists[k])[i]
        if not _arr_of(&xa, xo):
            if w.scalar_lists & (1u << k):
                _fail_scalar(op, names, k, i, xo, k)
            _fail_type(op, names, k, i, xo)
        if w.scalar_lists & (1u << k):
            if not _take_scalar(b, &xa, first_scalar < 0):
                _fail_scalar(op, names, k, i, <object>xa.np, first_scalar)
            if first_scalar < 0:
                first_scalar = k
        elif not _matches(&xa, &pa, FLAGS_READ if k == 1 else FLAGS_WRITE):
            _fail_array(op, names, k, i, <object>xa.np, <object>pa.np, k != 1)
        b.arr[k][b.n] = xa.data
    if steps_l is not None:
        xo = steps_l[i]
        if not _arr_of(&xa, xo):
            _fail_step(op, steps_name, i, xo)
        if not _step_ok(&xa):
            _fail_step(op, steps_name, i, <object>xa.np)
        b.steps[b.n] = <float *>xa.data
    if new_l is not None:
        b.is_new[b.n] = 1 if new_l[i] else 0
    b.n += 1
    return 1


cdef inline int _take_from_group(Work *w, Py_ssize_t i, object po, dict state, tuple keys,
                                 int nlists, object step_key, StepCache rec) except -1:
    # _gather's element i from a param group: 1 when taken (or skipped: no grad), 0 to decline.
    # With rec, what was read is recorded there (see StepCache).
    cdef object g
    cdef PyObject *st = NULL
    cdef PyObject *xo
    cdef Arr pa, xa
    cdef Batch *b
    cdef int k
    cdef bint first_scalar = True
    if not isinstance(po, Tensor):
        return 0
    g = (<Tensor>po)._grad
    if g is None:
        return 1
    if rec is not None:
        rec.with_grad[i] = 1
    if nlists > 2 or step_key is not None:     # (SGD without momentum keeps no state)
        st = PyDict_GetItemWithError(state, po)
        if st == NULL or not isinstance(<object>st, dict):
            return 0
        if rec is not None:
            rec.sts[i] = st
            rec.st_versions[i] = fo_dict_version(st)
    _arr_of_tensor(&pa, <Tensor>po)
    if not _param_ok(&pa):
        return 0
    b = _add_param(w, &pa, i)
    _arr_of_tensor(&xa, <Tensor>g)
    if not _matches(&xa, &pa, FLAGS_READ):
        return 0
    b.arr[1][b.n] = xa.data
    if not w.scalar_lists:      # (the common case: arrays like the param only)
        for k in range(2, nlists):
            xo = PyDict_GetItemWithError(<dict>st, keys[k - 2])
            if xo == NULL or not _arr_of(&xa, <object>xo) or not _matches(&xa, &pa,
                                                                          FLAGS_WRITE):
                return 0
            b.arr[k][b.n] = xa.data
            if rec is not None:
                rec.vals[i * VALS_PER + k - 2] = xo
    else:
        for k in range(2, nlists):
            xo = PyDict_GetItemWithError(<dict>st, keys[k - 2])
            if xo == NULL or not _arr_of(&xa, <object>xo):
                return 0
            if w.scalar_lists & (1u << k):
                if not _take_scalar(b, &xa, first_scalar):
                    return 0
                first_scalar = False
            elif not _matches(&xa, &pa, FLAGS_WRITE):
                return 0
            b.arr[k][b.n] = xa.data
            if rec is not None:
                rec.vals[i * VALS_PER + k - 2] = xo
    if step_key is not None:
        xo = PyDict_GetItemWithError(<dict>st, step_key)
        if xo == NULL or not _arr_of(&xa, <object>xo) or not _step_ok(&xa):
            return 0
        b.steps[b.n] = <float *>xa.data
        if rec is not None:
            rec.vals[i * VALS_PER + VALS_PER - 1] = xo
    b.n += 1
    return 1


cdef int _gather(Work *w, const Call *c, const Source *src, bint report, bint overlaps, str op,
                 tuple names, str steps_name) except -1:
    """Collect and validate one call into w, from the functionals' lists or from a param group
    (``src``): every param a native float32/float64, C-contiguous, aligned, writeable array;
    grads and states of its dtype and shape (states writeable); step counters writeable
    one-element float32 arrays; no written array overlapping another array of the call; no
    per-step scalar dividing by zero.  Returns 1 when all of it holds.

    ``report`` decides what a failed check does: raise, naming the argument, the value and what
    was expected (the functionals), or return 0, having written nothing, so that the caller
    takes the general path, which reports or copes (the classes' steady state: a state to
    create, a missing key, a strided or repeated param).  The group source always declines.
    """
    cdef bint from_group = src.group_params != NULL
    cdef list params, lists = None, steps_l = None, new_l = None
    cdef tuple keys = None
    if from_group:
        params, keys = <list>src.group_params, <tuple>src.keys
    else:
        lists = <list>src.lists
        params = <list>lists[0]
        if src.steps != NULL:
            steps_l = <list>src.steps
        if src.is_new != NULL:
            new_l = <list>src.is_new
    cdef Py_ssize_t n = len(params), i
    cdef int nlists = 2 + len(keys) if from_group else len(lists), k
    cdef dict state
    cdef object step_key
    cdef StepCache rec
    # First of all: the caller's `finally` frees w whatever is raised below.
    _work_init(w, n, nlists)
    w.has_steps = (src.step_key != NULL) if from_group else steps_l is not None
    w.scalar_lists = c.scalar_lists
    if from_group:
        if not isinstance(<object>src.state, dict):
            return 0
    else:
        for k in range(1, nlists):
            if len(<list>lists[k]) != n:
                _fail_len(op, names[k], len(<list>lists[k]), n, names[0])
        if steps_l is not None and len(steps_l) != n:
            _fail_len(op, steps_name, len(steps_l), n, names[0])
        if new_l is not None and len(new_l) != n:
            _fail_len(op, "buffer_is_new", len(new_l), n, names[0])
    if from_group:
        state = <dict>src.state
        step_key = <object>src.step_key if w.has_steps else None
        rec = <StepCache>src.rec if src.rec != NULL else None
        for i in range(n):
            if not _take_from_group(w, i, <object>_list_item(params, i), state, keys, nlists,
                                    step_key, rec):
                return 0
    else:
        for i in range(n):
            _take_from_lists(w, i, lists, nlists, steps_l, new_l, op, names, steps_name)
    if overlaps and _check_overlaps(w, op, names, steps_name, report):
        return 0
    if w.has_steps and _divides_by_zero(w, c):
        if not report:
            return 0
        raise ZeroDivisionError("float division by zero")
    if w.scalar_lists:
        _partition(&w.b32, nlists, w.has_steps)
        _partition(&w.b64, nlists, w.has_steps)
    return 1


cdef void _partition(Batch *b, int nlists, bint has_steps) noexcept:
    # Move the tensors whose scalar state is float64 behind those whose scalars are float32 (a
    # kernel call takes one scalar dtype: _call makes one call per part).  Only after every
    # check: messages and the overlap check use the call's order.  The tensors are independent,
    # so their order in a call does not matter.
    cdef Py_ssize_t lo = 0, hi = b.n - 1
    cdef int k
    if b.nsf64 == 0 or b.nsf64 == b.n:
        return
    while True:
        while lo < hi and not b.sf64[lo]:
            lo += 1
        while lo < hi and b.sf64[hi]:
            hi -= 1
        if lo >= hi:
            return
        for k in range(nlists):
            b.arr[k][lo], b.arr[k][hi] = b.arr[k][hi], b.arr[k][lo]
        if has_steps:
            b.steps[lo], b.steps[hi] = b.steps[hi], b.steps[lo]
        b.numels[lo], b.numels[hi] = b.numels[hi], b.numels[lo]
        b.index[lo], b.index[hi] = b.index[hi], b.index[lo]
        b.is_new[lo], b.is_new[hi] = b.is_new[hi], b.is_new[lo]
        b.sf64[lo], b.sf64[hi] = b.sf64[hi], b.sf64[lo]


cdef int _gather_lists(Work *w, const Call *c, bint overlaps, str op, tuple names, list lists,
                       list steps, str steps_name, object is_new) except -1:
    # _gather from the functionals' lists, raising on any failed check (the overlap check only
    # with `overlaps`).
    cdef Source src
    memset(&src, 0, sizeof(Source))
    src.lists = <PyObject *>lists
    if steps is not None:
        src.steps = <PyObject *>steps
    if is_new is not None:
        is_new = _as_list(is_new, op, "buffer_is_new")
        src.is_new = <PyObject *>is_new
    return _gather(w, c, &src, True, overlaps, op, names, steps_name)


cdef int _gather_group(Work *w, const Call *c, list group_params, object state, tuple keys,
                       object step_key, StepCache rec=None) except -1:
    # _gather from a param group and the optimizer state, declining on any failed check
    # (recording what it read in rec, when given).
    cdef Source src
    memset(&src, 0, sizeof(Source))
    src.group_params, src.state, src.keys = <PyObject *>group_params, <PyObject *>state, \
        <PyObject *>keys
    if step_key is not None:
        src.step_key = <PyObject *>step_key
    if rec is not None:
        src.rec = <PyObject *>rec
    return _gather(w, c, &src, False, True, None, None, None)


# ---- the public entry points -----------------------------------------------------------------
# Two entries serve every optimizer.  ``step`` gathers a call from the functionals' lists
# (validating everything), then ``_run`` calls its kernel once per dtype present, without the
# GIL when there is enough work for another Python thread to gain from it.  ``group_step`` is
# the classes' steady-state shortcut to the same ``_run``: it gathers from the param group and
# the optimizer state directly (_gather_group) and reports False when the class must take the
# general path (collect lists, then ``step``).  Both take a ``Plan``: what a description says
# about the call (the kernel, its state keys and list names, which setting creates which
# state, the step counter), made once per description by fastoptim/optim/_step.py.

cdef enum:
    MAX_STATES = MAX_LISTS - 2     # state lists a kernel may take
    MAX_KERNELS = 16
    HYPER_WORDS = 16               # 8-byte words a fo_<kernel>_hyper may take
    # how a state list's presence follows a hyperparameter (StateArray.when)
    WHEN_ALWAYS = 0
    WHEN_TRUE = 1
    WHEN_NONZERO = 2
    WHEN_POSITIVE = 3


cdef union HyperBuf:
    # Storage for any kernel's fo_<kernel>_hyper, filled by that kernel's filler.
    double d[HYPER_WORDS]
    int64_t i[HYPER_WORDS]


cdef struct Call:
    # One kernel call: its kernel, its named hyperparameters, the state lists it takes, and for
    # a buffer made from the grad (SGD) whether the batches' is_new flags are meaningful.
    const KernelSpec *k
    HyperBuf h
    int nstates                    # the kernel's state lists, present or not
    unsigned int present           # bit s: state list s is passed (else NULL)
    unsigned int scalar_lists      # bit k: gathered list k holds per-tensor scalars
    bint buffers_new


# The per-kernel part: a filler (the struct's fields, by name, from the hyperparameters in the
# description's order) and a runner (the kernel over one dtype's batch; states[s] is NULL for a
# state list not present); optionally a test of the per-step scalars torch divides by, and for
# a kernel with per-tensor scalar state the store of the new scalars that team mode leaves to
# its caller (fo_<kernel>_advance).  A kernel with scalar state gets batches whose scalars all
# have one dtype (b.sf64[0]: float64).
ctypedef int (*FillFn)(void *h, PyObject **v) except -1
ctypedef void (*RunFn)(Batch *b, bint f32, const Call *c, void ***states) noexcept nogil
ctypedef bint (*ZeroFn)(const void *h, double t) noexcept


cdef struct KernelSpec:
    FillFn fill
    RunFn run
    ZeroFn divides_by_zero         # NULL: no per-step scalar divides by zero
    RunFn advance                  # NULL: no per-tensor scalar state
    int nhyper


cdef KernelSpec _kernels[MAX_KERNELS]
cdef int _nkernels = 0
cdef dict _kernel_ids = {}


cdef int _register(str name, FillFn fill, RunFn run, RunFn advance, int nhyper,
                   size_t size) except -1:
    # (called by the generated _optim_kernels.pxi, once per kernel)
    global _nkernels
    if _nkernels == MAX_KERNELS or size > sizeof(HyperBuf) or name in _kernel_ids:
        raise AssertionError(f"_optim: cannot register kernel {name} (again, or no room)")
    _kernels[_nkernels].fill, _kernels[_nkernels].run = fill, run
    _kernels[_nkernels].advance, _kernels[_nkernels].divides_by_zero = advance, NULL
    _kernels[_nkernels].nhyper = nhyper
    _kernel_ids[name] = _nkernels
    _nkernels += 1
    return 0


cdef int _register_zero(str name, ZeroFn zero) except -1:
    # A registered kernel's test of the per-step scalars torch divides by.
    _kernels[<int>_kernel_ids[name]].divides_by_zero = zero
    return 0


cdef inline double _d(PyObject *v) except? -1.0:
    # A double field from a Python number (a float without a call).
    if type(<object>v) is float:
        return PyFloat_AS_DOUBLE(<object>v)
    return <double>(<object>v)


cdef inline int _b(PyObject *v) except -1:
    # An int flag field from any Python value's truth.
    return 1 if <object>v else 0


cdef class Plan:
    """What a description says about a kernel call (fastoptim/optim/_step.py makes one per
    description): its kernel, the number of hyperparameters, the state keys and list names in
    the kernel's order, which hyperparameter creates which state list, whether there are step
    counters, whether a first buffer is taken from the grad."""
    cdef const KernelSpec *k
    cdef readonly str op
    cdef int nhyper
    cdef int nstates
    cdef unsigned int scalar_states  # bit s: state list s holds per-tensor scalars
    cdef int when_index[MAX_STATES]
    cdef int when_op[MAX_STATES]
    cdef tuple keys_by_mask          # present-mask -> the state keys gathered from a group
    cdef tuple names_by_mask         # present-mask -> the list names, for messages
    cdef tuple list_names
    cdef bint has_step
    cdef bint from_grad

    def __init__(self, str kernel, str op, int nhyper, tuple state_keys, tuple list_names,
                 tuple when, bint has_step, bint from_grad, tuple scalar=()):
        cdef int s, mask
        if kernel not in _kernel_ids:
            raise ValueError(f"_optim.Plan: no kernel {kernel!r} (have {sorted(_kernel_ids)})")
        self.k = &_kernels[<int>_kernel_ids[kernel]]
        self.nstates = len(state_keys)
        scalar = scalar or (False,) * self.nstates
        if (self.nstates > MAX_STATES or len(list_names) != self.nstates
                or len(when) != self.nstates or len(scalar) != self.nstates
                or nhyper != self.k.nhyper or (any(scalar) and not has_step)
                or any(scalar) != (self.k.advance != NULL)):
            raise ValueError(f"_optim.Plan: {op}: {nhyper} hyperparameters and state "
                             f"{state_keys} do not fit kernel {kernel!r}")
        self.op, self.nhyper, self.has_step, self.from_grad = op, nhyper, has_step, from_grad
        self.list_names = list_names
        self.scalar_states = 0
        for s in range(self.nstates):
            self.when_index[s], self.when_op[s] = when[s]
            if scalar[s]:
                self.scalar_states |= 1u << s
        self.keys_by_mask = tuple(
            tuple(state_keys[s] for s in range(self.nstates) if mask & (1 << s))
            for mask in range(1 << self.nstates))
        self.names_by_mask = tuple(
            ("params", "grads", *(list_names[s] for s in range(self.nstates) if mask & (1 << s)))
            for mask in range(1 << self.nstates))


cdef int _setup(Call *c, Plan plan, PyObject **v) except -1:
    # Fill c from the hyperparameters v (in the description's order): the kernel's struct, and
    # the state lists present under these settings.
    cdef int s, op, k = 2
    cdef object x
    c.k = plan.k
    c.nstates = plan.nstates
    c.present = 0
    c.scalar_lists = 0
    c.buffers_new = False
    plan.k.fill(&c.h, v)
    for s in range(plan.nstates):
        op = plan.when_op[s]
        if op != WHEN_ALWAYS:
            x = <object>v[plan.when_index[s]]
            if not ((op == WHEN_TRUE and x) or (op == WHEN_NONZERO and x != 0)
                    or (op == WHEN_POSITIVE and x > 0)):
                continue
        c.present |= 1u << s
        if plan.scalar_states & (1u << s):
            c.scalar_lists |= 1u << k
        k += 1
    return 0


cdef inline bint _plain_number(object x) noexcept:
    cdef type t = type(x)
    return t is float or t is int or t is bool or x is None


cdef int _flatten(PyObject **v, tuple settings, int nhyper) except -1:
    # The hyperparameters from a group's settings (one level of tuples flattened: betas), in
    # order, borrowed; 0 when some value is not a plain number (a Tensor lr: the general path
    # converts it) or the count is not nhyper.
    cdef Py_ssize_t i, j, m = 0
    cdef object x
    for i in range(len(settings)):
        x = settings[i]
        if type(x) is tuple:
            for j in range(len(<tuple>x)):
                if m == nhyper or not _plain_number((<tuple>x)[j]):
                    return 0
                v[m] = _list_item_t(<tuple>x, j)
                m += 1
        else:
            if m == nhyper or not _plain_number(x):
                return 0
            v[m] = <PyObject *>x
            m += 1
    return m == nhyper


cdef int _divides_by_zero(Work *w, const Call *c) noexcept:
    # Whether some tensor's per-step scalar divides by zero: torch computes them in Python
    # floats and raises ZeroDivisionError (Adam: lr / (1 - beta1**t) with t == 0 or beta1 == 1;
    # Adagrad: lr / (1 + (t - 1) * lr_decay)).  The kernels would write NaNs instead.  The
    # scalars depend on t only, so consecutive tensors at one step cost one test.
    cdef Batch *b
    cdef Py_ssize_t j
    cdef int which
    cdef float t, last = 0.0
    cdef bint have = False
    cdef ZeroFn zero = c.k.divides_by_zero
    if zero == NULL:
        return 0
    for which in range(2):
        b = &w.b32 if which == 0 else &w.b64
        for j in range(b.n):
            t = b.steps[j][0] + <float>1.0      # the kernel's t: the incremented float32 step
            if have and (t == last or t != t):
                continue
            have, last = True, t
            if zero(&c.h, <double>t):
                return 1
    return 0


cdef void _call_part(Batch *b, bint f32, const Call *c, RunFn fn) noexcept nogil:
    # fn (the kernel of c, or its advance) over the tensors of one dtype.  Lists: 0 params,
    # 1 grads, 2.. the states present, in the kernel's order; an absent state list is NULL.
    cdef void **states[MAX_STATES]
    cdef int s, k = 2
    for s in range(MAX_STATES):
        states[s] = NULL
        if s < c.nstates and c.present & (1u << s):
            states[s] = b.arr[k]
            k += 1
    fn(b, f32, c, states)


cdef inline void _each_part(Batch *b, bint f32, const Call *c, RunFn fn) noexcept nogil:
    # fn over one dtype's batch: in two calls when its tensors' scalar states mix float32 and
    # float64 (_partition put the float64 ones last), each call taking one scalar dtype.
    cdef Batch part
    cdef Py_ssize_t n32 = b.n - b.nsf64
    cdef int k
    if not c.scalar_lists or b.nsf64 == 0 or n32 == 0:
        _call_part(b, f32, c, fn)
        return
    part = b[0]
    part.n = n32
    _call_part(&part, f32, c, fn)
    for k in range(MAX_LISTS):
        part.arr[k] = b.arr[k] + n32
    part.steps, part.numels, part.index = b.steps + n32, b.numels + n32, b.index + n32
    part.is_new, part.sf64, part.n = b.is_new + n32, b.sf64 + n32, b.nsf64
    _call_part(&part, f32, c, fn)


cdef inline void _call(Batch *b, bint f32, const Call *c) noexcept nogil:
    # The kernel of c over the tensors of one dtype.
    _each_part(b, f32, c, c.k.run)


cdef int _run(Work *w, const Call *c) except -1:
    # One kernel call per dtype present; without the GIL when there is enough work to share.
    cdef Batch *b
    cdef int which
    for which in range(2):
        b = &w.b32 if which == 0 else &w.b64
        if b.n == 0:
            continue
        if b.total >= NOGIL_MIN_ELEMS:
            with nogil:
                _call(b, which == 0, c)
        else:
            _call(b, which == 0, c)
    return 0


cdef class StepCache:
    """One run of param groups' validated gather, kept between steps (``group_step``'s
    ``cache``; the optimizer classes keep one per run, ``_step.grouped_step``).

    Why: a steady step over many tensors collected every param's grad and state from dicts and
    proved the call overlap-free again each time, though nothing had changed.  The cache keeps
    the pointer arrays of the last successful gather (``Work``) and what they were read from,
    and the next step re-checks them instead of rebuilding them: per param, the list item is
    the same object (held, so identity means something), its grad and state hold the same data
    pointers with the same facts (dtype, shape, flags: ``_matches`` as in a full gather; for a
    per-tensor scalar, NAdam's ``mu_product`` or ASGD's ``eta``/``mu``, one aligned writeable
    element of the dtype recorded for that tensor's scalars), and the state values are the same
    objects.  Those are found without dict lookups when the optimizer's state dict and the
    param's state dict kept their version tags (PEP 509: nothing inserted, replaced or
    removed), by lookups otherwise.  An identical set of (address, size, list) is what the
    overlap proof was about, so it still holds; the zero-division test of the step counters
    runs every step.  A grad at another address with the right facts (a training loop's
    ``zero_grad()`` then ``backward()`` makes new grads every step) is taken into the record
    in place, and the overlap proof is then redone over the whole call.  Anything else that
    differs (a grad set to None or appearing, a param replaced or rebound, a dtype change,
    loaded or edited state, another group layout or settings that change the state lists)
    makes a full gather that replaces the record; so does every step of a batch whose tensors'
    scalars mix float32 and float64 (the gather reordered it, see ``_partition``).  Only
    successes are kept.
    """
    cdef Work w
    cdef bint valid              # w holds a validated gather of the params recorded below
    cdef Call c                  # the call of a gather not yet run (group_step(run=False))
    cdef bint pending
    cdef object keys             # the state keys the gather used (Plan.keys_by_mask: identity)
    cdef object step_key
    cdef object state            # the optimizer state dict it read (held)
    cdef uint64_t state_version
    cdef Py_ssize_t n            # len(params) when gathered
    cdef Py_ssize_t nheld        # params[:nheld] hold references
    cdef Py_ssize_t cap
    cdef PyObject **params       # each param (a reference)
    cdef unsigned char *with_grad
    cdef PyObject **sts          # each param's state dict (borrowed: the held state holds it)
    cdef uint64_t *st_versions
    cdef PyObject **vals         # VALS_PER per param: its state values, then its step (borrowed)
    # the last batching of the optimizer's param groups (_batch_groups with this cache)
    cdef object runs_groups      # the param_groups list batched (held), None: no record
    cdef object runs_names
    cdef list runs_out           # what _batch_groups returned
    cdef list runs_held          # every group dict and params list recorded (held)
    cdef Py_ssize_t runs_n       # len(runs_groups) then
    cdef Py_ssize_t runs_cap
    cdef PyObject **runs_dicts   # each group dict, then each group's params list (a list)
    cdef uint64_t *runs_versions # each group dict's version tag
    cdef Py_ssize_t *runs_lens   # each params list's length
    cdef Py_ssize_t *runs_stop   # each group's run: the index past its last group

    def __dealloc__(self):
        self._release()
        PyMem_Free(self.params)
        PyMem_Free(self.runs_dicts)
        _work_free(&self.w)

    def __reduce__(self):
        # never copied or pickled with its optimizer: a copy starts empty
        return (StepCache, ())

    cdef void _release(self) noexcept:
        cdef Py_ssize_t i
        cdef PyObject *p
        self.valid = False
        self.pending = False
        for i in range(self.nheld):
            p = self.params[i]
            self.params[i] = NULL
            Py_DECREF(<object>p)
        self.nheld = 0
        self.state = None

    cdef int _reserve(self, Py_ssize_t n) except -1:
        # Room for n params, the records zeroed.
        cdef char *mem
        cdef size_t per = (2 + VALS_PER) * sizeof(PyObject *) + sizeof(uint64_t) + 1
        if n > self.cap or self.params == NULL:
            mem = <char *>PyMem_Malloc(n * per if n else 1)
            if mem == NULL:
                raise MemoryError()
            PyMem_Free(self.params)
            self.params = <PyObject **>mem
            self.cap = n
        mem = <char *>self.params
        memset(mem, 0, n * per)
        self.sts = self.params + n
        self.vals = self.sts + n
        self.st_versions = <uint64_t *>(self.vals + n * VALS_PER)
        self.with_grad = <unsigned char *>(self.st_versions + n)
        return 0

    def run(self):
        """Run the kernels of the gather ``group_step(..., run=False)`` left pending."""
        if not self.pending:
            raise RuntimeError("StepCache.run: no gathered step is pending")
        self.pending = False
        _run(&self.w, &self.c)

    def _info(self):
        """(valid, params recorded) for tests."""
        return bool(self.valid), self.n


cdef inline Batch *_batch_of(Work *w, int tnum, Py_ssize_t *j32, Py_ssize_t *j64,
                             Py_ssize_t *j) noexcept:
    # The batch a param of type tnum went to, and its slot there (the next one).
    if tnum == cnp.NPY_FLOAT32:
        j[0] = j32[0]
        j32[0] += 1
        return &w.b32
    j[0] = j64[0]
    j64[0] += 1
    return &w.b64


cdef int _revalidate(StepCache cc, list params, object state, tuple keys, int nlists,
                     object step_key) except -1:
    # 1 when cc's gather, with the grads that moved taken anew, is exactly what a full gather
    # of params would build (see StepCache), else 0 (cc's Work then holds nothing usable: the
    # caller gathers in full).
    cdef Work *w = &cc.w
    cdef Py_ssize_t i, j, j32 = 0, j64 = 0, n = len(params), nv = nlists - 2
    cdef PyObject *po
    cdef PyObject *st
    cdef PyObject *xo
    cdef PyObject **vals
    cdef object g
    cdef Arr pa, xa
    cdef Batch *b
    cdef int k
    cdef bint stateful = nlists > 2 or step_key is not None
    cdef bint state_same, moved = False
    if (not cc.valid or n != cc.n or keys is not cc.keys or step_key is not cc.step_key
            or state is not cc.state or not isinstance(state, dict)):
        return 0
    if w.scalar_lists and (0 < w.b32.nsf64 < w.b32.n or 0 < w.b64.nsf64 < w.b64.n):
        return 0            # a batch mixing scalar dtypes was reordered (_partition): gathered
    state_same = FO_DICT_VERSION and fo_dict_version(<PyObject *>state) == cc.state_version
    for i in range(n):
        po = _list_item(params, i)
        if po != cc.params[i]:
            return 0
        g = (<Tensor>po)._grad        # (a recorded param is a Tensor)
        if g is None:
            if cc.with_grad[i]:
                return 0
            continue
        if not cc.with_grad[i]:
            return 0
        _arr_of_tensor(&pa, <Tensor>po)
        if not _param_ok(&pa):
            return 0
        b = _batch_of(w, pa.tnum, &j32, &j64, &j)
        if (j >= b.n or b.index[j] != i or b.arr[0][j] != pa.data
                or b.numels[j] != pa.numel):
            return 0
        _arr_of_tensor(&xa, <Tensor>g)
        if not _matches(&xa, &pa, FLAGS_READ):
            return 0
        if b.arr[1][j] != xa.data:
            # another grad (zero_grad(), then backward: the usual training loop): taken, and
            # the overlap proof redone below, as a full gather would
            b.arr[1][j] = xa.data
            moved = True
        if not stateful:
            continue
        vals = cc.vals + i * VALS_PER
        st = cc.sts[i]
        if not (state_same and fo_dict_version(st) == cc.st_versions[i]):
            # something may have changed: look the values up, as a full gather would
            st = PyDict_GetItemWithError(<dict>state, <object>po)
            if st == NULL or st != cc.sts[i]:
                return 0
            for k in range(nv):
                xo = PyDict_GetItemWithError(<dict>st, keys[k])
                if xo != vals[k]:
                    return 0
            if step_key is not None:
                xo = PyDict_GetItemWithError(<dict>st, step_key)
                if xo != vals[VALS_PER - 1]:
                    return 0
        for k in range(nv):
            if not _arr_of(&xa, <object>vals[k]) or b.arr[2 + k][j] != xa.data:
                return 0
            if w.scalar_lists & (1u << (2 + k)):
                # a per-tensor scalar (NAdam's mu_product, ASGD's eta and mu): of the dtype
                # the gather recorded for the tensor's scalars, which its span's size follows
                if _scalar_kind(&xa) != b.sf64[j]:
                    return 0
            elif not _matches(&xa, &pa, FLAGS_WRITE):
                return 0
        if step_key is not None:
            xo = vals[VALS_PER - 1]
            if (not _arr_of(&xa, <object>xo) or <void *>b.steps[j] != xa.data
                    or not _step_ok(&xa)):
                return 0
    if j32 != w.b32.n or j64 != w.b64.n:
        return 0
    return not (moved and _check_overlaps(w, None, None, None, False))


cdef Py_ssize_t _cache_reuses = 0      # gathers a StepCache re-checked instead of rebuilt


def _step_cache_reuses():
    """How many group steps reused their StepCache's gather (for tests)."""
    return _cache_reuses


cdef int _gather_cached(StepCache cc, const Call *c, list params, object state, tuple keys,
                        object step_key) except -1:
    # _gather_group into cc's Work: re-checked when cc holds the same call, else gathered in
    # full and recorded.  1 when the step may run, 0 to decline (cc then holds nothing).
    cdef Py_ssize_t i, n = len(params)
    cdef PyObject *po
    global _cache_reuses
    cc.pending = False
    if _revalidate(cc, params, state, keys, 2 + len(keys), step_key):
        if cc.w.has_steps and _divides_by_zero(&cc.w, c):
            return 0
        _cache_reuses += 1
        return 1
    cc._release()
    _work_free(&cc.w)
    cc._reserve(n)
    if not _gather_group(&cc.w, c, params, state, keys, step_key, cc):
        return 0
    for i in range(n):           # every item is a Tensor (the gather declines otherwise)
        po = _list_item(params, i)
        Py_INCREF(<object>po)
        cc.params[i] = po
    cc.nheld = cc.n = n
    cc.keys, cc.step_key, cc.state = keys, step_key, state
    cc.state_version = fo_dict_version(<PyObject *>state)
    cc.valid = True
    return 1


cdef struct Team:
    # What fo_team_run's two callbacks share (see _group_step).
    Work *w
    PyObject *group_params
    PyObject *state
    PyObject *keys
    PyObject *step_key
    PyObject *cache            # a StepCache, or NULL
    const Call *c
    Work **also_w              # other runs' gathers, pending: their kernels run in the region too
    Call **also_c
    Py_ssize_t nalso
    PyObject *exc              # owned: what the collection raised
    PyThreadState *saved       # the GIL, released for the kernels


cdef int _team_collect(void *vt) noexcept:
    # On the calling thread, which holds the GIL, while the region's other threads wake up.
    cdef Team *t = <Team *>vt
    cdef int r
    try:
        if t.cache != NULL:
            r = _gather_cached(<StepCache>t.cache, t.c, <list>t.group_params, <object>t.state,
                               <tuple>t.keys, <object>t.step_key)
        else:
            r = _gather_group(t.w, t.c, <list>t.group_params, <object>t.state, <tuple>t.keys,
                              <object>t.step_key)
    except BaseException as e:
        Py_INCREF(e)
        t.exc = <PyObject *>e
        return -1
    if r == 1:
        t.saved = PyEval_SaveThread()
    return r


cdef void _team_kernels(void *vt, int tid) noexcept nogil:
    # On every thread of the region, the same calls: each kernel updates this thread's share.
    cdef Team *t = <Team *>vt
    cdef Py_ssize_t k
    if t.w.b32.n:
        _call(&t.w.b32, True, t.c)
    if t.w.b64.n:
        _call(&t.w.b64, False, t.c)
    for k in range(t.nalso):
        if t.also_w[k].b32.n:
            _call(&t.also_w[k].b32, True, t.also_c[k])
        if t.also_w[k].b64.n:
            _call(&t.also_w[k].b64, False, t.also_c[k])


cdef inline void _advance(Work *w, const Call *c) noexcept:
    # after team mode's counters: the per-tensor scalars from the new counts (NAdam, ASGD),
    # which team mode, like the counters, leaves to its caller
    if c.k.advance != NULL:
        if w.b32.n:
            _each_part(&w.b32, True, c, c.k.advance)
        if w.b64.n:
            _each_part(&w.b64, False, c, c.k.advance)


cdef inline void _count_steps(Batch *b) noexcept nogil:
    # torch's step += 1 on each float32 counter (what the kernels do after their own region)
    cdef Py_ssize_t j
    for j in range(b.n):
        b.steps[j][0] = b.steps[j][0] + <float>1.0


cdef bint _team_worth(list group_params) noexcept:
    # Whether to run the group in team mode: the kernels will run on several threads (more than
    # one thread, and the params with a grad hold FO_OMP_MIN_ELEMS elements or more), and there
    # are TEAM_MIN_TENSORS of them or more.  Counts until both are reached.
    cdef Py_ssize_t i, count = 0, n = len(group_params)
    cdef PyObject *po
    cdef int64_t total = 0
    if n < TEAM_MIN_TENSORS or fo_optim_get_threads() < 2:
        return False
    for i in range(n):
        po = _list_item(group_params, i)
        if isinstance(<object>po, Tensor) and (<Tensor>po)._grad is not None:
            total += (<Tensor>po)._numel
            count += 1
            if total >= FO_OMP_MIN_ELEMS and count >= TEAM_MIN_TENSORS:
                return True
    return False


cdef Py_ssize_t _team_steps = 0      # steps that took fo_team_run (for tests)


def _team_step_count():
    """How many group steps have run their kernels through fo_team_run (for tests)."""
    return _team_steps


cdef object _group_step(list group_params, object state, tuple keys, object step_key,
                        const Call *c, StepCache cc, bint run, tuple also):
    # The body of group_step: True when done, False (nothing written) when declined.
    # When the kernels will use several threads, their region is opened first and the group is
    # collected on the calling thread while the others wake (fo_team_run, optim_team.c).  With
    # a cache, the gather is kept in it (and re-checked next time); without run, it is left
    # there, pending, for cc.run().  ``also``: other runs' pending caches, whose kernels run
    # with this one's once its gather has succeeded (in the same parallel region).
    global _team_steps
    cdef Work local
    cdef Work *w = &local if cc is None else &cc.w
    cdef Team t
    cdef int r
    cdef Py_ssize_t k, nalso = len(also) if run and also is not None else 0
    cdef StepCache other
    local.heap = NULL
    memset(&t, 0, sizeof(Team))
    try:
        if nalso:
            t.also_w = <Work **>PyMem_Malloc(nalso * (sizeof(Work *) + sizeof(Call *)))
            if t.also_w == NULL:
                raise MemoryError()
            t.also_c = <Call **>(t.also_w + nalso)
            for k in range(nalso):
                other = <StepCache?>also[k]
                if not other.pending:
                    raise RuntimeError("group_step: a cache in `also` has no pending step")
                t.also_w[k], t.also_c[k] = &other.w, &other.c
            t.nalso = nalso
        if run and _team_worth(group_params):
            _team_steps += 1 + nalso
            t.w, t.c = w, c
            t.group_params, t.state = <PyObject *>group_params, <PyObject *>state
            t.keys, t.step_key = <PyObject *>keys, <PyObject *>step_key
            if cc is not None:
                t.cache = <PyObject *>cc
            r = fo_team_run(_team_collect, _team_kernels, &t)
            if r == 1:
                if w.has_steps:      # team mode leaves the counters to its caller
                    _count_steps(&w.b32)
                    _count_steps(&w.b64)
                    _advance(w, c)
                for k in range(nalso):
                    if t.also_w[k].has_steps:
                        _count_steps(&t.also_w[k].b32)
                        _count_steps(&t.also_w[k].b64)
                        _advance(t.also_w[k], t.also_c[k])
                    (<StepCache>also[k]).pending = False
            if t.saved != NULL:
                PyEval_RestoreThread(t.saved)
            if r < 0:
                e = <object>t.exc
                Py_DECREF(e)
                raise e
            return r == 1
        if cc is not None:
            if not _gather_cached(cc, c, group_params, state, keys, step_key):
                return False
        elif not _gather_group(w, c, group_params, state, keys, step_key):
            return False
        if run:
            _run(w, c)
            for k in range(nalso):
                (<StepCache>also[k]).run()
        else:
            cc.c = c[0]
            cc.pending = True
    finally:
        PyMem_Free(t.also_w)
        _work_free(&local)
    return True


def step(Plan plan, tuple hyper, params, grads, tuple states, state_steps=None,
         buffer_is_new=None, *, bint run=True, bint overlaps=True):
    """One step of ``plan``'s kernel over a param group, in place (fo_<kernel>_update in
    fastoptim.h).  ``hyper``: the hyperparameters in the description's order (numbers);
    ``states``: every state list of the kernel in its order, those its settings do not create
    ignored (may be None); ``state_steps``: the step counters (when the kernel has them);
    ``buffer_is_new``: None or a list of bools, a flagged buffer is overwritten with the
    (decayed) grad (a first buffer taken from the grad: SGD's first step).  ``run=False``
    validates without updating; ``overlaps=False`` skips the overlap check."""
    cdef Work w
    cdef Call c
    cdef PyObject *v[HYPER_WORDS]
    cdef str op = plan.op
    cdef Py_ssize_t i, s
    cdef list steps = None
    if len(hyper) != plan.nhyper or len(states) != plan.nstates:
        raise TypeError(f"{op}: expected {plan.nhyper} hyperparameters and {plan.nstates} state "
                        f"lists, got {len(hyper)} and {len(states)}")
    for i in range(plan.nhyper):
        v[i] = _list_item_t(hyper, i)
    _setup(&c, plan, v)
    cdef list lists = [_as_list(params, op, "params"), _as_list(grads, op, "grads")]
    for s in range(plan.nstates):
        if c.present & (1u << s):
            lists.append(_as_list(states[s], op, plan.list_names[s]))
    if plan.has_step:
        steps = _as_list(state_steps, op, "state_steps")
    if plan.from_grad and c.present and buffer_is_new is not None:
        c.buffers_new = True
    else:
        buffer_is_new = None
    w.heap = NULL
    try:
        _gather_lists(&w, &c, overlaps, op, plan.names_by_mask[c.present], lists, steps,
                      "state_steps", buffer_is_new)
        if run:
            _run(&w, &c)
    finally:
        _work_free(&w)


def group_step(Plan plan, tuple settings, list group_params, object state,
               StepCache cache=None, bint run=True, tuple also=None):
    """The steady-state step straight from a param group and the optimizer's state (see
    _gather_group).  ``settings``: the group's values of the description's hyperparameter keys
    (``betas`` a tuple).  True when done, False (nothing written) when the caller must collect
    and call ``step`` instead (a state to create, a setting that is not a plain number, or
    anything unusual).  ``cache``: the run's StepCache, whose last gather is re-checked instead
    of rebuilt; with ``run=False`` the gathered step is left pending in it (``cache.run()``), so
    that a caller can collect every group before any is written.  ``also``: caches left pending
    so; when this call succeeds their kernels run with its own (in one parallel region when
    the group is big enough for team mode), when it declines they stay pending."""
    cdef Call c
    cdef PyObject *v[HYPER_WORDS]
    if not run and cache is None:
        raise ValueError("group_step: run=False needs a cache to keep the gathered step")
    if cache is not None:
        cache.pending = False
    if not _flatten(v, settings, plan.nhyper):
        return False
    _setup(&c, plan, v)
    return _group_step(group_params, state, <tuple>plan.keys_by_mask[c.present],
                       "step" if plan.has_step else None, &c, cache, run, also)


# ---- the kernels ---------------------------------------------------------------------------
# Each kernel's cimport, filler (its struct's fields by name, from the hyperparameters in the
# description's order), runner (the state lists in its prototype's order), advance (a kernel
# with per-tensor scalar state) and registration are generated from its description at build
# time (fastoptim/optim/_kernel_glue.py; setup.py writes the file into the build directory).
include "_optim_kernels.pxi"


# The per-step scalars torch divides by, per kernel that has them (the only per-optimizer code
# here): true when one at step t divides by zero.

cdef inline bint _bias_correction_zero(double beta, double t) noexcept:
    # 1 - beta**t == 0 (a division by zero where torch raises ZeroDivisionError);
    # |beta|**t <= |beta| < 1 for t >= 1: no pow() in the usual case
    return not (t >= 1.0 and fabs(beta) < 1.0) and 1.0 - pow(beta, t) == 0.0


cdef bint _adam_zero(const void *hp, double t) noexcept:
    # lr / (1 - beta1**t)
    return _bias_correction_zero((<const fo_adam_hyper *>hp).beta1, t)


cdef bint _adagrad_zero(const void *hp, double t) noexcept:
    # lr / (1 + (t - 1) * lr_decay)
    return 1.0 + (t - 1.0) * (<const fo_adagrad_hyper *>hp).lr_decay == 0.0


cdef bint _adamax_zero(const void *hp, double t) noexcept:
    # lr / (1 - beta1**t), as Adam's
    return _bias_correction_zero((<const fo_adamax_hyper *>hp).beta1, t)


cdef bint _radam_zero(const void *hp, double t) noexcept:
    # rho_inf = 2 / (1 - beta2) - 1 and rho_t's ... / (1 - beta2**t), in Python floats
    cdef double beta2 = (<const fo_radam_hyper *>hp).beta2
    return 1.0 - beta2 == 0.0 or _bias_correction_zero(beta2, t)


_register_zero("adam", _adam_zero)
_register_zero("adagrad", _adagrad_zero)
_register_zero("adamax", _adamax_zero)
_register_zero("radam", _radam_zero)


# ---- helpers for fastoptim.optim.functional -------------------------------------------------

def _unwrap(items, bint writeable, list writebacks):
    """The numpy arrays behind ``items`` (numpy arrays, or Tensors exposing ``_np``), as a list.

    A non-contiguous array is replaced by a contiguous copy; when ``writeable``, the pair
    (original, copy) is appended to ``writebacks`` so the caller can copy the update back.
    Anything else (None, wrong types) passes through for the step functions to report.
    Done here rather than in Python because it runs for every array of every step.
    """
    cdef list out = list(items)
    cdef Py_ssize_t i, n = len(out)
    cdef object x, arr
    for i in range(n):
        x = out[i]
        if type(x) is not np.ndarray:
            if x is None:
                continue
            x = getattr(x, "_np", x)
            out[i] = x
            if not isinstance(x, cnp.ndarray):
                continue
        if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x):
            arr = np.ascontiguousarray(x)
            out[i] = arr
            if writeable:
                writebacks.append((x, arr))
    return out


def _needs_copy(lists):
    """Whether some element of the non-None lists in ``lists`` is neither a C-contiguous numpy
    array nor a Tensor over one (None entries and other types count as needing ``_unwrap``,
    which passes them through for the step functions to report).  The functionals' test for
    their slow path, at C level because it runs over every array of every call."""
    cdef object lst, x
    cdef Py_ssize_t i
    for lst in lists:
        if lst is None:
            continue
        if type(lst) is not list:
            if not isinstance(lst, tuple):
                continue        # not a list at all: the step function says so
            lst = list(lst)
        for i in range(len(<list>lst)):
            x = (<list>lst)[i]
            if isinstance(x, Tensor):
                if not ((<Tensor>x)._flags & cnp.NPY_ARRAY_C_CONTIGUOUS):
                    return True
            elif type(x) is not np.ndarray or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x):
                return True
    return False


# ---- the optimizer classes' collection loop ----------------------------------------------------

def _collect(list group_params, object state, Py_ssize_t start, tuple keys, bint create,
             list params, list grads, tuple outs):
    """The per-parameter loop of every optimizer's ``_init_group``, at C level.

    For each Tensor in ``group_params[start:]`` whose ``.grad`` is not None: append it to
    ``params``, its grad to ``grads``, and ``state[p][keys[k]]`` to ``outs[k]``.  When a param's
    state is missing or empty: with ``create``, stop before it and return its index, so the
    class creates the state in Python (torch's lazy rules live there) and resumes at that index;
    without ``create`` (SGD's optional momentum buffer), append None.  Returns -1 when the group
    is done.  With ``create``, a non-empty state that lacks a key raises KeyError, as torch's
    lookup does (without it, ``dict.get`` semantics, as torch's SGD).  Never
    inserts into ``state`` (a defaultdict): reading is all a steady-state step needs.
    """
    cdef Py_ssize_t i, k, n = len(group_params), nk = len(keys)
    cdef object p, g
    cdef PyObject *st = NULL
    if not isinstance(state, dict):   # the optimizer's defaultdict; read without inserting
        raise TypeError(f"optimizer state must be a dict, got {type(state).__name__}")
    for i in range(start, n):
        p = group_params[i]
        if isinstance(p, Tensor):
            g = (<Tensor>p)._grad
        else:
            g = p.grad
        if g is None:
            continue
        st = PyDict_GetItem(state, p)
        if st != NULL and not isinstance(<object>st, dict):
            raise TypeError(f"the optimizer state of parameter {i} of its group must be a dict, "
                            f"got {type(<object>st).__name__}")
        if st == NULL or not <dict>st:
            if create:
                return i
            params.append(p)
            grads.append(g)
            for k in range(nk):
                (<list>outs[k]).append(None)
            continue
        params.append(p)
        grads.append(g)
        for k in range(nk):
            (<list>outs[k]).append((<dict>st)[keys[k]] if create else (<dict>st).get(keys[k]))
    return -1


cdef enum:
    MAX_HYPER = 16    # hyperparameter names a group batching key may have


cdef inline bint _plain_scalar(object v) noexcept:
    cdef type t = type(v)
    return t is float or t is int or t is bool or v is None


cdef bint _plain(object v) noexcept:
    # A value batching may compare with ==: a plain number, flag or None, or a tuple of those.
    cdef Py_ssize_t k
    if _plain_scalar(v):
        return True
    if type(v) is not tuple:
        return False
    for k in range(len(<tuple>v)):
        if not _plain_scalar((<tuple>v)[k]):
            return False
    return True


cdef object _merge(list groups, Py_ssize_t start, Py_ssize_t stop):
    # One group standing for groups[start:stop]: the first group's settings over all their
    # params, in order (the group itself when the run has one).
    cdef dict batch
    cdef list params
    cdef Py_ssize_t i
    if stop - start == 1:
        return groups[start]
    batch = dict(<dict>groups[start])
    params = []
    for i in range(start, stop):
        ps = (<dict>groups[i])["params"]
        if type(ps) is list:
            params += <list>ps
        else:
            params.extend(ps)
    batch["params"] = params
    return batch


cdef bint _runs_same(StepCache cc, list groups, tuple names) noexcept:
    # Whether cc's record of the last batching still holds: the same list of the same group
    # dicts, none changed since (version tags: the values are the same objects, so the plain
    # ones compare as they did and the others still keep their group apart), and each params
    # list of a merged run holding what the merged list holds, in order.
    cdef Py_ssize_t i, j, k, n = cc.runs_n, m, start = 0
    cdef PyObject *g
    cdef PyObject *lst
    cdef PyObject *merged
    if not FO_DICT_VERSION or groups is not cc.runs_groups:
        return False
    if names is not cc.runs_names and names != cc.runs_names:   # (tuples of str: no user ==)
        return False
    if len(groups) != n:
        return False
    for i in range(n):
        g = _list_item(groups, i)
        if g != cc.runs_dicts[i] or fo_dict_version(g) != cc.runs_versions[i]:
            return False
        if len(<list>cc.runs_dicts[n + i]) != cc.runs_lens[i]:
            return False
    k = 0
    while start < n:
        if cc.runs_stop[start] - start > 1:     # a merged run: its list against the groups'
            merged = <PyObject *>((<dict>_list_item(cc.runs_out, k))["params"])
            m = 0
            for i in range(start, cc.runs_stop[start]):
                lst = cc.runs_dicts[n + i]
                for j in range(cc.runs_lens[i]):
                    if _list_item(<list>lst, j) != _list_item(<list>merged, m):
                        return False
                    m += 1
        start = cc.runs_stop[start]
        k += 1
    return True


cdef int _runs_record(StepCache cc, list groups, tuple names, list out,
                      list starts) except -1:
    # Record a batching in cc (only when every group's params is a list: _merge's case).
    cdef Py_ssize_t i, r, n = len(groups)
    cdef object ps, g
    cdef list held
    cdef char *mem
    cdef size_t per = 2 * sizeof(PyObject *) + sizeof(uint64_t) + 2 * sizeof(Py_ssize_t)
    cc.runs_groups = None
    cc.runs_held = None
    cc.runs_out = None
    if not FO_DICT_VERSION:
        return 0
    for i in range(n):
        if type((<dict>groups[i]).get("params")) is not list:
            return 0
    if n > cc.runs_cap or cc.runs_dicts == NULL:
        mem = <char *>PyMem_Malloc(n * per if n else 1)
        if mem == NULL:
            raise MemoryError()
        PyMem_Free(cc.runs_dicts)
        cc.runs_dicts = <PyObject **>mem
        cc.runs_cap = n
    cc.runs_versions = <uint64_t *>(cc.runs_dicts + 2 * n)
    cc.runs_lens = <Py_ssize_t *>(cc.runs_versions + n)
    cc.runs_stop = cc.runs_lens + n
    held = []
    for i in range(n):
        g = groups[i]
        ps = (<dict>g)["params"]
        held.append(g)
        held.append(ps)
        cc.runs_dicts[i] = <PyObject *>g
        cc.runs_dicts[n + i] = <PyObject *>ps
        cc.runs_versions[i] = fo_dict_version(<PyObject *>g)
        cc.runs_lens[i] = len(<list>ps)
    for r in range(len(starts)):     # (only a run's first group's entry is read)
        cc.runs_stop[<Py_ssize_t>starts[r]] = (<Py_ssize_t>starts[r + 1] if r + 1 < len(starts)
                                               else n)
    cc.runs_held, cc.runs_out, cc.runs_n = held, out, n
    cc.runs_groups, cc.runs_names = groups, names
    return 0


def _batch_groups(list groups, tuple names, StepCache cache=None):
    """``groups`` with each run of consecutive groups whose values under ``names`` are equal
    merged into one group (the body of ``Optimizer._batched_groups``; see there).

    Values are compared only when both are plain (float, int, bool, None, or a tuple of those),
    with ``==``; a group holding anything else under ``names`` is never merged, so no value's
    own ``==`` ever runs.  A missing name raises KeyError, as the class's lookup would.

    ``cache`` (the optimizer's first StepCache) keeps the result, and the next call returns it
    again (the same list) when nothing it depends on changed: the same ``groups`` list of the
    same dicts, each unchanged since (its version tag, PEP 509), and every params list of a
    merged run holding the same params.  Why: with one group per param, looking up every
    group's settings again and merging the runs anew cost ~1,170 instructions a group on every
    step (callgrind, Adamax, 1000 groups), over dicts the kernel's pass had pushed out of the
    caches; the re-check costs ~44 and reads three cache lines a group.
    """
    cdef Py_ssize_t n = len(groups), nk = len(names), i, k, start = 0
    cdef PyObject *prev[MAX_HYPER]
    cdef PyObject *cur[MAX_HYPER]
    cdef PyObject *v
    cdef bint prev_plain = False, cur_plain, same
    cdef object g
    cdef list out = [], starts = []
    if cache is not None and _runs_same(cache, groups, names):
        return cache.runs_out
    if nk > MAX_HYPER:
        raise ValueError(f"_batch_groups: at most {MAX_HYPER} names, got {nk}")
    for i in range(n):
        g = groups[i]
        if not isinstance(g, dict):
            raise TypeError(f"param group {i} must be a dict, got {type(g).__name__}")
        cur_plain = True
        for k in range(nk):
            v = PyDict_GetItemWithError(g, names[k])    # (an error in a key's hash propagates)
            if v == NULL:
                raise KeyError(names[k])
            cur[k] = v
            if cur_plain and not _plain(<object>v):
                cur_plain = False
        # Borrowed references: nothing below runs Python code that could change a group (plain
        # values compare with the builtin ==), and each pointer is used before the next group.
        same = i > 0 and cur_plain and prev_plain
        k = 0
        while same and k < nk:
            if cur[k] != prev[k]:
                same = PyObject_RichCompareBool(<object>cur[k], <object>prev[k], Py_EQ) == 1
            k += 1
        if i > 0 and not same:
            out.append(_merge(groups, start, i))
            starts.append(start)
            start = i
        memcpy(prev, cur, nk * sizeof(PyObject *))
        prev_plain = cur_plain
    if n:
        out.append(_merge(groups, start, n))
        starts.append(start)
    if cache is not None:
        _runs_record(cache, groups, names, out, starts)
    return out


# ---- threads ---------------------------------------------------------------------------------

def _set_num_threads(int n):
    """Set the OpenMP thread count used by the kernels (no-op in a serial build).  For tests."""
    if n < 1:
        raise ValueError(f"_set_num_threads: n must be >= 1, got {n}")
    fo_optim_set_threads(n)


def _get_num_threads():
    """The OpenMP thread count the kernels will use (1 in a serial build)."""
    return fo_optim_get_threads()


# ==== model averaging (swa_utils.AveragedModel) =================================================
# The careful caller of fo_average (csrc/optim_average.c): proves the call safe, then makes one
# C call per dtype present for all of a model's tensors.

from fastoptim._C.kernels cimport (
    FO_AVERAGE_LERP, FO_AVERAGE_MEAN, fo_average_f32, fo_average_f64,
)


cdef struct AvgSpan:
    uintptr_t lo
    uintptr_t hi
    Py_ssize_t written  # an averaged array (must overlap nothing); as wide as the others, so
    Py_ssize_t index    # that the struct has no padding and two span lists compare by memcmp


# The spans (in call order) of the last _average call whose overlap check passed: a training
# loop averages the same arrays every step, and the same spans get the same verdict, so the
# sort and sweep run only when the spans differ from the last ones proven safe.
cdef AvgSpan *_avg_proven = NULL
cdef Py_ssize_t _avg_nproven = -1


cdef int _avg_span_cmp(const void *a, const void *b) noexcept nogil:
    cdef uintptr_t x = (<const AvgSpan *>a).lo, y = (<const AvgSpan *>b).lo
    return -1 if x < y else (1 if x > y else 0)


cdef cnp.ndarray _avg_array(str op, str name, Py_ssize_t i, object x):
    # The storage of a fastoptim Tensor, or a numpy array itself.
    if isinstance(x, Tensor):
        return (<Tensor>x)._np
    if isinstance(x, cnp.ndarray):
        return <cnp.ndarray>x
    raise TypeError(f"{op}: {name}[{i}] must be a fastoptim Tensor or a numpy.ndarray, got "
                    f"{type(x).__name__}")


cdef void _avg_remember(const AvgSpan *spans, Py_ssize_t nspans) noexcept:
    # Keep the spans just proven safe (forget them when there is no memory for them).
    global _avg_proven, _avg_nproven
    cdef AvgSpan *keep = <AvgSpan *>PyMem_Realloc(_avg_proven,
                                                   max(nspans, 1) * sizeof(AvgSpan))
    if keep == NULL:
        PyMem_Free(_avg_proven)
        _avg_proven, _avg_nproven = NULL, -1
        return
    memcpy(keep, spans, nspans * sizeof(AvgSpan))
    _avg_proven, _avg_nproven = keep, nspans


def _average(list averaged, list model, int mode, double weight):
    """Average ``model`` into ``averaged`` in place, all tensors in one C call per dtype:
    ``mode`` 0 is ATen's lerp ``averaged += weight * (model - averaged)`` (EMA, SWA), 1 the
    running mean ``averaged += (model - averaged) / weight`` (see fastoptim.h, fo_average).

    Both lists hold fastoptim Tensors or numpy arrays; ``averaged[i]`` and ``model[i]`` must
    have the same shape and dtype (float32 or float64, native byte order, C-contiguous),
    ``averaged[i]`` must be writeable and overlap no other array of the call (the model's may
    overlap each other).  Everything is checked before anything is written."""
    cdef str op = "_average"
    cdef Py_ssize_t n = len(averaged), i, k, n32 = 0, n64 = 0, nspans = 0, j
    cdef cnp.ndarray a, m
    cdef int ta
    cdef void **ptrs = NULL
    cdef int64_t *numels = NULL
    cdef AvgSpan *spans = NULL
    cdef AvgSpan *ordered = NULL
    cdef uintptr_t max_any = 0, max_written = 0
    cdef int64_t total = 0
    cdef PyThreadState *ts
    cdef Py_ssize_t w_any = -1, w_written = -1
    if mode != FO_AVERAGE_LERP and mode != FO_AVERAGE_MEAN:
        raise ValueError(f"{op}: mode must be 0 (lerp) or 1 (running mean), got {mode}")
    if len(model) != n:
        raise ValueError(f"{op}: averaged and model must have the same length, got {n} and "
                         f"{len(model)}")
    if n == 0:
        return
    mem = PyMem_Malloc(4 * n * sizeof(void *) + 2 * n * sizeof(int64_t) + 4 * n * sizeof(AvgSpan))
    if mem == NULL:
        raise MemoryError()
    ptrs = <void **>mem
    numels = <int64_t *>(ptrs + 4 * n)
    spans = <AvgSpan *>(numels + 2 * n)
    ordered = spans + 2 * n
    try:
        # pass 1: check every pair; float32 pointers fill from the front, float64 from n on
        for i in range(n):
            a = _avg_array(op, "averaged", i, averaged[i])
            m = _avg_array(op, "model", i, model[i])
            ta = cnp.PyArray_TYPE(a)
            if not cnp.PyArray_ISNOTSWAPPED(a) or (ta != cnp.NPY_FLOAT32
                                                   and ta != cnp.NPY_FLOAT64):
                raise TypeError(f"{op}: averaged[{i}] must be float32 or float64 (native byte "
                                f"order), got {a.dtype}")
            if cnp.PyArray_TYPE(m) != ta or not cnp.PyArray_ISNOTSWAPPED(m):
                raise TypeError(f"{op}: model[{i}] must have averaged[{i}]'s dtype {a.dtype}, "
                                f"got {m.dtype}")
            if (a.ndim != m.ndim
                    or memcmp(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(m),
                              a.ndim * sizeof(cnp.npy_intp)) != 0):
                raise ValueError(f"{op}: model[{i}] must have averaged[{i}]'s shape "
                                 f"{(<object>a).shape}, got {(<object>m).shape}")
            if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_IS_C_CONTIGUOUS(m):
                raise ValueError(f"{op}: averaged[{i}] and model[{i}] must be C-contiguous")
            if not cnp.PyArray_ISALIGNED(a) or not cnp.PyArray_ISALIGNED(m):
                raise ValueError(f"{op}: averaged[{i}] and model[{i}] must be aligned "
                                 "(the kernel loads whole floats)")
            if not cnp.PyArray_ISWRITEABLE(a):
                raise ValueError(f"{op}: averaged[{i}] must be writeable")
            k = n32 if ta == cnp.NPY_FLOAT32 else n + n64
            ptrs[k] = cnp.PyArray_DATA(a)
            ptrs[2 * n + k] = cnp.PyArray_DATA(m)
            numels[k] = cnp.PyArray_SIZE(a)
            if ta == cnp.NPY_FLOAT32:
                n32 += 1
            else:
                n64 += 1
            if numels[k] > 0:
                spans[nspans].lo = <uintptr_t>cnp.PyArray_DATA(a)
                spans[nspans].hi = spans[nspans].lo + <uintptr_t>cnp.PyArray_NBYTES(a)
                spans[nspans].written = 1
                spans[nspans].index = i
                spans[nspans + 1].lo = <uintptr_t>cnp.PyArray_DATA(m)
                spans[nspans + 1].hi = spans[nspans + 1].lo + <uintptr_t>cnp.PyArray_NBYTES(m)
                spans[nspans + 1].written = 0
                spans[nspans + 1].index = i
                nspans += 2
                total += numels[k]
        # pass 2: no averaged array overlaps another array (a sweep over the sorted spans),
        # unless these are the spans last proven so
        if nspans != _avg_nproven or memcmp(spans, _avg_proven,
                                             nspans * sizeof(AvgSpan)) != 0:
            memcpy(ordered, spans, nspans * sizeof(AvgSpan))
            qsort(ordered, nspans, sizeof(AvgSpan), _avg_span_cmp)
            for j in range(nspans):
                if ordered[j].written and ordered[j].lo < max_any:
                    raise ValueError(f"{op}: averaged[{ordered[j].index}] overlaps another "
                                     f"array of the call (model[{w_any}] or averaged[{w_any}])")
                if not ordered[j].written and ordered[j].lo < max_written:
                    raise ValueError(f"{op}: model[{ordered[j].index}] overlaps "
                                     f"averaged[{w_written}]")
                if ordered[j].hi > max_any:
                    max_any, w_any = ordered[j].hi, ordered[j].index
                if ordered[j].written and ordered[j].hi > max_written:
                    max_written, w_written = ordered[j].hi, ordered[j].index
            _avg_remember(spans, nspans)
        # the update: one C call per dtype, without the GIL when it is worth dropping
        ts = PyEval_SaveThread() if total >= NOGIL_MIN_ELEMS else NULL
        if n32:
            fo_average_f32(<float **>ptrs, <const float **>(ptrs + 2 * n), numels, n32, mode,
                           weight)
        if n64:
            fo_average_f64(<double **>(ptrs + n), <const double **>(ptrs + 3 * n), numels + n,
                           n64, mode, weight)
        if ts != NULL:
            PyEval_RestoreThread(ts)
    finally:
        PyMem_Free(mem)


# ==== learning-rate schedulers ===================================================================

include "_optim_lr.pxi"


def _all_floating(list tensors):
    """Whether every item is a fastoptim Tensor of float32 or float64 (so that a list can go
    to ``_average`` in one call without being grouped by dtype first)."""
    cdef object t
    cdef int tnum
    for t in tensors:
        if not isinstance(t, Tensor):
            return False
        tnum = (<Tensor>t)._tnum
        if tnum != cnp.NPY_FLOAT32 and tnum != cnp.NPY_FLOAT64:
            return False
    return True


def _unique_values(list registries):
    """The non-None values of the dicts ``registries`` (a module tree's ``_parameters`` or
    ``_buffers``, in ``modules()`` order), each object once, in order: what
    ``Module.parameters()`` / ``buffers()`` yield, collected at C level.

    Objects are told apart by identity, as torch's memo (no ``__eq__`` runs), through an
    open-addressing table of their addresses (no Python object per value)."""
    cdef list out = []
    cdef object reg, v
    cdef Py_ssize_t total = 0, bits = 4, mask, h
    cdef uintptr_t key
    cdef uintptr_t *table
    for reg in registries:
        total += len(reg)
    while (<Py_ssize_t>1 << bits) < 2 * total:    # at most half full
        bits += 1
    mask = (<Py_ssize_t>1 << bits) - 1
    table = <uintptr_t *>PyMem_Malloc((mask + 1) * sizeof(uintptr_t))
    if table == NULL:
        raise MemoryError()
    memset(table, 0, (mask + 1) * sizeof(uintptr_t))
    try:
        for reg in registries:
            for v in (<dict>reg).values():
                if v is None:
                    continue
                key = <uintptr_t><PyObject *>v
                # Fibonacci hashing: the high bits of key * 2**64/phi
                h = <Py_ssize_t>((<uint64_t>key * <uint64_t>0x9E3779B97F4A7C15ULL) >> (64 - bits))
                while table[h] != 0 and table[h] != key:
                    h = (h + 1) & mask
                if table[h] == 0:
                    table[h] = key
                    out.append(v)
    finally:
        PyMem_Free(table)
    return out


# ---- torch params: the steady step's sync (fastoptim/optim/_torch_params.py) -----------------

cdef class MirrorGrad:
    """The grad part of a torch param's mirror (``_torch_params._Mirror`` extends it): the
    torch grad its kernel view's grad was made from, that grad's ``data_ptr()`` and shape
    then, and the view.  A C struct so that ``TorchSteady._rebind`` notes a new grad with
    four pointer writes (as Python attributes of a ``__slots__`` class they cost ~1.8k
    instructions per param per step, a tenth of the step with new grads)."""
    cdef public object grad
    cdef public size_t grad_ptr
    cdef public object grad_shape
    cdef public object grad_view

    def __cinit__(self):
        self.grad_ptr = 0


cdef class TorchSteady:
    """What a step over torch params synced last time, so that the next step can tell, at C
    level, that nothing needs syncing (``TorchParams.run_step``).

    Why: the sync of the torch params' grads and state with their kernel views ran in Python,
    a few microseconds per param per step.  A steady step changes none of it: each param's
    ``.grad`` is the same torch tensor (``zero_grad(set_to_none=False)``, accumulation, grads
    set once), its storage has not moved (``data_ptr()``) nor changed shape (``p.data =
    p.data.view(...)`` and ``p.resize_(...)`` keep the address: the kernel view would keep the
    old shape and size) nor dtype (``p.data = p.data.view(torch.complex64)`` of a float64 param
    keeps address and shape: the kernel would write float64 arithmetic into it), nor has the
    grad's (``p.grad.data = x``, ``set_`` and ``resize_`` swap a grad's memory on the same
    object: the view would read the old memory; ``p.grad.data = p.grad.data.view(torch.int32)``
    keeps address and shape: the view would read int32 bits as floats), its view's grad
    is still that grad's view, and neither the optimizer's state dict nor the param's state
    dict changed (their version tags, as in StepCache; without them this check always says
    "sync").  A new grad tensor in place of the old one (torch's default loop:
    ``zero_grad(set_to_none=True)``, backward), or the old one over other memory, is no reason
    to sync: ``_rebind`` checks it and binds its view here.  ``check`` says whether all of that
    holds (by handing out the kernel groups, or None); ``record`` notes it after a sync.  Every
    param reads four facts (``grad``, ``data_ptr()``, ``shape``, ``dtype``), and its grad three
    (``data_ptr()``, ``shape``, ``dtype``); nothing is looked up by a torch tensor's
    Python-level hash.

    What those reads cost is torch's bindings (callgrind, per read over nn.Parameters, above
    a bare Python loop: ``.grad`` 610, ``data_ptr()`` 720, ``shape`` 1030, the grad's
    ``data_ptr()`` 680 and ``shape`` 980; under ``DisableTorchFunctionSubclass`` the same, so
    the ``__torch_function__`` test is not the cost; ``size()`` 1320, ``dim()`` 590,
    ``_version`` 520, the unbound ``TensorBase.data_ptr`` 740, the getset's ``__get__`` 990:
    none is a cheaper way to the same facts from Python).  From C, for torch.Tensor and
    nn.Parameter objects, the reads call TensorBase's getset ``get`` and method functions
    directly (``fo_tr_get``, ``fo_tr_call``: only where that is provably what Python's
    attribute access would do): SGD momentum over 1000 params x 1024, per param per step,
    reused grads 7.67k to 6.71k instructions, new grads every step 11.83k to 10.28k.  The
    kernel groups (the user's group dicts with the views as "params") are kept and handed out
    again while neither the user's group dict nor the kernel's changed (version tags), not
    copied per group per step: the per-group cost of one group per param.
    """
    cdef Py_ssize_t n
    cdef list params              # the torch params, in group order (held)
    cdef list grads               # their grads as synced (held; None allowed)
    cdef list views               # their kernel views (held)
    cdef list grad_views          # the views' grads as synced (held; None allowed)
    cdef list shapes              # the params' shapes (torch.Size) as synced
    cdef list dtypes              # the params' dtypes (torch's singletons) as synced
    cdef list mirrors             # their _torch_params._Mirror objects (MirrorGrad; held)
    cdef object strided           # torch.strided
    cdef list grad_shapes         # their grads' shapes as synced (None for no grad)
    cdef uintptr_t *ptrs
    cdef uintptr_t *grad_ptrs     # their grads' data_ptr() as synced
    cdef PyObject **states        # each param's torch state dict, or NULL (borrowed)
    cdef uint64_t *versions       # their version tags
    cdef object tstate            # the optimizer's torch state dict (held)
    cdef uint64_t tstate_version
    cdef object kstate            # the kernel views' state dict (held)
    cdef uint64_t kstate_version
    cdef PyObject **kstates       # each view's state dict, or NULL (borrowed)
    cdef uint64_t *kversions
    cdef Py_ssize_t ngroups
    cdef list kgroups             # the kernel groups handed out (held)
    cdef list group_views         # their "params" lists (held)
    cdef uint64_t *gversions      # the user's group dicts' version tags when each was made
    cdef uint64_t *kgversions     # the kernel group dicts' version tags then
    cdef bint valid

    def __dealloc__(self):
        PyMem_Free(self.ptrs)
        PyMem_Free(self.gversions)

    def __reduce__(self):
        return (TorchSteady, ())

    def invalidate(self):
        self.valid = False

    def record(self, list params, list grads, list views, list ptrs, list shapes, list dtypes,
               list grad_ptrs, list grad_shapes, object tstate, object kstate,
               list groups, list kgroups, list mirrors, object strided):
        """Note the sync just made: params, their grads, views, data pointers, shapes and
        dtypes, the
        grads' data pointers and shapes, both state dicts (the torch one and the views' one)
        as they are now, and the user's groups with the kernel groups made of them."""
        cdef Py_ssize_t i, n = len(params), ng = len(groups)
        cdef char *mem
        cdef PyObject *st
        cdef dict g
        self.valid = False
        if (not FO_DICT_VERSION or not isinstance(tstate, dict) or not isinstance(kstate, dict)
                or len(kgroups) != ng):
            return
        torch = sys.modules["torch"]
        fo_treads_note(torch._C.TensorBase, torch.Tensor, torch.nn.Parameter)
        PyMem_Free(self.ptrs)
        self.ptrs = NULL
        PyMem_Free(self.gversions)
        self.gversions = NULL
        mem = <char *>PyMem_Malloc(n * (2 * sizeof(uintptr_t) + 2 * sizeof(PyObject *)
                                        + 2 * sizeof(uint64_t)) + 1)
        if mem == NULL:
            raise MemoryError()
        self.ptrs = <uintptr_t *>mem
        self.grad_ptrs = self.ptrs + n
        self.states = <PyObject **>(self.grad_ptrs + n)
        self.versions = <uint64_t *>(self.states + n)
        self.kstates = <PyObject **>(self.versions + n)
        self.kversions = <uint64_t *>(self.kstates + n)
        self.gversions = <uint64_t *>PyMem_Malloc(2 * ng * sizeof(uint64_t) + 1)
        if self.gversions == NULL:
            raise MemoryError()
        self.kgversions = self.gversions + ng
        for i in range(n):
            self.ptrs[i] = <uintptr_t>ptrs[i]
            self.grad_ptrs[i] = <uintptr_t>grad_ptrs[i]
            st = PyDict_GetItemWithError(<dict>tstate, params[i])
            self.states[i] = st
            self.versions[i] = fo_dict_version(st) if st != NULL else 0
            st = PyDict_GetItemWithError(<dict>kstate, views[i])
            self.kstates[i] = st
            self.kversions[i] = fo_dict_version(st) if st != NULL else 0
        for i in range(ng):
            g = <dict?>groups[i]
            self.gversions[i] = fo_dict_version(<PyObject *>g)
            g = <dict?>kgroups[i]
            self.kgversions[i] = fo_dict_version(<PyObject *>g)
        self.params, self.grads, self.views, self.shapes = params, grads, views, shapes
        self.dtypes = dtypes
        self.mirrors, self.strided = mirrors, strided
        self.grad_shapes = grad_shapes
        self.grad_views = [(<Tensor>v)._grad for v in views]
        self.kgroups = list(kgroups)
        self.group_views = [(<dict?>kg)["params"] for kg in kgroups]
        self.ngroups = ng
        self.tstate = tstate
        self.tstate_version = fo_dict_version(<PyObject *>tstate)
        self.kstate = kstate
        self.kstate_version = fo_dict_version(<PyObject *>kstate)
        self.n = n
        self.valid = True

    def check(self, list groups, object tstate):
        """The kernel groups for ``groups`` (dicts with "params") if their params are those
        recorded, in order, and nothing of theirs changed since (see the class); else None."""
        if (not self.valid or tstate is not self.tstate
                or fo_dict_version(<PyObject *>tstate) != self.tstate_version
                or len(groups) != self.ngroups
                or not self._unchanged(groups)):
            return None
        return self._kernel_groups(groups)

    cdef bint _unchanged(self, list groups) except -1:
        """The per-param part of ``check``."""
        cdef Py_ssize_t i = 0, j, m
        cdef object group, ps, p, g, old
        cdef PyObject *st
        for group in groups:
            ps = (<dict?>group)["params"]
            if type(ps) is not list:
                return False
            m = len(<list>ps)
            if i + m > self.n:
                return False
            for j in range(m):
                p = (<list>ps)[j]
                if p is not self.params[i]:
                    return False
                g = fo_tr_get(p, FO_TR_GRAD)
                old = self.grads[i]
                if (g is None) != (old is None):
                    return False      # what the step writes and bumps changes: a sync
                if <uintptr_t>fo_tr_call(p, FO_TR_DATA_PTR) != self.ptrs[i]:
                    return False
                if fo_tr_get(p, FO_TR_SHAPE) != self.shapes[i]:
                    return False
                if fo_tr_get(p, FO_TR_DTYPE) is not self.dtypes[i]:
                    return False
                if g is not old:
                    # a new grad (zero_grad(set_to_none=True), then backward): bound here
                    if not self._rebind(i, g):
                        return False
                elif (<Tensor>self.views[i])._grad is not self.grad_views[i]:
                    return False
                elif g is not None and (
                        <uintptr_t>fo_tr_call(g, FO_TR_DATA_PTR) != self.grad_ptrs[i]
                        or fo_tr_get(g, FO_TR_SHAPE) != self.grad_shapes[i]
                        or fo_tr_get(g, FO_TR_DTYPE) is not self.dtypes[i]):
                    # the same grad object over other memory (.data =, set_, resize_), or
                    # viewed as another dtype in place (g.data = g.data.view(torch.int32))
                    if not self._rebind(i, g):
                        return False
                st = self.states[i]
                if st != NULL and fo_dict_version(st) != self.versions[i]:
                    return False
                i += 1
        return i == self.n

    cdef bint _rebind(self, Py_ssize_t i, object g) except -1:
        """Point param i's view's grad at a view of ``g``'s memory, after the checks of the
        sync's ``_check_grad`` (layout, device, dtype and shape the param's, contiguous, not a
        negated view); also
        note it in the param's mirror, so that a sync after it finds the grad bound.  False
        when a check fails (the sync then runs and raises its message), or for an empty grad.

        Why here: with torch's default ``zero_grad(set_to_none=True)`` autograd makes a new
        grad tensor per param per step; binding it in Python (``_check_grad``, then torch's
        ``__dlpack__`` and numpy's importer) cost ~30 us per param.  Here it is the torch
        reads the checks need and one numpy array header over ``g.data_ptr()``.

        The header's base is ``g`` itself, which keeps ``g`` alive but not its memory if ``g``
        is later given other memory (``g.data = x``, ``set_``, ``resize_``).  That is safe
        because every reader of a grad view first checks that its grad's ``data_ptr()`` and
        shape are still the view's (``_unchanged`` here; ``_bind_grad`` in the sync and
        after LBFGS's closure calls), with no user code between that check and the kernel
        reading the view; a stale view is only rebound, never read.  (A ``detach()`` as the
        base would hold the old memory, but cost ~3.5k instructions per param per step: a
        fifth of the step with new grads.)"""
        cdef object gs
        cdef MirrorGrad m
        cdef tuple dims_t
        cdef uintptr_t ptr
        cdef Tensor v = <Tensor>self.views[i]
        cdef Tensor gv
        cdef cnp.ndarray arr
        cdef cnp.npy_intp dims[32]
        cdef int d, nd
        if (fo_tr_get(g, FO_TR_LAYOUT) is not self.strided or not fo_tr_get(g, FO_TR_IS_CPU)
                or fo_tr_get(g, FO_TR_DTYPE) is not self.dtypes[i]):
            return False
        if fo_tr_call(g, FO_TR_IS_NEG):   # a lazily negated view: refused by the sync, named
            return False
        gs = fo_tr_get(g, FO_TR_SHAPE)
        if gs != self.shapes[i] or not fo_tr_call(g, FO_TR_IS_CONTIGUOUS):
            return False
        if not isinstance(gs, tuple):      # torch.Size is a tuple subclass
            return False
        dims_t = <tuple>gs
        nd = len(dims_t)
        if nd > 32:
            return False
        for d in range(nd):
            dims[d] = dims_t[d]
        ptr = <uintptr_t>fo_tr_call(g, FO_TR_DATA_PTR)
        if ptr == 0:
            return False
        arr = cnp.PyArray_SimpleNewFromData(nd, dims, v._tnum, <void *>ptr)
        cnp.set_array_base(arr, g)
        gv = _adopt(arr)
        v._grad = gv
        self.grads[i] = g
        self.grad_ptrs[i] = ptr
        self.grad_shapes[i] = gs
        self.grad_views[i] = gv
        m = <MirrorGrad?>self.mirrors[i]
        m.grad, m.grad_ptr, m.grad_shape, m.grad_view = g, ptr, gs, gv
        return True

    cdef list _kernel_groups(self, list groups):
        """The kernel groups: the kept ones, but a fresh copy (the views as "params") of each
        user group that changed since (an lr a scheduler set) or whose copy did."""
        cdef Py_ssize_t gi
        cdef dict g, kg
        for gi in range(self.ngroups):
            g = <dict?>groups[gi]
            kg = <dict>self.kgroups[gi]
            if (fo_dict_version(<PyObject *>g) != self.gversions[gi]
                    or fo_dict_version(<PyObject *>kg) != self.kgversions[gi]):
                kg = dict(g)
                kg["params"] = self.group_views[gi]
                self.kgroups[gi] = kg
                self.gversions[gi] = fo_dict_version(<PyObject *>g)
                self.kgversions[gi] = fo_dict_version(<PyObject *>kg)
        return list(self.kgroups)

    def kernel_unchanged(self, object kstate):
        """Whether the views' state is as recorded (the step made or replaced no state, so
        the torch side needs nothing published)."""
        cdef Py_ssize_t i
        cdef PyObject *st
        if (not self.valid or kstate is not self.kstate
                or fo_dict_version(<PyObject *>kstate) != self.kstate_version):
            return False
        for i in range(self.n):
            st = self.kstates[i]
            if st != NULL and fo_dict_version(st) != self.kversions[i]:
                return False
        return True
