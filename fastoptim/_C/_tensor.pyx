# cython: language_level=3, wraparound=True
"""The Tensor, its autograd graph, and every op's forward and backward on the C kernels.

Why it is one Cython extension: the tiny-model training loop (``nn.Linear(10, 1)`` + MSE) spends
its time in Python overhead, not arithmetic, so Tensor creation, op dispatch, graph recording
and the backward walk all run at C level, with C calls between them (cdef functions, C-level
attribute access); splitting it into several extensions would turn those into Python-level
imports and calls.  So the code is split by area into ``include``d files, one extension:

================================  ===========================================================
``_tensor_dtypes.pxi``            dtypes, Size, numpy C-API helpers, ``_kern`` (dtype dispatch)
``_tensor_ops.pxi``               the op table: node kinds, ``_register``, ``_record``, and
                                  "How to add an op"
``_tensor_autograd.pxi``          grad mode, grad_fn objects, the backward engine (backward,
                                  autograd.grad, hooks)
``_tensor_function.pxi``          autograd.Function's nodes
``_tensor_class.pxi``             the Tensor class (properties, conversions, thin methods)
``_tensor_creation.pxi``          the random generator and the creation functions
``_tensor_elementwise.pxi``       unary/binary/scalar ops, casts, comparisons, in-place updates
``_tensor_reduce.pxi``            sum/mean/max/min, and over dims: prod, var/std, norm,
                                  logsumexp, cumsum, max/min with indices, argmax, any/all
``_tensor_linalg.pxi``            matmul (batched too), bmm and the fused linear layer
``_tensor_views.pxi``             reshape/view/permute/expand/narrow/split, cat/stack,
                                  gather/index_select, indexing and index assignment
``_tensor_nn.pxi``                the fused MSE loss, Parameter construction, nn.Module's base
``_tensor_loss.pxi``              the fused losses (cross-entropy, NLL, BCE, L1, ...), softmax
``_tensor_nnops.pxi``             activations (GELU, ELU, ...), Generator, randperm
``_tensor_print.pxi``             repr
``_tensor_dlpack.pxi``            DLPack export/import, foreign (torch) tensors in and out
``_tensor_unsupported.pxi``       torch's Tensor names we lack, each raising "not supported"
================================  ===========================================================

Design (in the spirit of micrograd's engine, but in Cython):

* Storage is a numpy array (``Tensor._np``): zero-copy ``from_numpy``/``numpy()``, views that
  share storage exactly as torch's do (``reshape``, ``t()``, basic indexing, ``.data``), and BLAS
  through ``numpy.matmul`` for products large enough to pay for it.  Arrays are created with the
  numpy C API, never through Python-level numpy calls on the hot path.  The array object is
  private (``from_numpy``/``numpy()`` wrap and hand out views of the memory), is bound only by
  ``_bind``, and its facts are cached in the Tensor: see ``_tensor.pxd``.
* The graph node lives in the output Tensor itself: ``_op`` (its row of the op table),
  ``_ins`` (its inputs, as many as the op has), ``_saved`` and two scalar parameters.  An op's
  forward, backward and what it saves sit together in its area file; ``grad_fn`` builds a small
  descriptive object only when asked for.
* Float32 and float64 run on the C kernels through one table of function pointers per dtype
  (``_kern(x)``, csrc/tensor_dispatch.c); int64/bool tensors exist for data and indexing and
  compute through numpy (they never require grad).
"""
import warnings

import numpy as np

cimport cython
cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t, uintptr_t
from libc.math cimport INFINITY, NAN, pow as c_pow
from cpython.tuple cimport (PyTuple_CheckExact, PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New,
                            PyTuple_SET_ITEM)
from cpython.long cimport PyLong_FromSsize_t
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.string cimport memcpy, memmove
from libc.stdlib cimport free, malloc
from cpython.list cimport PyList_New, PyList_SET_ITEM

from fastoptim._C.kernels cimport *

cnp.import_array()

include "_tensor_dtypes.pxi"
include "_tensor_ops.pxi"
include "_tensor_autograd.pxi"
include "_tensor_function.pxi"
include "_tensor_class.pxi"
include "_tensor_dlpack.pxi"
include "_tensor_creation.pxi"
include "_tensor_elementwise.pxi"
include "_tensor_reduce.pxi"
include "_tensor_linalg.pxi"
include "_tensor_views.pxi"
include "_tensor_nn.pxi"
include "_tensor_loss.pxi"
include "_tensor_nnops.pxi"
include "_tensor_print.pxi"
include "_tensor_unsupported.pxi"
