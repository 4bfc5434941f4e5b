# dtypes (fastoptim.float32 ...), Size, and the numpy C-API helpers every area uses, including
# ``_kern``: the one place the float32/float64 dispatch is written.

# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------

cdef class dtype:
    """A tensor element type (``fastoptim.float32`` ...); compare with ``is`` or ``==``."""
    cdef readonly str name
    cdef readonly object _np_dtype
    cdef readonly int _typenum
    cdef readonly bint is_floating_point
    cdef readonly int itemsize
    cdef readonly str _legacy

    def __repr__(self):
        return "fastoptim." + self.name

    def __reduce__(self):
        return (_dtype_by_name, (self.name,))


cdef dtype _make_dtype(str name, object npd, str legacy):
    cdef dtype d = dtype.__new__(dtype)
    d.name = name
    d._np_dtype = np.dtype(npd)
    d._typenum = d._np_dtype.num
    d.is_floating_point = d._np_dtype.kind == "f"
    d.itemsize = d._np_dtype.itemsize
    d._legacy = legacy
    return d


float32 = _make_dtype("float32", np.float32, "FloatTensor")
float64 = _make_dtype("float64", np.float64, "DoubleTensor")
int64 = _make_dtype("int64", np.int64, "LongTensor")
int32 = _make_dtype("int32", np.int32, "IntTensor")
bool_ = _make_dtype("bool", np.bool_, "BoolTensor")
_DTYPES = {d.name: d for d in (float32, float64, int64, int32, bool_)}
_BY_TYPENUM = {d._typenum: d for d in (float32, float64, int64, int32, bool_)}


def _dtype_by_name(name):
    return _DTYPES[name]


cdef dtype _default_dtype = float32


def get_default_dtype():
    """The dtype of tensors made from Python floats (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(d):
    """Set the default floating dtype (float32 or float64), as torch.set_default_dtype."""
    global _default_dtype
    d = _to_dtype(d)
    if d is not float32 and d is not float64:
        raise TypeError("only floating-point types are supported as the default type")
    _default_dtype = d


cdef dtype _to_dtype(object d):
    """Accept a fastoptim dtype, a numpy dtype/type or a dtype name."""
    if isinstance(d, dtype):
        return <dtype>d
    try:
        npd = np.dtype(d)
    except TypeError:
        raise TypeError(f"dtype must be a fastoptim dtype such as fastoptim.float32, got {d!r}")
    r = _BY_TYPENUM.get(npd.num)
    if r is None:
        if npd.kind == "i" or npd.kind == "u":
            return int64
        raise TypeError(f"unsupported dtype {d!r}: fastoptim supports float32, float64, int64, "
                        "int32 and bool")
    return <dtype>r


cdef inline dtype _dtype_of(cnp.ndarray arr):
    r = _BY_TYPENUM.get(cnp.PyArray_TYPE(arr))
    if r is None:
        raise TypeError(f"unsupported numpy dtype {arr.dtype}: fastoptim supports float32, "
                        "float64, int64, int32 and bool")
    return <dtype>r


# torch's device type names: any of them builds a device, only 'cpu' holds tensors here
_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                 "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                 "privateuseone")


class device:
    """Where a tensor lives, as torch.device: ``device('cpu')``, ``device('cpu:0')``,
    ``device('cpu', 0)``.  Other device types can be named (torch.device('cuda') builds too),
    but fastoptim holds tensors on the CPU only: using one raises."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            if index is not None:
                raise RuntimeError("device(): when a device is given, no index may be given")
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device() received an invalid combination of arguments - got "
                            f"({type.__class__.__name__}), but expected a device string such "
                            "as 'cpu' (fastoptim has no accelerator to number)")
        name, sep, idx = type.partition(":")
        if name not in _DEVICE_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at "
                               f"start of device string: {type}")
        if sep:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was "
                                   f"passed explicitly: {type}")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(idx)
        if index is not None:
            index = int(index)
            if index < 0:
                raise RuntimeError("Device index must not be negative")
        self.type, self.index = name, index

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))


_CPU = device("cpu")


def _check_device(dev):
    """Accept what names the CPU (None, 'cpu', 'cpu:0', device('cpu')); refuse anything else,
    naming it."""
    if dev is None or dev is _CPU:
        return
    if isinstance(dev, str) or isinstance(dev, device):
        d = device(dev)
        if d.type == "cpu" and (d.index is None or d.index == 0):
            return
        raise RuntimeError(f"fastoptim runs on the CPU only; device '{d}' is not supported (see "
                           "README.md, 'Known differences')")
    if isinstance(dev, int) and not isinstance(dev, bool):
        raise RuntimeError(f"fastoptim runs on the CPU only; device {dev} (an accelerator index) "
                           "is not supported (see README.md, 'Known differences')")
    raise TypeError(f"device must be a string such as 'cpu' or a fastoptim.device, got "
                    f"{type(dev).__name__}")


def set_default_device(dev):
    """As torch.set_default_device: only the CPU (or None) can be the default here."""
    _check_device(dev)


def get_default_device():
    return _CPU


class Size(tuple):
    """The shape of a tensor: a tuple, printed as torch prints its Size."""

    def __repr__(self):
        return f"fastoptim.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n



# ---------------------------------------------------------------------------------------------
# array helpers (numpy C API: no Python-level numpy calls on the hot path)
# ---------------------------------------------------------------------------------------------

cdef inline object _shp(object a):
    """A numpy array's shape as a Python tuple (typed ndarrays expose a C pointer instead),
    built from its dims: the generic `.shape` attribute lookup was ~300 instructions of a
    64 x 10 x.sum()."""
    cdef int nd, i
    cdef cnp.npy_intp *dims
    cdef tuple t
    cdef object v
    if not cnp.PyArray_Check(a):
        return (<object>a).shape
    nd = cnp.PyArray_NDIM(<cnp.ndarray>a)
    dims = cnp.PyArray_DIMS(<cnp.ndarray>a)
    t = PyTuple_New(nd)
    for i in range(nd):
        v = PyLong_FromSsize_t(dims[i])
        Py_INCREF(v)                    # PyTuple_SET_ITEM steals the reference
        PyTuple_SET_ITEM(t, i, v)
    return t


def _ascontig(x, dtype=None):
    """C-contiguous, aligned array of x (np.ascontiguousarray would turn a 0-d array into 1-d,
    and keeps a misaligned one: see _contig)."""
    a = np.asarray(x, dtype=dtype, order="C")
    return a if a.flags.aligned else a.copy()


def _set_shape(y, shape):
    y.shape = shape


# ---- the array pool ---------------------------------------------------------------------------
# A tiny training step makes and drops a dozen small arrays (the forward's outputs, each
# backward's gradients); making one costs numpy's PyArray_EMPTY (~400 instructions: the
# object, its dims and strides, the data) and freeing one about as much -- ~4k instructions of
# a 64 x 10 log_softmax forward+backward.  So an array that dies while nothing else can see it
# is kept in a pool of _POOL_SLOTS and handed out again by _empty for the same dtype and shape.
#
# "Nothing else can see it" is checked, not assumed (_release): the caller's reference is the
# last one (a view, numpy(), np.asarray, a DLPack capsule, a memoryview all hold one), no weak
# reference exists, the array owns its data (no base), is a plain ndarray, C-contiguous with
# the canonical strides, aligned and writeable, of a builtin native float32/float64/int64
# dtype, and at most _POOL_MAX_BYTES.  A pooled array's contents are garbage, as
# PyArray_EMPTY's; the oldest is freed when the pool is full.
DEF _POOL_SLOTS = 8
DEF _POOL_MAX_BYTES = 65536

cdef extern from *:
    """
    /* numpy's array struct field that its public macros do not expose */
    #define fo_array_weakreflist(a) (((PyArrayObject_fields *)(a))->weakreflist)
    """
    PyObject *fo_array_weakreflist(PyObject *a)
    Py_ssize_t _refcnt "Py_REFCNT" (PyObject *o)
    bint _is_exact_array "PyArray_CheckExact" (PyObject *o)

cdef PyObject *_pool[_POOL_SLOTS]
cdef int _pool_n = 0
# numpy's builtin native descriptors: a pooled array has one of these exact objects
cdef object _descr_f32 = cnp.PyArray_DescrFromType(cnp.NPY_FLOAT)
cdef object _descr_f64 = cnp.PyArray_DescrFromType(cnp.NPY_DOUBLE)
cdef object _descr_i64 = cnp.PyArray_DescrFromType(cnp.NPY_INT64)


cdef void _release(PyObject *a) noexcept:
    """Offer an array that the caller is about to drop to the pool (see above), by a borrowed
    pointer: ``_release(<PyObject*>x)``.  Taken only when the caller's reference is the last
    one (Py_REFCNT 1); the pool takes its own reference, so the caller lets go as usual."""
    cdef cnp.ndarray arr
    cdef int nd, i, flags
    cdef cnp.npy_intp stride
    cdef PyObject *d
    if a == NULL or _refcnt(a) != 1 or not _is_exact_array(a):
        return
    arr = <cnp.ndarray>a                        # (a second reference, for the checks only)
    flags = cnp.PyArray_FLAGS(arr)
    if (flags & (cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE |
                 cnp.NPY_ARRAY_OWNDATA)) != (cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED |
                                             cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_OWNDATA):
        return
    if flags & cnp.NPY_ARRAY_WRITEBACKIFCOPY or cnp.PyArray_BASE(arr) != NULL or \
            fo_array_weakreflist(a) != NULL:
        return
    d = <PyObject*>cnp.PyArray_DESCR(arr)
    if d != <PyObject*>_descr_f32 and d != <PyObject*>_descr_f64 and \
            d != <PyObject*>_descr_i64:
        return
    if cnp.PyArray_NBYTES(arr) > _POOL_MAX_BYTES:
        return
    nd = cnp.PyArray_NDIM(arr)
    stride = cnp.PyArray_ITEMSIZE(arr)
    for i in range(nd - 1, -1, -1):             # canonical C strides only
        if cnp.PyArray_STRIDES(arr)[i] != stride:
            return
        stride *= cnp.PyArray_DIMS(arr)[i]
    arr = None
    global _pool_n
    if _pool_n == _POOL_SLOTS:                  # full: free the oldest
        Py_DECREF(<object>_pool[0])
        memmove(&_pool[0], &_pool[1], (_POOL_SLOTS - 1) * sizeof(PyObject*))
        _pool_n -= 1
    Py_INCREF(<object>a)
    _pool[_pool_n] = a
    _pool_n += 1


cdef void _release_saved(PyObject *s) noexcept:
    """_release for a node's dropped saved values: an array, or a tuple of them (and other
    things), that the caller holds the last reference to.  A tuple nobody else can reach dies
    with the caller's reference, so an item only it holds is unseen: _release takes it."""
    cdef Py_ssize_t k
    if s == NULL or _refcnt(s) != 1:
        return
    if PyTuple_CheckExact(<object>s):
        for k in range(PyTuple_GET_SIZE(<object>s)):
            _release(PyTuple_GET_ITEM(<object>s, k))
    else:
        _release(s)


cdef inline cnp.ndarray _empty(int nd, cnp.npy_intp *dims, int typenum):
    """An uninitialised C-contiguous array: the newest pooled one of this dtype and shape, or a
    new one."""
    cdef int j, i
    cdef PyObject *a
    cdef cnp.ndarray r
    global _pool_n
    for j in range(_pool_n - 1, -1, -1):
        a = _pool[j]
        if cnp.PyArray_TYPE(<cnp.ndarray>a) != typenum or \
                cnp.PyArray_NDIM(<cnp.ndarray>a) != nd:
            continue
        for i in range(nd):
            if cnp.PyArray_DIMS(<cnp.ndarray>a)[i] != dims[i]:
                break
        else:
            r = <cnp.ndarray>a                  # a new reference; the pool's is dropped below
            memmove(&_pool[j], &_pool[j + 1], (_pool_n - 1 - j) * sizeof(PyObject*))
            _pool_n -= 1
            Py_DECREF(r)
            return r
    return cnp.PyArray_EMPTY(nd, dims, typenum, 0)


def _pool_size():
    """How many arrays the pool holds (for tests)."""
    return _pool_n


def _pool_clear():
    """Free the pooled arrays (for tests)."""
    global _pool_n
    while _pool_n:
        _pool_n -= 1
        Py_DECREF(<object>_pool[_pool_n])


cdef cnp.ndarray _empty_shape(tuple shape, int typenum):
    """An uninitialised C-contiguous array of a shape given as a Python tuple."""
    cdef cnp.npy_intp dims[64]
    cdef int nd = len(shape)
    cdef int i
    for i in range(nd):
        dims[i] = shape[i]
    return _empty(nd, dims, typenum)


cdef inline cnp.ndarray _empty_like(cnp.ndarray a):
    return _empty(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a))


cdef inline cnp.ndarray _zeros_like(cnp.ndarray a):
    return cnp.PyArray_ZEROS(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)


cdef inline bint _kernel_ready(cnp.ndarray a):
    """True when a kernel may read a's memory as a flat C array of its dtype: C-contiguous and
    aligned.  A misaligned array (``from_numpy`` of ``np.frombuffer(..., offset=1)``, which
    torch also accepts and shares) would make the kernels' typed loads undefined behaviour."""
    return cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)


cdef inline cnp.ndarray _contig(cnp.ndarray a):
    """a itself when a kernel may read it (_kernel_ready), else an aligned C-contiguous copy
    (in-place ops write the copy back: ``if c is not x: x[...] = c``)."""
    if _kernel_ready(a):
        return a
    return cnp.PyArray_NewCopy(a, cnp.NPY_CORDER)


cdef inline bint _is_f32(cnp.ndarray a):
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT


cdef inline const fo_tensor_kernels *_kern(cnp.ndarray a) noexcept:
    """The dtype dispatch, written once: the kernel table of a float32/float64 array (the
    caller has checked _is_float).  Call a kernel as ``_kern(x).unary(op, n, out, x, ...)``."""
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT:
        return &fo_tensor_kernels_f32
    return &fo_tensor_kernels_f64


cdef inline bint _is_float(cnp.ndarray a):
    cdef int t = cnp.PyArray_TYPE(a)
    return t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE


cdef inline void* _ptr(cnp.ndarray a):
    return cnp.PyArray_DATA(a)


cdef inline cnp.ndarray _scalar_array(double v, int typenum):
    """A new 0-dim array holding v (numpy C API: no Python-level numpy call)."""
    cdef cnp.ndarray a = _empty(0, NULL, typenum)
    if typenum == cnp.NPY_FLOAT:
        (<float*>cnp.PyArray_DATA(a))[0] = <float>v
    else:
        (<double*>cnp.PyArray_DATA(a))[0] = v
    return a


cdef inline double _first(cnp.ndarray a):
    """The first element of a float32/float64 array, as a double."""
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT:
        return (<float*>cnp.PyArray_DATA(a))[0]
    return (<double*>cnp.PyArray_DATA(a))[0]


cdef inline void* _optr(object a):
    """Data pointer of an optional array (NULL for None)."""
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)

