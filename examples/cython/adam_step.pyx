# cython: language_level=3, boundscheck=False, wraparound=False
"""A Cython extension that calls fastoptim's kernels directly, built against the installed
package (see setup.py beside it): the kernels' declarations come from ``fastoptim.kernels``
(fastoptim/kernels.pxd, the mirror of fastoptim.h), the code from libfastoptim.

``adam_step`` updates one float32 parameter and its Adam state in place, as one element of a
param group; ``sgd_calls`` calls the SGD kernel ``n`` times on a one-element array, so that
``time(sgd_calls(n)) / n`` is the cost of one call from Cython into the library.
"""
from libc.stdint cimport int64_t

from fastoptim.kernels cimport fo_abi_version, fo_adam_step_f32, fo_sgd_step_f32


def abi_version():
    return fo_abi_version()


def adam_step(float[::1] param, const float[::1] grad, float[::1] exp_avg,
              float[::1] exp_avg_sq, float[::1] step, double lr=1e-3, double beta1=0.9,
              double beta2=0.999, double eps=1e-8, double weight_decay=0.0):
    """One Adam step (torch.optim.Adam's math) on one parameter, in place."""
    n = param.shape[0]
    if not (grad.shape[0] == exp_avg.shape[0] == exp_avg_sq.shape[0] == n
            and step.shape[0] == 1):
        raise ValueError("param, grad, exp_avg and exp_avg_sq must have equal sizes, step one")
    cdef float *p = &param[0] if n else NULL
    cdef const float *g = &grad[0] if n else NULL
    cdef float *m = &exp_avg[0] if n else NULL
    cdef float *v = &exp_avg_sq[0] if n else NULL
    cdef float *t = &step[0]
    cdef int64_t numel = n
    with nogil:
        fo_adam_step_f32(&p, &g, &m, &v, NULL, &t, &numel, 1, lr, beta1, beta2, eps,
                         weight_decay, 0, 0, 0)


def sgd_calls(float[::1] param, const float[::1] grad, Py_ssize_t n):
    """Call fo_sgd_step_f32 (plain SGD, lr 1e-3) n times on param[0:1] (for timing)."""
    cdef float *p = &param[0]
    cdef const float *g = &grad[0]
    cdef int64_t numel = 1
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            fo_sgd_step_f32(&p, &g, NULL, NULL, &numel, 1, 1e-3, 0.0, 0.0, 0.0, 0, 0)
