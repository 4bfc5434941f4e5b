/* tensor_loss.c -- the fused loss kernels of fastoptim.nn (softmax / log_softmax over one
 * axis, the class losses NLL and cross-entropy, the point-wise losses L1, smooth L1, Huber,
 * BCE and BCE-with-logits), their backward passes, and the dtype table that dispatches them.
 * Bodies in tensor_loss.inc.
 *
 * Why fused: torch runs each of these losses as one autograd node with its own backward
 * kernel; built from primitive ops, a cross-entropy would be ~6 nodes and 6 temporaries, and
 * on a 64 x 10 batch the per-node overhead is the whole cost. */
#include "common.h"
#include "fo_twice.h"

/* the short rows' block layout (tensor_loss.inc): rows of 1 <= n <= FO_COLS_MAX classes go
 * FO_ROWS at a time, transposed to [n][nbp] with nbp = the block's row count rounded up to 8 */
#define FO_COLS_MAX 32
#define FO_NBP(nb) (((nb) + 7) & ~(int64_t)7)

#define FO_TEMPLATE "tensor_loss.inc"
#include "fo_instantiate.h"

int64_t fo_softmax_saved_size(int64_t outer, int64_t n, int64_t inner)
{
    return inner == 1 && n >= 1 && n <= FO_COLS_MAX && outer >= 1 ? n * FO_NBP(outer) : 0;
}

/* randperm by Fisher-Yates (Durstenfeld) from 53-bit uniforms of the caller's generator:
 * for i = n-1 .. 1, swap out[i] with out[floor(u * (i + 1))]. */
void fo_randperm(fo_rng *rng, int64_t n, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        double u;
        fo_uniform_f64(rng, 1, &u, 0.0, 1.0);
        int64_t j = (int64_t)(u * (double)(i + 1));
        if (j > i) j = i;
        const int64_t t = out[i]; out[i] = out[j]; out[j] = t;
    }
}

/* *bad = whether some target is neither ignore_index nor in [0, n_classes): a branch-free
 * pass (one unsigned compare covers t < 0), vectorized under AVX2; the index only after */
FO_BODY void fo_any_bad_target_body(int64_t n, const int64_t *target, int64_t n_classes,
                                    int64_t ignore_index, int *bad)
{
    int b = 0;
    for (int64_t i = 0; i < n; i++)
        b |= (target[i] != ignore_index) & ((uint64_t)target[i] >= (uint64_t)n_classes);
    *bad = b;
}
FO_TWICE(fo_any_bad_target_, (int64_t n, const int64_t *target, int64_t n_classes,
                              int64_t ignore_index, int *bad),
         (n, target, n_classes, ignore_index, bad))

int64_t fo_first_bad_target(int64_t n, const int64_t *target, int64_t n_classes,
                            int64_t ignore_index)
{
    int bad;
    fo_any_bad_target_(n, target, n_classes < 0 ? 0 : n_classes, ignore_index, &bad);
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = target[i];
        if (t != ignore_index && (t < 0 || t >= n_classes)) return i;
    }
    return -1;
}
