# cython: language_level=3
"""C-level layout of fastoptim's Tensor, so that other Cython modules (the optimizer glue,
user extensions) can read a tensor's array and gradient without Python attribute lookups.

A Tensor's numpy array ``_np`` is private to fastoptim: ``numpy()``, ``__array__`` and
``from_numpy`` hand out or take in views of it, never the object itself, so nobody outside can
reshape, retype or re-flag it in place (numpy allows all three on an array object).  That makes
its facts fixed for as long as it is bound, and ``_data`` ... ``_flags`` keep a copy of them next
to the object header: the optimizer glue validates a tensor from this one cache line instead of
chasing the array object and its separately allocated shape (a cold miss each, per tensor, per
step).  ``_np`` is only ever rebound through ``_tensor._bind``, which refreshes them.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t


cdef class Tensor:
    cdef readonly cnp.ndarray _np      # storage (a numpy array; views share it)
    cdef Tensor _grad                  # .grad (a leaf's accumulated gradient) or None
    # facts about _np, set by _bind (never bound: all zero, which no check accepts)
    cdef void *_data                   # PyArray_DATA
    cdef int64_t _numel                # PyArray_SIZE
    cdef int _tnum                     # PyArray_TYPE, or -1 when the byte order is not native
    cdef int _flags                    # PyArray_FLAGS
    cdef int _ndim                     # PyArray_NDIM
    cdef bint _requires_grad
    cdef bint _retains_grad
    # graph node (_tensor_ops.pxi): what made this tensor (its row of the op table, N_LEAF for
    # leaves), its inputs and saved values
    cdef int _op
    cdef int _sub                      # op variant (binary/unary operator, reduction, ...)
    cdef tuple _ins                    # the op's inputs in order; None: needs no gradient
    cdef object _saved
    cdef double _p0
    cdef double _p1
    cdef int _freed                    # 1: saved values dropped after backward
    # backward bookkeeping
    cdef int _mark                     # generation mark of the topological sort
    cdef object _gacc                  # pending gradient during backward
    cdef bint _gown                    # _gacc is ours to modify in place
    cdef list _hooks                   # register_hook's functions, or None (the usual case)
    cdef dict __dict__
    cdef object __weakref__

    cdef _set_requires_grad(self, value)
    cdef _set_grad(self, object value)
    cdef str _node_name(self)
    cdef _check_inplace(self)


# a new leaf Tensor whose storage is ``arr`` (which it takes: pass an array nobody else holds),
# for the other modules' Cython (the torch glue's grad views: _optim.TorchSteady)
cdef Tensor _adopt(cnp.ndarray arr)
