# Views and indexing: reshape/view/flatten/squeeze (N_VIEW), transpose (N_TRANSPOSE), basic and
# advanced indexing (N_INDEX), index assignment (N_SETITEM), permute (N_PERMUTE), expand
# (N_EXPAND), repeat (N_REPEAT), narrow/split/chunk/unbind/select (N_SLICE), cat/stack (N_CAT,
# n inputs), gather/index_select (N_GATHER).  Views share storage as torch's do (expand's is
# read-only, as torch refuses writes to it); the shape work is numpy's, on the array, so there
# is no C kernel and no NumPy twin to hold it against: the tests hold it against torch.

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
        _record1(t, N_VIEW, a, _shp(x))
    return t


cdef void _view_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    _accumulate(_input(t, 0), g.reshape(t._saved), False)


_register(N_VIEW, "ViewBackward0", NULL, _view_backward, NULL)


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
        _record1(t, N_TRANSPOSE, a, (i, j))
    return t


cdef void _transpose_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    i, j = t._saved
    _accumulate_any(_input(t, 0), g.swapaxes(i, j))


_register(N_TRANSPOSE, "TransposeBackward0", NULL, _transpose_backward, NULL)


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
        # numpy's text, in torch's words
        raise IndexError(str(e).replace(" for axis ", " for dimension "))
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    t = _wrap(y)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_INDEX, a, key)
    return t


cdef void _index_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """g scattered (summed, for repeated indices) into zeros of the input's shape."""
    cdef Tensor a = _input(t, 0)
    gx = _zeros_like(_contig(a._np)) if cnp.PyArray_TYPE(a._np) == cnp.PyArray_TYPE(g) \
        else np.zeros(_shp(a._np), dtype=g.dtype)
    np.add.at(gx, t._saved, g)
    _accumulate(a, gx, True)


_register(N_INDEX, "IndexBackward0", NULL, _index_backward, NULL)


cdef void _setitem(Tensor a, object key, object value) except *:
    """a[key] = value.  A value requiring grad makes a a node (torch's CopySlices) over its
    earlier self and the value.  A written tensor may be written again (out[i] = f(w) in a loop):
    CopySlices reads no saved values, so its node can move to a stand-in for the earlier self.
    Any other tensor requiring grad raises (_check_inplace: fastoptim does not version in-place
    writes into a graph whose nodes may have saved the old values)."""
    cdef Tensor v = <Tensor>value if isinstance(value, Tensor) else None
    cdef Tensor prev = None
    cdef bint chain = _grad_enabled and a._requires_grad and a._op == N_SETITEM
    if not chain:
        a._check_inplace()
    if isinstance(key, Tensor):
        key = (<Tensor>key)._np
    elif isinstance(key, tuple):
        key = tuple((<Tensor>k)._np if isinstance(k, Tensor) else k for k in key)
    elif isinstance(key, list):
        key = np.asarray(key)
    if v is not None and _grad_enabled and v._requires_grad and not _is_float(a._np):
        raise RuntimeError("a value that requires grad can only be written into a floating "
                           f"point tensor, not {_dtype_of(a._np)}")
    a._np[key] = v._np if v is not None else value
    if chain or (v is not None and _grad_enabled and v._requires_grad):
        if chain:
            prev = _wrap(a._np)
            prev._op, prev._sub, prev._ins, prev._saved = a._op, a._sub, a._ins, a._saved
            prev._requires_grad = True
        _record(a, N_SETITEM, (prev, _edge(v)), key)


cdef void _setitem_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """The earlier self: g with the written positions zeroed; the value: g at the written
    positions, summed over what was broadcast."""
    cdef Tensor prev = _input(t, 0)
    cdef Tensor v = _input(t, 1)
    if v is not None:
        gv = np.asarray(g[t._saved])
        _accumulate_any(v, np.asarray(_sum_to(gv, _shp(v._np)), dtype=v._np.dtype)
                        .reshape(_shp(v._np)))
    if prev is not None:
        gp = np.array(g, order="C")
        gp[t._saved] = 0
        _accumulate(prev, gp, True)


_register(N_SETITEM, "torch::autograd::CopySlices", NULL, _setitem_backward, NULL)



# ---------------------------------------------------------------------------------------------
# permute / expand / repeat: views (permute, expand) and a copy (repeat), each with its backward
# ---------------------------------------------------------------------------------------------

cdef void _accumulate_any(Tensor x, object arr) except *:
    """Accumulate arr, which may view g or another array the op does not own: owned only when
    the contiguous copy is made here."""
    if cnp.PyArray_IS_C_CONTIGUOUS(arr):
        _accumulate(x, arr, False)
    else:
        _accumulate(x, np.array(arr, order="C"), True)


cdef tuple _dims_arg(tuple dims):
    """permute(*dims) / permute(dims): the dims as one tuple of ints."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list, Size)):
        dims = tuple(dims[0])
    return tuple(int(d) for d in dims)


cdef Tensor _permute(Tensor a, tuple dims, int sub):
    cdef int nd = cnp.PyArray_NDIM(a._np)
    cdef Tensor t
    if len(dims) != nd:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the "
            "length of the desired ordering of dimensions i.e. input.dim() = "
            f"{nd} is not equal to len(dims) = {len(dims)}")
    axes = tuple(_norm_dim(d, nd) for d in dims)
    if len(set(axes)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    t = _wrap(a._np.transpose(axes) if nd > 0 else a._np.view())
    if _grad_enabled and a._requires_grad:
        _record1(t, N_PERMUTE, a, axes)
        t._sub = sub
    return t


cdef object _permute_name(Tensor t):
    return ("PermuteBackward0", "TransposeBackward0")[t._sub]


cdef void _permute_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    _accumulate_any(_input(t, 0), g.transpose(np.argsort(t._saved)))


_register(N_PERMUTE, NULL, _permute_name, _permute_backward, NULL)


cdef Tensor _expand(Tensor a, tuple sizes):
    cdef tuple shp = _shp(a._np)
    cdef int nd = len(shp), ns = len(sizes), lead = ns - nd
    cdef Tensor t
    if ns < nd:
        raise RuntimeError(
            f"expand(torch.{_dtype_of(a._np)._legacy}{{{list(shp)}}}, size={list(sizes)}): the number "
            f"of sizes provided ({ns}) must be greater or equal to the number of dimensions in "
            f"the tensor ({nd})")
    out = []
    for k in range(ns):
        s = sizes[k]
        if k < lead:
            if s < 0:
                raise RuntimeError(f"The expanded size of the tensor ({s}) isn't allowed in a "
                                   f"leading, non-existing dimension {k}")
            out.append(s)
            continue
        have = shp[k - lead]
        if s == -1:
            s = have
        elif have != 1 and s != have:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({have}) "
                f"at non-singleton dimension {k}.  Target sizes: {list(sizes)}.  Tensor sizes: "
                f"{list(shp)}")
        out.append(s)
    # numpy's broadcast view is read-only: torch refuses in-place writes to an expanded tensor
    # too (several elements share one memory location)
    t = _wrap(np.broadcast_to(a._np, tuple(out)))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_EXPAND, a, shp)
    return t


cdef void _expand_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    _accumulate_any(_input(t, 0), _sum_to(g, t._saved))


_register(N_EXPAND, "ExpandBackward0", NULL, _expand_backward, NULL)


cdef Tensor _repeat(Tensor a, tuple reps):
    cdef tuple shp = _shp(a._np)
    cdef Tensor t
    if len(reps) < len(shp):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    padded = (1,) * (len(reps) - len(shp)) + shp
    new = tuple(p * r for p, r in zip(padded, reps))
    for s in new:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                               f"{list(new)}")
    t = _wrap(_ascontig(np.tile(a._np.reshape(padded), reps)))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_REPEAT, a, (padded, reps))
    return t


cdef void _repeat_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """Every copy's gradient summed: g viewed as (r0, s0, r1, s1, ...), summed over the r's."""
    cdef Tensor a = _input(t, 0)
    padded, reps = t._saved
    inter = []
    for p, r in zip(padded, reps):
        inter += [r, p]
    gx = g.reshape(inter).sum(axis=tuple(range(0, 2 * len(reps), 2)))
    _accumulate_any(a, np.asarray(gx).reshape(_shp(a._np)))


_register(N_REPEAT, "RepeatBackward0", NULL, _repeat_backward, NULL)


# ---------------------------------------------------------------------------------------------
# slices: narrow, split, chunk, unbind, select -- views of one input; the backward writes g into
# zeros of the input's shape at the same key
# ---------------------------------------------------------------------------------------------

cdef Tensor _slice(Tensor a, tuple key, int sub):
    cdef Tensor t = _wrap(a._np[key])
    if _grad_enabled and a._requires_grad:
        _record1(t, N_SLICE, a, key)
        t._sub = sub
    return t


cdef object _slice_name(Tensor t):
    return ("SliceBackward0", "SplitBackward0", "SplitWithSizesBackward0", "UnbindBackward0",
            "SelectBackward0")[t._sub]


cdef void _slice_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef Tensor a = _input(t, 0)
    gx = np.zeros(_shp(a._np), dtype=g.dtype)
    gx[t._saved] = g
    _accumulate(a, gx, True)


_register(N_SLICE, NULL, _slice_name, _slice_backward, NULL)


cdef Tensor _narrow(Tensor a, object dim, object start, object length, int sub):
    cdef int nd = cnp.PyArray_NDIM(a._np)
    if nd == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _norm_dim(dim, nd)
    size = _shp(a._np)[d]
    start = int(start)
    length = int(length)
    if start < -size or start > size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], "
                         f"but got {start})")
    if start < 0:
        start += size
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                           f"({size}).")
    return _slice(a, (slice(None),) * d + (slice(start, start + length),), sub)


cdef tuple _split(Tensor a, object split_size_or_sections, object dim):
    cdef int nd = cnp.PyArray_NDIM(a._np)
    if nd == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _norm_dim(dim, nd)
    size = _shp(a._np)[d]
    if isinstance(split_size_or_sections, (list, tuple, Size)):
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's "
                f"size at dimension {d}), but got split_sizes={sizes}")
        sub = 2
    else:
        s = int(split_size_or_sections)
        if s < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={s}")
        if s == 0:
            if size != 0:
                raise RuntimeError("split_size can only be 0 if dimension size is 0, but got "
                                   f"dimension size of {size}")
            sizes = [0]
        else:
            sizes = [min(s, size - k) for k in range(0, size, s)] or [0]
        sub = 1
    out = []
    k = 0
    for s in sizes:
        out.append(_narrow(a, d, k, s, sub))
        k += s
    return tuple(out)


cdef tuple _chunk(Tensor a, object chunks, object dim):
    cdef int nd = cnp.PyArray_NDIM(a._np)
    chunks = int(chunks)
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if nd == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    size = _shp(a._np)[_norm_dim(dim, nd)]
    return _split(a, (size + chunks - 1) // chunks, dim)


cdef Tensor _select(Tensor a, object dim, object index, int sub):
    cdef int nd = cnp.PyArray_NDIM(a._np)
    if nd == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _norm_dim(dim, nd)
    size = _shp(a._np)[d]
    i = int(index)
    if i < -size or i >= size:
        raise IndexError(f"select(): index {i} out of range for tensor of size "
                         f"{list(_shp(a._np))} at dimension {d}")
    return _slice(a, (slice(None),) * d + (i + size if i < 0 else i,), sub)


# ---------------------------------------------------------------------------------------------
# cat / stack: n inputs; the backward hands each input its piece of g
# ---------------------------------------------------------------------------------------------

cdef list _tensor_list(object tensors, str fn):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{fn}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    for k, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {k} in argument 0, but got "
                            f"{type(x).__name__}")
    return list(tensors)


cdef Tensor _record_n(Tensor out, int op, list ts, object saved, int sub):
    cdef Tensor x
    if _grad_enabled:
        for x in ts:
            if x._requires_grad:
                _record(out, op, tuple(_edge(<Tensor>y) for y in ts), saved)
                out._sub = sub
                break
    return out


def cat(tensors, dim=0, *, out=None):
    """Concatenate tensors along an existing dim (differentiable), as torch.cat."""
    cdef list ts = _tensor_list(tensors, "cat")
    cdef Tensor x
    if out is not None:
        raise NotImplementedError("cat(out=...) is not supported by fastoptim")
    if not ts:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    # torch's legacy rule: 1-D empty tensors are skipped whatever the others' shape
    kept = [x for x in ts if _shp(x._np) != (0,)]
    if not kept:
        kept = ts[:1]
    ts = list(_promoted(kept))     # torch's promotion (_tensor_elementwise.pxi)
    ref = _shp((<Tensor>ts[0])._np)
    nd = len(ref)
    if nd == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = _norm_dim(dim, nd)
    for k, x in enumerate(ts):
        s = _shp(x._np)
        if len(s) != nd:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {nd} and "
                               f"{len(s)}")
        for j in range(nd):
            if j != d and s[j] != ref[j]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{ref[j]} but got size {s[j]} for tensor number {k} in the list.")
    y = np.concatenate([(<Tensor>x)._np for x in ts], axis=d)
    sizes = tuple(_shp((<Tensor>x)._np)[d] for x in ts)
    return _record_n(_wrap(y), N_CAT, ts, (d, sizes), 0)


def stack(tensors, dim=0, *, out=None):
    """Stack same-shaped tensors along a new dim (differentiable), as torch.stack."""
    cdef list ts = _tensor_list(tensors, "stack")
    cdef Tensor x
    if out is not None:
        raise NotImplementedError("stack(out=...) is not supported by fastoptim")
    if not ts:
        raise RuntimeError("stack expects a non-empty TensorList")
    ts = list(_promoted(ts))
    ref = _shp((<Tensor>ts[0])._np)
    d = _norm_dim(dim, len(ref) + 1)
    for k, x in enumerate(ts):
        if _shp(x._np) != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(ref)} "
                               f"at entry 0 and {list(_shp(x._np))} at entry {k}")
    y = np.stack([(<Tensor>x)._np for x in ts], axis=d)
    return _record_n(_wrap(y), N_CAT, ts, (d, None), 1)


cdef object _cat_name(Tensor t):
    return ("CatBackward0", "StackBackward0")[t._sub]


cdef void _cat_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef Tensor x
    cdef Py_ssize_t k
    d, sizes = t._saved
    lead = (slice(None),) * d
    start = 0
    for k in range(PyTuple_GET_SIZE(t._ins)):
        x = _input(t, k)
        if sizes is None:                       # stack: input k is the slice k of dim d
            key = lead + (k,)
        else:
            key = lead + (slice(start, start + sizes[k]),)
            start += sizes[k]
        if x is not None:
            _accumulate_any(x, g[key])


_register(N_CAT, NULL, _cat_name, _cat_backward, NULL)


# ---------------------------------------------------------------------------------------------
# gather / index_select: reads at an index tensor; the backward sums g into those places
# ---------------------------------------------------------------------------------------------

cdef cnp.ndarray _index_array(object index, str fn, str expected):
    if not isinstance(index, Tensor):
        raise TypeError(f"{fn}(): argument 'index' must be Tensor, not {type(index).__name__}")
    idx = (<Tensor>index)._np
    if idx.dtype != np.int64 and idx.dtype != np.int32:
        raise RuntimeError(f"{fn}(): Expected dtype {expected} for index")
    return idx


def gather(input, dim, index, *, sparse_grad=False, out=None):
    """out[i][j][k] = input[i][j][index[i][j][k]] (for dim=2), as torch.gather."""
    cdef Tensor a = <Tensor>input
    cdef Tensor t
    if out is not None or sparse_grad:
        raise NotImplementedError("gather(out=..., sparse_grad=True) is not supported by "
                                  "fastoptim")
    idx = _index_array(index, "gather", "int32/int64")
    shp = _shp(a._np)
    nd = len(shp)
    d = _norm_dim(dim, nd)
    if idx.ndim != max(nd, 1) and not (nd == 0 and idx.ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input "
                           "tensor")
    ishp = _shp(idx)
    for k in range(nd):
        if k != d and ishp[k] > shp[k]:
            raise RuntimeError(
                f"Size does not match at dimension {k} expected index {list(ishp)} to be no "
                f"larger than self {list(shp)} apart from dimension {d}")
    size = shp[d] if nd else 1
    if idx.size:
        bad = idx[(idx < 0) | (idx >= size)]
        if bad.size:
            raise RuntimeError(f"index {int(bad.flat[0])} is out of bounds for dimension {d} "
                               f"with size {size}")
    if nd == 0:
        key = ()
    else:
        key = tuple(idx if k == d else
                    np.arange(ishp[k]).reshape((1,) * k + (-1,) + (1,) * (nd - k - 1))
                    for k in range(nd))
    t = _wrap(_ascontig(a._np[key].reshape(ishp)))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_GATHER, a, key)
    return t


def index_select(input, dim, index, *, out=None):
    """The slices of input at `index` (a vector) along dim, as torch.index_select."""
    cdef Tensor a = <Tensor>input
    cdef Tensor t
    if out is not None:
        raise NotImplementedError("index_select(out=...) is not supported by fastoptim")
    idx = _index_array(index, "index_select", "int32 or int64")
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    idx = idx.reshape(-1)
    shp = _shp(a._np)
    nd = len(shp)
    d = _norm_dim(dim, nd)
    size = shp[d] if nd else 1
    if idx.size:
        bad = idx[(idx < 0) | (idx >= size)]
        if bad.size:
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={int(bad.flat[0])} "
                               f"axis_dim={size}")
    key = (slice(None),) * d + (idx,) if nd else ()
    t = _wrap(_ascontig(a._np[key]))
    if _grad_enabled and a._requires_grad:
        _record1(t, N_GATHER, a, key)
        t._sub = 1
    return t


cdef object _gather_name(Tensor t):
    return ("GatherBackward0", "IndexSelectBackward0")[t._sub]


cdef void _gather_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    cdef Tensor a = _input(t, 0)
    gx = np.zeros(_shp(a._np), dtype=g.dtype)
    np.add.at(gx, t._saved, g)       # repeated indices sum, as torch's scatter_add
    _accumulate(a, gx, True)


_register(N_GATHER, NULL, _gather_name, _gather_backward, NULL)
