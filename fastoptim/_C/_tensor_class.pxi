# The Tensor class: properties, conversions and the methods users call.  Methods are thin: each
# hands over to its op's forward in the area file that owns it (_tensor_elementwise.pxi,
# _tensor_reduce.pxi, _tensor_linalg.pxi, _tensor_views.pxi).  Its C-level fields are declared
# in _tensor.pxd.

cdef int _mark_gen = 0


cdef class Tensor:
    """A CPU tensor with autograd, stored in a numpy array.  Build one with fastoptim.tensor,
    zeros, randn, from_numpy ...; the constructor ``Tensor(data)`` works like fastoptim.tensor."""

    def __init__(self, *args, dtype=None, requires_grad=False):
        # torch.Tensor(...) is the legacy constructor: always the default float dtype, and
        # Tensor(2, 3) is a size (as FloatTensor(2, 3))
        _bind(self, (<Tensor>_legacy_new(_default_dtype if dtype is None else _to_dtype(dtype),
                                         args, "Tensor"))._np)
        if requires_grad:
            self.requires_grad_(True)

    def __dealloc__(self):
        # a tensor's array dies with it unless something else holds it: offer it to the array
        # pool (_release checks that nothing else can see it).  _np may be None here (never
        # bound, or cleared by the garbage collector first).
        _release(<PyObject*>self._np)

    # ---- identity: tensors hash by identity (== is element-wise, as torch) ------------------
    def __hash__(self):
        # identity hash straight from the address (what object.__hash__ does): optimizer state
        # is a dict keyed by parameters, looked up for every param at every step
        return <Py_hash_t>((<size_t><void*>self) >> 4)

    # ---- basic properties ------------------------------------------------------------------
    @property
    def shape(self):
        """The size of each dimension, as a fastoptim.Size (a tuple)."""
        return Size(_shp(self._np))

    def size(self, dim=None):
        """size() -> Size of every dimension; size(dim) -> the size of one dimension."""
        if dim is None:
            return Size(_shp(self._np))
        return _shp(self._np)[_norm_dim(dim, self._np.ndim)]

    @property
    def dtype(self):
        """The element type (fastoptim.float32, float64, int64, int32 or bool)."""
        return _dtype_of(self._np)

    @property
    def ndim(self):
        """The number of dimensions."""
        return cnp.PyArray_NDIM(self._np)

    def dim(self):
        """The number of dimensions (as torch.Tensor.dim)."""
        return cnp.PyArray_NDIM(self._np)

    def ndimension(self):
        """Alias of dim()."""
        return cnp.PyArray_NDIM(self._np)

    def numel(self):
        """The number of elements."""
        return cnp.PyArray_SIZE(self._np)

    def nelement(self):
        """Alias of numel()."""
        return cnp.PyArray_SIZE(self._np)

    def element_size(self):
        """The size of one element in bytes."""
        return cnp.PyArray_ITEMSIZE(self._np)

    @property
    def device(self):
        """The device the tensor lives on: always fastoptim.device('cpu')."""
        return _CPU

    @property
    def is_cuda(self):
        """False: fastoptim runs on the CPU only."""
        return False

    def is_floating_point(self):
        """True for float32 and float64 tensors."""
        return _is_float(self._np)

    def is_contiguous(self):
        """True when the elements are stored in C (row-major) order without gaps."""
        return bool(cnp.PyArray_IS_C_CONTIGUOUS(self._np))

    def type(self, dtype=None, non_blocking=False):
        """type() -> the legacy type name ('fastoptim.FloatTensor' ...); type(T) -> self cast
        to T: a dtype, a legacy type (fastoptim.FloatTensor ...) or its name ('torch.' or
        'fastoptim.' prefixed)."""
        if dtype is None:
            return "fastoptim." + _dtype_of(self._np)._legacy
        return self.to(_legacy_dtype(dtype))

    def stride(self, dim=None):
        """The step in elements between neighbours along each dimension (or one dim)."""
        cdef int isz = cnp.PyArray_ITEMSIZE(self._np)
        st = tuple(s // isz for s in (<object>self._np).strides)
        return st if dim is None else st[_norm_dim(dim, self._np.ndim)]

    def data_ptr(self):
        """The address of the first element."""
        return <size_t>_ptr(self._np)

    # ---- autograd attributes -------------------------------------------------------------
    @property
    def requires_grad(self):
        """Whether autograd records operations on this tensor (settable on leaves)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self._set_requires_grad(value)

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place (leaves only) and return self."""
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
        """True for tensors not made by a recorded op (user-created, or requires_grad=False)."""
        return self._op == N_LEAF

    @property
    def grad_fn(self):
        """The node that made this tensor (its backward's name and inputs), or None."""
        if self._op == N_LEAF:
            return None
        return Node(self._node_name(), self)

    @property
    def retains_grad(self):
        """Whether this non-leaf keeps its .grad after backward (see retain_grad)."""
        return self._retains_grad

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in .grad after backward()."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._op != N_LEAF:
            self._retains_grad = True

    @property
    def grad(self):
        """The gradient accumulated by backward() (leaves), or None."""
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
        """The same storage as a tensor outside the graph (assigning rebinds the storage)."""
        return _wrap(self._np)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        _bind(self, (<Tensor>value)._np)

    def detach(self):
        """A new tensor sharing this storage, outside the autograd graph."""
        return _wrap(self._np)

    def detach_(self):
        """Detach this tensor from the graph in place (it becomes a leaf that needs no grad)."""
        if self._op != N_LEAF:
            self._op = N_LEAF
            self._ins = None
            self._saved = None
        self._requires_grad = False
        return self

    def numpy(self, *, force=False):
        """A numpy array sharing this tensor's memory (refused on tensors requiring grad)."""
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

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule over this tensor's memory (_tensor_dlpack.pxi)."""
        return _tensor_dlpack(self, stream, max_version, dl_device, copy)

    def __dlpack_device__(self):
        """(kDLCPU, 0): every fastoptim tensor lives in CPU memory."""
        return (_DL_CPU, 0)

    def tolist(self):
        """The elements as (nested) Python lists of numbers; a 0-d tensor gives a number."""
        return self._np.tolist()

    def item(self):
        """The value of a one-element tensor as a Python number."""
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

    def __format__(self, format_spec):
        # as torch: a 0-dim tensor formats as its number (f"{loss:.4f}"); any other with an
        # empty spec as str(), with a spec object.__format__'s TypeError
        if cnp.PyArray_NDIM(self._np) == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

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
        """to(dtype) / to(device[, dtype]) / to(other), with non_blocking= and copy= as torch's.
        Only the CPU exists, so a device must name it; a dtype change is differentiable;
        copy=True always returns a new tensor."""
        d = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        copy = bool(kwargs.pop("copy", False))
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
        flags = []
        for a in args:
            if isinstance(a, Tensor):
                d = (<Tensor>a).dtype
            elif isinstance(a, (str, device)) or (isinstance(a, int) and
                                                  not isinstance(a, bool)):
                dev = a
            elif isinstance(a, bool):
                flags.append(a)     # positional non_blocking, copy
            elif a is not None:
                d = a
        if len(flags) > 1:
            copy = copy or flags[1]
        _check_device(dev)
        if d is None or _to_dtype(d)._typenum == cnp.PyArray_TYPE(self._np):
            return self.clone() if copy else self
        return _cast(self, _to_dtype(d))

    def float(self):
        """A float32 copy (self when already float32); differentiable."""
        return _cast(self, float32)

    def double(self):
        """A float64 copy (self when already float64); differentiable."""
        return _cast(self, float64)

    def long(self):
        """An int64 copy (self when already int64)."""
        return _cast(self, int64)

    def int(self):
        """An int32 copy (self when already int32)."""
        return _cast(self, int32)

    def bool(self):
        """A bool copy (self when already bool)."""
        return _cast(self, bool_)

    def cpu(self, memory_format=None):
        """Self: fastoptim tensors always live on the CPU."""
        return self

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        """Refused: fastoptim runs on the CPU only (check fastoptim.cuda.is_available())."""
        raise RuntimeError("Tensor.cuda() is not supported: fastoptim runs on the CPU only "
                           "(fastoptim.cuda.is_available() is False; see README.md, 'Known "
                           "differences')")

    def contiguous(self):
        """Self when C-contiguous, else a contiguous copy (differentiable)."""
        if cnp.PyArray_IS_C_CONTIGUOUS(self._np):
            return self
        return self.clone()

    def clone(self):
        """A contiguous copy with its own storage (differentiable)."""
        cdef Tensor out = _wrap(np.array(self._np, order="C"))
        if _grad_enabled and self._requires_grad:
            _record1(out, N_CLONE, self, None)
        return out

    # ---- shape ops (views share storage) -----------------------------------------------------
    def reshape(self, *shape):
        """A tensor of the given shape with the same elements: a view when possible."""
        return _view(self, _shape_arg(shape), False)

    def view(self, *shape):
        """view(*shape): a view of the given shape (never copies); view(dtype) casts."""
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list, Size)):
            return self.to(shape[0])
        return _view(self, _shape_arg(shape), True)

    def view_as(self, other):
        """view(other.shape)."""
        return _view(self, tuple(_shp(_np_of(other))), True)

    def reshape_as(self, other):
        """reshape(other.shape)."""
        return _view(self, tuple(_shp(_np_of(other))), False)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims start_dim..end_dim into one (a view when possible)."""
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
        """Drop dims of size 1 (all, or only `dim`, an int or a tuple of ints)."""
        shp = _shp(self._np)
        if dim is None:
            new = tuple(s for s in shp if s != 1)
        else:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            drop = {_norm_dim(d, len(shp)) for d in dims}
            new = tuple(s for k, s in enumerate(shp) if not (k in drop and s == 1))
        return _view(self, new, False)

    def unsqueeze(self, dim):
        """Insert a dim of size 1 at `dim`."""
        shp = _shp(self._np)
        d = _norm_dim(dim, len(shp) + 1)
        return _view(self, shp[:d] + (1,) + shp[d:], False)

    def transpose(self, dim0, dim1):
        """Swap two dims (a view)."""
        return _transpose(self, dim0, dim1)

    def t(self):
        """Transpose a tensor of at most 2 dims (a view)."""
        nd = cnp.PyArray_NDIM(self._np)
        if nd > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
        if nd < 2:
            return _transpose(self, 0, 0)
        return _transpose(self, 0, 1)

    @property
    def T(self):
        """The transpose of a tensor of at most 2 dims; on more, all dims reversed (deprecated
        in torch, with its warning)."""
        nd = cnp.PyArray_NDIM(self._np)
        if nd > 2:
            warnings.warn(
                "The use of `x.T` on tensors of dimension other than 2 to reverse their shape is "
                "deprecated and it will throw an error in a future release. Consider `x.mT` to "
                "transpose batches of matrices or `x.permute(*torch.arange(x.ndim - 1, -1, -1))` "
                "to reverse the dimensions of a tensor.", UserWarning, stacklevel=1)
            return _permute(self, tuple(range(nd - 1, -1, -1)), 0)
        return self.t()

    @property
    def mT(self):
        """The last two dims swapped (a batch of matrices transposed; a view)."""
        nd = cnp.PyArray_NDIM(self._np)
        if nd < 2:
            raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                               f"Got {nd}-D tensor.")
        return _transpose(self, -2, -1)

    def swapaxes(self, axis0, axis1):
        """transpose(axis0, axis1)."""
        return _transpose(self, axis0, axis1)

    def swapdims(self, dim0, dim1):
        """transpose(dim0, dim1)."""
        return _transpose(self, dim0, dim1)

    def permute(self, *dims):
        """The dims reordered (a view): permute(2, 0, 1) or permute((2, 0, 1))."""
        return _permute(self, _dims_arg(dims), 0)

    def movedim(self, source, destination):
        """Move dim(s) `source` to position(s) `destination` (a view)."""
        nd = cnp.PyArray_NDIM(self._np)
        src = source if isinstance(source, (tuple, list)) else (source,)
        dst = destination if isinstance(destination, (tuple, list)) else (destination,)
        if len(src) != len(dst):
            raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)}"
                               f" dims) should contain the same number of dims as destination "
                               f"({list(dst)} dims)")
        src = [_norm_dim(d, nd) for d in src]
        dst = [_norm_dim(d, nd) for d in dst]
        if len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise RuntimeError("movedim: repeated dim in `source` or `destination`")
        order = [d for d in range(nd) if d not in src]
        for s, d in sorted(zip(dst, src)):
            order.insert(s, d)
        return _permute(self, tuple(order), 0)

    moveaxis = movedim

    def unflatten(self, dim, sizes):
        """Split dim into the given sizes (one may be -1): a view when possible."""
        shp = _shp(self._np)
        d = _norm_dim(dim, len(shp))
        sizes = [int(s) for s in sizes]
        if not sizes:
            raise RuntimeError("unflatten: sizes must be non-empty")
        known = 1
        for s in sizes:
            if s != -1:
                known *= s
        if sizes.count(-1) > 1:
            raise RuntimeError("only one dimension can be inferred")
        if -1 in sizes:
            if known == 0 or shp[d] % known:
                raise RuntimeError(f"shape '{sizes}' is invalid for input of size {shp[d]}")
            sizes[sizes.index(-1)] = shp[d] // known
        elif known != shp[d]:
            raise RuntimeError(f"unflatten: Provided sizes {sizes} don't multiply up to the size "
                               f"of dim {d} ({shp[d]}) in the input tensor")
        return _view(self, shp[:d] + tuple(sizes) + shp[d + 1:], False)

    def expand(self, *sizes):
        """A broadcast view with the given sizes (-1 keeps a dim); writes to it are refused."""
        return _expand(self, _shape_arg(sizes))

    def expand_as(self, other):
        """expand(other.size())."""
        return _expand(self, tuple(_shp(_np_of(other))))

    def repeat(self, *repeats):
        """Tile the tensor `repeats` times along each dim (a copy)."""
        return _repeat(self, _shape_arg(repeats))

    def narrow(self, dim, start, length):
        """The slice start:start+length of dim (a view)."""
        return _narrow(self, dim, start, length, 0)

    def split(self, split_size, dim=0):
        """Views of chunks of split_size along dim (the last smaller), or of the given sizes."""
        return _split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        """At most `chunks` views of equal size ceil(n/chunks) along dim (the last smaller)."""
        return _chunk(self, chunks, dim)

    def unbind(self, dim=0):
        """The slices along dim, each without it (views)."""
        cdef int nd = cnp.PyArray_NDIM(self._np)
        if nd == 0:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        d = _norm_dim(dim, nd)
        return tuple(_select(self, d, i, 3) for i in range(_shp(self._np)[d]))

    def select(self, dim, index):
        """The slice at `index` of dim, without that dim (a view)."""
        return _select(self, dim, index, 4)

    def gather(self, dim, index, *, sparse_grad=False):
        """Values along dim at `index` (see fastoptim.gather)."""
        return gather(self, dim, index, sparse_grad=sparse_grad)

    def index_select(self, dim, index):
        """Slices along dim at the indices of a vector (see fastoptim.index_select)."""
        return index_select(self, dim, index)

    def __getitem__(self, key):
        return _index(self, key)

    def __setitem__(self, key, value):
        """self[key] = value in place; a value that requires grad makes self a node of the
        graph (torch's CopySlices), when self itself needs no grad."""
        _setitem(self, key, value)

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

    # in place, as torch: the tensor object and its storage are updated (views see it); there is
    # no __imatmul__, as in torch: ``a @= b`` rebinds a to a @ b
    def __iadd__(self, other):
        return _iop(self, FO_ADD, other, 1)

    def __isub__(self, other):
        return _iop(self, FO_SUB, other, 1)

    def __imul__(self, other):
        return _iop(self, FO_MUL, other, 1)

    def __itruediv__(self, other):
        return _iop(self, FO_DIV, other, 1)

    def __neg__(self):
        return _unary_op(self, FO_NEG)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary_op(self, FO_ABS)

    def add(self, other, *, alpha=1):
        """self + alpha * other, broadcasting (differentiable)."""
        return _add(self, other, alpha)

    def sub(self, other, *, alpha=1):
        """self - alpha * other, broadcasting (differentiable)."""
        if alpha != 1:
            return _add(self, other, -alpha)
        return _sub(self, other)

    def mul(self, other):
        """self * other, broadcasting (differentiable)."""
        return _mul(self, other)

    def div(self, other):
        """self / other (true division), broadcasting (differentiable)."""
        return _div(self, other)

    def pow(self, exponent):
        """self ** exponent (differentiable)."""
        return _pow(self, exponent)

    def neg(self):
        """-self (differentiable)."""
        return _unary_op(self, FO_NEG)

    def exp(self):
        """e ** self, element-wise (differentiable)."""
        return _unary(self, FO_EXP, 0.0, 0.0)

    def log(self):
        """The natural logarithm, element-wise (differentiable)."""
        return _unary(self, FO_LOG, 0.0, 0.0)

    def sqrt(self):
        """The square root, element-wise (differentiable)."""
        return _unary(self, FO_SQRT, 0.0, 0.0)

    def abs(self):
        """The absolute value, element-wise (differentiable)."""
        return _unary_op(self, FO_ABS)

    def relu(self):
        """max(self, 0), element-wise (differentiable)."""
        return _unary_op(self, FO_RELU)

    def tanh(self):
        """The hyperbolic tangent, element-wise (differentiable)."""
        return _unary(self, FO_TANH, 0.0, 0.0)

    def sigmoid(self):
        """1 / (1 + exp(-self)), element-wise (differentiable)."""
        return _unary(self, FO_SIGMOID, 0.0, 0.0)

    def sin(self):
        """The sine, element-wise (differentiable)."""
        return _unary_op(self, FO_SIN)

    def cos(self):
        """The cosine, element-wise (differentiable)."""
        return _unary_op(self, FO_COS)

    def tan(self):
        """The tangent, element-wise (differentiable)."""
        return _unary_op(self, FO_TAN)

    def asin(self):
        """The arcsine, element-wise (differentiable)."""
        return _unary_op(self, FO_ASIN)

    def acos(self):
        """The arccosine, element-wise (differentiable)."""
        return _unary_op(self, FO_ACOS)

    def atan(self):
        """The arctangent, element-wise (differentiable)."""
        return _unary_op(self, FO_ATAN)

    def sinh(self):
        """The hyperbolic sine, element-wise (differentiable)."""
        return _unary_op(self, FO_SINH)

    def cosh(self):
        """The hyperbolic cosine, element-wise (differentiable)."""
        return _unary_op(self, FO_COSH)

    def exp2(self):
        """2 ** self, element-wise (differentiable)."""
        return _unary_op(self, FO_EXP2)

    def expm1(self):
        """Exp(self) - 1, accurate near 0, element-wise (differentiable)."""
        return _unary_op(self, FO_EXPM1)

    def log1p(self):
        """Log(1 + self), accurate near 0, element-wise (differentiable)."""
        return _unary_op(self, FO_LOG1P)

    def log2(self):
        """The base-2 logarithm, element-wise (differentiable)."""
        return _unary_op(self, FO_LOG2)

    def log10(self):
        """The base-10 logarithm, element-wise (differentiable)."""
        return _unary_op(self, FO_LOG10)

    def sign(self):
        """-1, 0 or 1 by sign (0 for NaN), element-wise (differentiable)."""
        return _unary_op(self, FO_SIGN)

    def floor(self):
        """The largest integer <= self, element-wise (differentiable)."""
        return _unary_op(self, FO_FLOOR)

    def ceil(self):
        """The smallest integer >= self, element-wise (differentiable)."""
        return _unary_op(self, FO_CEIL)

    def trunc(self):
        """Self rounded toward zero, element-wise (differentiable)."""
        return _unary_op(self, FO_TRUNC)

    def reciprocal(self):
        """1 / self, element-wise (differentiable)."""
        return _unary_op(self, FO_RECIPROCAL)

    def rsqrt(self):
        """1 / sqrt(self), element-wise (differentiable)."""
        return _unary_op(self, FO_RSQRT)

    def square(self):
        """Self * self, element-wise (differentiable)."""
        return _unary_op(self, FO_SQUARE)

    def erf(self):
        """The error function, element-wise (differentiable)."""
        return _unary_op(self, FO_ERF)

    def round(self, *, decimals=0):
        """Round to the nearest integer, ties to even, element-wise (as torch.round)."""
        if decimals != 0:
            raise NotImplementedError("round(decimals=...) is not supported by fastoptim; only "
                                      "decimals=0 (see README.md, 'Known differences')")
        return _unary_op(self, FO_ROUND)

    def where(self, condition, y):
        """self where condition is True, else y (as fastoptim.where(condition, self, y))."""
        return where(condition, self, y)

    def lerp(self, end, weight):
        """self + weight * (end - self), in torch's two-sided form (as fastoptim.lerp)."""
        return lerp(self, end, weight)

    def maximum(self, other):
        """The element-wise maximum with other, broadcasting (differentiable)."""
        return maximum(self, other)

    def minimum(self, other):
        """The element-wise minimum with other, broadcasting (differentiable)."""
        return minimum(self, other)

    def clamp(self, min=None, max=None):
        """Clamp every element into [min, max]; a None bound is not applied."""
        return clamp(self, min, max)

    clip = clamp

    def matmul(self, other):
        """Matrix product (as fastoptim.matmul)."""
        return matmul(self, other)

    def mm(self, other):
        """Matrix product of two 2-D tensors."""
        return matmul(self, other)

    def dot(self, other):
        """Dot product of two 1-D tensors."""
        return matmul(self, other)

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        """Sum of all elements, or over `dim` (an int or a tuple; keepdim keeps the reduced dims
        as size 1); differentiable."""
        return _sum(self, dim, keepdim, False, dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        """Mean of all elements, or over `dim` (floating tensors); differentiable."""
        return _sum(self, dim, keepdim, True, dtype)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        """Product of all elements, or over one `dim`; differentiable (zeros included)."""
        return _prod(self, dim, keepdim, dtype)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Variance over `dim` (all elements by default), dividing by N - correction
        (correction=1 by default; unbiased=False means 0); differentiable."""
        dim, unbiased, keepdim = _std_var_args(dim, unbiased, keepdim)
        return _var(self, dim, unbiased, keepdim, correction, False)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Standard deviation: the square root of var(...) with the same arguments."""
        dim, unbiased, keepdim = _std_var_args(dim, unbiased, keepdim)
        return _var(self, dim, unbiased, keepdim, correction, True)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The vector p-norm over `dim` (all elements by default): p a number (0, 1, 2, inf,
        -inf, any other) or 'fro' (the 2-norm); differentiable."""
        return _norm(self, p, dim, keepdim, dtype)

    def logsumexp(self, dim, keepdim=False):
        """log(sum(exp(self))) over `dim`, computed stably; differentiable."""
        return _logsumexp(self, dim, keepdim)

    def cumsum(self, dim, *, dtype=None):
        """Running sums along `dim`; differentiable."""
        return _cumsum(self, dim, dtype)

    def max(self, *args, **kwargs):
        """max() -> the largest element; max(dim, keepdim=False) -> (values, indices);
        max(other) -> element-wise maximum.  Differentiable."""
        return _extreme(self, True, args, kwargs)

    def min(self, *args, **kwargs):
        """min() -> the smallest element; min(dim, keepdim=False) -> (values, indices);
        min(other) -> element-wise minimum.  Differentiable."""
        return _extreme(self, False, args, kwargs)

    def argmax(self, dim=None, keepdim=False):
        """The index of the largest element (flat when dim is None), or along `dim`."""
        return _argextreme(self, True, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        """The index of the smallest element (flat when dim is None), or along `dim`."""
        return _argextreme(self, False, dim, keepdim)

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
        """Element-wise self == other, as a bool tensor."""
        return _compare(self, other, 2)

    def equal(self, other):
        """True when both tensors have the same shape and elements."""
        return bool(_shp(self._np) == _shp(other._np) and np.array_equal(self._np, other._np))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """True when |self - other| <= atol + rtol * |other| everywhere."""
        return bool(np.allclose(self._np, _np_of(other), rtol=rtol, atol=atol,
                                equal_nan=equal_nan))

    def all(self, dim=None, keepdim=False):
        """Whether every element (over `dim`, when given) is non-zero, as a bool tensor."""
        return _any_all(self, True, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        """Whether some element (over `dim`, when given) is non-zero, as a bool tensor."""
        return _any_all(self, False, dim, keepdim)

    def isnan(self):
        """A bool tensor: which elements are NaN."""
        return _wrap(np.asarray(np.isnan(self._np)))

    def isfinite(self):
        """A bool tensor: which elements are neither inf nor NaN."""
        return _wrap(np.asarray(np.isfinite(self._np)))

    def isinf(self):
        """A bool tensor: which elements are +inf or -inf."""
        return _wrap(np.asarray(np.isinf(self._np)))

    def ne(self, other):
        """Element-wise self != other, as a bool tensor."""
        return _compare(self, other, 3)

    def lt(self, other):
        """Element-wise self < other, as a bool tensor."""
        return _compare(self, other, 0)

    def le(self, other):
        """Element-wise self <= other, as a bool tensor."""
        return _compare(self, other, 1)

    def gt(self, other):
        """Element-wise self > other, as a bool tensor."""
        return _compare(self, other, 4)

    def ge(self, other):
        """Element-wise self >= other, as a bool tensor."""
        return _compare(self, other, 5)

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
        """self += alpha * other, in place (broadcasting other to self's shape)."""
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
        return _iop(self, FO_ADD, other, alpha)

    def sub_(self, other, *, alpha=1):
        """self -= alpha * other, in place."""
        return _iop(self, FO_SUB, other, alpha)

    def mul_(self, other):
        """self *= other, in place."""
        return _iop(self, FO_MUL, other, 1)

    def div_(self, other):
        """self /= other, in place."""
        return _iop(self, FO_DIV, other, 1)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        """self += value * tensor1 * tensor2, in place."""
        self._check_inplace()
        _ternary_inplace(self, 0, tensor1, tensor2, value)
        return self

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        """self += value * tensor1 / tensor2, in place."""
        self._check_inplace()
        _ternary_inplace(self, 1, tensor1, tensor2, value)
        return self

    def lerp_(self, end, weight):
        """self += weight * (end - self), in place (ATen's two-sided formula)."""
        self._check_inplace()
        if isinstance(weight, Tensor):
            weight = (<Tensor>weight).item()
        _ternary_inplace(self, 2, end, None, weight)
        return self

    def sqrt_(self):
        """self = sqrt(self), in place."""
        self._check_inplace()
        _unary_inplace(self, FO_SQRT, 0.0, 0.0)
        return self

    def exp_(self):
        """self = exp(self), in place."""
        self._check_inplace()
        _unary_inplace(self, FO_EXP, 0.0, 0.0)
        return self

    def neg_(self):
        """self = -self, in place."""
        self._check_inplace()
        _unary_inplace(self, FO_NEG, 0.0, 0.0)
        return self

    def abs_(self):
        """self = |self|, in place."""
        self._check_inplace()
        _unary_inplace(self, FO_ABS, 0.0, 0.0)
        return self

    def clamp_(self, min=None, max=None):
        """Clamp self into [min, max] in place."""
        self._check_inplace()
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        _unary_inplace(self, FO_CLAMP, NAN if min is None else float(min),
                       NAN if max is None else float(max))
        return self

    clip_ = clamp_

    def zero_(self):
        """Fill with zeros, in place."""
        self._check_inplace()
        self._np[...] = 0
        return self

    def fill_(self, value):
        """Fill with a value, in place."""
        self._check_inplace()
        if isinstance(value, Tensor):
            value = (<Tensor>value).item()
        self._np[...] = value
        return self

    def copy_(self, src, non_blocking=False):
        """Copy src's elements into self (broadcast and cast to self's dtype), in place."""
        self._check_inplace()
        arr = _np_of(src)
        try:
            np.copyto(self._np, np.broadcast_to(arr, _shp(self._np)), casting="unsafe")
        except ValueError:
            raise RuntimeError(f"The size of tensor a ({list(_shp(self._np))}) must match the "
                               f"size of tensor b ({list(np.shape(arr))}) for copy_")
        return self

    def uniform_(self, a=0.0, b=1.0):
        """Fill with samples from U[a, b), in place."""
        self._check_inplace()
        _fill_array(self, 1, a, b)
        return self

    def normal_(self, mean=0.0, std=1.0):
        """Fill with samples from N(mean, std**2), in place."""
        self._check_inplace()
        _fill_array(self, 0, mean, std)
        return self

    # ---- autograd entry point --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradient of this tensor w.r.t. the graph leaves into their .grad (only
        into `inputs`' .grad when given)."""
        if create_graph:
            raise NotImplementedError("create_graph=True (higher-order gradients) is not "
                                      "supported by fastoptim")
        if inputs is None:
            _backward(self, gradient, bool(retain_graph))
            return
        if isinstance(inputs, Tensor):
            inputs = (inputs,)
        inputs = tuple(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        _backward_many((self,), (gradient,), bool(retain_graph), inputs)

    def register_hook(self, hook):
        """Call hook(grad) each time this tensor's gradient is computed, before it is used;
        a returned tensor replaces the gradient.  Returns a handle whose remove() undoes it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    # ---- C-level fields ----------------------------------------------------------------------
    # (declared in _tensor.pxd)


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


cdef Tensor _adopt(cnp.ndarray arr):
    """_wrap, exported to the other modules' Cython (see _tensor.pxd)."""
    return _wrap(arr)


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

