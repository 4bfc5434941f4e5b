/* optim_lbfgs.c -- the flat-vector work of L-BFGS (fastoptim/optim/lbfgs.py), torch 2.13's
 * order of operations, in as few passes over the vectors as that order allows.
 *
 * Why kernels of their own: an L-BFGS iteration is ~4 * history_size + 10 vector ops over one
 * flat vector of every param (torch: a dot, then an axpy, per history entry and loop).  On the
 * 784-256-10 MLP that vector is 0.8 MB and the history 16 MB: the ops are bound by the L3
 * bandwidth, so each saved pass counts.  What is fused:
 *   - fo_lbfgs_gather: the grads into the flat vector, with max|g| (torch's opt_cond);
 *   - fo_lbfgs_pair: y = g - g_prev, s = d t, with y.s and y.y, in one pass;
 *   - fo_lbfgs_gather_pair: the two above in one pass (block by block), with q = -g and s.q,
 *     the recursion's first pass: what an iteration does after its closure, when it goes on;
 *   - fo_lbfgs_direction: the whole two-loop recursion in one call, each axpy fused with the
 *     dot that follows it in torch's order (the dot reads the vector the axpy just wrote), the
 *     scaling by H_diag fused into the last axpy of the first loop, and the directional
 *     derivative g.d into the last of the second: 2m + 1 passes where torch makes 4m + 3;
 *   - fo_lbfgs_add_grad: p += t d over every param, with max|d t| (the tolerance_change test).
 * Each element sees the same roundings as in torch (add_(x, alpha=a) is one fma on the CPU,
 * ATen's vectorised fmadd; a mul then add rounds twice and drifts from torch's iterates by an
 * ulp per iteration); only the dots' summation order differs from torch's BLAS: here every dot
 * sums in double over LB_LANES fixed lanes, whatever T is (more accurate than float32 BLAS, and
 * the same on every CPU).  Serial: a vector is what one closure evaluates, and the passes of
 * the recursion depend on each other's dots.
 *
 * Baseline x86-64 has no FMA instruction, so fma() there is a slow libm routine (~20x): a
 * target_clones "fma" variant, chosen at load time, makes it one vfmadd (same result). */
#include <math.h>
#include "fastoptim.h"
#include "common.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FO_LB_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FO_LB_CLONES
#endif

/* The lanes of every sum: 16 doubles = four AVX registers, enough independent fma chains to
 * hide their latency. */
#define LB_LANES 16

/* fo_lbfgs_gather_pair's block: 1024 elements, six vectors' blocks in L1 (4-8 KB each). */
#define LB_BLOCK 1024

/* for k in [0, n), j = k % LB_LANES: BODY (full blocks of lanes, then the tail) */
#define LB_FOR(n, ...)                                                                        \
    do {                                                                                      \
        const int64_t lb_n_ = (n);                                                            \
        int64_t lb_i_ = 0;                                                                    \
        for (; lb_i_ + LB_LANES <= lb_n_; lb_i_ += LB_LANES)                                  \
            for (int j = 0; j < LB_LANES; j++) {                                              \
                const int64_t k = lb_i_ + j;                                                  \
                __VA_ARGS__                                                                   \
            }                                                                                 \
        for (int j = 0; lb_i_ + j < lb_n_; j++) {                                             \
            const int64_t k = lb_i_ + j;                                                      \
            __VA_ARGS__                                                                       \
        }                                                                                     \
    } while (0)

/* The lanes' sum, in one fixed tree. */
FO_INLINE double lb_sum_lanes(const double *acc)
{
    double s[LB_LANES / 2];
    for (int j = 0; j < LB_LANES / 2; j++) s[j] = acc[j] + acc[j + LB_LANES / 2];
    for (int w = LB_LANES / 4; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) s[j] += s[j + w];
    return s[0];
}

FO_INLINE float fo_lb_fma_f32(float x, float a, float y) { return fmaf(x, a, y); }
FO_INLINE double fo_lb_fma_f64(double x, double a, double y) { return fma(x, a, y); }

#define FO_TEMPLATE "optim_lbfgs.inc"
#include "fo_instantiate.h"

FO_LB_CLONES
void fo_lbfgs_axpy_f32(int64_t n, double alpha, const float *restrict x, float *restrict y)
{
    const float a = (float)alpha;
    for (int64_t i = 0; i < n; i++)
        y[i] = fmaf(x[i], a, y[i]);
}

FO_LB_CLONES
void fo_lbfgs_axpy_f64(int64_t n, double alpha, const double *restrict x, double *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fma(x[i], alpha, y[i]);
}
