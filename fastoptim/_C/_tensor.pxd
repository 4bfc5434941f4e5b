# cython: language_level=3
"""C-level layout of fastoptim's Tensor, so that other Cython modules (the optimizer glue,
user extensions) can read a tensor's array and gradient without Python attribute lookups."""
cimport numpy as cnp


cdef class Tensor:
    cdef readonly cnp.ndarray _np      # storage (a numpy array; views share it)
    cdef Tensor _grad                  # .grad (a leaf's accumulated gradient) or None
    cdef bint _requires_grad
    cdef bint _retains_grad
    # graph node: what made this tensor (N_LEAF for leaves), its inputs and saved values
    cdef int _op
    cdef int _sub                      # op variant (binary/unary operator, reduction, ...)
    cdef Tensor _in0
    cdef Tensor _in1
    cdef object _saved
    cdef double _p0
    cdef double _p1
    cdef int _freed                    # 1: saved values dropped after backward
    # backward bookkeeping
    cdef int _mark                     # generation mark of the topological sort
    cdef object _gacc                  # pending gradient during backward
    cdef bint _gown                    # _gacc is ours to modify in place
    cdef dict __dict__
    cdef object __weakref__

    cdef _set_requires_grad(self, value)
    cdef _set_grad(self, object value)
    cdef str _node_name(self)
    cdef _check_inplace(self)
