"""The slow NumPy twins of the tensor kernels in csrc/fastoptim.h (tensor ops section).

This module is the documentation of what each C kernel computes: one function per kernel, with
the header's meaning, written for clarity (plain NumPy, no tricks) in torch's order of
operations.  The tests hold the kernels (through the Tensor ops that call them) against these
functions over dtypes x sizes x layouts.

Conventions, mirroring the header:
  * Arrays are numpy arrays of one float dtype (float32 or float64); results keep that dtype.
  * Scalar parameters (alpha, value, weight, scale, p0, p1) arrive as Python floats and are
    rounded to the element type before use, as the kernels do (``(T)p0``).
  * Reductions (sum, mse) accumulate in float64 in the kernels' fixed lane order (lane_sum) and
    return a Python float.
  * "In place" kernels return the updated array instead (the inputs are not modified).
Binary ops use numpy broadcasting instead of the kernel's explicit (shape, strides) form; the
broadcast backward sums each gradient back onto its operand's shape.
"""
import numpy as np

# enum fo_binary_op
ADD, SUB, MUL, DIV, POW_T, MAXIMUM, MINIMUM = range(7)
# enum fo_unary_op
(NEG, EXP, LOG, SQRT, ABS, RELU, TANH, SIGMOID, CLAMP, POW, ADD_S, MUL_S, RSUB_S, RDIV_S,
 DIV_S, RPOW_S, SIN, COS, TAN, ASIN, ACOS, ATAN, SINH, COSH, EXP2, EXPM1, LOG1P, LOG2, LOG10,
 SIGN, FLOOR, CEIL, ROUND, TRUNC, RECIPROCAL, RSQRT, SQUARE, ERF, SOFTPLUS) = range(39)

# the unary ops the kernels compute with C's double functions, rounded to the element type
_DOUBLE_FNS = {SIN: np.sin, COS: np.cos, TAN: np.tan, ASIN: np.arcsin, ACOS: np.arccos,
               ATAN: np.arctan, SINH: np.sinh, COSH: np.cosh, EXP2: np.exp2, EXPM1: np.expm1,
               LOG1P: np.log1p, LOG2: np.log2, LOG10: np.log10, FLOOR: np.floor, CEIL: np.ceil,
               ROUND: np.rint, TRUNC: np.trunc}
LN2, LN10, TWO_OVER_SQRT_PI = np.log(2.0), np.log(10.0), 2.0 / np.sqrt(np.pi)


def _erf(x):
    """The error function in double (math.erf, element by element: numpy has none)."""
    import math
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _t(x, like):
    """A scalar rounded to the element type of `like` (the kernel's ``(T)x``)."""
    return like.dtype.type(x)


def _in_double(fn, x):
    """fn evaluated in double and rounded to x's type: the kernels call C's double exp, log,
    sqrt and tanh, so float32 results are correctly rounded values of the double result."""
    return fn(x.astype(np.float64)).astype(x.dtype)


def _unbroadcast(g, shape):
    """Sum g (the broadcast shape) back onto `shape`: the leading extra dims, then every dim
    where the operand had size 1."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for d, s in enumerate(shape):
        if s == 1 and g.shape[d] != 1:
            g = g.sum(axis=d, keepdims=True)
    return g


# ---- binary element-wise (fo_binary, fo_binary_backward) ----------------------------------

def binary(op, a, b):
    """out = a (op) b with numpy broadcasting; DIV is a true division."""
    if op == ADD:
        return a + b
    if op == SUB:
        return a - b
    if op == MUL:
        return a * b
    if op == POW_T:
        with np.errstate(all="ignore"):
            return np.power(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)
    if op in (MAXIMUM, MINIMUM):
        pick = np.maximum if op == MAXIMUM else np.minimum   # both propagate NaN
        return pick(a, b)
    return a / b


def binary_backward(op, g, a, b):
    """(ga, gb): the gradients of a (op) b w.r.t. a and b, summed onto their shapes.
    torch's formulas: add (g, g); sub (g, -g); mul (g*b, g*a); div (g/b, -g*((a/b)/b))."""
    if op == ADD:
        ga, gb = g, g
    elif op == SUB:
        ga, gb = g, -g
    elif op == MUL:
        ga, gb = g * b, g * a
    elif op == POW_T:
        # torch: 0 where the exponent is 0; the exponent's 0 where base == 0 and exponent >= 0
        with np.errstate(all="ignore"):
            a64, b64 = np.broadcast_arrays(a.astype(np.float64), b.astype(np.float64))
            da = np.where(b64 == 0, 0.0, b64 * np.power(a64, b64 - 1.0)).astype(a.dtype)
            db = np.where((a64 == 0) & (b64 >= 0), 0.0,
                          np.power(a64, b64).astype(a.dtype) * np.log(a64).astype(a.dtype))
            ga, gb = g * da, g * db.astype(a.dtype)
    elif op in (MAXIMUM, MINIMUM):
        # the larger (smaller) operand takes g; ties split it in halves
        a_wins = a > b if op == MAXIMUM else a < b
        b_wins = b > a if op == MAXIMUM else b < a
        tie = a == b
        half = g / _t(2, g)
        ga = np.where(a_wins, g, np.where(tie, half, _t(0, g)))
        gb = np.where(b_wins, g, np.where(tie, half, _t(0, g)))
    else:
        ga, gb = g / b, -g * ((a / b) / b)
    ga = np.broadcast_to(ga, np.broadcast_shapes(a.shape, b.shape))
    gb = np.broadcast_to(gb, np.broadcast_shapes(a.shape, b.shape))
    return (_unbroadcast(ga, a.shape).astype(a.dtype), _unbroadcast(gb, b.shape).astype(b.dtype))


# ---- unary element-wise (fo_unary, fo_unary_backward) -------------------------------------

def _pow(x, p):
    """x ** p with torch's exact shortcuts for the common exponents; other exponents are
    computed in double and rounded."""
    if p == 2.0:
        return x * x
    if p == 1.0:
        return x.copy()
    if p == 0.0:
        return np.ones_like(x)
    if p == 0.5:
        return np.sqrt(x)
    if p == 3.0:
        return x * x * x
    if p == -1.0:
        return _t(1, x) / x
    return np.power(x.astype(np.float64), p).astype(x.dtype)


def unary(op, x, p0=0.0, p1=0.0):
    """out = op(x; p0, p1).  CLAMP: min(max(x, p0), p1), a NaN bound meaning "no bound";
    POW: x ** p0; the *_S ops combine x with the scalar p0."""
    s = _t(p0, x)
    with np.errstate(all="ignore"):
        if op == NEG:
            return -x
        if op == EXP:
            return _in_double(np.exp, x)
        if op == LOG:
            return _in_double(np.log, x)
        if op == SQRT:
            return _in_double(np.sqrt, x)
        if op == ABS:
            return np.abs(x)
        if op == RELU:
            return np.where(np.isnan(x), x, np.maximum(x, _t(0, x)))
        if op == TANH:
            return _in_double(np.tanh, x)
        if op == SIGMOID:
            return (_t(1, x) / (_t(1, x) + _in_double(np.exp, -x))).astype(x.dtype)
        if op == CLAMP:
            y = x
            if not np.isnan(p0):
                y = np.where(y < _t(p0, x), _t(p0, x), y)
            if not np.isnan(p1):
                y = np.where(y > _t(p1, x), _t(p1, x), y)
            return y.astype(x.dtype)
        if op == POW:
            return _pow(x, p0)
        if op == ADD_S:
            return x + s
        if op == MUL_S:
            return x * s
        if op == RSUB_S:
            return s - x
        if op == RDIV_S:
            return s / x
        if op == DIV_S:
            return x / s
        if op == RPOW_S:
            return np.power(np.float64(p0), x.astype(np.float64)).astype(x.dtype)
        if op in _DOUBLE_FNS:
            return _in_double(_DOUBLE_FNS[op], x)
        if op == SIGN:
            return np.where(x > 0, _t(1, x), np.where(x < 0, _t(-1, x), _t(0, x)))
        if op == RECIPROCAL:
            return _t(1, x) / x
        if op == RSQRT:
            return _t(1, x) / _in_double(np.sqrt, x)
        if op == SQUARE:
            return x * x
        if op == ERF:
            return _erf(x.astype(np.float64)).astype(x.dtype)
        if op == SOFTPLUS:
            beta, thr = _t(p0, x), _t(p1, x)
            soft = (np.log1p(np.exp((x * beta).astype(np.float64))) / np.float64(beta))
            return np.where(x * beta > thr, x, soft.astype(x.dtype))
    raise ValueError(f"unknown unary op {op}")


def unary_backward(op, g, x, y, p0=0.0, p1=0.0):
    """gx = g * d op(x)/dx, with y = op(x) (torch computes exp/sqrt/tanh/sigmoid's derivative
    from the output).  abs/relu pass 0 at x == 0; clamp passes g where lo <= x <= hi."""
    s = _t(p0, x)
    one = _t(1, x)
    with np.errstate(all="ignore"):
        if op == NEG:
            return -g
        if op == EXP:
            return g * y
        if op == LOG:
            return g / x
        if op == SQRT:
            return g / (_t(2, x) * y)
        if op == ABS:
            return np.where(np.isnan(x), x, g * np.sign(x)).astype(x.dtype)
        if op == RELU:
            return np.where(y > 0, g, _t(0, x))
        if op == TANH:
            return g * (one - y * y)
        if op == SIGMOID:
            return g * (one - y) * y
        if op == CLAMP:
            keep = np.ones(x.shape, dtype=bool)
            if not np.isnan(p0):
                keep &= x >= _t(p0, x)
            if not np.isnan(p1):
                keep &= x <= _t(p1, x)
            return np.where(keep, g, _t(0, x))
        if op == POW:
            if p0 == 0.0:
                return np.zeros_like(x)
            return g * (s * _pow(x, p0 - 1.0))
        if op == ADD_S:
            return g.copy()
        if op == MUL_S:
            return g * s
        if op == RSUB_S:
            return -g
        if op == RDIV_S:
            return -g * s / (x * x)
        if op == DIV_S:
            return g / s
        if op == RPOW_S:
            return g * y * _t(np.log(p0), x)
        if op == SIN:
            return g * _in_double(np.cos, x)
        if op == COS:
            return g * -_in_double(np.sin, x)
        if op == TAN:
            return g * (one + y * y)
        if op == ASIN:
            return g * (one / _in_double(np.sqrt, one - x * x))
        if op == ACOS:
            return g * (-one / _in_double(np.sqrt, one - x * x))
        if op == ATAN:
            return g / (x * x + one)
        if op == SINH:
            return g * _in_double(np.cosh, x)
        if op == COSH:
            return g * _in_double(np.sinh, x)
        if op == EXP2:
            return g * y * _t(LN2, x)
        if op == EXPM1:
            return g * (y + one)
        if op == LOG1P:
            return g / (x + one)
        if op == LOG2:
            return g / (x * _t(LN2, x))
        if op == LOG10:
            return g / (x * _t(LN10, x))
        if op in (SIGN, FLOOR, CEIL, ROUND, TRUNC):
            return np.zeros_like(x)
        if op == RECIPROCAL:
            return g * -(y * y)
        if op == RSQRT:
            return g * (_t(-0.5, x) * y * y * y)
        if op == SQUARE:
            return g * (_t(2, x) * x)
        if op == ERF:
            return g * (_t(TWO_OVER_SQRT_PI, x) * _in_double(np.exp, -(x * x)))
        if op == SOFTPLUS:
            beta, thr = _t(p0, x), _t(p1, x)
            z = _in_double(np.exp, x * beta)
            return np.where(x * beta > thr, g, g * (z / (z + one)))
    raise ValueError(f"unknown unary op {op}")


# ---- in-place updates (fo_inplace_binary, fo_addcmul, fo_addcdiv, fo_lerp) -----------------

def inplace_binary(op, x, a, alpha=1.0):
    """x + alpha*a, x - alpha*a, x * a or x / a (a: x's shape or one element)."""
    al = _t(alpha, x)
    a = np.broadcast_to(a, x.shape)
    if op == ADD:
        return x + al * a
    if op == SUB:
        return x - al * a
    if op == MUL:
        return x * a
    return x / a


def addcmul(x, a, b, value=1.0):
    """x + value * a * b, evaluated as (value * a) * b (torch's order)."""
    return x + (_t(value, x) * a) * b


def addcdiv(x, a, b, value=1.0):
    """x + value * a / b, evaluated as (value * a) / b (torch's order)."""
    return x + (_t(value, x) * a) / b


def lerp(x, a, w):
    """x + w * (a - x), with ATen's two-sided form: for w >= 0.5 it is a - (1 - w) * (a - x),
    so w == 0 gives x and w == 1 gives a exactly."""
    if w < 0.5:
        return x + _t(w, x) * (a - x)
    return a + _t(w - 1.0, x) * (a - x)


# ---- reductions (fo_sum, fo_sum_axis, fo_expand_axis, fo_extreme) --------------------------

def lane_sum(v):
    """The kernels' order of a float64 sum (FO_LANES_SUM in csrc/fo_vmath.h): element i goes
    into lane i % 4 of the first n - n % 4, then (lane 0 + lane 1) + (lane 2 + lane 3), then
    the last n % 4 elements one by one (a Python float)."""
    v = np.ravel(v).astype(np.float64)
    body = len(v) - len(v) % 4
    lanes = [0.0, 0.0, 0.0, 0.0]
    for i in range(body):
        lanes[i % 4] += v[i]
    acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    for i in range(body, len(v)):
        acc += v[i]
    return float(acc)


def sum(x):
    """Sum of all elements, accumulated in float64 in lane_sum's order (a Python float)."""
    return lane_sum(x)


def sum_axis(x3, scale=1.0):
    """x3 is [outer, n, inner]: out[o, i] = scale * sum_k x3[o, k, i] (shape [outer, inner])."""
    return (x3.sum(axis=1, dtype=np.float64) * scale).astype(x3.dtype)


def expand_axis(g2, n, scale=1.0):
    """g2 is [outer, inner]: out[o, k, i] = scale * g2[o, i] for k < n (shape [outer, n, inner])."""
    out = np.repeat(g2[:, None, :], n, axis=1)
    return out * _t(scale, g2)


def extreme(x, want_max=True):
    """(m, count): the max (or min) of all n >= 1 elements, NaN if any is NaN (as torch), and
    how many elements equal it (how many are NaN when it is NaN)."""
    flat = np.ravel(x)
    if np.isnan(flat).any():
        return float("nan"), int(np.isnan(flat).sum())
    m = flat.max() if want_max else flat.min()
    return float(m), int((flat == m).sum())


def extreme_backward(x, m, g, count):
    """gx = g / count where x equals the extreme m (where x is NaN when m is NaN), else 0:
    torch spreads the gradient evenly over ties."""
    share = _t(g / count, x)
    hit = np.isnan(x) if np.isnan(m) else (x == _t(m, x))
    return np.where(hit, share, _t(0, x))


# ---- matrix product (fo_matmul) -------------------------------------------------------------

def matmul(a, b, trans_a=False, trans_b=False, bias=None):
    """C = op(a) @ op(b) (+ bias over rows), op transposing the stored 2-D array when asked."""
    A = a.T if trans_a else a
    B = b.T if trans_b else b
    c = A @ B
    if bias is not None:
        c = c + bias
    return c.astype(a.dtype)


# ---- MSE loss (fo_mse, fo_mse_backward) ------------------------------------------------------

def mse(a, b):
    """sum_i (a[i] - b[i])^2: each difference squared in the element type, then accumulated in
    float64 in lane_sum's order (a Python float)."""
    d = (np.ravel(a) - np.ravel(b))
    return lane_sum(d * d)


def mse_backward(a, b, g, scale):
    """(ga, gb) with ga = scale * (a - b) * g (g an array for reduction='none', else a scalar)
    and gb = -ga.  torch's norm: scale = 2/n for 'mean', 2 for 'sum'/'none'."""
    g = np.asarray(g, dtype=a.dtype)
    ga = _t(scale, a) * (a - b) * g
    return ga, -ga


# ---------------------------------------------------------------------------------------------
# nn losses, softmax and activations (csrc/tensor_loss.c, csrc/tensor_nnops.c): the obvious
# NumPy forms, in torch's formulas, over [outer, n, inner] layouts as the kernels see them.
# ---------------------------------------------------------------------------------------------

def softmax(x, axis, log=False):
    """softmax / log_softmax along `axis` by log-sum-exp."""
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    lse = np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def softmax_backward(y, g, axis, log=False):
    if log:
        return g - np.exp(y) * g.sum(axis=axis, keepdims=True)
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


def nll(lp, target, weight=None, ignore_index=-100, smoothing=0.0):
    """Per-position loss (class axis 1 of lp [N, C, ...]) and sum_p w[t] over kept positions:
    (1 - s) (-w[t] lp[t]) + s/C sum_c (-w[c] lp[c]), 0 where target == ignore_index."""
    C = lp.shape[1]
    w = np.ones(C, lp.dtype) if weight is None else weight
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    picked = np.take_along_axis(lp, t[:, None], axis=1)[:, 0]
    wt = w[t]
    wshape = (1, C) + (1,) * (lp.ndim - 2)
    loss = (1 - smoothing) * (-wt * picked)
    if smoothing > 0:
        loss = loss + smoothing / C * -(lp * w.reshape(wshape)).sum(axis=1)
    loss = np.where(keep, loss, 0)
    return loss, np.where(keep, wt, 0).sum()


def cross_entropy(x, target, weight=None, ignore_index=-100, smoothing=0.0,
                  reduction="mean"):
    """cross_entropy of logits x [N, C, ...] against class indices or probabilities."""
    lp = softmax(x, 1, log=True)
    C = x.shape[1]
    if np.issubdtype(target.dtype, np.floating):
        w = np.ones(C, x.dtype) if weight is None else weight
        tt = target * (1 - smoothing) + smoothing / C if smoothing > 0 else target
        loss = -(lp * tt * w.reshape((1, C) + (1,) * (x.ndim - 2))).sum(axis=1)
        denom = loss.size
    else:
        loss, denom = nll(lp, target, weight, ignore_index, smoothing)
    if reduction == "none":
        return loss
    total = loss.sum(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):   # 0/0: nan, as torch
        return total / denom if reduction == "mean" else total


def pointwise_loss(kind, x, y, p=1.0, weight=None, pos_weight=None):
    """Element losses: 'l1', 'smooth_l1' (p = beta), 'huber' (p = delta), 'bce',
    'bce_logits' (pos_weight), times weight when given."""
    z = np.abs(x - y)
    if kind == "l1":
        out = z
    elif kind == "smooth_l1":
        out = np.where(z < p, 0.5 * z * z / p, z - 0.5 * p)
    elif kind == "huber":
        out = np.where(z < p, 0.5 * z * z, p * (z - 0.5 * p))
    elif kind == "bce":
        with np.errstate(divide="ignore"):
            out = (y - 1) * np.maximum(np.log1p(-x), -100) - y * np.maximum(np.log(x), -100)
    elif kind == "bce_logits":
        log_sig = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
        lw = 1 if pos_weight is None else (pos_weight - 1) * y + 1
        out = (1 - y) * x - lw * log_sig
    else:
        raise ValueError(kind)
    return out if weight is None else out * weight


def activation(kind, x, p=0.0):
    """'leaky_relu' (p = slope), 'elu' (p = alpha), 'gelu', 'gelu_tanh', 'silu'."""
    if kind == "leaky_relu":
        return np.where(x > 0, x, x * p)
    if kind == "elu":
        return np.where(x > 0, x, p * np.expm1(x))
    if kind == "gelu":
        return x * 0.5 * (1 + erf(x / np.sqrt(2.0)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    if kind == "silu":
        return x / (1 + np.exp(-x))
    raise ValueError(kind)


def erf(x):
    """math.erf over an array (numpy has no erf)."""
    import math
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.asarray(x).dtype)


def erfinv(u):
    """The inverse error function by Newton's method on math.erf (for nn.init.trunc_normal_)."""
    import math
    u = np.asarray(u, dtype=np.float64)
    x = np.zeros_like(u)
    # Giles' single-precision approximation as a start, then two Newton steps in double
    w = -np.log((1.0 - u) * (1.0 + u))
    small = w < 5.0
    ws = w - 2.5
    wl = np.sqrt(np.maximum(w, 0)) - 3.0
    ps = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
              -0.00417768164, 0.246640727, 1.50140941):
        ps = c + ps * ws
    pl = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        pl = c + pl * wl
    x = np.where(small, ps, pl) * u
    erf_v = np.vectorize(math.erf, otypes=[np.float64])
    for _ in range(2):
        x = x - (erf_v(x) - u) / (2 / np.sqrt(np.pi) * np.exp(-x * x))
    return x


def _fma_exact(a, b, c, ct):
    """a * b + c rounded once to the float type ct (exact rational arithmetic, then the nearest
    of the candidate and its two neighbours; ties to the even one)."""
    from fractions import Fraction
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    f = ct(float(exact))
    cands = [np.nextafter(f, ct(-np.inf)), f, np.nextafter(f, ct(np.inf))]
    err = [abs(Fraction(float(v)) - exact) for v in cands]
    best = min(err)
    ties = [v for v, d in zip(cands, err) if d == best]
    even = [v for v in ties if int(np.array(v).view(np.int32 if ct is np.float32
                                                    else np.int64)) % 2 == 0]
    return (even or ties)[0]


def linspace(n, start, end, dtype):
    """fo_linspace_{f32,f64,i64}: torch's symmetric fused formula, element by element.  step =
    (end - start) / (n - 1) in the target type (double for integers); below n // 2 an element
    is fma(step, i, start), from there fma(-step, n - 1 - i, end), rounded once to the type
    (integers: the double truncated toward zero)."""
    dtype = np.dtype(dtype)
    ct = dtype.type if dtype.kind == "f" else np.float64
    s, e = dtype.type(start), dtype.type(end)
    out = np.empty(n, dtype=dtype)
    if n == 1:
        out[0] = s
    if n <= 1:
        return out
    step = ct((ct(e) - ct(s)) / ct(n - 1))
    for i in range(n):
        if i < n // 2:
            v = _fma_exact(step, i, s, ct)
        else:
            v = _fma_exact(-step, n - 1 - i, e, ct)
        out[i] = v if dtype.kind == "f" else int(v)
    return out
