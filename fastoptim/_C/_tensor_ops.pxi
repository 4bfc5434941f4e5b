# The op table: what made a tensor, and where each op's backward lives.
#
# Every differentiable op is one row of ``_OPS``: its torch grad_fn name, its backward and what
# it frees after a backward.  The row is filled by ``_register`` next to the op's forward, in the
# area file that owns the op (_tensor_elementwise.pxi, _tensor_reduce.pxi, ...), so an op's
# forward, its backward and what it saves are read in one place, as micrograd keeps them.
#
# A graph node lives in its output Tensor (no separate node object): ``_op`` is the row,
# ``_sub`` the variant inside the row (which unary operator, which reduction ...), ``_ins`` the
# inputs in the op's own order (as many as the op has; None where an input does not require
# grad, so the backward skips it), ``_saved`` what the backward needs, ``_p0``/``_p1`` two
# scalar parameters.  The engine (_tensor_autograd.pxi) knows nothing of any op: it sorts the
# graph over ``_ins`` and calls ``_OPS[t._op].backward``.
#
# How to add an op
# ----------------
# 1. Add its number to the ``N_*`` enum below (keep N_OPS last).
# 2. In the area file, write the forward (C kernel through ``_kern(x)``, the dtype-dispatch
#    table: no f32/f64 arms) and, right under it, its backward
#        cdef void _<op>_backward(Tensor t, cnp.ndarray g, bint gown) except *
#    which reads ``_input(t, i)``/``t._saved`` and calls ``_accumulate(input, grad, owned)`` once
#    per input that is not None (``owned``: the array is fresh and may be summed into in place).
#    A new C kernel: its prototype in csrc/fastoptim.h (f32 and f64, from one .inc body), a slot
#    in ``fo_tensor_kernels`` (the header, csrc/tensor_dispatch.inc, kernels.pxd); a new variant
#    of fo_unary/fo_binary needs only its enum value and its cases in both switches.
# 3. In the forward, when ``_grad_enabled`` and an input requires grad:
#        _record2(out, N_<OP>, a, b, saved)     # _record1/2/3, or _record(out, op, ins, saved)
#    then set out._sub / _p0 / _p1 if the op has variants or scalar parameters.
# 4. Register the row under the backward, at module level:
#        _register(N_<OP>, "<Torch>Backward0", NULL, _<op>_backward, _release_all)
#    The name callback (instead of NULL) gives variant names; the release callback drops what
#    the node saved after a backward without retain_graph: ``_release_all`` (a second backward
#    raises torch's error), NULL (the node saves only shapes or keys, so it may run again), or
#    an op's own (e.g. add keeps the shapes it needs).
# 5. Give the op its Tensor method / fastoptim function, a NumPy twin in fastoptim/_reference.py
#    when it has a new C kernel, and tests against the twin and against torch.

cdef enum:
    N_LEAF = 0
    N_BINARY = 1      # _sub: fo_binary_op (add ... maximum), broadcasting; saved (a, b)
    N_UNARY = 2       # _sub: fo_unary_op; saved (x, y) arrays; params _p0, _p1
    N_SUM = 3         # all elements; saved the input shape; _p0 = scale (1 or 1/n)
    N_SUM_AXIS = 4    # saved (outer, n, inner, in_shape); _p0 = scale
    N_MATMUL = 5      # saved (a, b, M, N, K) with the contiguous operands
    N_LINEAR = 6      # inputs (x, w, bias); saved (x, w, M, N, K) with contiguous x, w
    N_MSE = 7         # saved (a, b); _sub: reduction 0 none / 1 mean / 2 sum
    N_EXTREME = 8     # saved x; _p0 = result, _p1 = count; _sub: 1 max / 0 min
    N_VIEW = 9        # reshape/view/flatten/squeeze: saved the input shape
    N_TRANSPOSE = 10  # saved (d0, d1)
    N_INDEX = 11      # saved key
    N_CAST = 12       # dtype conversion: grad cast back
    N_CLONE = 13      # clone / contiguous: identity
    N_SOFTMAX = 14    # _tensor_loss.pxi: softmax/log_softmax along a dim
    N_NLL = 15        # _tensor_loss.pxi: nll_loss, cross_entropy with class indices
    N_SOFT_CE = 16    # _tensor_loss.pxi: cross_entropy with class probabilities
    N_POINTWISE = 17  # _tensor_loss.pxi: l1/smooth_l1/huber/bce/bce_with_logits
    N_ACT = 18        # _tensor_nnops.pxi: leaky_relu/elu/gelu/silu
    N_PROD = 19       # _tensor_reduce.pxi; N_PROD .. N_LOGSUMEXP save (kept shape, result
    N_VAR = 20        #   with the dims kept, op's own): var (_sub 0) / std (_sub 1),
    N_NORM = 21       #   _p0 = correction; vector norm, _p0 = ord
    N_LOGSUMEXP = 22
    N_CUMSUM = 23     # saved the axis
    N_EXTREME_DIM = 24  # max/min over one dim: saved (indices, axis, in shape); _sub 1 max
    N_WHERE = 25      # _tensor_elementwise.pxi: where(cond, a, b); saved (cond, shapes)
    N_CLAMP_T = 26    # clamp with tensor bounds: inputs (x, min, max); saved the arrays
    N_LERP = 27       # lerp: inputs (x, end, weight tensor or None); saved the arrays
    N_PERMUTE = 28    # _tensor_views.pxi: permute/movedim/mT; saved the axes
    N_EXPAND = 29     # _tensor_views.pxi: expand (a broadcast view); saved the input shape
    N_REPEAT = 30     # _tensor_views.pxi: repeat; saved (padded input shape, repeats)
    N_SLICE = 31      # _tensor_views.pxi: narrow/split/chunk/unbind/select; saved (shape, key)
    N_CAT = 32        # _tensor_views.pxi: cat/stack over n inputs; saved (dim, sizes)
    N_GATHER = 33     # _tensor_views.pxi: gather/index_select; saved (shape, full index)
    N_BMM = 34        # _tensor_linalg.pxi: batched, broadcasting matmul
    N_PYFUNC = 35     # _tensor_function.pxi: an autograd.Function's node (inputs: its args)
    N_PYFUNC_OUT = 36 # _tensor_function.pxi: output i of an autograd.Function (input: the node)
    N_SETITEM = 37    # _tensor_views.pxi: t[key] = value (requiring grad); saved key
    N_OPS = 38

ctypedef void (*backward_fn)(Tensor t, cnp.ndarray g, bint gown) except *
ctypedef object (*name_fn)(Tensor t)
ctypedef void (*release_fn)(Tensor t) except *

cdef struct OpDef:
    const char *name          # torch's grad_fn name, when the op has one name
    name_fn name_of           # or the name of a variant (t._sub), when not NULL
    backward_fn backward      # input gradients from the output gradient g (contiguous)
    release_fn release        # drop saved values after backward; NULL: nothing to drop

cdef OpDef _OPS[N_OPS]


cdef int _register(int op, const char *name, name_fn name_of, backward_fn backward,
                   release_fn release) except -1:
    """Fill the op table's row `op` (called once per op, at import, next to its backward)."""
    if op <= N_LEAF or op >= N_OPS or _OPS[op].backward != NULL:
        raise RuntimeError(f"op {op} registered twice or out of range")
    _OPS[op].name = name
    _OPS[op].name_of = name_of
    _OPS[op].backward = backward
    _OPS[op].release = release
    return 0


cdef str _op_name(Tensor t):
    cdef OpDef *d = &_OPS[t._op]
    if d.name_of != NULL:
        return d.name_of(t)
    return d.name.decode()


cdef void _release_all(Tensor t) except *:
    """The release of an op whose backward needs its saved values: a second backward raises.
    The saved arrays that nothing else holds go to the array pool (_release_saved)."""
    cdef object s = t._saved
    t._saved = None
    t._freed = 1
    _release_saved(<PyObject*>s)


_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


cdef inline object _edge(Tensor x):
    """An input as a node keeps it: itself when it requires grad, else None."""
    if x is not None and x._requires_grad:
        return x
    return None


cdef inline void _record(Tensor out, int op, tuple ins, object saved):
    """Make `out` a node of op `op` over `ins` (built with _edge; the caller checked grad mode
    and that some input requires grad).  _record1/2/3 build `ins` for the common arities."""
    out._op = op
    out._ins = ins
    out._saved = saved
    out._requires_grad = True


cdef inline void _record1(Tensor out, int op, Tensor a, object saved):
    _record(out, op, (_edge(a),), saved)


cdef inline void _record2(Tensor out, int op, Tensor a, Tensor b, object saved):
    _record(out, op, (_edge(a), _edge(b)), saved)


cdef inline void _record3(Tensor out, int op, Tensor a, Tensor b, Tensor c, object saved):
    _record(out, op, (_edge(a), _edge(b), _edge(c)), saved)


cdef inline Tensor _input(Tensor t, Py_ssize_t i):
    """Input i of node t (None when it needs no gradient), without bounds checks: the op's
    backward knows its own arity."""
    return <Tensor><object>PyTuple_GET_ITEM(t._ins, i)


cdef inline bint _needs_grad(Tensor a, Tensor b):
    return _grad_enabled and (a._requires_grad or (b is not None and b._requires_grad))
