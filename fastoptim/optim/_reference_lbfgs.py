"""The NumPy twins of LBFGS's compiled vector work (``fastoptim._C._lbfgs``), written plainly.

Each function has the signature of its kernel's entry point and computes the same thing the
obvious way, one torch op per line (``q = q - a_i y_i`` as a new array, where the kernel fuses
it with the next dot and writes in place), for the tests to hold the two against each other and
as the documentation of what the compiled path computes.  Dots sum in float64 and round to the
dtype, as the kernels' do (their summation order differs: fixed lanes, not BLAS's).
"""

import numpy as np


def _dot(a, b):
    """``a.b`` summed in float64, rounded to ``a``'s dtype (a numpy scalar of it)."""
    return a.dtype.type(np.dot(a.astype(np.float64), b.astype(np.float64)))


def _absmax(v):
    """torch's ``v.abs().max()`` as a float (NaN if ``v`` holds one), 0.0 for no elements."""
    return float(np.abs(v).max()) if v.size else 0.0


def gather(grads, numels, flat):
    """``flat = concat(grads)`` (zeros where a grad is None); returns ``max|flat|``."""
    parts = [np.zeros(n, flat.dtype) if g is None else np.asarray(g).reshape(-1)
             for g, n in zip(grads, numels, strict=True)]
    flat[...] = np.concatenate(parts) if parts else np.zeros(0, flat.dtype)
    return _absmax(flat)


def pair(g, prev, d, t, y, s):
    """``y = g - prev``, ``s = d * t``; returns ``(y.s, y.y)``."""
    y[...] = g - prev
    s[...] = d * g.dtype.type(t)
    return float(_dot(y, s)), float(_dot(y, y))


def gather_pair(grads, numels, flat, prev, d, t, y, s, q):
    """``gather``, then ``pair`` and, if ``q`` is not None, ``q = -flat`` with ``s.q`` (in
    float64, not rounded); returns ``(max|flat|, y.s, y.y, s.q)`` (``s.q`` 0.0 without ``q``)."""
    gmax = gather(grads, numels, flat)
    ys, yy = pair(flat, prev, d, t, y, s)
    sq = 0.0
    if q is not None:
        q[...] = -flat
        sq = float(np.dot(s.astype(np.float64), q.astype(np.float64)))
    return gmax, ys, yy, sq


def direction(g, dirs, stps, ro, h_diag, d, al, sq=None):
    """The two-loop recursion as torch writes it (``d = -H g``); returns ``g.d``.  ``sq`` (the
    kernel's shortcut: ``d`` already ``-g``, ``s.q`` known) changes nothing here: the twin
    starts from ``-g`` every time."""
    T = g.dtype.type
    num_old = len(dirs)
    ro = [T(r) for r in ro]
    q = -g
    for i in range(num_old - 1, -1, -1):
        al[i] = _dot(stps[i], q) * ro[i]
        q = axpy(-al[i], dirs[i], q)
    r = q * T(h_diag)
    for i in range(num_old):
        be_i = _dot(dirs[i], r) * ro[i]
        r = axpy(T(al[i]) - be_i, stps[i], r)
    d[...] = r
    return float(_dot(g, d))


def add_grad(params, d, t):
    """``params[i] += t * d[segment i]``; returns ``max|d * t|``."""
    offset = 0
    for p in params:
        n = p.size
        p[...] = axpy(t, d[offset:offset + n].reshape(p.shape), p)
        offset += n
    return _absmax(d * d.dtype.type(t))


def axpy(alpha, x, y):
    """``y + alpha * x`` (a new array).  The kernel rounds once (fma); here float32 goes
    through float64 (the product is exact there, so only the rare double rounding differs) and
    float64 rounds twice: within an ulp of the kernel either way."""
    a = np.asarray(alpha, dtype=y.dtype)
    if y.dtype == np.float32:
        return (y.astype(np.float64) + a.astype(np.float64) * x.astype(np.float64)).astype(
            np.float32)
    return y + a * x
