# The autograd engine: grad mode, the grad_fn objects, and backward().
#
# The engine knows no op: a node's inputs are ``t._ins`` and its backward is
# ``_OPS[t._op].backward`` (the op table, _tensor_ops.pxi).  ``backward()`` sorts the graph once
# (iterative DFS, a generation mark per tensor instead of a visited set) and walks it in
# reverse.  Pending gradients sit in ``_gacc``; a gradient passed through unchanged is not
# copied until something must accumulate into it (``_gown``).  Saved values are dropped
# afterwards (each op's ``release``) unless ``retain_graph``: a second backward then raises
# torch's error.

# ---------------------------------------------------------------------------------------------
# grad mode
# ---------------------------------------------------------------------------------------------

# Grad mode is per thread, as in torch: one thread's no_grad() (an optimizer step, say) must not
# switch recording off in another, and two threads entering and leaving no_grad() must not
# leave it off for everyone.  A C thread-local, initial-exec so that reading it on every op
# costs what a global read costs (one %fs-relative load); a new thread starts with it on.
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    static __thread int fo_grad_enabled __attribute__((tls_model("initial-exec"))) = 1;
    #else
    static _Thread_local int fo_grad_enabled = 1;
    #endif
    """
    bint _grad_enabled "fo_grad_enabled"


# Whether the backward walk running in this thread keeps the nodes' saved values (retain_graph)
# or drops them when it ends: a backward may then take over an array it saved (cross_entropy
# writes its gradient into its saved softmax) instead of allocating one.  Per thread, as grad
# mode; _walk sets it and restores it (a hook may run a walk of its own).
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    static __thread int fo_walk_keeps_saved __attribute__((tls_model("initial-exec"))) = 0;
    #else
    static _Thread_local int fo_walk_keeps_saved = 0;
    #endif
    """
    bint _walk_keeps_saved "fo_walk_keeps_saved"


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
# grad_fn
# ---------------------------------------------------------------------------------------------

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
    _kern(acc).inplace_binary(FO_ADD, n, _ptr(acc), _ptr(g), n, 1.0)


cdef void _store_grad(Tensor t, cnp.ndarray g, bint owned) except *:
    """AccumulateGrad: a leaf's .grad is created or summed into in place."""
    cdef Tensor old = t._grad
    cdef cnp.ndarray acc
    cdef int64_t n
    if old is None:
        t._grad = _wrap(g if owned else np.array(g, order="C"))
        return
    acc = old._np
    if not _kernel_ready(acc) or not cnp.PyArray_ISWRITEABLE(acc) or \
            cnp.PyArray_TYPE(acc) != cnp.PyArray_TYPE(g) or not cnp.PyArray_SAMESHAPE(acc, g):
        _bind(old, acc + g)
        return
    n = cnp.PyArray_SIZE(acc)
    g = _contig(g)
    _kern(acc).inplace_binary(FO_ADD, n, _ptr(acc), _ptr(g), n, 1.0)


# _topo's scratch: a growable array of words, in a caller's buffer on the C stack until it
# outgrows it (then on the heap: own).  No Python object is made or touched while it fills.
cdef struct _Words:
    uintptr_t *p
    Py_ssize_t n
    Py_ssize_t cap
    uintptr_t *own


cdef int _words_grow(_Words *w) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    cdef uintptr_t *q = <uintptr_t*>malloc(cap * sizeof(uintptr_t))
    if q == NULL:
        raise MemoryError("backward: the graph's sort ran out of memory")
    memcpy(q, w.p, w.n * sizeof(uintptr_t))
    free(w.own)
    w.p = w.own = q
    w.cap = cap
    return 0


cdef inline int _words_push(_Words *w, uintptr_t x) except -1:
    if w.n == w.cap:
        _words_grow(w)
    w.p[w.n] = x
    w.n += 1
    return 0


cdef list _topo(Tensor root):
    """Graph nodes reachable from root in post-order (inputs before outputs): an iterative
    DFS (no recursion limit on long chains) with a generation mark instead of a visited set.

    A tensor is marked when it is EXPANDED, not when it is queued: a tensor reached by two
    paths of different lengths must come after everything that feeds it, or the gradient from
    the longer path would arrive after the tensor had already been processed.  In a DAG a
    child met already marked is finished (it cannot be an unfinished ancestor).

    The stack holds tensor pointers, bit 0 set on the entry that says "the tensor is
    finished" (pushed below its inputs); stack and result are C arrays (_Words: a 1-node loss
    graph's sort was ~1.1k instructions with Python lists, most in append, list creation and
    deallocation), and the result becomes the list in one allocation.  Each tensor entering the
    result gets a reference there, which the list then owns."""
    global _mark_gen
    _mark_gen += 1
    cdef int gen = _mark_gen
    cdef uintptr_t stack_buf[64]
    cdef uintptr_t order_buf[32]
    cdef _Words st, od
    st.p, st.n, st.cap, st.own = stack_buf, 0, 64, NULL
    od.p, od.n, od.cap, od.own = order_buf, 0, 32, NULL
    cdef uintptr_t top
    cdef tuple ins
    cdef PyObject *c
    cdef Py_ssize_t k
    cdef Tensor t
    cdef list order
    try:
        _words_push(&st, <uintptr_t><PyObject*>root)
        while st.n:
            st.n -= 1
            top = st.p[st.n]
            if top & 1:
                _words_push(&od, top ^ 1)
                Py_INCREF(<object><PyObject*>(top ^ 1))
                continue
            t = <Tensor><PyObject*>top
            if t._mark == gen:
                continue
            t._mark = gen
            _words_push(&st, top | 1)
            ins = t._ins
            if ins is not None:
                for k in range(PyTuple_GET_SIZE(ins)):
                    c = PyTuple_GET_ITEM(ins, k)
                    if c != <PyObject*>None and (<Tensor>c)._mark != gen:
                        _words_push(&st, <uintptr_t>c)
        order = PyList_New(od.n)
        for k in range(od.n):
            PyList_SET_ITEM(order, k, <object><PyObject*>od.p[k])   # steals the reference
        od.n = 0
    finally:
        for k in range(od.n):                 # an error on the way: drop what was taken
            Py_DECREF(<object><PyObject*>od.p[k])
        free(st.own)
        free(od.own)
    return order


cdef cnp.ndarray _root_grad(Tensor root, object gradient, Py_ssize_t k):
    """The gradient that starts the walk at root k: `gradient`, or an implicit 1 for a scalar."""
    cdef cnp.ndarray g0
    if not root._requires_grad:
        raise RuntimeError(f"element {k} of tensors does not require grad and does not have a "
                           "grad_fn")
    if gradient is None:
        if cnp.PyArray_SIZE(root._np) != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        g0 = _empty_like(root._np)     # one element: the implicit gradient 1
        if _is_f32(g0):
            (<float*>_ptr(g0))[0] = 1.0
        else:
            (<double*>_ptr(g0))[0] = 1.0
        return g0
    g0 = np.asarray(_np_of(gradient))
    if _shp(g0) != _shp(root._np):
        raise RuntimeError(f"Mismatch in shape: grad_output[{k}] has a shape of "
                           f"{Size(_shp(g0))} and output[{k}] has a shape of "
                           f"{Size(_shp(root._np))}.")
    # a copy: the walk may sum into it, and the caller's tensor must not change
    return np.array(g0, dtype=root._np.dtype, order="C")


cdef object _run_hooks(Tensor t, object g):
    """t's register_hook functions, in order, on its gradient; each may return a replacement."""
    for hook in list(t._hooks):
        r = hook(_wrap(g))
        if r is not None:
            if not isinstance(r, Tensor) or _shp((<Tensor>r)._np) != _shp(g):
                raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' has changed the "
                                   "size of value" if isinstance(r, Tensor) else
                                   "hook must return a Tensor or None")
            g = _ascontig((<Tensor>r)._np, dtype=g.dtype)
    return g


cdef cnp.ndarray _read_only_one(object dt):
    cdef cnp.ndarray a = np.ones((), dtype=dt)
    a.flags.writeable = False
    return a


# The implicit gradient 1 of a 0-dim root (loss.backward()), one per dtype: read-only and never
# owned (_gown False), so no backward writes into it (a backward may write into g only when it
# owns it; .grad, autograd.grad and Function backwards take copies of what they do not own),
# and an in-place edit by a hook down a pass-through chain raises instead of changing it.
cdef cnp.ndarray _SEED_F32 = _read_only_one(np.float32)
cdef cnp.ndarray _SEED_F64 = _read_only_one(np.float64)


cdef void _backward(Tensor root, object gradient, bint retain) except *:
    """Tensor.backward(): the gradient of root into the leaves' .grad."""
    cdef cnp.ndarray g0
    cdef list order
    cdef int tn = root._tnum
    if gradient is None and root._ndim == 0 and root._requires_grad and \
            root._hooks is None and (tn == cnp.NPY_FLOAT or tn == cnp.NPY_DOUBLE):
        order = _topo(root)             # the usual loss.backward(): no array to make
        root._gacc = _SEED_F32 if tn == cnp.NPY_FLOAT else _SEED_F64
        root._gown = False
    else:
        g0 = _root_grad(root, gradient, 0)
        order = _topo(root)
        root._gacc = g0
        root._gown = True
    _walk(order, None, False, retain)


cdef dict _engine(list roots, list grads, dict want, bint capture, bint retain):
    """_walk from several roots (with their starting gradients)."""
    cdef list order = _topo(<Tensor>roots[0]) if len(roots) == 1 else _topo_many(roots)
    cdef Py_ssize_t i
    for i in range(len(roots)):
        _accumulate(<Tensor>roots[i], grads[i], True)
    return _walk(order, want, capture, retain)


cdef dict _walk(list order, dict want, bint capture, bint retain):
    """The reverse walk over `order` (_topo's) from the roots' pending gradients to the leaves.

    want None: every leaf reached accumulates into .grad (and retain_grad() tensors keep
    theirs): Tensor.backward.  want {id: tensor}: only those tensors' gradients are taken --
    into their .grad (capture False: backward(inputs=...)), or returned {id: array} and no .grad
    touched (capture True: autograd.grad).  Hooks run on every tensor's gradient before use."""
    cdef Tensor t
    cdef Py_ssize_t i
    cdef dict got = {} if capture else None
    cdef object g
    global _walk_keeps_saved
    cdef bint outer_keeps = _walk_keeps_saved
    _walk_keeps_saved = retain
    try:
        for i in range(len(order) - 1, -1, -1):
            t = <Tensor>order[i]
            if t._gacc is None:
                continue
            g = t._gacc
            if t._hooks is not None:
                g = _run_hooks(t, g)
                t._gown = False
            if want is None:
                if t._op == N_LEAF:
                    _store_grad(t, g, t._gown)
                    t._gacc = None
                    _release(<PyObject*>g)      # summed into an existing .grad: now garbage
                    g = None                    # (a saved value too: _release_all offers it)
                    continue
                if t._retains_grad:
                    _store_grad(t, g, False)
            else:
                if id(t) in want:
                    if capture:
                        got[id(t)] = g if t._gown else np.array(g, order="C")
                        t._gown = False
                    else:
                        _store_grad(t, g, False)
                if t._op == N_LEAF:
                    t._gacc = None
                    continue
                if t._retains_grad and (capture or id(t) not in want):
                    _store_grad(t, g, False)     # as torch: retain_grad fires in grad() too
            if t._freed == 1:
                raise RuntimeError(_FREED_MSG)
            _OPS[t._op].backward(t, g, t._gown)
            t._gacc = None
            _release(<PyObject*>g)      # the array pool takes g if nothing kept it
            g = None
    finally:
        _walk_keeps_saved = outer_keeps
        for i in range(len(order)):
            t = <Tensor>order[i]
            t._gacc = None
            if not retain and t._op != N_LEAF and t._freed != 1 and \
                    _OPS[t._op].release != NULL:
                _OPS[t._op].release(t)
    return got


cdef list _topo_many(list roots):
    """_topo over several roots: one order in which every tensor comes after all it feeds."""
    cdef Tensor hub = Tensor.__new__(Tensor)        # a node whose inputs are the roots
    cdef list order
    hub._ins = tuple(roots)
    order = _topo(hub)
    order.pop()
    return order


def _autograd_grad(outputs, inputs, grad_outputs, bint retain, bint allow_unused,
                   bint materialize):
    """torch.autograd.grad's walk (fastoptim.autograd.grad checks and shapes the arguments):
    the gradients of `outputs` w.r.t. `inputs`, no .grad touched."""
    cdef list roots = list(outputs)
    cdef list ins = list(inputs)
    cdef Tensor x
    grads = [_root_grad(<Tensor>roots[k], grad_outputs[k], k) for k in range(len(roots))]
    for k, x in enumerate(ins):
        if not x._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    got = _engine(roots, grads, {id(x): x for x in ins}, True, retain)
    res = []
    for k, x in enumerate(ins):
        g = got.get(id(x))
        if g is None:
            if not allow_unused and not materialize:
                raise RuntimeError(f"The differentiated Tensor at index {k} appears to not have "
                                   "been used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
            res.append(_wrap(_zeros_like(x._np)) if materialize else None)
        else:
            res.append(_wrap(g))
    return tuple(res)


def _backward_many(tensors, grad_tensors, bint retain, inputs):
    """torch.autograd.backward / Tensor.backward(inputs=...): several roots; with `inputs`, only
    those tensors' .grad accumulate."""
    cdef list roots = list(tensors)
    grads = [_root_grad(<Tensor>roots[k], grad_tensors[k], k) for k in range(len(roots))]
    want = None
    if inputs is not None:
        want = {id(x): x for x in inputs}
    _engine(roots, grads, want, False, retain)


class RemovableHandle:
    """What register_hook returns: remove() takes the hook off the tensor."""
    __slots__ = ("_hooks", "_fn")

    def __init__(self, hooks, fn):
        self._hooks = hooks
        self._fn = fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
