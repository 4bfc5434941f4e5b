# cython: language_level=3, boundscheck=False, wraparound=False
"""L-BFGS's compiled vector op: ``axpy(alpha, x, y)``, ``y += alpha * x`` with one rounding.

Why it exists: ``fastoptim.optim.LBFGS`` runs torch's algorithm over flat numpy vectors; dots are
BLAS (``numpy.dot``), but numpy has no fused multiply-add, and torch's ``add_(x, alpha=a)`` is
one (ATen's vectorised fmadd). This module is the checked entry point of
``fo_lbfgs_axpy_f32/_f64`` (csrc/optim_lbfgs.c): same dtype, contiguous, equal sizes, no
overlap, then one call without the GIL.
"""
import numpy as np

from fastoptim._C.kernels cimport fo_lbfgs_axpy_f32, fo_lbfgs_axpy_f64


def axpy(double alpha, x, y):
    """``y += alpha * x`` in place (fused: ``fma(x, alpha, y)`` per element); returns ``y``.

    ``x`` and ``y``: C-contiguous float32 or float64 numpy arrays of the same dtype and size,
    not sharing memory; ``y`` writeable.
    """
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(f"axpy: x and y must be numpy arrays, got {type(x).__name__} and "
                        f"{type(y).__name__}")
    if x.dtype != y.dtype or x.dtype not in (np.float32, np.float64) or not x.dtype.isnative:
        raise TypeError(f"axpy: x and y must both be float32 or float64, got {x.dtype} and "
                        f"{y.dtype}")
    if x.size != y.size:
        raise ValueError(f"axpy: x has {x.size} elements but y has {y.size}")
    if not (x.flags.c_contiguous and y.flags.c_contiguous):
        raise ValueError("axpy: x and y must be C-contiguous")
    if not y.flags.writeable:
        raise ValueError("axpy: y is read-only")
    if np.may_share_memory(x, y):
        raise ValueError("axpy: x and y may share memory")
    cdef const float[::1] xf
    cdef float[::1] yf
    cdef const double[::1] xd
    cdef double[::1] yd
    cdef Py_ssize_t n = x.size
    if n == 0:
        return y
    if x.dtype == np.float32:
        xf = x.reshape(-1)
        yf = y.reshape(-1)
        with nogil:
            fo_lbfgs_axpy_f32(n, alpha, &xf[0], &yf[0])
    else:
        xd = x.reshape(-1)
        yd = y.reshape(-1)
        with nogil:
            fo_lbfgs_axpy_f64(n, alpha, &xd[0], &yd[0])
    return y
