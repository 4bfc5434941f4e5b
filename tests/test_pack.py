"""The data-parallel buckets' C pack/unpack (``fastoptim._C._pack``) against their NumPy twins.

No MPI: a bucket is a flat buffer and its pieces; ``DistributedOptimizer`` (tests/mpi/) packs
grads into it before the all-reduce and unpacks the reduced buffer after. Here the kernels and
the twins run on the same pieces over dtypes, sizes (0, 1, odd, large), pieces that split a
tensor across buckets, missing sources (zeros), divisors (sum: 1, average: N), and bad input.
"""

import numpy as np
import pytest

from fastoptim._C._pack import Pieces, pack_numpy, unpack_numpy
from fastoptim._sharding import bucket_pieces

DTYPES = [np.float32, np.float64]


CASES = [([0], 4), ([1], 4), ([7], 3), ([5, 0, 3, 1], 4), ([1000] * 3, 333),
         ([1 << 20, 17], 1 << 18), ([3, 5, 7, 11], 1000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes,chunk", CASES)
@pytest.mark.parametrize("divisor", [1, 2, 3])
def test_pack_unpack_match_twins(dtype, sizes, chunk, divisor):
    rng = np.random.default_rng(len(sizes) * 31 + chunk)
    srcs = [rng.standard_normal(n).astype(dtype) for n in sizes]
    if len(srcs) > 1:
        srcs[1] = None                       # no grad on this rank: packs as zeros
    total = sum(sizes)
    flat_c = np.full(total, np.nan, dtype)
    flat_t = np.full(total, np.nan, dtype)
    for start, stop, pieces in bucket_pieces(sizes, chunk):
        Pieces(flat_c[start:stop], pieces).pack(srcs)
        pack_numpy(flat_t[start:stop], pieces, srcs)
    np.testing.assert_array_equal(flat_c, flat_t)
    expect = np.concatenate([np.zeros(n, dtype) if s is None else s
                             for s, n in zip(srcs, sizes)]) if sizes else flat_t
    np.testing.assert_array_equal(flat_c, expect)
    # the "reduced" buffer, unpacked into every tensor
    reduced = (rng.standard_normal(total) * 7).astype(dtype)
    dst_c = [np.full(n, np.nan, dtype) for n in sizes]
    dst_t = [np.full(n, np.nan, dtype) for n in sizes]
    for start, stop, pieces in bucket_pieces(sizes, chunk):
        Pieces(reduced[start:stop].copy(), pieces).unpack(dst_c, divisor)
        unpack_numpy(reduced[start:stop], pieces, dst_t, divisor)
    for c, t in zip(dst_c, dst_t):
        np.testing.assert_array_equal(c, t)         # bit for bit: one division each
        assert c.dtype == dtype
    got = np.concatenate(dst_c) if sizes else reduced
    np.testing.assert_array_equal(got, reduced / dtype(divisor))


def test_sum_copies_bits():
    """A divisor of 1 copies, keeping -0.0, inf and the NaN payload."""
    buf = np.array([-0.0, np.inf, -np.inf, np.nan, 1e-45], np.float32)
    buf.view(np.uint32)[3] = 0x7FC00123
    dst = [np.zeros(5, np.float32)]
    Pieces(buf, [(0, 0, 5)]).unpack(dst, 1)
    np.testing.assert_array_equal(dst[0].view(np.uint32), buf.view(np.uint32))


def test_multidimensional_contiguous_arrays():
    src = np.arange(12, dtype=np.float64).reshape(3, 4)
    buf = np.zeros(12)
    Pieces(buf, [(0, 0, 12)]).pack([src])
    np.testing.assert_array_equal(buf, src.reshape(-1))
    dst = np.zeros((3, 4))
    Pieces(buf, [(0, 0, 12)]).unpack([dst], 4)
    np.testing.assert_array_equal(dst, src / 4)


def test_bad_buffers_and_pieces_raise():
    with pytest.raises(TypeError, match="buffer must be a numpy.ndarray"):
        Pieces([0.0], [])
    with pytest.raises(ValueError, match="float32 or float64"):
        Pieces(np.zeros(4, np.float16), [])
    with pytest.raises(ValueError, match="C-contiguous"):
        Pieces(np.zeros(8)[::2], [])
    with pytest.raises(ValueError, match="buffer has 4"):
        Pieces(np.zeros(4), [(0, 0, 5)])
    with pytest.raises(ValueError, match="lo=3, hi=2"):
        Pieces(np.zeros(4), [(0, 3, 2)])


def test_bad_arrays_raise_before_any_write():
    buf = np.full(6, 5.0, np.float32)
    pc = Pieces(buf, [(0, 0, 3), (1, 0, 3)])
    good = np.ones(3, np.float32)
    for bad, exc, msg in [
        (np.ones(3, np.float64), ValueError, "float32"),
        (np.ones(6, np.float32)[::2], ValueError, "contiguous"),
        (np.ones(2, np.float32), ValueError, "has 2 elements"),
        ([1.0, 2.0, 3.0], TypeError, "numpy.ndarray or None"),
        (np.ones(3, ">f4"), ValueError, "native"),
    ]:
        with pytest.raises(exc, match=msg):
            pc.pack([good, bad])
        np.testing.assert_array_equal(buf, 5.0)     # nothing packed, not even piece 0
        dst0 = np.zeros(3, np.float32)
        with pytest.raises(exc, match=msg):
            pc.unpack([dst0, bad], 2)
        np.testing.assert_array_equal(dst0, 0.0)    # nothing unpacked
    with pytest.raises(IndexError, match="2 arrays"):
        Pieces(buf, [(0, 0, 3), (2, 0, 3)]).pack([good, good])
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pc.unpack([good, ro], 2)
    with pytest.raises(ValueError, match="needs an array for every piece"):
        pc.unpack([good, None], 2)
    for d in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="divisor must be an int >= 1"):
            pc.unpack([good, good], d)
