/* dist_pack.c -- the gradient buckets of data-parallel training (fastoptim/distributed):
 * packing pieces of many tensors into one flat buffer before its all-reduce, and unpacking the
 * reduced buffer back, divided by the number of ranks for an average.
 *
 * Why C: a model of many small tensors packs and unpacks a piece per tensor per step; one
 * numpy call per piece costs ~1.3 us (pack) and ~2.7 us (unpack: a division), which over 1000
 * tensors is several times the reduction itself (README, "Data-parallel training"). Here a
 * bucket is one call: a memcpy per piece, and a loop per piece that divides.
 *
 * The division is one IEEE division per element by the divisor in the buffer's type, which is
 * what numpy's np.divide(part, n, out=dst) computes for a float32/float64 array and an integer
 * n (NumPy twin: fastoptim/distributed/optimizer.py's _pack_numpy/_unpack_numpy).  A divisor of
 * 1 copies the bits (op="sum"). */
#include <string.h>
#include "fastoptim.h"

void fo_pack_pieces(void *buffer, int64_t itemsize, const fo_piece *pieces,
                    const void *const *srcs, int64_t npieces)
{
    char *buf = (char *)buffer;
    for (int64_t k = 0; k < npieces; ++k) {
        const fo_piece *pc = &pieces[k];
        char *to = buf + pc->offset * itemsize;
        size_t bytes = (size_t)(pc->n * itemsize);
        if (srcs[k] == NULL)
            memset(to, 0, bytes);
        else if (bytes)
            memcpy(to, (const char *)srcs[k] + pc->lo * itemsize, bytes);
    }
}

#define FO_UNPACK(SUFFIX, T)                                                                   \
    void fo_unpack_pieces_##SUFFIX(const T *buffer, const fo_piece *pieces, T *const *dsts,   \
                                   int64_t npieces, T divisor)                                 \
    {                                                                                          \
        for (int64_t k = 0; k < npieces; ++k) {                                                \
            const fo_piece *pc = &pieces[k];                                                   \
            const T *from = buffer + pc->offset;                                               \
            T *to = dsts[k] + pc->lo;                                                          \
            if (divisor == (T)1) {                                                             \
                if (pc->n)                                                                     \
                    memcpy(to, from, (size_t)pc->n * sizeof(T));                               \
                continue;                                                                      \
            }                                                                                  \
            for (int64_t j = 0; j < pc->n; ++j)                                                \
                to[j] = from[j] / divisor;                                                     \
        }                                                                                      \
    }

FO_UNPACK(f32, float)
FO_UNPACK(f64, double)
