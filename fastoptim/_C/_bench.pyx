# cython: language_level=3, boundscheck=False, wraparound=False
"""Benchmark yardsticks: the Python entry point of csrc/bench_roofline.c (bench_roofline.h).

Why it exists: the benchmark suite (benchmarks/) expresses each large optimizer step as a fraction
of the memory roofline, measured in the same run by a trivial kernel that touches the same arrays.
This module is its careful caller: the kernel trusts its pointers, so the lists are checked here
(dtype, contiguity, sizes, and that no two arrays share memory) before one call without the
GIL.  Not part of the public
API; nothing in the library uses it.
"""
cimport numpy as cnp
import numpy as np
from libc.stdint cimport int64_t, uintptr_t


cdef extern from "bench_roofline.h" nogil:
    void fo_roofline_f32(int nread, const float *const *reads, int nwrite,
                         float *const *writes, int64_t n, int baseline)
    void fo_roofline_f64(int nread, const double *const *reads, int nwrite,
                         double *const *writes, int64_t n, int baseline)
    const char *fo_roofline_simd()

cnp.import_array()

cdef enum:
    # more than any optimizer touches (Adam with amsgrad: 5 read, 4 written)
    MAX_ARRAYS = 8


cdef void *_checked(object x, str name, object dtype, Py_ssize_t n, bint write) except NULL:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"roofline: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != dtype or not x.dtype.isnative:
        raise TypeError(f"roofline: {name} has dtype {x.dtype}; expected {dtype}")
    if x.size != n:
        raise ValueError(f"roofline: {name} has {x.size} elements; expected {n}")
    if not x.flags.c_contiguous or not x.flags.aligned:
        raise ValueError(f"roofline: {name} must be C-contiguous and aligned")
    if write and not x.flags.writeable:
        raise ValueError(f"roofline: {name} is read-only")
    return cnp.PyArray_DATA(<cnp.ndarray>x)


def roofline_simd():
    """The instruction set ``roofline`` runs on: ``"avx2"`` when this CPU has it (whatever
    FASTOPTIM_SIMD says: the machine's limit does not depend on which optimizer loops run), else
    ``"baseline"`` (csrc/bench_roofline.c says why)."""
    return fo_roofline_simd().decode()


def roofline(reads, writes, *, bint baseline=False):
    """One pass over arrays of n elements: every ``w`` in ``writes`` becomes the element-wise mean
    of all the arrays (``reads`` and ``writes``), in place.

    ``reads`` (only read, like a grad) and ``writes`` (read and written, like a param or an
    optimizer state) are lists of 1 to 8 C-contiguous float32 or float64 arrays of one dtype and
    one size, no two sharing memory.  Runs on the OpenMP threads set by
    ``fastoptim._C._optim._set_num_threads``, with the widest instructions this CPU has
    (``roofline_simd()``), or the build's baseline ones if ``baseline`` (for comparison: the
    values are the same).
    """
    cdef void *ptrs[2 * MAX_ARRAYS]
    cdef int nr = len(reads), nw = len(writes), k, j
    cdef Py_ssize_t n
    cdef int64_t n64
    cdef uintptr_t nbytes
    if not 1 <= nr <= MAX_ARRAYS or not 1 <= nw <= MAX_ARRAYS:
        raise ValueError(f"roofline: expected 1 to {MAX_ARRAYS} reads and writes, got {nr} and "
                         f"{nw}")
    first = reads[0]
    if not isinstance(first, np.ndarray) or first.dtype not in (np.float32, np.float64):
        raise TypeError("roofline: reads[0] must be a float32 or float64 numpy array")
    dtype, n = first.dtype, first.size
    for k in range(nr + nw):
        name = f"reads[{k}]" if k < nr else f"writes[{k - nr}]"
        ptrs[k] = _checked(reads[k] if k < nr else writes[k - nr], name, dtype, n, k >= nr)
    nbytes = <uintptr_t>(n * dtype.itemsize)
    for k in range(nr + nw):
        for j in range(k):
            if (nbytes > 0 and <uintptr_t>ptrs[k] < <uintptr_t>ptrs[j] + nbytes
                    and <uintptr_t>ptrs[j] < <uintptr_t>ptrs[k] + nbytes):
                raise ValueError("roofline: two arrays share memory; every array needs its own")
    n64 = n
    if dtype == np.float32:
        with nogil:
            fo_roofline_f32(nr, <const float *const *>ptrs, nw, <float *const *>(ptrs + nr), n64,
                            baseline)
    else:
        with nogil:
            fo_roofline_f64(nr, <const double *const *>ptrs, nw, <double *const *>(ptrs + nr),
                            n64, baseline)
