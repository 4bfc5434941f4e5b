# The Tensor class: properties, conversions and the methods users call.  Methods are thin: each
# hands over to its op's forward in the area file that owns it (_tensor_elementwise.pxi,
# _tensor_reduce.pxi, _tensor_linalg.pxi, _tensor_views.pxi).  Its C-level fields are declared
# in _tensor.pxd.

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
        return _op_name(self)

    def _inputs(self):
        return tuple(t for t in self._ins if t is not None) if self._ins else ()

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
            self._ins = None
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
            _record1(out, N_CLONE, self, None)
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

