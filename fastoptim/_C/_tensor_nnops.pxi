# nn's activations on C kernels (csrc/tensor_nnops.c), one node each (N_ACT: _sub the
# fo_act_op, _p0 its parameter, saved the input), and the random pieces nn and utils.data
# need: torch.Generator (an owned xoshiro256** state) and randperm.

cdef inline const fo_act_kernels *_akern(cnp.ndarray a) noexcept:
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT:
        return &fo_act_kernels_f32
    return &fo_act_kernels_f64


cdef Tensor _activation(object input, int op, double p0, bint inplace, str fn):
    cdef Tensor a = _loss_tensor_arg(input, fn, "input")
    cdef cnp.ndarray x, out
    cdef Tensor t
    if not _is_float(a._np):
        raise RuntimeError(f'"{fn}" not implemented for '
                           f"'{_dtype_of(a._np).name.capitalize()}'")
    if inplace:
        # torch's in-place form: the input's storage receives f(x) (a leaf that requires
        # grad cannot be changed in place, as torch says)
        a._check_inplace()
        if _grad_enabled and a._requires_grad:
            raise RuntimeError(f"fastoptim: {fn}(inplace=True) on a tensor that requires grad "
                               "is not supported; use inplace=False")
        x = a._np
        if _kernel_ready(x):
            _akern(x).activation(op, cnp.PyArray_SIZE(x), _ptr(x), p0, _ptr(x))
        else:
            out = _empty_like(_contig(x))
            _akern(out).activation(op, cnp.PyArray_SIZE(out), _ptr(_contig(x)), p0, _ptr(out))
            x[...] = out
        return a
    x = _contig(a._np)
    out = _empty_like(x)
    _akern(x).activation(op, cnp.PyArray_SIZE(x), _ptr(x), p0, _ptr(out))
    t = _wrap(out)
    if _grad_enabled and a._requires_grad:
        _record1(t, N_ACT, a, x)
        t._sub = op
        t._p0 = p0
    return t


cdef dict _ACT_NAMES = {
    FO_ACT_LEAKY_RELU: "LeakyReluBackward0", FO_ACT_ELU: "EluBackward0",
    FO_ACT_GELU: "GeluBackward0", FO_ACT_GELU_TANH: "GeluBackward0",
    FO_ACT_SILU: "SiluBackward0",
}


cdef object _act_name(Tensor t):
    return _ACT_NAMES[t._sub]


cdef void _act_backward(Tensor t, cnp.ndarray g, bint gown) except *:
    """gx = g * f'(x) from the saved input (fo_activation_backward)."""
    cdef cnp.ndarray x = t._saved
    cdef cnp.ndarray gx = _empty_like(x)
    _akern(x).activation_backward(t._sub, cnp.PyArray_SIZE(x), _ptr(_contig(g)), _ptr(x),
                                  t._p0, _ptr(gx))
    _accumulate(_input(t, 0), gx, True)


_register(N_ACT, NULL, _act_name, _act_backward, _release_all)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x."""
    return _activation(input, FO_ACT_LEAKY_RELU, negative_slope, inplace, "leaky_relu")


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _activation(input, FO_ACT_ELU, alpha, inplace, "elu")


def gelu(input, approximate="none"):
    """x * Phi(x) (approximate='none') or its tanh approximation (approximate='tanh')."""
    if approximate == "none":
        return _activation(input, FO_ACT_GELU, 0.0, False, "gelu")
    if approximate == "tanh":
        return _activation(input, FO_ACT_GELU_TANH, 0.0, False, "gelu")
    raise RuntimeError("approximate argument must be either none or tanh.")


def silu(input, inplace=False):
    """x * sigmoid(x)."""
    return _activation(input, FO_ACT_SILU, 0.0, inplace, "silu")


# ---------------------------------------------------------------------------------------------
# Generator and randperm
# ---------------------------------------------------------------------------------------------

cdef class Generator:
    """A random generator with its own state, as torch.Generator (CPU only).  Its draws are
    fastoptim's xoshiro256**, not torch's Mersenne Twister: the same seed gives the same
    sequence run after run, but not the numbers torch would draw."""
    cdef fo_rng _state
    cdef uint64_t _initial

    def __init__(self, device="cpu"):
        _check_device(device)
        self.manual_seed(67280421310721)   # torch's default seed of a new Generator

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < -0x8000000000000000 or seed > 0xFFFFFFFFFFFFFFFF:
            raise ValueError("Overflow when unpacking long long")
        self._initial = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
        fo_rng_seed(&self._state, self._initial)
        return self

    def seed(self):
        s = _fresh_seed()
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return int(self._initial)

    @property
    def device(self):
        return _CPU

    def get_state(self):
        """The state as a uint8 tensor (restore it with set_state)."""
        arr = np.array([self._state.s[0], self._state.s[1], self._state.s[2],
                        self._state.s[3], self._state.has_spare], dtype=np.uint64)
        spare = np.array([self._state.spare], dtype=np.float64)
        return _wrap(np.concatenate([arr.view(np.uint8), spare.view(np.uint8)]).astype(np.int64))

    def set_state(self, new_state):
        raw = np.asarray(new_state._np if isinstance(new_state, Tensor) else new_state)
        if raw.shape != (48,):
            raise RuntimeError("Generator.set_state: expected a state from Generator.get_state")
        raw = raw.astype(np.uint8)
        s = raw[:40].view(np.uint64)
        for i in range(4):
            self._state.s[i] = s[i]
        self._state.has_spare = int(s[4])
        self._state.spare = float(raw[40:].view(np.float64)[0])
        return self


cdef fo_rng *_rng_of(object generator) except NULL:
    if generator is None:
        return &_rng
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a fastoptim.Generator, got "
                        f"{type(generator).__name__}")
    return &(<Generator>generator)._state


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0 .. n-1 (int64), from `generator` or the global generator."""
    cdef cnp.npy_intp m
    cdef cnp.ndarray out
    _check_device(device)
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"randperm(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    m = n
    out = _empty(1, &m, cnp.NPY_INT64)
    fo_randperm(_rng_of(generator), n, <int64_t*>_ptr(out))
    t = _wrap(out)
    if dtype is not None:
        t = t.to(dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _uniform_with(generator, *size, dtype=None):
    """U[0, 1) samples of `size` from `generator` (None: the global one); used by Dropout."""
    cdef cnp.ndarray a = _new_array(size, dtype)
    _kern(a).uniform(_rng_of(generator), cnp.PyArray_SIZE(a), _ptr(a), 0.0, 1.0)
    return _wrap(a)
