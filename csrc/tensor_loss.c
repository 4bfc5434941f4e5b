/* tensor_loss.c -- the fused loss kernels of fastoptim.nn (softmax / log_softmax over one
 * axis, the class losses NLL and cross-entropy, the point-wise losses L1, smooth L1, Huber,
 * BCE and BCE-with-logits), their backward passes, and the dtype table that dispatches them.
 * Bodies in tensor_loss.inc.
 *
 * Why fused: torch runs each of these losses as one autograd node with its own backward
 * kernel; built from primitive ops, a cross-entropy would be ~6 nodes and 6 temporaries, and
 * on a 64 x 10 batch the per-node overhead is the whole cost. */
#include "common.h"
#include "fo_simd.h"
#include "fo_vmath.h"

/* The loss kernels' element passes (exp and log polynomials, the point-wise formulas, the
 * class gradients) are bound by arithmetic, so each is compiled twice: FO_TWICE(name, params,
 * args) makes, from the always-inline body name##body (declared FO_BODY), the function name()
 * that runs it compiled for the baseline target or, when fo_simd_avx2 says so, for AVX2 (eight
 * float lanes, blends, three-operand forms).  No FMA in either (the AVX2 target does not
 * enable it, -std=c99 does not contract): the two give the same bits (fo_simd.c).  Both carry
 * FO_NO_TRAPPING, without which gcc would not if-convert fo_vmath.h's selects (last session's
 * target_clones attempt lost it in the clone, whose exp pass stayed scalar). */
#if defined(__GNUC__) || defined(__clang__)
#define FO_BODY static inline __attribute__((always_inline)) FO_NO_TRAPPING
#else
#define FO_BODY static inline
#endif
/* FO_TWICE_V: the same, for a body whose first parameter (int avx2) says which build it is
 * inlined into, a constant that folds away: for code that must be written differently for the
 * two (FO_SUM_LANES_VEC).  params and args are the rest, as for FO_TWICE.  Both are
 * FO_TWICE_, given the body's argument lists for the baseline and the AVX2 build. */
#ifdef FO_SIMD_DISPATCH
#define FO_TWICE_(name, params, args, base_args, avx2_args)                                \
    FO_NO_TRAPPING static void name##base params { name##body base_args; }                 \
    FO_NO_TRAPPING __attribute__((target("avx2"))) static void name##avx2 params           \
    { name##body avx2_args; }                                                              \
    static inline void name params                                                         \
    {                                                                                      \
        if (fo_simd_avx2)                                                                  \
            name##avx2 args;                                                               \
        else                                                                               \
            name##base args;                                                               \
    }
#elif defined(__AVX2__)   /* one build, compiled for AVX2 throughout (-mavx2) */
#define FO_TWICE_(name, params, args, base_args, avx2_args)                                \
    FO_NO_TRAPPING static void name params { name##body avx2_args; }
#else
#define FO_TWICE_(name, params, args, base_args, avx2_args)                                \
    FO_NO_TRAPPING static void name params { name##body base_args; }
#endif
#define FO_UNPAREN_(...) __VA_ARGS__
/* name expanded first */
#define FO_TWICE(name, params, args) FO_TWICE_(name, params, args, args, args)
#define FO_TWICE_V(name, params, args)                                                     \
    FO_TWICE_(name, params, args, (0, FO_UNPAREN_ args), (1, FO_UNPAREN_ args))

#define FO_TEMPLATE "tensor_loss.inc"
#include "fo_instantiate.h"

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
