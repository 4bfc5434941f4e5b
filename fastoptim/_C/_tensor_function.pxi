# autograd.Function: a user's forward/backward pair as a node of the graph.
#
# fastoptim.autograd.Function.apply runs the user's forward under no_grad, then calls
# ``_function_node`` here, which hangs the outputs on the graph.  One call makes:
#
# * a hidden node (N_PYFUNC) whose inputs are the apply() arguments, in order (None for
#   non-tensors and tensors that need no gradient), and whose saved value is the ctx;
# * each output as a node (N_PYFUNC_OUT, _sub = its position) whose one input is that hidden
#   node.  An output's backward parks its gradient in the ctx's slot and passes an empty array
#   on; the engine's order (every output before the node they share) makes the hidden node's
#   backward run once, after all outputs, and call the user's backward with every gradient
#   (zeros for outputs that got none, as torch's materialize_grads).

cdef object _EMPTY_GRAD = np.empty((0,), dtype=np.float64)


def _function_node(ctx, tuple args, tuple outputs, tuple differentiable):
    """Make outputs[i] (for differentiable[i]) nodes of a ctx.backward over args; returns the
    outputs as tensors of the graph (new Tensor objects over the same storage)."""
    cdef Tensor hub = _wrap(_EMPTY_GRAD)
    cdef Tensor o, t
    cdef Py_ssize_t i
    hub._op = N_PYFUNC
    hub._ins = tuple(_edge(<Tensor>x) if isinstance(x, Tensor) else None for x in args)
    hub._saved = ctx
    hub._requires_grad = True
    ctx._fo_grads = [None] * len(outputs)
    ctx._fo_is_tensor = tuple(isinstance(x, Tensor) for x in args)
    ctx._fo_outputs = tuple((_shp((<Tensor>x)._np), (<Tensor>x)._np.dtype)
                            if isinstance(x, Tensor) else None for x in outputs)
    res = []
    for i in range(len(outputs)):
        x = outputs[i]
        if not isinstance(x, Tensor):
            res.append(x)
            continue
        o = <Tensor>x
        t = _wrap(o._np)
        if differentiable[i] and _is_float(o._np):
            _record(t, N_PYFUNC_OUT, (hub,), ctx)
            t._sub = i
        res.append(t)
    return tuple(res)


cdef object _pyfunc_name(Tensor t):
    return type(t._saved)._fo_backward_name


cdef void _pyfunc_out_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    ctx = t._saved
    slots = ctx._fo_grads
    slots[t._sub] = g if gown else np.array(g, order="C")
    _accumulate(_input(t, 0), _EMPTY_GRAD, False)


cdef void _pyfunc_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """The user's backward(ctx, *grad_outputs): one gradient (or None) per apply() argument."""
    cdef Tensor x
    cdef Py_ssize_t k, n = PyTuple_GET_SIZE(t._ins)
    ctx = t._saved
    grads = []
    for k, slot in enumerate(ctx._fo_grads):
        meta = ctx._fo_outputs[k]
        if slot is None and meta is not None:
            slot = np.zeros(meta[0], dtype=meta[1])
        grads.append(_wrap(slot) if slot is not None else None)
    ctx._fo_grads = [None] * len(grads)
    name = type(ctx)._fo_backward_name
    global _grad_enabled
    cdef bint prev = _grad_enabled
    _grad_enabled = False
    try:
        res = type(ctx)._fo_function.backward(ctx, *grads)
    finally:
        _grad_enabled = prev
    if not isinstance(res, tuple):
        res = (res,)
    if len(res) != n:
        raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                           f"(expected {n}, got {len(res)})")
    for k in range(n):
        x = _input(t, k)
        r = res[k]
        if r is None:
            continue
        if not ctx._fo_is_tensor[k]:
            raise RuntimeError(f"function {name} returned a gradient different than None at "
                               f"position {k + 1}, but the corresponding forward input was not "
                               "a Variable")
        if x is None:
            continue
        if not isinstance(r, Tensor):
            raise TypeError(f"function {name} returned a {type(r).__name__} as the gradient at "
                            f"position {k + 1}; expected a Tensor or None")
        if _shp((<Tensor>r)._np) != _shp(x._np):
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {k} - got "
                               f"{list(_shp((<Tensor>r)._np))} but expected shape compatible with "
                               f"{list(_shp(x._np))}")
        _accumulate_any(x, np.asarray((<Tensor>r)._np, dtype=x._np.dtype))


cdef void _pyfunc_release(Tensor t) except *:
    ctx = t._saved
    ctx._fo_release()
    t._freed = 1


_register(N_PYFUNC, NULL, _pyfunc_name, _pyfunc_backward, _pyfunc_release)
_register(N_PYFUNC_OUT, NULL, _pyfunc_name, _pyfunc_out_backward, NULL)
