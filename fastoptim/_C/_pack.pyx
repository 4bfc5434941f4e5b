# cython: language_level=3, boundscheck=False, wraparound=False
"""The checked entry point of the data-parallel gradient buckets' C kernels
(``fo_pack_pieces``, ``fo_unpack_pieces_f32/_f64`` in csrc/dist_pack.c).

Why it exists: ``fastoptim.distributed.DistributedOptimizer`` lays every grad of one dtype end to
end in a flat buffer cut into buckets, and per step packs each bucket before its all-reduce and
unpacks it after. Done piece by piece with numpy, that cost ~4 us per tensor, several times the
reduction of a model of many small tensors. A ``Pieces`` is one bucket's layout, made once per
plan (C array of ``fo_piece``); ``pack`` and ``unpack`` are then one C call per bucket, after a
check of each piece's array (type, dtype, contiguity, size, writeability) at C speed.

The NumPy twins (``pack_numpy``, ``unpack_numpy``) are the same operations piece by piece with
numpy; they serve the dtypes the kernels do not (float16 ...) and are the tests' oracle.
"""
cimport numpy as cnp
import numpy as np
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t

from fastoptim._C.kernels cimport (
    fo_pack_pieces, fo_piece, fo_unpack_pieces_f32, fo_unpack_pieces_f64,
)

cnp.import_array()

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


cdef class Pieces:
    """One bucket: ``buffer`` (a C-contiguous 1-D float32/float64 array) and its pieces,
    ``(tensor, lo, hi)`` each: ``buffer[o:o + hi - lo] <-> flat array[tensor][lo:hi]``, the
    pieces laid end to end from the buffer's start (``o`` the running sum of their lengths).
    """
    cdef fo_piece *pieces
    cdef Py_ssize_t *tensors
    cdef void **ptrs
    cdef readonly Py_ssize_t npieces
    cdef readonly object buffer
    cdef int typenum

    def __cinit__(self, buffer, pieces):
        if not isinstance(buffer, np.ndarray):
            raise TypeError(f"Pieces: buffer must be a numpy.ndarray, got {type(buffer).__name__}")
        if buffer.dtype not in KERNEL_DTYPES or not buffer.dtype.isnative or buffer.ndim != 1 or \
                not buffer.flags.c_contiguous or not buffer.flags.writeable:
            raise ValueError(f"Pieces: buffer must be a writeable C-contiguous 1-D float32 or "
                             f"float64 array, got {buffer.dtype} of shape {buffer.shape}")
        pieces = list(pieces)
        cdef Py_ssize_t n = len(pieces), k
        self.pieces = <fo_piece *>PyMem_Malloc(max(n, 1) * sizeof(fo_piece))
        self.tensors = <Py_ssize_t *>PyMem_Malloc(max(n, 1) * sizeof(Py_ssize_t))
        self.ptrs = <void **>PyMem_Malloc(max(n, 1) * sizeof(void *))
        if self.pieces == NULL or self.tensors == NULL or self.ptrs == NULL:
            raise MemoryError()
        cdef int64_t offset = 0
        for k in range(n):
            tensor, lo, hi = pieces[k]
            if tensor < 0 or lo < 0 or hi < lo:
                raise ValueError(f"Pieces: piece {k} is (tensor={tensor}, lo={lo}, hi={hi}); "
                                 "expected tensor >= 0 and 0 <= lo <= hi")
            self.tensors[k] = tensor
            self.pieces[k].lo = lo
            self.pieces[k].n = hi - lo
            self.pieces[k].offset = offset
            offset += hi - lo
        if offset > buffer.size:
            raise ValueError(f"Pieces: the pieces hold {offset} elements but the buffer has "
                             f"{buffer.size}")
        self.npieces = n
        self.buffer = buffer
        self.typenum = cnp.PyArray_TYPE(<cnp.ndarray>buffer)

    def __dealloc__(self):
        PyMem_Free(self.pieces)
        PyMem_Free(self.tensors)
        PyMem_Free(self.ptrs)

    cdef int _gather(self, list arrays, bint write, bint none_ok) except -1:
        """``self.ptrs[k]``: the data of piece k's array, each checked (NULL for None)."""
        cdef Py_ssize_t k, t, count = len(arrays)
        cdef object a
        cdef cnp.ndarray arr
        for k in range(self.npieces):
            t = self.tensors[k]
            if t >= count:
                raise IndexError(f"piece {k} is of array {t}, but {count} arrays were given")
            a = arrays[t]
            if a is None:
                if not none_ok:
                    raise ValueError(f"arrays[{t}] is None: unpack needs an array for every "
                                     "piece")
                self.ptrs[k] = NULL
                continue
            if not isinstance(a, np.ndarray):
                raise TypeError(f"arrays[{t}] must be a numpy.ndarray or None, got "
                                f"{type(a).__name__}")
            arr = <cnp.ndarray>a
            if cnp.PyArray_TYPE(arr) != self.typenum or not cnp.PyArray_ISCARRAY_RO(arr) or \
                    not cnp.PyArray_ISNOTSWAPPED(arr):
                raise ValueError(f"arrays[{t}] must be a C-contiguous, aligned, native "
                                 f"{self.buffer.dtype} array, got {a.dtype} "
                                 f"(contiguous={a.flags.c_contiguous})")
            if write and not cnp.PyArray_ISWRITEABLE(arr):
                raise ValueError(f"arrays[{t}] is read-only")
            if self.pieces[k].lo + self.pieces[k].n > cnp.PyArray_SIZE(arr):
                raise ValueError(f"arrays[{t}] has {cnp.PyArray_SIZE(arr)} elements; piece {k} "
                                 f"needs elements {self.pieces[k].lo} to "
                                 f"{self.pieces[k].lo + self.pieces[k].n}")
            self.ptrs[k] = cnp.PyArray_DATA(arr)
        return 0

    def pack(self, list srcs):
        """Copy each piece of ``srcs[tensor]`` (flat, C-contiguous, the buffer's dtype; None:
        zeros) into the buffer. Every array is checked before anything is written."""
        self._gather(srcs, False, True)
        cdef cnp.ndarray buf = <cnp.ndarray>self.buffer
        with nogil:
            fo_pack_pieces(cnp.PyArray_DATA(buf), cnp.PyArray_ITEMSIZE(buf), self.pieces,
                           <const void *const *>self.ptrs, self.npieces)

    def unpack(self, list dsts, divisor):
        """Write each piece of the buffer, divided by ``divisor`` (an int >= 1: the number of
        ranks for an average, 1 for a sum, which copies), into ``dsts[tensor]``. Every array is
        checked before anything is written."""
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
            raise ValueError(f"unpack: divisor must be an int >= 1, got {divisor!r}")
        self._gather(dsts, True, False)
        cdef cnp.ndarray buf = <cnp.ndarray>self.buffer
        cdef float d32 = <float>divisor
        cdef double d64 = <double>divisor
        if self.typenum == cnp.NPY_FLOAT32:
            with nogil:
                fo_unpack_pieces_f32(<const float *>cnp.PyArray_DATA(buf), self.pieces,
                                     <float *const *>self.ptrs, self.npieces, d32)
        else:
            with nogil:
                fo_unpack_pieces_f64(<const double *>cnp.PyArray_DATA(buf), self.pieces,
                                     <double *const *>self.ptrs, self.npieces, d64)


def pack_numpy(buffer, pieces, srcs):
    """The twin of ``Pieces(buffer, pieces).pack(srcs)``, piece by piece with numpy (any dtype)."""
    offset = 0
    for tensor, lo, hi in pieces:
        part = buffer[offset:offset + hi - lo]
        if srcs[tensor] is None:
            part.fill(0)
        else:
            np.copyto(part, srcs[tensor][lo:hi])
        offset += hi - lo


def unpack_numpy(buffer, pieces, dsts, divisor):
    """The twin of ``Pieces(buffer, pieces).unpack(dsts, divisor)``: numpy's
    ``np.divide(part, divisor, out=...)`` per piece (a copy for a divisor of 1)."""
    offset = 0
    for tensor, lo, hi in pieces:
        part = buffer[offset:offset + hi - lo]
        if divisor == 1:
            np.copyto(dsts[tensor][lo:hi], part)
        else:
            np.divide(part, divisor, out=dsts[tensor][lo:hi])
        offset += hi - lo
