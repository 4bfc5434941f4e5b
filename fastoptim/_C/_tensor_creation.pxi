# Creation: the random generator (a C xoshiro256** behind randn/rand/normal/randint/nn.init,
# seeded by manual_seed), the functions that make new leaf tensors (tensor, zeros, randn,
# linspace on its torch-exact C kernel, eye, ...), and the legacy typed constructors
# (FloatTensor(...), LongTensor(...)) with what t.type(...) accepts.

# ---------------------------------------------------------------------------------------------
# the random generator behind randn/rand/nn.init
# ---------------------------------------------------------------------------------------------

cdef fo_rng _rng
cdef uint64_t _seed = 0


def _fresh_seed():
    """A non-deterministic 64-bit seed (torch seeds each process's generator this way)."""
    import os as _os
    return int.from_bytes(_os.urandom(8), "little")


def manual_seed(seed):
    """Seed the global generator: the same seed gives the same randn/rand/init draws.  As
    torch, seed is an int in [-2**63, 2**64); a negative one is taken modulo 2**64."""
    global _seed
    seed = int(seed)
    if seed < -0x8000000000000000 or seed > 0xFFFFFFFFFFFFFFFF:
        raise ValueError("Overflow when unpacking long long")
    _seed = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
    fo_rng_seed(&_rng, _seed)


def initial_seed():
    """The seed the generator was last seeded with (a fresh one per process, as torch's)."""
    return int(_seed)


def seed():
    """Seed the generator non-deterministically and return the 64-bit seed used."""
    s = _fresh_seed()
    manual_seed(s)
    return s


manual_seed(_fresh_seed())


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
    _kern(a).randn(&_rng, cnp.PyArray_SIZE(a), _ptr(a))


cdef void _fill_uniform(cnp.ndarray a, double lo, double hi):
    _kern(a).uniform(&_rng, cnp.PyArray_SIZE(a), _ptr(a), lo, hi)



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
    elif _speaks_dlpack(data):
        arr = np.array(_dlpack_array(data))   # a copy; keeps its dtype, as for numpy arrays
    else:
        if isinstance(data, (str, bytes)):
            raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"could not build a tensor from {type(data).__name__}: {e}")
        if arr.dtype.kind == "f" and dt is None:
            # Python floats are parsed as doubles: round to the default dtype only when no
            # dtype is asked for (tensor(0.05, dtype=float64) keeps every bit)
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
    if _speaks_dlpack(data) and not _lazily_negated(data):
        arr = _dlpack_array(data)
        if arr.flags.writeable and (dtype is None or _to_dtype(dtype)._np_dtype == arr.dtype):
            return from_numpy(arr)
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
    _check_device(device)
    return _finish(_new_array(_size_arg(size, "empty"), dtype), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    cdef cnp.ndarray a = _new_array(_size_arg(size, "zeros"), dtype)
    a[...] = 0
    return _finish(a, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    cdef cnp.ndarray a = _new_array(_size_arg(size, "ones"), dtype)
    a[...] = 1
    return _finish(a, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    _check_device(device)
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
    if device is not None:
        _check_device(device)
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
    _check_device(device)
    cdef cnp.ndarray a = _new_array(_size_arg(size, "rand"), dtype)
    if not _is_float(a):
        raise TypeError(f"rand: expected a floating dtype, got {dtype}")
    _fill_uniform(a, 0.0, 1.0)
    return _finish(a, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    _check_device(device)
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


def _steps_arg(steps, str fn):
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"{fn}(): argument 'steps' (position 3) must be int, not "
                        f"{type(steps).__name__}")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    return int(steps)


def _number(v, str name, str fn):
    if isinstance(v, Tensor):
        if cnp.PyArray_NDIM((<Tensor>v)._np) != 0:
            raise RuntimeError(f"{fn}() expects {name} to be 0-dimensional tensors, but got a "
                               f"tensor with {cnp.PyArray_NDIM((<Tensor>v)._np)} dimensions")
        return (<Tensor>v).item()
    if not _is_scalar(v):
        raise TypeError(f"{fn}(): argument '{name}' must be Number, not {type(v).__name__}")
    return v


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    """`steps` evenly spaced values from start to end, with torch's values bit for bit (the
    symmetric fused formula of csrc/tensor_creation.c, computed in the target dtype)."""
    cdef cnp.ndarray a
    cdef cnp.npy_intp m
    _check_device(device)
    if out is not None:
        raise NotImplementedError("linspace(out=...) is not supported by fastoptim")
    m = _steps_arg(steps, "linspace")
    start, end = _number(start, "start", "linspace"), _number(end, "end", "linspace")
    d = _default_dtype if dtype is None else _to_dtype(dtype)
    a = _empty(1, &m, d._typenum if d.is_floating_point else cnp.NPY_INT64)
    if d is float32:
        fo_linspace_f32(m, <float>float(start), <float>float(end), <float*>_ptr(a))
    elif d is float64:
        fo_linspace_f64(m, float(start), float(end), <double*>_ptr(a))
    else:
        # integer targets: start and end cast to the type (truncated), the step in double
        fo_linspace_i64(m, int(start), int(end), <int64_t*>_ptr(a))
        a = a.astype(d._np_dtype)
    return _finish(a, requires_grad)


def logspace(start, end, steps, base=10.0, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    """base ** linspace-like exponents, as torch's CPU logspace: step = (end - start) computed
    in the dtype, then / (steps - 1) in double; the exponent start + step * i (or
    end - step * (steps - 1 - i) past the middle) and the power in double (libm's ``pow``, as
    torch's ``std::pow``: numpy's ``np.power`` takes SVML's on AVX-512 CPUs, 1 ulp off on ~5%
    of exponents), then rounded."""
    cdef double[::1] exps, pows
    cdef Py_ssize_t k
    cdef double bd
    _check_device(device)
    if out is not None:
        raise NotImplementedError("logspace(out=...) is not supported by fastoptim")
    n = _steps_arg(steps, "logspace")
    start, end = _number(start, "start", "logspace"), _number(end, "end", "logspace")
    d = _default_dtype if dtype is None else _to_dtype(dtype)
    npd = d._np_dtype
    b = float(base)
    if n == 1:
        return _finish(np.full(1, b ** float(npd.type(start)), dtype=npd), requires_grad)
    s, e = float(npd.type(start)), float(npd.type(end))
    step = float(npd.type(end) - npd.type(start)) / (n - 1) if n > 1 else 0.0
    i = np.arange(n, dtype=np.float64)
    ex = np.ascontiguousarray(np.where(i < n // 2, s + step * i, e - step * ((n - 1) - i)))
    vals = np.empty(n, np.float64)
    exps, pows, bd = ex, vals, b
    for k in range(n):
        pows[k] = c_pow(bd, exps[k])
    with np.errstate(over="ignore", invalid="ignore"):
        if npd.kind != "f":
            vals = np.trunc(vals)
        return _finish(vals.astype(npd), requires_grad)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """The n x m (m = n by default) matrix with ones on the diagonal."""
    _check_device(device)
    for name, v in (("n", n), ("m", m)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"eye(): argument '{name}' must be int, not {type(v).__name__}")
        if v < 0:
            raise RuntimeError(f"{name} must be greater or equal to 0, got {v}")
    d = _default_dtype if dtype is None else _to_dtype(dtype)
    return _finish(np.eye(n, n if m is None else m, dtype=d._np_dtype), requires_grad)


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None,
           device=None, pin_memory=False, requires_grad=False):
    """Normal samples, torch's four forms: normal(Tensor mean, Tensor std) (broadcast),
    normal(Tensor mean, float std=1), normal(float mean, Tensor std), and
    normal(float mean, float std, size).  Draws come from fastoptim's generator."""
    cdef cnp.ndarray a
    _check_device(device)
    if out is not None:
        raise NotImplementedError("normal(out=...) is not supported by fastoptim")
    mt, st = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not mt and not st:
        if size is None:
            raise TypeError("normal() received an invalid combination of arguments - got "
                            f"({type(mean).__name__}, {type(std).__name__}), but expected one "
                            "of: (Tensor mean, Tensor std), (Tensor mean, float std = 1), "
                            "(float mean, Tensor std), (float mean, float std, tuple of ints "
                            "size)")
        if float(std) < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
        a = _new_array(_size_arg((size,), "normal"), dtype)
        if not _is_float(a):
            raise TypeError(f"normal: expected a floating dtype, got {dtype}")
        _kern(a).randn(_rng_of(generator), cnp.PyArray_SIZE(a), _ptr(a))
        r = a * a.dtype.type(std) + a.dtype.type(mean)
        return _finish(_ascontig(r, dtype=a.dtype), requires_grad)
    if size is not None:
        raise TypeError("normal(): size is only accepted with a float mean and a float std")
    if st and np.any((<Tensor>std)._np < 0):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    if not st and float(std) < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
    mt_, st_ = _promoted([mean, std])
    if not _is_float(mt_._np):
        raise NotImplementedError(f"\"normal_kernel_cpu\" not implemented for "
                                  f"'{mt_.dtype._legacy[:-6]}'")
    shape = _broadcast_shapes(_shp(mt_._np), _shp(st_._np))
    a = _new_array(tuple(shape), mt_.dtype)
    _kern(a).randn(_rng_of(generator), cnp.PyArray_SIZE(a), _ptr(a))
    return _finish(_ascontig(a * st_._np + mt_._np, dtype=a.dtype), requires_grad)


def randint(*args, generator=None, out=None, dtype=None, layout=None, device=None,
            pin_memory=False, requires_grad=False, size=None):
    """randint(high, size) / randint(low, high, size): integers uniform on [low, high), int64
    unless dtype says otherwise.  Draws come from fastoptim's generator."""
    _check_device(device)
    if size is not None:
        args = args + (size,)
    if len(args) == 2:
        low, high, sz = 0, args[0], args[1]
    elif len(args) == 3:
        low, high, sz = args
    else:
        raise TypeError("randint() takes (high, size) or (low, high, size)")
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"randint(): argument '{name}' must be int, not {type(v).__name__}")
    if not isinstance(sz, (tuple, list, Size)):
        raise TypeError(f"randint(): argument 'size' must be tuple of ints, not "
                        f"{type(sz).__name__}")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} "
                           f">= to={high}")
    shape = _size_arg((sz,), "randint")
    cdef cnp.ndarray u = _new_array(shape, float64)
    _kern(u).uniform(_rng_of(generator), cnp.PyArray_SIZE(u), _ptr(u), 0.0, 1.0)
    r = (low + np.floor(u * float(high - low))).astype(np.int64)
    np.minimum(r, high - 1, out=r)   # u * span may round up to span
    d = int64 if dtype is None else _to_dtype(dtype)
    t = _finish(_ascontig(r.astype(d._np_dtype)), False)
    if requires_grad:
        t.requires_grad_(True)
    return t


def randint_like(input, low=0, high=None, *, dtype=None, layout=None, device=None,
                 requires_grad=False, memory_format=None):
    """randint in input's shape and dtype (unless given): randint_like(t, high) or
    randint_like(t, low, high)."""
    if high is None:
        low, high = 0, low
    return randint(low, high, _shp(_np_of(input)), dtype=_like_dtype(input, dtype),
                   device=device, requires_grad=requires_grad)


cdef object _like_dtype(Tensor t, object dtype):
    return t.dtype if dtype is None else dtype


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    """An uninitialised tensor of input's shape (and dtype, unless given)."""
    _check_device(device)
    return empty(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    """Zeros of input's shape (and dtype, unless given)."""
    _check_device(device)
    return zeros(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    """Ones of input's shape (and dtype, unless given)."""
    _check_device(device)
    return ones(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    """fill_value everywhere, in input's shape (and dtype, unless given)."""
    _check_device(device)
    return full(_shp(_np_of(input)), fill_value, dtype=_like_dtype(input, dtype),
                requires_grad=requires_grad)


def randn_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None):
    """Standard normal samples in input's shape (and dtype, unless given)."""
    _check_device(device)
    return randn(_shp(_np_of(input)), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def rand_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    """U[0, 1) samples in input's shape (and dtype, unless given)."""
    _check_device(device)
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
# the legacy typed constructors: FloatTensor(...), LongTensor(...), t.type(DoubleTensor)
# ---------------------------------------------------------------------------------------------

cdef object _legacy_new(dtype d, tuple args, str name):
    """torch's legacy constructor: () -> empty; ints or a Size -> an uninitialised tensor of
    that size; one sequence or array -> its data in dtype d; one tensor -> itself when of
    dtype d."""
    if len(args) == 0:
        return empty(0, dtype=d)
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args) or \
            (len(args) == 1 and isinstance(args[0], Size)):
        return empty(_size_arg(args, name), dtype=d)
    if len(args) == 1:
        data = args[0]
        if isinstance(data, Tensor):
            if (<Tensor>data).dtype is not d:
                raise TypeError(f"expected {d} (got {(<Tensor>data).dtype})")
            return data
        if _is_scalar(data):
            raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
        return tensor(data, dtype=d)
    raise TypeError(f"new() received an invalid combination of arguments - got "
                    f"({', '.join(type(a).__name__ for a in args)}), but expected one of: (), "
                    "(tuple of ints size), (object data)")


class _LegacyTensorType(type):
    """The metaclass of FloatTensor, DoubleTensor, LongTensor, IntTensor, BoolTensor: calling
    one builds a tensor of its dtype; isinstance(t, FloatTensor) asks whether t is a float32
    tensor, as for torch's legacy types."""

    def __call__(cls, *args, device=None):
        _check_device(device)
        return _legacy_new(cls.dtype, args, cls.__name__)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype

    def __repr__(cls):
        return f"<class 'fastoptim.{cls.__name__}'>"


FloatTensor = _LegacyTensorType("FloatTensor", (), {"dtype": float32, "__module__": "fastoptim"})
DoubleTensor = _LegacyTensorType("DoubleTensor", (), {"dtype": float64,
                                                      "__module__": "fastoptim"})
LongTensor = _LegacyTensorType("LongTensor", (), {"dtype": int64, "__module__": "fastoptim"})
IntTensor = _LegacyTensorType("IntTensor", (), {"dtype": int32, "__module__": "fastoptim"})
BoolTensor = _LegacyTensorType("BoolTensor", (), {"dtype": bool_, "__module__": "fastoptim"})
cdef dict _LEGACY_BY_NAME = {c.__name__: c for c in (FloatTensor, DoubleTensor, LongTensor,
                                                     IntTensor, BoolTensor)}


cdef dtype _legacy_dtype(object t):
    """The dtype a type(...) argument names: a dtype, a legacy type or a legacy type's name."""
    if isinstance(t, _LegacyTensorType):
        return t.dtype
    if isinstance(t, str):
        name = t.rpartition(".")[2]
        if t.rpartition(".")[0] not in ("torch", "fastoptim") or name not in _LEGACY_BY_NAME:
            raise ValueError(f"invalid type: '{t}'")
        return _LEGACY_BY_NAME[name].dtype
    return _to_dtype(t)
