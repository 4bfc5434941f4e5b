# cython: language_level=3, wraparound=True
"""The Tensor, its autograd graph, and every op's forward/backward dispatch to the C kernels.

Why it is one Cython module: the tiny-model training loop (``nn.Linear(10, 1)`` + MSE) spends
its time in Python overhead, not arithmetic, so Tensor creation, op dispatch, graph recording
and the backward walk all run at C level here.

Design (in the spirit of micrograd's engine, but in Cython):

* Storage is a numpy array (``Tensor._np``): zero-copy ``from_numpy``/``numpy()``, views that
  share storage exactly as torch's do (``reshape``, ``t()``, basic indexing, ``.data``), and BLAS
  through ``numpy.matmul`` for products large enough to pay for it.  Arrays are created with the
  numpy C API, never through Python-level numpy calls on the hot path.  The array object is
  private (``from_numpy``/``numpy()`` wrap and hand out views of the memory), is bound only by
  ``_bind``, and its facts are cached in the Tensor: see ``_tensor.pxd``.
* The graph node lives in the output Tensor itself: ``_op`` (what made it), ``_in0``/``_in1``
  (the inputs), ``_saved`` (arrays the backward needs) and two scalar parameters.  There is no
  separate node object; ``grad_fn`` builds a small descriptive one only when asked for.
* ``backward()`` sorts the graph once (iterative DFS, a generation mark per tensor instead of a
  visited set) and walks it in reverse, each node's backward one C kernel call.  Pending
  gradients sit in ``_gacc``; a gradient passed through unchanged is not copied until something
  must accumulate into it (``_gown``).  Saved arrays are dropped afterwards unless
  ``retain_graph``: a second backward then raises torch's error.
* Float32 and float64 run on the C kernels; int64/bool tensors exist for data and indexing and
  compute through numpy (they never require grad).
"""
import warnings

import numpy as np

cimport cython
cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t, uintptr_t
from libc.math cimport NAN

from fastoptim._C.kernels cimport *

cnp.import_array()

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
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
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
# grad mode
# ---------------------------------------------------------------------------------------------

cdef bint _grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


def _swap_grad_mode(bint mode):
    """Set grad mode and return the previous one: the cheapest switch, for hot wrappers such
    as Optimizer.step (set_grad_enabled builds an object each call)."""
    global _grad_enabled
    cdef bint prev = _grad_enabled
    _grad_enabled = mode
    return prev


cdef class _GradMode:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator."""
    cdef bint _mode
    cdef list _prev

    def __init__(self):
        self._prev = []

    def __enter__(self):
        global _grad_enabled
        self._prev.append(_grad_enabled)
        _grad_enabled = self._mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev.pop()
        return False

    def __call__(self, func):
        import functools
        mode_cls = type(self)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with mode_cls():
                return func(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)()


cdef class no_grad(_GradMode):
    """Context manager / decorator that disables graph recording (as torch.no_grad)."""

    def __init__(self):
        self._prev = []
        self._mode = False


cdef class enable_grad(_GradMode):
    """Context manager / decorator that enables graph recording (as torch.enable_grad)."""

    def __init__(self):
        self._prev = []
        self._mode = True


cdef class set_grad_enabled(_GradMode):
    """Set grad mode now (as a function) or for a block (as a context manager)."""

    def __init__(self, bint mode):
        global _grad_enabled
        self._prev = [_grad_enabled]
        self._mode = mode
        _grad_enabled = mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev[0]
        return False


# ---------------------------------------------------------------------------------------------
# graph node kinds (what made a tensor) and their torch grad_fn names
# ---------------------------------------------------------------------------------------------

cdef enum:
    N_LEAF = 0
    N_BINARY = 1      # _sub: FO_ADD/SUB/MUL/DIV, broadcasting; saved (a, b) for MUL/DIV
    N_UNARY = 2       # _sub: fo_unary_op; saved (x, y) as needed; params _p0, _p1
    N_SUM = 3         # all elements; _p0 = scale (1 or 1/n)
    N_SUM_AXIS = 4    # saved (outer, n, inner, in_shape); _p0 = scale
    N_MATMUL = 5      # saved (a2, b2, kind) with 2-D views of the operands
    N_LINEAR = 6      # saved (x2, w, has_bias)
    N_MSE = 7         # saved (a, b); _sub: reduction 0 none / 1 mean / 2 sum
    N_EXTREME = 8     # saved x; _p0 = result, _p1 = count; _sub: 1 max / 0 min
    N_VIEW = 9        # reshape/view/flatten/squeeze: grad reshaped to the input shape
    N_TRANSPOSE = 10  # saved (d0, d1)
    N_INDEX = 11      # saved key
    N_CAST = 12       # dtype conversion: grad cast back
    N_CLONE = 13      # clone / contiguous: identity

cdef dict _UNARY_NAMES = {
    FO_NEG: "NegBackward0", FO_EXP: "ExpBackward0", FO_LOG: "LogBackward0",
    FO_SQRT: "SqrtBackward0", FO_ABS: "AbsBackward0", FO_RELU: "ReluBackward0",
    FO_TANH: "TanhBackward0", FO_SIGMOID: "SigmoidBackward0", FO_CLAMP: "ClampBackward1",
    FO_POW: "PowBackward0", FO_ADD_S: "AddBackward0", FO_MUL_S: "MulBackward0",
    FO_RSUB_S: "RsubBackward1", FO_RDIV_S: "MulBackward0", FO_DIV_S: "DivBackward0",
    FO_RPOW_S: "PowBackward2",
}
cdef dict _BINARY_NAMES = {FO_ADD: "AddBackward0", FO_SUB: "SubBackward0",
                           FO_MUL: "MulBackward0", FO_DIV: "DivBackward0"}

_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


class Node:
    """What ``tensor.grad_fn`` returns: the name of the backward and its inputs' nodes."""
    __slots__ = ("_name", "_tensor")

    def __init__(self, name, tensor):
        self._name = name
        self._tensor = tensor

    def name(self):
        return self._name

    @property
    def next_functions(self):
        return tuple((_next_fn(t), 0) for t in self._tensor._inputs())

    def __repr__(self):
        return f"<{self._name} object at {id(self):#x}>"


def _next_fn(t):
    if t is None:
        return None
    if t.grad_fn is not None:
        return t.grad_fn
    if t.requires_grad:
        return Node("AccumulateGrad", t)
    return None


# ---------------------------------------------------------------------------------------------
# array helpers (numpy C API: no Python-level numpy calls on the hot path)
# ---------------------------------------------------------------------------------------------

cdef inline object _shp(object a):
    """A numpy array's shape as a Python tuple (typed ndarrays expose a C pointer instead)."""
    return (<object>a).shape


def _ascontig(x, dtype=None):
    """C-contiguous array of x (np.ascontiguousarray would turn a 0-d array into 1-d)."""
    return np.asarray(x, dtype=dtype, order="C")


def _set_shape(y, shape):
    y.shape = shape


cdef inline cnp.ndarray _empty(int nd, cnp.npy_intp *dims, int typenum):
    return cnp.PyArray_EMPTY(nd, dims, typenum, 0)


cdef cnp.ndarray _empty_shape(tuple shape, int typenum):
    """An uninitialised C-contiguous array of a shape given as a Python tuple."""
    cdef cnp.npy_intp dims[64]
    cdef int nd = len(shape)
    cdef int i
    for i in range(nd):
        dims[i] = shape[i]
    return cnp.PyArray_EMPTY(nd, dims, typenum, 0)


cdef inline cnp.ndarray _empty_like(cnp.ndarray a):
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)


cdef inline cnp.ndarray _zeros_like(cnp.ndarray a):
    return cnp.PyArray_ZEROS(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)


cdef inline cnp.ndarray _contig(cnp.ndarray a):
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        return a
    return cnp.PyArray_GETCONTIGUOUS(a)


cdef inline bint _is_f32(cnp.ndarray a):
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT


cdef inline bint _is_float(cnp.ndarray a):
    cdef int t = cnp.PyArray_TYPE(a)
    return t == cnp.NPY_FLOAT or t == cnp.NPY_DOUBLE


cdef inline void* _ptr(cnp.ndarray a):
    return cnp.PyArray_DATA(a)


cdef inline cnp.ndarray _scalar_array(double v, int typenum):
    """A new 0-dim array holding v (numpy C API: no Python-level numpy call)."""
    cdef cnp.ndarray a = cnp.PyArray_EMPTY(0, NULL, typenum, 0)
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


# ---------------------------------------------------------------------------------------------
# the random generator behind randn/rand/nn.init
# ---------------------------------------------------------------------------------------------

cdef fo_rng _rng
cdef uint64_t _seed = 0x5EED
fo_rng_seed(&_rng, _seed)


def manual_seed(seed):
    """Seed the global generator: the same seed gives the same randn/rand/init draws."""
    global _seed
    seed = int(seed)
    _seed = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
    fo_rng_seed(&_rng, _seed)


def initial_seed():
    return int(_seed)


def seed():
    """Seed the generator non-deterministically and return the seed used."""
    import os as _os
    s = int.from_bytes(_os.urandom(8), "little") & 0x7FFFFFFFFFFFFFFF
    manual_seed(s)
    return s


def get_rng_state():
    """The generator state as a uint64 numpy array (restore it with set_rng_state)."""
    return np.array([_rng.s[0], _rng.s[1], _rng.s[2], _rng.s[3], _rng.has_spare],
                    dtype=np.uint64), float(_rng.spare)


def set_rng_state(state):
    s, spare = state
    s = np.asarray(s, dtype=np.uint64)
    for i in range(4):
        _rng.s[i] = s[i]
    _rng.has_spare = int(s[4])
    _rng.spare = spare


cdef void _fill_randn(cnp.ndarray a):
    cdef int64_t n = cnp.PyArray_SIZE(a)
    if _is_f32(a):
        fo_randn_f32(&_rng, n, <float*>_ptr(a))
    else:
        fo_randn_f64(&_rng, n, <double*>_ptr(a))


cdef void _fill_uniform(cnp.ndarray a, double lo, double hi):
    cdef int64_t n = cnp.PyArray_SIZE(a)
    if _is_f32(a):
        fo_uniform_f32(&_rng, n, <float*>_ptr(a), lo, hi)
    else:
        fo_uniform_f64(&_rng, n, <double*>_ptr(a), lo, hi)


# ---------------------------------------------------------------------------------------------
# the Tensor
# ---------------------------------------------------------------------------------------------

cdef int _mark_gen = 0


cdef class Tensor:
    """A CPU tensor with autograd, stored in a numpy array.  Build one with fastoptim.tensor,
    zeros, randn, from_numpy ...; the constructor ``Tensor(data)`` works like fastoptim.tensor."""

    def __init__(self, data=None, *, dtype=None, requires_grad=False):
        cdef Tensor src
        if data is None:
            data = []
        # torch.Tensor(data) is the legacy constructor: always the default float dtype
        src = tensor(data, dtype=_default_dtype if dtype is None else dtype)
        _bind(self, src._np)
        if requires_grad:
            self.requires_grad_(True)

    # ---- identity: tensors hash by identity (== is element-wise, as torch) ------------------
    def __hash__(self):
        # identity hash straight from the address (what object.__hash__ does): optimizer state
        # is a dict keyed by parameters, looked up for every param at every step
        return <Py_hash_t>((<size_t><void*>self) >> 4)

    # ---- basic properties ------------------------------------------------------------------
    @property
    def shape(self):
        return Size(_shp(self._np))

    def size(self, dim=None):
        if dim is None:
            return Size(_shp(self._np))
        return _shp(self._np)[_norm_dim(dim, self._np.ndim)]

    @property
    def dtype(self):
        return _dtype_of(self._np)

    @property
    def ndim(self):
        return cnp.PyArray_NDIM(self._np)

    def dim(self):
        return cnp.PyArray_NDIM(self._np)

    def ndimension(self):
        return cnp.PyArray_NDIM(self._np)

    def numel(self):
        return cnp.PyArray_SIZE(self._np)

    def nelement(self):
        return cnp.PyArray_SIZE(self._np)

    def element_size(self):
        return cnp.PyArray_ITEMSIZE(self._np)

    @property
    def device(self):
        return "cpu"

    @property
    def is_cuda(self):
        return False

    def is_floating_point(self):
        return _is_float(self._np)

    def is_contiguous(self):
        return bool(cnp.PyArray_IS_C_CONTIGUOUS(self._np))

    def type(self, dtype=None):
        if dtype is None:
            return "fastoptim." + _dtype_of(self._np)._legacy
        return self.to(dtype)

    def stride(self, dim=None):
        cdef int isz = cnp.PyArray_ITEMSIZE(self._np)
        st = tuple(s // isz for s in (<object>self._np).strides)
        return st if dim is None else st[_norm_dim(dim, self._np.ndim)]

    def data_ptr(self):
        return <size_t>_ptr(self._np)

    # ---- autograd attributes -------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self._set_requires_grad(value)

    def requires_grad_(self, requires_grad=True):
        self._set_requires_grad(requires_grad)
        return self

    cdef _set_requires_grad(self, value):
        cdef bint v = bool(value)
        if self._op != N_LEAF:
            if not v:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach().")
            return
        if v and not _is_float(self._np):
            raise RuntimeError("only Tensors of floating point dtype can require gradients, got "
                               f"dtype {_dtype_of(self._np)}")
        self._requires_grad = v

    @property
    def is_leaf(self):
        return self._op == N_LEAF

    @property
    def grad_fn(self):
        if self._op == N_LEAF:
            return None
        return Node(self._node_name(), self)

    @property
    def retains_grad(self):
        return self._retains_grad

    def retain_grad(self):
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._op != N_LEAF:
            self._retains_grad = True

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        self._set_grad(value)

    cdef _set_grad(self, object value):
        cdef Tensor g
        if value is None:
            self._grad = None
            return
        if not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                            f"{type(value).__name__}")
        g = <Tensor>value
        if g is self:
            raise RuntimeError("can't assign Variable as its own grad")
        if _shp(g._np) != _shp(self._np):
            raise RuntimeError(
                f"attempting to assign a gradient of size '{list(_shp(g._np))}' to a tensor of "
                f"size '{list(_shp(self._np))}'. Please ensure that the gradient and the tensor "
                "are the same size")
        if cnp.PyArray_TYPE(g._np) != cnp.PyArray_TYPE(self._np):
            raise RuntimeError(
                f"attempting to assign a gradient with dtype '{_dtype_of(g._np)}' to a tensor "
                f"with dtype '{_dtype_of(self._np)}'. The gradient must match the tensor's "
                "dtype")
        self._grad = g

    cdef str _node_name(self):
        cdef int op = self._op
        if op == N_BINARY:
            return _BINARY_NAMES[self._sub]
        if op == N_UNARY:
            return _UNARY_NAMES[self._sub]
        if op == N_SUM:
            return "MeanBackward0" if self._p0 != 1.0 else "SumBackward0"
        if op == N_SUM_AXIS:
            return "MeanBackward1" if self._p0 != 1.0 else "SumBackward1"
        if op == N_MATMUL:
            return ("DotBackward0", "MvBackward0", "SqueezeBackward4", "MmBackward0")[self._sub]
        if op == N_LINEAR:
            return "AddmmBackward0"
        if op == N_MSE:
            return "MseLossBackward0"
        if op == N_EXTREME:
            return "MaxBackward1" if self._sub else "MinBackward1"
        if op == N_VIEW:
            return "ViewBackward0"
        if op == N_TRANSPOSE:
            return "TransposeBackward0"
        if op == N_INDEX:
            return "IndexBackward0"
        if op == N_CAST:
            return "ToCopyBackward0"
        return "CloneBackward0"

    def _inputs(self):
        return tuple(t for t in (self._in0, self._in1) if t is not None)

    # ---- data access -----------------------------------------------------------------------
    @property
    def data(self):
        return _wrap(self._np)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        _bind(self, (<Tensor>value)._np)

    def detach(self):
        return _wrap(self._np)

    def detach_(self):
        if self._op != N_LEAF:
            self._op = N_LEAF
            self._in0 = self._in1 = None
            self._saved = None
        self._requires_grad = False
        return self

    def numpy(self, *, force=False):
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return self._np.view()    # a new array object on the same memory, as torch's

    def __array__(self, dtype=None, copy=None):
        # numpy >= 2 passes copy and trusts the answer: np.array(t) asks for a copy
        if copy:
            return np.array(self._np, dtype=dtype, copy=True)
        if dtype is None or np.dtype(dtype) == self._np.dtype:
            return self._np.view()
        if copy is False:
            raise ValueError(f"Unable to avoid copy while creating an array as requested: the "
                             f"tensor is {self._np.dtype}, {np.dtype(dtype)} was asked for.")
        return self._np.astype(dtype)

    def tolist(self):
        return self._np.tolist()

    def item(self):
        if cnp.PyArray_SIZE(self._np) != 1:
            raise RuntimeError(f"a Tensor with {cnp.PyArray_SIZE(self._np)} elements cannot be "
                               "converted to Scalar")
        return self._np.reshape(-1)[0].item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if _is_float(self._np):
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __bool__(self):
        if cnp.PyArray_SIZE(self._np) != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __len__(self):
        if cnp.PyArray_NDIM(self._np) == 0:
            raise TypeError("len() of a 0-d tensor")
        return _shp(self._np)[0]

    def __iter__(self):
        if cnp.PyArray_NDIM(self._np) == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter([self[i] for i in range(_shp(self._np)[0])])

    def __repr__(self):
        return _format_tensor(self)

    def __reduce__(self):
        return (_rebuild, (np.array(self._np), self._requires_grad))

    def __deepcopy__(self, memo):
        cdef Tensor t
        if self._op != N_LEAF:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment.")
        import copy as _copy
        t = type(self).__new__(type(self))
        _bind(t, np.array(self._np))
        t._requires_grad = self._requires_grad
        memo[id(self)] = t
        if self._grad is not None:
            t._grad = _copy.deepcopy(self._grad, memo)
        d = vars(self)
        if d:
            vars(t).update(_copy.deepcopy(d, memo))
        return t

    # ---- conversions -----------------------------------------------------------------------
    def to(self, *args, **kwargs):
        """to(dtype) / to(device) / to(other): only the CPU exists, so devices are accepted and
        ignored ('cpu'); a dtype change is differentiable."""
        d = kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                d = (<Tensor>a).dtype
            elif isinstance(a, str):
                _check_device(a)
            elif a is not None and not isinstance(a, bool):
                d = a
        dev = kwargs.get("device")
        if dev is not None:
            _check_device(dev)
        if d is None:
            return self
        return _cast(self, _to_dtype(d))

    def float(self):
        return _cast(self, float32)

    def double(self):
        return _cast(self, float64)

    def long(self):
        return _cast(self, int64)

    def bool(self):
        return _cast(self, bool_)

    def cpu(self):
        return self

    def contiguous(self):
        if cnp.PyArray_IS_C_CONTIGUOUS(self._np):
            return self
        return self.clone()

    def clone(self):
        cdef Tensor out = _wrap(np.array(self._np, order="C"))
        if _grad_enabled and self._requires_grad:
            _record(out, N_CLONE, self, None, None)
        return out

    # ---- shape ops (views share storage) -----------------------------------------------------
    def reshape(self, *shape):
        return _view(self, _shape_arg(shape), False)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list, Size)):
            return self.to(shape[0])
        return _view(self, _shape_arg(shape), True)

    def view_as(self, other):
        return _view(self, tuple(_shp(_np_of(other))), True)

    def reshape_as(self, other):
        return _view(self, tuple(_shp(_np_of(other))), False)

    def flatten(self, start_dim=0, end_dim=-1):
        nd = cnp.PyArray_NDIM(self._np)
        if nd == 0:
            return _view(self, (1,), False)
        s = _norm_dim(start_dim, nd)
        e = _norm_dim(end_dim, nd)
        shp = _shp(self._np)
        n = 1
        for k in range(s, e + 1):
            n *= shp[k]
        return _view(self, shp[:s] + (n,) + shp[e + 1:], False)

    def squeeze(self, dim=None):
        shp = _shp(self._np)
        if dim is None:
            new = tuple(s for s in shp if s != 1)
        else:
            d = _norm_dim(dim, len(shp))
            new = shp[:d] + shp[d + 1:] if len(shp) and shp[d] == 1 else shp
        return _view(self, new, False)

    def unsqueeze(self, dim):
        shp = _shp(self._np)
        d = _norm_dim(dim, len(shp) + 1)
        return _view(self, shp[:d] + (1,) + shp[d:], False)

    def transpose(self, dim0, dim1):
        return _transpose(self, dim0, dim1)

    def t(self):
        nd = cnp.PyArray_NDIM(self._np)
        if nd > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
        if nd < 2:
            return _transpose(self, 0, 0)
        return _transpose(self, 0, 1)

    @property
    def T(self):
        nd = cnp.PyArray_NDIM(self._np)
        if nd > 2:
            raise RuntimeError("T is only supported on tensors with <= 2 dimensions here; use "
                               "transpose/permute")
        return self.t()

    def __getitem__(self, key):
        return _index(self, key)

    def __setitem__(self, key, value):
        self._check_inplace()
        if isinstance(key, Tensor):
            key = (<Tensor>key)._np
        elif isinstance(key, tuple):
            key = tuple((<Tensor>k)._np if isinstance(k, Tensor) else k for k in key)
        if isinstance(value, Tensor):
            value = (<Tensor>value)._np
        self._np[key] = value

    # ---- differentiable arithmetic ------------------------------------------------------------
    def __add__(self, other):
        return _add(self, other, 1.0)

    def __radd__(self, other):
        return _add(self, other, 1.0)

    def __sub__(self, other):
        return _sub(self, other)

    def __rsub__(self, other):
        return _rsub(self, other)

    def __mul__(self, other):
        return _mul(self, other)

    def __rmul__(self, other):
        return _mul(self, other)

    def __truediv__(self, other):
        return _div(self, other)

    def __rtruediv__(self, other):
        return _rdiv(self, other)

    def __pow__(self, other, mod):
        return _pow(self, other)

    def __rpow__(self, other, mod):
        return _rpow(self, other)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(_as_tensor(other, self), self)

    def __neg__(self):
        return _unary(self, FO_NEG, 0.0, 0.0)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(self, FO_ABS, 0.0, 0.0)

    def add(self, other, *, alpha=1):
        return _add(self, other, alpha)

    def sub(self, other, *, alpha=1):
        if alpha != 1:
            return _add(self, other, -alpha)
        return _sub(self, other)

    def mul(self, other):
        return _mul(self, other)

    def div(self, other):
        return _div(self, other)

    def pow(self, exponent):
        return _pow(self, exponent)

    def neg(self):
        return _unary(self, FO_NEG, 0.0, 0.0)

    def exp(self):
        return _unary(self, FO_EXP, 0.0, 0.0)

    def log(self):
        return _unary(self, FO_LOG, 0.0, 0.0)

    def sqrt(self):
        return _unary(self, FO_SQRT, 0.0, 0.0)

    def abs(self):
        return _unary(self, FO_ABS, 0.0, 0.0)

    def relu(self):
        return _unary(self, FO_RELU, 0.0, 0.0)

    def tanh(self):
        return _unary(self, FO_TANH, 0.0, 0.0)

    def sigmoid(self):
        return _unary(self, FO_SIGMOID, 0.0, 0.0)

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    clip = clamp

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, other):
        return matmul(self, other)

    def dot(self, other):
        return matmul(self, other)

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        return _sum(self, dim, keepdim, False, dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        return _sum(self, dim, keepdim, True, dtype)

    def max(self, *args, **kwargs):
        return _extreme(self, True, args, kwargs)

    def min(self, *args, **kwargs):
        return _extreme(self, False, args, kwargs)

    def norm(self, p=2):
        if p == 2 or p == "fro":
            return (self * self).sum().sqrt()
        if p == 1:
            return self.abs().sum()
        raise NotImplementedError(f"norm(p={p!r}) is not implemented; use p=1 or p=2")

    # ---- comparisons (no grad, bool results) ---------------------------------------------------
    def __eq__(self, other):
        return _compare(self, other, 2)

    def __ne__(self, other):
        return _compare(self, other, 3)

    def __lt__(self, other):
        return _compare(self, other, 0)

    def __le__(self, other):
        return _compare(self, other, 1)

    def __gt__(self, other):
        return _compare(self, other, 4)

    def __ge__(self, other):
        return _compare(self, other, 5)

    def eq(self, other):
        return _compare(self, other, 2)

    def equal(self, other):
        return bool(_shp(self._np) == _shp(other._np) and np.array_equal(self._np, other._np))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return bool(np.allclose(self._np, _np_of(other), rtol=rtol, atol=atol,
                                equal_nan=equal_nan))

    def all(self):
        return _wrap(np.asarray(self._np.all()))

    def any(self):
        return _wrap(np.asarray(self._np.any()))

    def isnan(self):
        return _wrap(np.isnan(self._np))

    def isfinite(self):
        return _wrap(np.isfinite(self._np))

    # ---- in-place ops (no graph) ---------------------------------------------------------------
    cdef _check_inplace(self):
        if _grad_enabled and self._requires_grad:
            if self._op == N_LEAF:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            raise RuntimeError(
                "in-place operations on tensors that are part of an autograd graph are not "
                "supported by fastoptim; use the out-of-place op, or modify .data / a "
                "detach()ed tensor under no_grad()")
        if not cnp.PyArray_ISWRITEABLE(self._np):
            raise ValueError("the tensor's storage is a read-only numpy array; in-place "
                             f"operations on it are not allowed (shape {list(_shp(self._np))})")

    def add_(self, other, *args, alpha=1):
        if args:
            # legacy overload add_(Number alpha, Tensor other), deprecated in torch
            if len(args) != 1:
                raise TypeError("add_() takes (other, *, alpha=1) or the deprecated "
                                "(alpha, other)")
            # stacklevel=1: compiled code has no frame of its own, 1 is the caller
            warnings.warn(
                "This overload of add_ is deprecated:\n\tadd_(Number alpha, Tensor other)\n"
                "Consider using one of the following signatures instead:\n\tadd_(Tensor "
                "other, *, Number alpha = 1)", UserWarning, stacklevel=1)
            alpha, other = other, args[0]
        self._check_inplace()
        _inplace(self, FO_ADD, other, alpha)
        return self

    def sub_(self, other, *, alpha=1):
        self._check_inplace()
        _inplace(self, FO_SUB, other, alpha)
        return self

    def mul_(self, other):
        self._check_inplace()
        _inplace(self, FO_MUL, other, 1.0)
        return self

    def div_(self, other):
        self._check_inplace()
        _inplace(self, FO_DIV, other, 1.0)
        return self

    def addcmul_(self, tensor1, tensor2, *, value=1):
        self._check_inplace()
        _ternary_inplace(self, 0, tensor1, tensor2, value)
        return self

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        self._check_inplace()
        _ternary_inplace(self, 1, tensor1, tensor2, value)
        return self

    def lerp_(self, end, weight):
        self._check_inplace()
        if isinstance(weight, Tensor):
            weight = (<Tensor>weight).item()
        _ternary_inplace(self, 2, end, None, weight)
        return self

    def sqrt_(self):
        self._check_inplace()
        _unary_inplace(self, FO_SQRT, 0.0, 0.0)
        return self

    def exp_(self):
        self._check_inplace()
        _unary_inplace(self, FO_EXP, 0.0, 0.0)
        return self

    def neg_(self):
        self._check_inplace()
        _unary_inplace(self, FO_NEG, 0.0, 0.0)
        return self

    def abs_(self):
        self._check_inplace()
        _unary_inplace(self, FO_ABS, 0.0, 0.0)
        return self

    def clamp_(self, min=None, max=None):
        self._check_inplace()
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        _unary_inplace(self, FO_CLAMP, NAN if min is None else float(min),
                       NAN if max is None else float(max))
        return self

    clip_ = clamp_

    def zero_(self):
        self._check_inplace()
        self._np[...] = 0
        return self

    def fill_(self, value):
        self._check_inplace()
        if isinstance(value, Tensor):
            value = (<Tensor>value).item()
        self._np[...] = value
        return self

    def copy_(self, src, non_blocking=False):
        self._check_inplace()
        arr = _np_of(src)
        try:
            np.copyto(self._np, np.broadcast_to(arr, _shp(self._np)), casting="unsafe")
        except ValueError:
            raise RuntimeError(f"The size of tensor a ({list(_shp(self._np))}) must match the "
                               f"size of tensor b ({list(np.shape(arr))}) for copy_")
        return self

    def uniform_(self, a=0.0, b=1.0):
        self._check_inplace()
        _fill_array(self, 1, a, b)
        return self

    def normal_(self, mean=0.0, std=1.0):
        self._check_inplace()
        _fill_array(self, 0, mean, std)
        return self

    # ---- autograd entry point --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if create_graph:
            raise NotImplementedError("create_graph=True (higher-order gradients) is not "
                                      "supported by fastoptim")
        _backward(self, gradient, bool(retain_graph))

    # ---- C-level fields ----------------------------------------------------------------------
    # (declared in _tensor.pxd)


def _check_device(dev):
    if str(dev) not in ("cpu", "cpu:0"):
        raise RuntimeError(f"fastoptim runs on the CPU only; got device {dev!r}")


def _rebuild(arr, requires_grad):
    cdef Tensor t = _wrap(arr)
    t._requires_grad = requires_grad
    return t


cdef inline Tensor _wrap(object arr):
    """A new leaf Tensor over an existing array (no copy).  The array becomes the tensor's
    private storage object: pass a view (from_numpy does) when the caller keeps the array."""
    cdef Tensor t = Tensor.__new__(Tensor)
    _bind(t, arr)
    return t


cdef inline void _bind(Tensor t, cnp.ndarray arr):
    """Make arr t's storage and refresh the facts _tensor.pxd keeps about it.  The only way _np
    is ever (re)bound."""
    cdef int d, nd
    cdef cnp.npy_intp *dims
    cdef int64_t numel = 1
    t._np = arr
    if arr is None:             # the storage of a tensor made by Tensor.__new__ alone
        t._data, t._numel, t._tnum, t._flags, t._ndim = NULL, 0, 0, 0, 0
        return
    nd, dims = cnp.PyArray_NDIM(arr), cnp.PyArray_DIMS(arr)
    for d in range(nd):         # inline: PyArray_SIZE is a call through numpy's API table
        numel *= dims[d]
    t._data = cnp.PyArray_DATA(arr)
    t._numel = numel
    t._tnum = cnp.PyArray_TYPE(arr) if cnp.PyArray_ISNOTSWAPPED(arr) else -1
    t._flags = cnp.PyArray_FLAGS(arr)
    t._ndim = nd


def _facts(Tensor t):
    """(data address, numel, type number, flags, ndim) as cached on t (for tests)."""
    return <uintptr_t>t._data, t._numel, t._tnum, t._flags, t._ndim


cdef inline object _np_of(object x):
    if isinstance(x, Tensor):
        return (<Tensor>x)._np
    return x


cdef inline void _record(Tensor out, int op, Tensor a, Tensor b, object saved):
    """Make `out` a graph node when an input requires grad (the caller checked grad mode)."""
    out._op = op
    out._in0 = a if (a is not None and a._requires_grad) else None
    out._in1 = b if (b is not None and b._requires_grad) else None
    out._saved = saved
    out._requires_grad = True


cdef inline bint _needs_grad(Tensor a, Tensor b):
    return _grad_enabled and (a._requires_grad or (b is not None and b._requires_grad))


def _norm_dim(dim, int nd):
    cdef int lo = -nd if nd > 0 else -1
    cdef int hi = nd - 1 if nd > 0 else 0
    d = int(dim)
    if d < lo or d > hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but "
                         f"got {d})")
    return d + nd if d < 0 else (d if nd > 0 else 0)


cdef tuple _shape_arg(tuple shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = tuple(shape[0])
    out = []
    for s in shape:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"shape must be a sequence of ints, got {s!r} of type "
                            f"{type(s).__name__}")
        out.append(int(s))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------------------------

cdef object _infer_array(object data, object dt):
    """numpy array for `data` with torch's dtype inference: Python floats -> default dtype,
    ints -> int64, bools -> bool; a numpy array keeps its dtype (float16 -> float32)."""
    if isinstance(data, Tensor):
        arr = np.array((<Tensor>data)._np)
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data)   # numpy arrays and scalars keep their dtype, as in torch
    else:
        if isinstance(data, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"could not build a tensor from {type(data).__name__}: {e}")
        if arr.dtype.kind == "f":
            arr = arr.astype(_default_dtype._np_dtype)
        elif arr.dtype.kind == "O" and arr.size and hasattr(data, "__len__"):
            # e.g. a list of 0-dim Tensors / numpy scalars
            try:
                arr = np.array([np.asarray(_np_of(x)) for x in data])
            except ValueError as e:
                raise ValueError(f"could not build a tensor from {type(data).__name__}: {e}")
            if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
                arr = arr.astype(np.float32)
    if arr.dtype.kind in "US":
        raise TypeError(f"new(): invalid data type '{arr.dtype.type.__name__}'")
    if arr.dtype.kind in "OV":
        raise TypeError("could not infer a numeric dtype from data of type "
                        f"{type(data).__name__}: expected numbers, nested sequences of numbers "
                        "or an array")
    if arr.dtype.kind == "c":
        raise TypeError("complex tensors are not supported by fastoptim")
    if dt is not None:
        arr = arr.astype(_to_dtype(dt)._np_dtype)
    elif arr.dtype.kind == "f" and arr.dtype.itemsize == 2:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu" and arr.dtype != np.int64 and arr.dtype != np.int32:
        arr = arr.astype(np.int64)
    if not arr.dtype.isnative:
        # the kernels read native-endian values: a copy converts byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return _ascontig(arr)


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """Copy `data` (numbers, nested lists, numpy arrays, tensors) into a new leaf tensor."""
    if device is not None:
        _check_device(device)
    cdef Tensor t = _wrap(_infer_array(data, dtype))
    if requires_grad:
        t._set_requires_grad(True)
    return t


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a numpy array or tensor of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or _to_dtype(dtype) is (<Tensor>data).dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or
                                         _to_dtype(dtype)._np_dtype == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(ndarray):
    """A tensor sharing memory with `ndarray` (no copy), keeping its dtype."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    _dtype_of(ndarray)
    if not ndarray.dtype.isnative:
        raise ValueError("given numpy array has byte order different from the native byte "
                         "order. Conversion between byte orders is currently not supported.")
    # A view: the caller keeps its array object, which numpy lets it reshape in place; the
    # tensor keeps its shape, as torch's does.
    return _wrap(ndarray.view(np.ndarray))


def is_tensor(obj):
    return isinstance(obj, Tensor)


cdef tuple _size_arg(tuple size, str fn):
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{fn}(): argument 'size' must be a tuple of ints, but found element "
                            f"of type {type(s).__name__}")
        if s < 0:
            raise RuntimeError(f"{fn}(): Trying to create tensor with negative dimension {s}: "
                               f"{list(size)}")
    return size


cdef cnp.ndarray _new_array(tuple size, object dt):
    cdef dtype d = _default_dtype if dt is None else _to_dtype(dt)
    cdef cnp.npy_intp dims[64]
    cdef int nd = len(size)
    if nd > 64:
        raise ValueError(f"too many dimensions ({nd}); at most 64 are supported")
    for i in range(nd):
        dims[i] = size[i]
    return _empty(nd, dims, d._typenum)


cdef Tensor _finish(cnp.ndarray arr, bint requires_grad):
    cdef Tensor t = _wrap(arr)
    if requires_grad:
        t._set_requires_grad(True)
    return t


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _finish(_new_array(_size_arg(size, "empty"), dtype), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    cdef cnp.ndarray a = _new_array(_size_arg(size, "zeros"), dtype)
    a[...] = 0
    return _finish(a, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    cdef cnp.ndarray a = _new_array(_size_arg(size, "ones"), dtype)
    a[...] = 1
    return _finish(a, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None and isinstance(fill_value, bool):
        dtype = bool_
    elif dtype is None and isinstance(fill_value, int):
        dtype = int64
    cdef cnp.ndarray a = _new_array(_size_arg((size,), "full"), dtype)
    a[...] = fill_value
    return _finish(a, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Standard normal samples from fastoptim's generator (seed it with manual_seed)."""
    cdef cnp.ndarray a
    cdef cnp.npy_intp n
    if dtype is None and len(size) == 1 and type(size[0]) is int and size[0] >= 0 \
            and not requires_grad:
        # randn(n): the textbook loop's input, on its own short path
        n = <cnp.npy_intp>size[0]
        a = _empty(1, &n, _default_dtype._typenum)
        _fill_randn(a)
        return _wrap(a)
    a = _new_array(_size_arg(size, "randn"), dtype)
    if not _is_float(a):
        raise TypeError(f"randn: expected a floating dtype, got {dtype}")
    _fill_randn(a)
    return _finish(a, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform samples on [0, 1) from fastoptim's generator."""
    cdef cnp.ndarray a = _new_array(_size_arg(size, "rand"), dtype)
    if not _is_float(a):
        raise TypeError(f"rand: expected a floating dtype, got {dtype}")
    _fill_uniform(a, 0.0, 1.0)
    return _finish(a, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    vals = [_np_of(v) for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        if any(isinstance(v, float) or (isinstance(v, np.ndarray) and v.dtype.kind == "f")
               for v in vals):
            dtype = _default_dtype
        else:
            dtype = int64
    arr = np.arange(vals[0], vals[1], vals[2], dtype=_to_dtype(dtype)._np_dtype)
    return _finish(arr, requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad=False):
    d = _default_dtype if dtype is None else _to_dtype(dtype)
    return _finish(np.linspace(start, end, steps).astype(d._np_dtype), requires_grad)


cdef object _like_dtype(Tensor t, object dtype):
    return t.dtype if dtype is None else dtype


def empty_like(input, *, dtype=None, requires_grad=False, **kw):
    return empty(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def zeros_like(input, *, dtype=None, requires_grad=False, memory_format=None, **kw):
    return zeros(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def ones_like(input, *, dtype=None, requires_grad=False, **kw):
    return ones(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad=False, **kw):
    return full(_shp(_np_of(input)), fill_value, dtype=_like_dtype(input, dtype),
                requires_grad=requires_grad)


def randn_like(input, *, dtype=None, requires_grad=False, **kw):
    return randn(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def rand_like(input, *, dtype=None, requires_grad=False, **kw):
    return rand(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


cdef void _fill_array(Tensor t, int kind, double p0, double p1):
    """In-place random fill used by nn.init: kind 0 normal(p0, p1), 1 uniform[p0, p1)."""
    cdef cnp.ndarray a = _contig(t._np)
    if not _is_float(a):
        raise TypeError("random fills need a floating tensor")
    if kind == 0:
        _fill_randn(a)
        if p1 != 1.0:
            _unary_arr(a, a, FO_MUL_S, p1, 0.0)
        if p0 != 0.0:
            _unary_arr(a, a, FO_ADD_S, p0, 0.0)
    else:
        _fill_uniform(a, p0, p1)
    if a is not t._np:
        t._np[...] = a


# ---------------------------------------------------------------------------------------------
# forward ops
# ---------------------------------------------------------------------------------------------

cdef inline bint _is_scalar(object x):
    return isinstance(x, (float, int)) or isinstance(x, (np.floating, np.integer, np.bool_))


cdef Tensor _as_tensor(object x, Tensor like):
    if isinstance(x, Tensor):
        return <Tensor>x
    if isinstance(x, np.ndarray):
        return from_numpy(x) if x.dtype.isnative else tensor(x)
    if isinstance(x, (list, tuple)):
        return tensor(x, dtype=like.dtype if _is_float(like._np) else None)
    raise TypeError(f"unsupported operand type: {type(x).__name__} (expected a Tensor, a number "
                    "or an array)")


cdef void _unary_arr(cnp.ndarray out, cnp.ndarray x, int op, double p0, double p1):
    cdef int64_t n = cnp.PyArray_SIZE(x)
    if _is_f32(x):
        fo_unary_f32(op, n, <float*>_ptr(out), <const float*>_ptr(x), p0, p1)
    else:
        fo_unary_f64(op, n, <double*>_ptr(out), <const double*>_ptr(x), p0, p1)


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
        _record(t, N_UNARY, a, None, (x, out))
        t._sub = op
        t._p0 = p0
        t._p1 = p1
    return t


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
    """Clamp every element into [min, max]; a None bound is not applied."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor):
        min = (<Tensor>min).item()
    if isinstance(max, Tensor):
        max = (<Tensor>max).item()
    return _unary(<Tensor>input, FO_CLAMP, NAN if min is None else float(min),
                  NAN if max is None else float(max))


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
        _record(t, N_CAST, a, None, None)
    return t


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
        return _wrap(_np_binary(op, x, y))
    x = _contig(x)
    y = _contig(y)
    m = _broadcast(x, y, shape, sa, sb)
    oshape = _broadcast_shape(x, y)
    nd = len(oshape)
    for i in range(nd):
        odims[i] = oshape[i]
    out = _empty(nd, odims, cnp.PyArray_TYPE(x))
    if cnp.PyArray_SIZE(out) > 0:
        if _is_f32(x):
            fo_binary_f32(op, m, shape, <float*>_ptr(out), <const float*>_ptr(x), sa,
                          <const float*>_ptr(y), sb)
        else:
            fo_binary_f64(op, m, shape, <double*>_ptr(out), <const double*>_ptr(x), sa,
                          <const double*>_ptr(y), sb)
    t = _wrap(out)
    if _needs_grad(a, b):
        _record(t, N_BINARY, a, b, (x, y))
        t._sub = op
    return t


cdef object _np_binary(int op, cnp.ndarray x, cnp.ndarray y):
    if op == FO_ADD:
        return x + y
    if op == FO_SUB:
        return x - y
    if op == FO_MUL:
        return x * y
    return np.true_divide(x, y).astype(_default_dtype._np_dtype)


cdef Tensor _add(Tensor a, object other, object alpha):
    if _is_scalar(other):
        if not _is_float(a._np) and not isinstance(other, (float, np.floating)) and \
                (alpha == 1 or not isinstance(alpha, (float, np.floating))):
            return _wrap(a._np + (other if alpha == 1 else other * int(alpha)))
        return _unary(a, FO_ADD_S, float(other) * float(alpha), 0.0)
    cdef Tensor b = _as_tensor(other, a)
    if alpha != 1:
        b = _mul(b, alpha)
    return _binary(a, b, FO_ADD)


cdef Tensor _sub(Tensor a, object other):
    if _is_scalar(other):
        if not _is_float(a._np) and not isinstance(other, (float, np.floating)):
            return _wrap(a._np - other)
        return _unary(a, FO_ADD_S, -float(other), 0.0)
    return _binary(a, _as_tensor(other, a), FO_SUB)


cdef Tensor _rsub(Tensor a, object other):
    if _is_scalar(other):
        if not _is_float(a._np) and not isinstance(other, (float, np.floating)):
            return _wrap(other - a._np)
        return _unary(a, FO_RSUB_S, float(other), 0.0)
    return _binary(_as_tensor(other, a), a, FO_SUB)


cdef Tensor _mul(Tensor a, object other):
    if _is_scalar(other):
        if not _is_float(a._np):
            if isinstance(other, float):
                return _unary(a, FO_MUL_S, other, 0.0)
            return _wrap(a._np * other)
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
        raise NotImplementedError("pow with a tensor exponent is not supported; use a number")
    return _unary(a, FO_POW, float(exponent), 0.0)


cdef Tensor _rpow(Tensor a, object base):
    if not _is_scalar(base):
        raise NotImplementedError("pow with a tensor base and tensor exponent is not supported")
    return _unary(a, FO_RPOW_S, float(base), 0.0)


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


cdef void _inplace(Tensor self, int op, object other, object alpha) except *:
    """self (op)= alpha*other / other, in place, broadcasting other to self's shape."""
    cdef cnp.ndarray x = self._np
    cdef cnp.ndarray xc, o
    cdef double s
    cdef int64_t n
    if not _is_float(x):
        y = _np_of(other)
        if op == FO_ADD:
            x += y * alpha
        elif op == FO_SUB:
            x -= y * alpha
        elif op == FO_MUL:
            x *= y
        else:
            raise RuntimeError("result type Float can't be cast to the desired output type "
                               f"{_dtype_of(x)._legacy[:-6]}")
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
        if cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(xc) or not cnp.PyArray_IS_C_CONTIGUOUS(o) \
                or not o.dtype.isnative or np.may_share_memory(o, xc):
            o = _ascontig(o, dtype=xc.dtype).copy() if np.may_share_memory(o, xc) \
                else _ascontig(o, dtype=xc.dtype)
        if _is_f32(xc):
            fo_inplace_binary_f32(op, n, <float*>_ptr(xc), <const float*>_ptr(o), n,
                                  float(alpha))
        else:
            fo_inplace_binary_f64(op, n, <double*>_ptr(xc), <const double*>_ptr(o), n,
                                  float(alpha))
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
        if _is_f32(xc):
            fo_lerp_f32(n, <float*>_ptr(xc), <const float*>_ptr(a), float(value))
        else:
            fo_lerp_f64(n, <double*>_ptr(xc), <const double*>_ptr(a), float(value))
    else:
        b = _operand_like(xc, t2, "tensor2")
        if kind == 0:
            if _is_f32(xc):
                fo_addcmul_f32(n, <float*>_ptr(xc), <const float*>_ptr(a),
                               <const float*>_ptr(b), float(value))
            else:
                fo_addcmul_f64(n, <double*>_ptr(xc), <const double*>_ptr(a),
                               <const double*>_ptr(b), float(value))
        else:
            if _is_f32(xc):
                fo_addcdiv_f32(n, <float*>_ptr(xc), <const float*>_ptr(a),
                               <const float*>_ptr(b), float(value))
            else:
                fo_addcdiv_f64(n, <double*>_ptr(xc), <const double*>_ptr(a),
                               <const double*>_ptr(b), float(value))
    if xc is not x:
        x[...] = xc


# ---- reductions ------------------------------------------------------------------------------

cdef Tensor _sum(Tensor a, object dim, bint keepdim, bint mean, object dt):
    cdef cnp.ndarray x
    cdef cnp.ndarray out
    cdef int64_t n, outer, inner
    cdef double total, scale
    cdef Tensor t
    cdef int nd, d
    if dt is not None:
        a = _cast(a, _to_dtype(dt))
    if not _is_float(a._np):
        if mean:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either "
                               "a floating point or complex dtype. Got: "
                               f"{_dtype_of(a._np)._legacy[:-6]}")
        return _wrap(np.asarray(a._np.sum(axis=dim, keepdims=keepdim)))
    x = _contig(a._np)
    nd = cnp.PyArray_NDIM(x)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        n = cnp.PyArray_SIZE(x)
        if _is_f32(x):
            total = fo_sum_f32(n, <const float*>_ptr(x))
        else:
            total = fo_sum_f64(n, <const double*>_ptr(x))
        scale = 1.0
        if mean:
            scale = 1.0 / n if n > 0 else NAN
            total = total / n if n > 0 else NAN
        out = _scalar_array(total, cnp.PyArray_TYPE(x))
        if keepdim:
            out = out.reshape((1,) * nd)
        t = _wrap(out)
        if _grad_enabled and a._requires_grad:
            _record(t, N_SUM, a, None, _shp(x))
            t._p0 = scale
        return t
    if isinstance(dim, (tuple, list)):
        dims = sorted({_norm_dim(dd, nd) for dd in dim}, reverse=True)
        t = a
        for dd in dims:
            t = _sum(t, dd, True, mean, None)
        if not keepdim:
            shp = tuple(s for k, s in enumerate(_shp(t._np)) if k not in dims)
            t = _view(t, shp, False)
        return t
    d = _norm_dim(dim, nd)
    if nd == 0:
        return _sum(a, None, keepdim, mean, None)
    shp = _shp(x)
    outer = 1
    for k in range(d):
        outer *= shp[k]
    n = shp[d]
    inner = 1
    for k in range(d + 1, nd):
        inner *= shp[k]
    scale = (1.0 / n if n > 0 else NAN) if mean else 1.0
    oshape = shp[:d] + ((1,) if keepdim else ()) + shp[d + 1:]
    out = np.empty(oshape, dtype=x.dtype)
    if _is_f32(x):
        fo_sum_axis_f32(outer, n, inner, <const float*>_ptr(x), scale, <float*>_ptr(out))
    else:
        fo_sum_axis_f64(outer, n, inner, <const double*>_ptr(x), scale, <double*>_ptr(out))
    t = _wrap(out)
    if _grad_enabled and a._requires_grad:
        _record(t, N_SUM_AXIS, a, None, (outer, n, inner, shp))
        t._p0 = scale
    return t


cdef Tensor _extreme(Tensor a, bint want_max, tuple args, dict kwargs):
    cdef cnp.ndarray x
    cdef int64_t n, count = 0
    cdef double m
    cdef Tensor t
    name = "max" if want_max else "min"
    if args and isinstance(args[0], Tensor):
        # element-wise maximum/minimum of two tensors
        other = args[0]
        if _needs_grad(a, <Tensor>other):
            # there is no backward for it: refuse rather than silently cut the graph
            raise NotImplementedError(f"{name}(other) is not differentiable in fastoptim; use "
                                      "it under no_grad() or on detached tensors")
        return _wrap(np.maximum(a._np, other._np) if want_max else np.minimum(a._np, other._np))
    if args or kwargs:
        raise NotImplementedError(f"{name}(dim) is not supported by fastoptim; {name}() over "
                                  "all elements is")
    x = _contig(a._np)
    n = cnp.PyArray_SIZE(x)
    if n == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                           "input.numel() == 0. Specify the reduction dim with the 'dim' argument.")
    if not _is_float(x):
        return _wrap(np.asarray(x.max() if want_max else x.min()))
    if _is_f32(x):
        m = fo_extreme_f32(n, <const float*>_ptr(x), want_max, &count)
    else:
        m = fo_extreme_f64(n, <const double*>_ptr(x), want_max, &count)
    t = _wrap(_scalar_array(m, cnp.PyArray_TYPE(x)))
    if _grad_enabled and a._requires_grad:
        _record(t, N_EXTREME, a, None, x)
        t._p0 = m
        t._p1 = <double>count
        t._sub = want_max
    return t


# ---- matrix products -------------------------------------------------------------------------

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
    if _is_f32(C):
        fo_matmul_f32(M, N, K, <const float*>_ptr(A), ta, <const float*>_ptr(B), tb,
                      <const float*>_optr(bias), <float*>_ptr(C))
    else:
        fo_matmul_f64(M, N, K, <const double*>_ptr(A), ta, <const double*>_ptr(B), tb,
                      <const double*>_optr(bias), <double*>_ptr(C))


def _matmul_c(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out):
    """The plain C product out = a @ b for 2-D float32/float64 contiguous arrays (no BLAS,
    whatever the size): for benchmarks/bench_matmul_threshold.py."""
    cdef int t = cnp.PyArray_TYPE(out)
    if (cnp.PyArray_TYPE(a) != t or cnp.PyArray_TYPE(b) != t or not _is_float(out)
            or a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]
            or _shp(out) != (a.shape[0], b.shape[1])
            or not (a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous)):
        raise ValueError("_matmul_c needs contiguous 2-D arrays of one float dtype with "
                         "matching shapes")
    if _is_f32(out):
        fo_matmul_f32(a.shape[0], b.shape[1], a.shape[1], <const float*>_ptr(a), 0,
                      <const float*>_ptr(b), 0, NULL, <float*>_ptr(out))
    else:
        fo_matmul_f64(a.shape[0], b.shape[1], a.shape[1], <const double*>_ptr(a), 0,
                      <const double*>_ptr(b), 0, NULL, <double*>_ptr(out))


def _blas_min_flops():
    return _BLAS_MIN_FLOPS


def matmul(input, other):
    """Matrix product for 1-D and 2-D operands, as torch.matmul."""
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
        raise NotImplementedError(f"batched matmul ({na}D @ {nb}D) is not supported by fastoptim;"
                                  " only 1-D and 2-D operands")
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
        _record(t, N_MATMUL, a, b, (x, y, M, N, K))
        t._sub = kind
    return t


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
        _record(t, N_LINEAR, x, w, (xa, wa, M, N, K))
        # the bias edge lives in _saved: nodes have two tensor slots
        t._saved = (xa, wa, M, N, K, b if (b is not None and b._requires_grad) else None)
    return t


# ---- losses -------------------------------------------------------------------------------------

def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error, one fused node (as torch's MseLoss) when shapes match."""
    cdef Tensor a = <Tensor>input
    cdef Tensor b
    cdef cnp.ndarray x, y
    cdef int64_t n
    cdef double total
    cdef int red
    cdef Tensor t
    if not isinstance(input, Tensor):
        raise TypeError(f"mse_loss(): argument 'input' must be Tensor, not "
                        f"{type(input).__name__}")
    if not isinstance(target, Tensor):
        raise TypeError(f"mse_loss(): argument 'target' must be Tensor, not "
                        f"{type(target).__name__}")
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction == "mean":
        red = 1
    elif reduction == "sum":
        red = 2
    elif reduction == "none":
        red = 0
    else:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    b = <Tensor>target
    if not cnp.PyArray_SAMESHAPE(a._np, b._np):
        warnings.warn(
            f"Using a target size ({Size(_shp(b._np))}) that is different to the input size "
            f"({Size(_shp(a._np))}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.", UserWarning, stacklevel=1)
        diff = _binary(a, b, FO_SUB)   # raises torch's message when not broadcastable
        sq = _unary(diff, FO_POW, 2.0, 0.0)
        if red == 0:
            return sq
        return _sum(sq, None, False, red == 1, None)
    if cnp.PyArray_TYPE(a._np) != cnp.PyArray_TYPE(b._np):
        d = _promote(a, b)
        a = _cast(a, d)
        b = _cast(b, d)
    if not _is_float(a._np):
        raise RuntimeError("mse_loss(): expected floating tensors, got "
                           f"{_dtype_of(a._np)}")
    if red == 0:
        return _unary(_binary(a, b, FO_SUB), FO_POW, 2.0, 0.0)
    x = _contig(a._np)
    y = _contig(b._np)
    n = cnp.PyArray_SIZE(x)
    if _is_f32(x):
        total = fo_mse_f32(n, <const float*>_ptr(x), <const float*>_ptr(y))
    else:
        total = fo_mse_f64(n, <const double*>_ptr(x), <const double*>_ptr(y))
    if red == 1:
        total = total / n if n > 0 else NAN
    t = _wrap(_scalar_array(total, cnp.PyArray_TYPE(x)))
    if _needs_grad(a, b):
        _record(t, N_MSE, a, b, (x, y))
        t._sub = red
    return t


def _legacy_reduction(size_average, reduce):
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


# ---- views, casts, indexing ---------------------------------------------------------------------

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
        _record(t, N_VIEW, a, None, _shp(x))
    return t


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
        _record(t, N_TRANSPOSE, a, None, (i, j))
    return t


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
        _record(t, N_INDEX, a, None, key)
    return t


# ---------------------------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------------------------

cdef void _accumulate(Tensor t, cnp.ndarray g, bint owned) except *:
    """Add gradient g into t's pending gradient (t._gacc)."""
    cdef cnp.ndarray acc
    cdef int64_t n
    if t._gacc is None:
        t._gacc = g
        t._gown = owned
        return
    if not t._gown:
        t._gacc = np.array(t._gacc, order="C")
        t._gown = True
    acc = t._gacc
    n = cnp.PyArray_SIZE(acc)
    g = _contig(g)
    if _is_f32(acc):
        fo_inplace_binary_f32(FO_ADD, n, <float*>_ptr(acc), <const float*>_ptr(g), n, 1.0)
    else:
        fo_inplace_binary_f64(FO_ADD, n, <double*>_ptr(acc), <const double*>_ptr(g), n, 1.0)


cdef void _store_grad(Tensor t, cnp.ndarray g, bint owned) except *:
    """AccumulateGrad: a leaf's .grad is created or summed into in place."""
    cdef Tensor old = t._grad
    cdef cnp.ndarray acc
    cdef int64_t n
    if old is None:
        t._grad = _wrap(g if owned else np.array(g, order="C"))
        return
    acc = old._np
    if not cnp.PyArray_IS_C_CONTIGUOUS(acc) or not cnp.PyArray_ISWRITEABLE(acc) or \
            cnp.PyArray_TYPE(acc) != cnp.PyArray_TYPE(g) or not cnp.PyArray_SAMESHAPE(acc, g):
        _bind(old, acc + g)
        return
    n = cnp.PyArray_SIZE(acc)
    g = _contig(g)
    if _is_f32(acc):
        fo_inplace_binary_f32(FO_ADD, n, <float*>_ptr(acc), <const float*>_ptr(g), n, 1.0)
    else:
        fo_inplace_binary_f64(FO_ADD, n, <double*>_ptr(acc), <const double*>_ptr(g), n, 1.0)


cdef object _POST = object()    # stack marker: "the tensor below me is finished"


cdef list _topo(Tensor root):
    """Graph nodes reachable from root in post-order (inputs before outputs): an iterative
    DFS (no recursion limit on long chains) with a generation mark instead of a visited set.

    A tensor is marked when it is EXPANDED, not when it is queued: a tensor reached by two
    paths of different lengths must come after everything that feeds it, or the gradient from
    the longer path would arrive after the tensor had already been processed.  In a DAG a
    child met already marked is finished (it cannot be an unfinished ancestor)."""
    global _mark_gen
    _mark_gen += 1
    cdef int gen = _mark_gen
    cdef list order = []
    cdef list stack = [root]
    cdef object top
    cdef Tensor t, c
    while stack:
        top = stack.pop()
        if top is _POST:
            order.append(stack.pop())
            continue
        t = <Tensor>top
        if t._mark == gen:
            continue
        t._mark = gen
        stack.append(t)
        stack.append(_POST)
        c = t._in0
        if c is not None and c._mark != gen:
            stack.append(c)
        c = t._in1
        if c is not None and c._mark != gen:
            stack.append(c)
        if t._op == N_LINEAR and t._saved is not None:
            # the bias: nodes have two tensor slots, linear's third input rides in _saved
            c = <Tensor>t._saved[5]
            if c is not None and c._mark != gen:
                stack.append(c)
    return order


cdef void _backward(Tensor root, object gradient, bint retain) except *:
    cdef cnp.ndarray g0
    cdef list order
    cdef Tensor t
    cdef Py_ssize_t i
    if not root._requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                           "grad_fn")
    if gradient is None:
        if cnp.PyArray_SIZE(root._np) != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        g0 = _empty_like(root._np)     # one element: the implicit gradient 1
        if _is_f32(g0):
            (<float*>_ptr(g0))[0] = 1.0
        else:
            (<double*>_ptr(g0))[0] = 1.0
    else:
        g0 = np.asarray(_np_of(gradient))
        if _shp(g0) != _shp(root._np):
            raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of "
                               f"{Size(_shp(g0))} and output[0] has a shape of "
                               f"{Size(_shp(root._np))}.")
        g0 = _ascontig(g0, dtype=root._np.dtype)
    if root._op == N_LEAF:
        _store_grad(root, g0, gradient is None)
        return
    order = _topo(root)
    root._gacc = g0
    root._gown = gradient is None
    try:
        for i in range(len(order) - 1, -1, -1):
            t = <Tensor>order[i]
            if t._gacc is None:
                continue
            if t._op == N_LEAF:
                _store_grad(t, t._gacc, t._gown)
            else:
                if t._retains_grad:
                    _store_grad(t, t._gacc, False)
                _node_backward(t, t._gacc, t._gown)
            t._gacc = None
    finally:
        for i in range(len(order)):
            t = <Tensor>order[i]
            t._gacc = None
            if not retain and t._op != N_LEAF and t._saved is not None:
                _free_saved(t)


cdef void _free_saved(Tensor t):
    """Drop what a node saved for its backward (the graph edges stay, as in torch)."""
    if t._freed:
        return  # already dropped by an earlier backward (add/sub may backward again)
    if t._op == N_BINARY and (t._sub == FO_ADD or t._sub == FO_SUB):
        t._saved = (t._saved[0].shape, t._saved[1].shape, t._saved[0].dtype)
        t._freed = 2   # shapes kept: add/sub need no values
        return
    if t._op == N_UNARY and t._sub in (FO_NEG, FO_ADD_S, FO_MUL_S, FO_RSUB_S, FO_DIV_S):
        t._saved = t._saved[0].shape
        t._freed = 2
        return
    if t._op in (N_SUM, N_SUM_AXIS, N_VIEW, N_TRANSPOSE, N_CAST, N_CLONE, N_INDEX):
        return  # they save only shapes / keys
    if t._op == N_LINEAR:
        t._saved = (None, None, 0, 0, 0, t._saved[5])
    else:
        t._saved = None
    t._freed = 1


cdef inline cnp.ndarray _cast_like(cnp.ndarray g, cnp.ndarray like):
    if cnp.PyArray_TYPE(g) == cnp.PyArray_TYPE(like):
        return g
    return g.astype(like.dtype)


cdef void _node_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """Compute the inputs' gradients of node t from its output gradient g (contiguous)."""
    cdef int op = t._op
    cdef Tensor a = t._in0
    cdef Tensor b = t._in1
    cdef cnp.ndarray x, y, ga, gb, gx
    cdef int64_t n, M, N, K
    cdef int64_t shape[64]
    cdef int64_t sa[64]
    cdef int64_t sb[64]
    cdef int m
    if t._freed == 1:
        raise RuntimeError(_FREED_MSG)
    if op == N_BINARY:
        if t._freed == 2:
            # add/sub after the values were freed: only shapes are needed
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
            if _is_f32(g):
                fo_binary_backward_f32(t._sub, m, shape, <const float*>_ptr(g),
                                       <const float*>_ptr(x), sa, <const float*>_ptr(y), sb,
                                       <float*>_optr(ga), <float*>_optr(gb))
            else:
                fo_binary_backward_f64(t._sub, m, shape, <const double*>_ptr(g),
                                       <const double*>_ptr(x), sa, <const double*>_ptr(y), sb,
                                       <double*>_optr(ga), <double*>_optr(gb))
        if a is not None:
            _accumulate(a, ga, True)
        if b is not None:
            _accumulate(b, gb, True)
    elif op == N_UNARY:
        if t._freed == 2:
            x = None
            y = None
        else:
            x, y = t._saved
        n = cnp.PyArray_SIZE(g)
        gx = _empty_like(g)
        if _is_f32(g):
            fo_unary_backward_f32(t._sub, n, <const float*>_ptr(g), <const float*>_optr(x),
                                  <const float*>_optr(y), t._p0, t._p1, <float*>_ptr(gx))
        else:
            fo_unary_backward_f64(t._sub, n, <const double*>_ptr(g), <const double*>_optr(x),
                                  <const double*>_optr(y), t._p0, t._p1, <double*>_ptr(gx))
        _accumulate(a, gx, True)
    elif op == N_SUM:
        gx = _empty_shape(t._saved, cnp.PyArray_TYPE(g))
        n = cnp.PyArray_SIZE(gx)
        if _is_f32(g):
            fo_expand_axis_f32(1, n, 1, <const float*>_ptr(g), t._p0, <float*>_ptr(gx))
        else:
            fo_expand_axis_f64(1, n, 1, <const double*>_ptr(g), t._p0, <double*>_ptr(gx))
        _accumulate(a, gx, True)
    elif op == N_SUM_AXIS:
        outer, n, inner, in_shape = t._saved
        gx = _empty_shape(in_shape, cnp.PyArray_TYPE(g))
        if _is_f32(g):
            fo_expand_axis_f32(outer, n, inner, <const float*>_ptr(g), t._p0, <float*>_ptr(gx))
        else:
            fo_expand_axis_f64(outer, n, inner, <const double*>_ptr(g), t._p0,
                               <double*>_ptr(gx))
        _accumulate(a, gx, True)
    elif op == N_EXTREME:
        x = t._saved
        gx = _empty_like(x)
        n = cnp.PyArray_SIZE(x)
        if _is_f32(x):
            fo_extreme_backward_f32(n, <const float*>_ptr(x), t._p0, _first(g),
                                    <int64_t>t._p1, <float*>_ptr(gx))
        else:
            fo_extreme_backward_f64(n, <const double*>_ptr(x), t._p0, _first(g),
                                    <int64_t>t._p1, <double*>_ptr(gx))
        _accumulate(a, gx, True)
    elif op == N_MATMUL:
        x, y, M, N, K = t._saved
        # dA[M,K] = g[M,N] @ B^T ; dB[K,N] = A^T @ g[M,N]
        if a is not None:
            ga = _empty_like(x)
            _mm(g, False, y, True, None, ga, M, K, N)
            _accumulate(a, ga, True)
        if b is not None:
            gb = _empty_like(y)
            _mm(x, True, g, False, None, gb, K, N, M)
            _accumulate(b, gb, True)
    elif op == N_LINEAR:
        x, y, M, N, K, bias_t = t._saved
        # y = x W^T + b:  dx = g @ W ; dW = g^T @ x ; db = column sums of g
        if a is not None:
            ga = _empty_like(x)
            _mm(g, False, y, False, None, ga, M, K, N)
            _accumulate(a, ga, True)
        if b is not None:
            gb = _empty_like(y)
            _mm(g, True, x, False, None, gb, N, K, M)
            _accumulate(b, gb, True)
        if bias_t is not None:
            gx = _empty(1, <cnp.npy_intp*>&N, cnp.PyArray_TYPE(g))
            if _is_f32(g):
                fo_sum_axis_f32(1, M, N, <const float*>_ptr(g), 1.0, <float*>_ptr(gx))
            else:
                fo_sum_axis_f64(1, M, N, <const double*>_ptr(g), 1.0, <double*>_ptr(gx))
            _accumulate(<Tensor>bias_t, gx, True)
    elif op == N_MSE:
        x, y = t._saved
        n = cnp.PyArray_SIZE(x)
        ga = _empty_like(x) if a is not None else None
        gb = _empty_like(y) if b is not None else None
        scale = 2.0 / n if t._sub == 1 else 2.0
        if _is_f32(x):
            fo_mse_backward_f32(n, <const float*>_ptr(x), <const float*>_ptr(y), NULL,
                                _first(g), scale, <float*>_optr(ga),
                                <float*>_optr(gb))
        else:
            fo_mse_backward_f64(n, <const double*>_ptr(x), <const double*>_ptr(y), NULL,
                                _first(g), scale, <double*>_optr(ga),
                                <double*>_optr(gb))
        if a is not None:
            _accumulate(a, ga, True)
        if b is not None:
            _accumulate(b, gb, True)
    elif op == N_VIEW:
        _accumulate(a, g.reshape(t._saved), False)
    elif op == N_TRANSPOSE:
        i, j = t._saved
        _accumulate(a, _ascontig(g.swapaxes(i, j)), True)
    elif op == N_INDEX:
        gx = _zeros_like(_contig(a._np)) if cnp.PyArray_TYPE(a._np) == cnp.PyArray_TYPE(g) \
            else np.zeros(_shp(a._np), dtype=g.dtype)
        np.add.at(gx, t._saved, g)
        _accumulate(a, gx, True)
    elif op == N_CAST:
        _accumulate(a, _cast_like(g, a._np), True)
    elif op == N_CLONE:
        _accumulate(a, g, False)


# ---------------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------------

def _format_tensor(Tensor t):
    arr = t._np
    d = _dtype_of(arr)
    if d.is_floating_point and arr.size:
        finite = arr[np.isfinite(arr)]
        integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        amax = float(np.abs(finite).max()) if finite.size else 0.0
        nz = np.abs(finite[finite != 0])
        amin = float(nz.min()) if nz.size else 0.0
        sci = finite.size > 0 and (
            amax >= 1e8 or (amin > 0 and (amin < 1e-4 or amax / amin > 1000.0)))
        spec = "{:.0f}." if integral and not sci else "{:.4e}" if sci else "{:.4f}"

        def one(v):
            return spec.format(v) if np.isfinite(v) else str(v)
        # torch right-aligns every element to the widest finite one ("[ 1.5000, -2.2500]")
        shown = _printed(arr)
        width = max([len(one(v)) for v in np.unique(shown[np.isfinite(shown)])] or [1])
        fmt = {"float_kind": lambda v: one(v).rjust(width)}
        body = np.array2string(arr, separator=", ", prefix="tensor(", formatter=fmt,
                               threshold=1000, edgeitems=3).replace(", ..., ", ",  ..., ")
    else:
        body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000,
                               edgeitems=3)
        if d is bool_:
            body = body.replace("True", "True").replace("False", "False")
    extras = []
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(_shp(arr))}")
    if d is not _default_dtype and d is not int64 and d is not bool_:
        extras.append(f"dtype={d!r}")
    if t._op != N_LEAF:
        extras.append(f"grad_fn=<{t._node_name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _printed(arr):
    """The elements repr shows: all of them, or the 3 leading and trailing ones per dim when
    numpy summarises (more than 1000 elements)."""
    if arr.size <= 1000:
        return arr.reshape(-1)
    for ax in range(arr.ndim):
        if arr.shape[ax] > 6:
            arr = np.concatenate([arr.take(range(3), axis=ax),
                                  arr.take(range(arr.shape[ax] - 3, arr.shape[ax]), axis=ax)],
                                 axis=ax)
    return arr.reshape(-1)


def _make_subclass(cls, data, requires_grad=False):
    """A `cls` instance (a Tensor subclass such as nn.Parameter) sharing data's storage."""
    cdef Tensor src = <Tensor>data
    cdef Tensor t = Tensor.__new__(cls)
    _bind(t, src._np)
    if requires_grad:
        t._set_requires_grad(True)
    return t


@cython.auto_pickle(False)   # Modules pickle through their own __getstate__/__setstate__
cdef class _CallsForward:
    """Base class of nn.Module: ``module(*args)`` runs ``self.forward(*args)`` with no Python
    frame of its own (a small model's training step makes several module calls)."""

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)
