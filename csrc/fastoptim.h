/* fastoptim.h -- the one public C header of fastoptim.
 *
 * Every kernel is plain C99 with no Python: other numeric code can call it on raw buffers.
 * Conventions:
 *   - Each kernel exists for float32 (_f32) and float64 (_f64), generated from one source.
 *   - Sizes and strides are int64_t and counted in ELEMENTS, not bytes.
 *   - Unless a comment says otherwise, array arguments are C-contiguous and do not alias
 *     (they are declared restrict); "in place" arguments are read and written.
 *   - Per-step scalars arrive as double (computed in double, as torch does in Python) and are
 *     cast to the element type inside the kernel.
 *   - Kernels never allocate and never fail: the caller (the Cython layer) validates shapes,
 *     dtypes, contiguity and aliasing before calling.
 * The Cython mirror of this header is fastoptim/kernels.pxd (public); keep the two in step.
 *
 * Linking: the kernels live in one shared library inside the installed Python package
 * (fastoptim/lib/libfastoptim.so.<ABI>); `fastoptim-config --cflags --libs` prints the flags
 * (with an rpath), and fastoptim_version.h says which versions this header describes.
 */
#ifndef FASTOPTIM_H
#define FASTOPTIM_H

#include <stdint.h>

#include "fastoptim_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with -fvisibility=hidden: what this header declares is its exported
 * API, everything else stays internal (and is called directly, not through the PLT). */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif

/* The ABI version of the library actually loaded (FASTOPTIM_ABI_VERSION of its build): a
 * caller may compare it with the FASTOPTIM_ABI_VERSION it was compiled with.  fo_version()
 * is the library's package version, e.g. "0.1.0". */
int fo_abi_version(void);
const char *fo_version(void);

/* The instruction set the element loops compiled twice (csrc/fo_simd.c: the optimizer
 * kernels' and the loss kernels') run on in this process: "avx2" when the CPU has it, else
 * "baseline" (the build's own target, SSE2 on x86-64); FASTOPTIM_SIMD=baseline in the
 * environment when the library loads forces "baseline".  Either gives bit-identical results. */
const char *fo_simd(void);

/* ======================================================================================
 * Tensor ops: forward and backward kernels of the autograd (csrc/tensor_*.c)
 * ====================================================================================== */

/* Binary element-wise operators.  FO_MAXIMUM/FO_MINIMUM propagate NaN; their backward splits
 * the gradient evenly on ties, and FO_POW's follows torch (0 where the exponent is 0, and
 * for the exponent where the base is 0 and the exponent >= 0), as torch does. */
enum fo_binary_op { FO_ADD = 0, FO_SUB = 1, FO_MUL = 2, FO_DIV = 3, FO_POW_T = 4,
                    FO_MAXIMUM = 5, FO_MINIMUM = 6 };

/* Unary element-wise operators (p0, p1 are the optional scalar parameters). */
enum fo_unary_op {
    FO_NEG = 0, FO_EXP = 1, FO_LOG = 2, FO_SQRT = 3, FO_ABS = 4, FO_RELU = 5, FO_TANH = 6,
    FO_SIGMOID = 7,
    FO_CLAMP = 8,     /* clamp(x, p0, p1); a NaN bound means "no bound" on that side */
    FO_POW = 9,       /* x ** p0 */
    FO_ADD_S = 10,    /* x + p0 */
    FO_MUL_S = 11,    /* x * p0 */
    FO_RSUB_S = 12,   /* p0 - x */
    FO_RDIV_S = 13,   /* p0 / x */
    FO_DIV_S = 14,    /* x / p0 (a true division, as torch) */
    FO_RPOW_S = 15,   /* p0 ** x */
    FO_SIN = 16, FO_COS = 17, FO_TAN = 18, FO_ASIN = 19, FO_ACOS = 20, FO_ATAN = 21,
    FO_SINH = 22, FO_COSH = 23, FO_EXP2 = 24, FO_EXPM1 = 25, FO_LOG1P = 26, FO_LOG2 = 27,
    FO_LOG10 = 28,
    FO_SIGN = 29,     /* -1, 0 or 1; 0 for NaN (as torch) */
    FO_FLOOR = 30, FO_CEIL = 31,
    FO_ROUND = 32,    /* to the nearest integer, ties to even (as torch) */
    FO_TRUNC = 33, FO_RECIPROCAL = 34, FO_RSQRT = 35, FO_SQUARE = 36, FO_ERF = 37,
    FO_SOFTPLUS = 38  /* log1p(exp(p0 * x)) / p0, or x where p0 * x > p1 (beta, threshold) */
};

/* out[i] = a[ia] (op) b[ib] over an ndim-dimensional broadcast iteration of `shape`.
 * sa/sb: strides of a and b in elements, 0 along broadcast dimensions.  out is contiguous
 * with `shape`.  ndim may be 0 (one element). */
void fo_binary_f32(int op, int ndim, const int64_t *shape, float *out,
                   const float *a, const int64_t *sa, const float *b, const int64_t *sb);
void fo_binary_f64(int op, int ndim, const int64_t *shape, double *out,
                   const double *a, const int64_t *sa, const double *b, const int64_t *sb);

/* Backward of fo_binary: given g = dL/dout (contiguous, `shape`), ACCUMULATES
 *   ga[ia] += dout/da * g,  gb[ib] += dout/db * g
 * where ga/gb are laid out like a/b (same strides sa/sb; broadcast dims have stride 0, so
 * their contributions are summed in a fixed order).  ga or gb may be NULL (not needed). */
void fo_binary_backward_f32(int op, int ndim, const int64_t *shape, const float *g,
                            const float *a, const int64_t *sa, const float *b,
                            const int64_t *sb, float *ga, float *gb);
void fo_binary_backward_f64(int op, int ndim, const int64_t *shape, const double *g,
                            const double *a, const int64_t *sa, const double *b,
                            const int64_t *sb, double *ga, double *gb);

/* out[i] = op(x[i]; p0, p1) for i < n.  out may equal x (in place). */
void fo_unary_f32(int op, int64_t n, float *out, const float *x, double p0, double p1);
void fo_unary_f64(int op, int64_t n, double *out, const double *x, double p0, double p1);

/* gx[i] = g[i] * d op(x; p0, p1)/dx at x[i]; y is the forward output op(x) (used by exp,
 * sqrt, tanh and sigmoid, whose derivative is cheapest from y).  Writes gx (not accumulate). */
void fo_unary_backward_f32(int op, int64_t n, const float *g, const float *x, const float *y,
                           double p0, double p1, float *gx);
void fo_unary_backward_f64(int op, int64_t n, const double *g, const double *x,
                           const double *y, double p0, double p1, double *gx);

/* In-place update x[i] (op)= alpha * a[i] for FO_ADD/FO_SUB, x[i] (op)= a[i] for FO_MUL/FO_DIV.
 * a is either n elements or, when a_n == 1, one element broadcast to all. */
void fo_inplace_binary_f32(int op, int64_t n, float *x, const float *a, int64_t a_n,
                           double alpha);
void fo_inplace_binary_f64(int op, int64_t n, double *x, const double *a, int64_t a_n,
                           double alpha);

/* In-place ternary updates used by optimizer code written in Python (torch's semantics):
 *   addcmul: x += value * a * b      addcdiv: x += value * a / b
 *   lerp:    x = x + w * (a - x) for w < 0.5, else a + (w - 1) * (a - x) (ATen's two-sided
 *            formula, exact at both ends)
 * a and b have n elements. */
void fo_addcmul_f32(int64_t n, float *x, const float *a, const float *b, double value);
void fo_addcmul_f64(int64_t n, double *x, const double *a, const double *b, double value);
void fo_addcdiv_f32(int64_t n, float *x, const float *a, const float *b, double value);
void fo_addcdiv_f64(int64_t n, double *x, const double *a, const double *b, double value);
void fo_lerp_f32(int64_t n, float *x, const float *a, double w);
void fo_lerp_f64(int64_t n, double *x, const double *a, double w);

/* Sum of all n elements, accumulated in double in a fixed order (deterministic): four
 * interleaved lanes (element i into lane i mod 4), (lane 0 + lane 1) + (lane 2 + lane 3), then
 * the last n mod 4 elements in index order. */
double fo_sum_f32(int64_t n, const float *x);
double fo_sum_f64(int64_t n, const double *x);

/* Reduce the middle axis of an [outer, n, inner] array: out[o, i] = scale * sum_k x[o, k, i]. */
void fo_sum_axis_f32(int64_t outer, int64_t n, int64_t inner, const float *x, double scale,
                     float *out);
void fo_sum_axis_f64(int64_t outer, int64_t n, int64_t inner, const double *x, double scale,
                     double *out);

/* Backward of fo_sum_axis: out[o, k, i] = scale * g[o, i] (broadcast along the middle axis). */
void fo_expand_axis_f32(int64_t outer, int64_t n, int64_t inner, const float *g, double scale,
                        float *out);
void fo_expand_axis_f64(int64_t outer, int64_t n, int64_t inner, const double *g,
                        double scale, double *out);

/* Max (want_max=1) or min (0) over n >= 1 elements; NaN if any element is NaN (as torch).
 * *count receives how many elements equal the result (for the backward). */
double fo_extreme_f32(int64_t n, const float *x, int want_max, int64_t *count);
double fo_extreme_f64(int64_t n, const double *x, int want_max, int64_t *count);

/* Backward of fo_extreme: gx[i] = (x[i] == m) ? g / count : 0 (torch distributes the gradient
 * evenly over ties; a NaN result sends it to the NaN elements). */
void fo_extreme_backward_f32(int64_t n, const float *x, double m, double g, int64_t count,
                             float *gx);
void fo_extreme_backward_f64(int64_t n, const double *x, double m, double g, int64_t count,
                             double *gx);

/* C[M,N] = op(A) @ op(B) (+ bias[N] broadcast over rows when bias != NULL), where op(A) is
 * A[M,K] or, when trans_a, A stored as [K,M]; likewise op(B) is B[K,N] or B stored as [N,K].
 * C is overwritten.  A plain loop: the Cython layer sends large products to BLAS instead. */
void fo_matmul_f32(int64_t M, int64_t N, int64_t K, const float *A, int trans_a,
                   const float *B, int trans_b, const float *bias, float *C);
void fo_matmul_f64(int64_t M, int64_t N, int64_t K, const double *A, int trans_a,
                   const double *B, int trans_b, const double *bias, double *C);

/* Sum of squared differences sum_i (a[i] - b[i])^2 (each squared in the element type),
 * accumulated in double in fo_sum's order. */
double fo_mse_f32(int64_t n, const float *a, const float *b);
double fo_mse_f64(int64_t n, const double *a, const double *b);

/* Backward of the MSE loss: ga[i] = scale * (a[i] - b[i]) * g_i, with g_i = g[i] when g is
 * given (reduction='none') or g0 otherwise; gb = -ga.  ga or gb may be NULL. */
void fo_mse_backward_f32(int64_t n, const float *a, const float *b, const float *g, double g0,
                         double scale, float *ga, float *gb);
void fo_mse_backward_f64(int64_t n, const double *a, const double *b, const double *g,
                         double g0, double scale, double *ga, double *gb);

/* ======================================================================================
 * Random numbers (csrc/tensor_random.c): xoshiro256** with an explicit state, so that callers
 * own their generator (fastoptim keeps one, seeded by manual_seed).
 * ====================================================================================== */
typedef struct fo_rng { uint64_t s[4]; double spare; int has_spare; } fo_rng;

/* Seed the generator deterministically from one 64-bit value (splitmix64 expansion). */
void fo_rng_seed(fo_rng *rng, uint64_t seed);
/* out[i] ~ N(0, 1) (polar Box-Muller in double, then rounded to the element type). */
void fo_randn_f32(fo_rng *rng, int64_t n, float *out);
void fo_randn_f64(fo_rng *rng, int64_t n, double *out);
/* out[i] ~ U[lo, hi) (53 random bits in double, then rounded; a rounded result equal to hi is
 * replaced by lo so the interval stays half-open). */
void fo_uniform_f32(fo_rng *rng, int64_t n, float *out, double lo, double hi);
void fo_uniform_f64(fo_rng *rng, int64_t n, double *out, double lo, double hi);

/* ======================================================================================
 * The tensor kernels by dtype (csrc/tensor_dispatch.c): one table per element type, with the
 * same kernels as above taking untyped buffers, so that a caller holding a dtype picks a table
 * once instead of writing an f32 and an f64 call at every site.  Each entry is the kernel of
 * the same name above (fo_<name>_f32 / _f64), with every T * turned into void *.
 * ====================================================================================== */
typedef struct fo_tensor_kernels {
    int itemsize;   /* sizeof the element type: 4 or 8 */
    void (*binary)(int op, int ndim, const int64_t *shape, void *out, const void *a,
                   const int64_t *sa, const void *b, const int64_t *sb);
    void (*binary_backward)(int op, int ndim, const int64_t *shape, const void *g,
                            const void *a, const int64_t *sa, const void *b, const int64_t *sb,
                            void *ga, void *gb);
    void (*unary)(int op, int64_t n, void *out, const void *x, double p0, double p1);
    void (*unary_backward)(int op, int64_t n, const void *g, const void *x, const void *y,
                           double p0, double p1, void *gx);
    void (*inplace_binary)(int op, int64_t n, void *x, const void *a, int64_t a_n,
                           double alpha);
    void (*addcmul)(int64_t n, void *x, const void *a, const void *b, double value);
    void (*addcdiv)(int64_t n, void *x, const void *a, const void *b, double value);
    void (*lerp)(int64_t n, void *x, const void *a, double w);
    double (*sum)(int64_t n, const void *x);
    void (*sum_axis)(int64_t outer, int64_t n, int64_t inner, const void *x, double scale,
                     void *out);
    void (*expand_axis)(int64_t outer, int64_t n, int64_t inner, const void *g, double scale,
                        void *out);
    double (*extreme)(int64_t n, const void *x, int want_max, int64_t *count);
    void (*extreme_backward)(int64_t n, const void *x, double m, double g, int64_t count,
                             void *gx);
    void (*matmul)(int64_t M, int64_t N, int64_t K, const void *A, int trans_a, const void *B,
                   int trans_b, const void *bias, void *C);
    double (*mse)(int64_t n, const void *a, const void *b);
    void (*mse_backward)(int64_t n, const void *a, const void *b, const void *g, double g0,
                         double scale, void *ga, void *gb);
    void (*randn)(fo_rng *rng, int64_t n, void *out);
    void (*uniform)(fo_rng *rng, int64_t n, void *out, double lo, double hi);
} fo_tensor_kernels;

extern const fo_tensor_kernels fo_tensor_kernels_f32;
extern const fo_tensor_kernels fo_tensor_kernels_f64;

/* ======================================================================================
 * nn losses and softmax (csrc/tensor_loss.c) and activations (csrc/tensor_nnops.c)
 * ====================================================================================== */

/* softmax (log_ = 0) or log_softmax (log_ = 1) along the middle axis of an [outer, n, inner]
 * array: with m the row's max (NaN if it holds a NaN) and s = sum_k exp(x_k - m) in double,
 * out_k = exp(x_k - m) / s, or x_k - m - log(s).  Backward from the output y (as the forward
 * wrote it: log_softmax's is <= 0) and g = dL/dy: gx = y * (g - sum(g * y)) (softmax) or
 * g - exp(y) * sum(g) (log_softmax).  Writes out / gx.
 * saved (or NULL) is fo_softmax_saved_size(outer, n, inner) elements (0: none for this
 * layout, and saved is ignored): the forward writes the probabilities there, in its own
 * order, and the backward given them takes p from there instead of from y (which it then
 * does not read; for softmax p is y's values, for log_softmax it stands for exp(y), equal to
 * rounding): for short contiguous rows that saves the backward an exp per element and a
 * transpose. */
int64_t fo_softmax_saved_size(int64_t outer, int64_t n, int64_t inner);
void fo_softmax_f32(int64_t outer, int64_t n, int64_t inner, const float *x, int log_,
                    float *out, float *saved);
void fo_softmax_f64(int64_t outer, int64_t n, int64_t inner, const double *x, int log_,
                    double *out, double *saved);
void fo_softmax_backward_f32(int64_t outer, int64_t n, int64_t inner, const float *y,
                             const float *g, int log_, float *gx, const float *saved);
void fo_softmax_backward_f64(int64_t outer, int64_t n, int64_t inner, const double *y,
                             const double *g, int log_, double *gx, const double *saved);

/* Negative log-likelihood over log-probabilities lp [outer, C, inner] and class indices
 * target [outer, inner] (each in [0, C) or == ignore_index: the caller checked, see
 * fo_first_bad_target), with optional class weights weight[C] and label smoothing s:
 *   loss_p = (1 - s) * (-w[t] lp[t]) + (s / C) * sum_c (-w[c] lp[c])   (0 where ignored)
 * Writes loss_p to out[outer * inner] when out != NULL; returns sum_p loss_p and stores
 * sum_p w[t] over the positions not ignored in *wsum (torch's 'mean' divides by it).  Both
 * in double, in index order.  This is nn.NLLLoss (s = 0) and, on lp = log_softmax(logits),
 * nn.CrossEntropyLoss with class indices. */
double fo_nll_f32(int64_t outer, int64_t C, int64_t inner, const float *lp,
                  const int64_t *target, const float *weight, int64_t ignore_index,
                  double smoothing, float *out, double *wsum);
double fo_nll_f64(int64_t outer, int64_t C, int64_t inner, const double *lp,
                  const int64_t *target, const double *weight, int64_t ignore_index,
                  double smoothing, double *out, double *wsum);
/* Backward of fo_nll: with g_p = g[p] (g != NULL, reduction 'none') or g0 (the scaled scalar
 * gradient), writes gx = dloss/dlp * g_p, or, when through_log_softmax, the gradient with
 * respect to the logits: gx_c = dlp_c - exp(lp_c) * sum_c' dlp_c'.  Ignored positions get 0. */
void fo_nll_backward_f32(int64_t outer, int64_t C, int64_t inner, const float *lp,
                         const int64_t *target, const float *weight, int64_t ignore_index,
                         double smoothing, const float *g, double g0, int through_log_softmax,
                         float *gx);
void fo_nll_backward_f64(int64_t outer, int64_t C, int64_t inner, const double *lp,
                         const int64_t *target, const double *weight, int64_t ignore_index,
                         double smoothing, const double *g, double g0,
                         int through_log_softmax, double *gx);

/* Cross-entropy of logits x [outer, C, inner] at class indices: fo_nll of log_softmax(x),
 * without writing the log-probabilities: returns the sum (and *wsum, out) as fo_nll and
 * writes probs = softmax(x), from which the backward takes the gradient with respect to x,
 *   gx_c = dlp_c - probs_c sum_c' dlp_c'   (dlp as fo_nll_backward's; 0 where ignored).
 * gx may be probs itself (the gradient written over the saved softmax, in place). */
double fo_cross_entropy_f32(int64_t outer, int64_t C, int64_t inner, const float *x,
                            const int64_t *target, const float *weight, int64_t ignore_index,
                            double smoothing, float *out, float *probs, double *wsum);
double fo_cross_entropy_f64(int64_t outer, int64_t C, int64_t inner, const double *x,
                            const int64_t *target, const double *weight, int64_t ignore_index,
                            double smoothing, double *out, double *probs, double *wsum);
void fo_cross_entropy_backward_f32(int64_t outer, int64_t C, int64_t inner, const float *probs,
                                   const int64_t *target, const float *weight,
                                   int64_t ignore_index, double smoothing, const float *g,
                                   double g0, float *gx);
void fo_cross_entropy_backward_f64(int64_t outer, int64_t C, int64_t inner,
                                   const double *probs, const int64_t *target,
                                   const double *weight, int64_t ignore_index, double smoothing,
                                   const double *g, double g0, double *gx);

/* Cross-entropy with class probabilities target [outer, C, inner] over lp = log_softmax:
 *   loss_p = -sum_c w[c] lp[c] t'_c,  t' = t (1 - s) + s / C   (t' = t when s == 0)
 * out and the return value as fo_nll.  Backward: gx (w.r.t. the logits, through the
 * log_softmax) and gt_c = -w[c] lp[c] (1 - s) g_p; either may be NULL. */
double fo_soft_ce_f32(int64_t outer, int64_t C, int64_t inner, const float *lp,
                      const float *target, const float *weight, double smoothing, float *out);
double fo_soft_ce_f64(int64_t outer, int64_t C, int64_t inner, const double *lp,
                      const double *target, const double *weight, double smoothing,
                      double *out);
void fo_soft_ce_backward_f32(int64_t outer, int64_t C, int64_t inner, const float *lp,
                             const float *target, const float *weight, double smoothing,
                             const float *g, double g0, float *gx, float *gt);
void fo_soft_ce_backward_f64(int64_t outer, int64_t C, int64_t inner, const double *lp,
                             const double *target, const double *weight, double smoothing,
                             const double *g, double g0, double *gx, double *gt);

/* Point-wise losses of input x and target y (n elements each), torch's formulas:
 *   FO_LOSS_L1          |x - y|
 *   FO_LOSS_SMOOTH_L1   z = |x - y|; z < p ? 0.5 z^2 / p : z - 0.5 p        (p = beta > 0)
 *   FO_LOSS_HUBER       z < p ? 0.5 z^2 : p (z - 0.5 p)                       (p = delta)
 *   FO_LOSS_BCE         (y - 1) max(log1p(-x), -100) - y max(log x, -100)
 *   FO_LOSS_BCE_LOGITS  (1 - y) x - (1 + (pw - 1) y) log_sigmoid(x)           (pw = 1 if NULL)
 * each times w[i] when w != NULL (w, pw: n elements, already broadcast).  Writes out[i] when
 * out != NULL; returns the sum in double (in blocks of 256, each summed in 4 interleaved
 * lanes: a fixed order).  float32's log/log1p/exp are csrc/fo_vmath.h's.  The backward writes
 * gx = dloss/dx * g_i and gy = dloss/dy * g_i (g_i = g[i], or g0 when g is NULL; gx or gy may
 * be NULL); BCE's dx is (x - y) / max(x (1 - x), 1e-12), as torch's.
 * aux (n elements, or NULL) is BCE_LOGITS' exp(-|x|), the one exp its loss and its gradient
 * share (sigmoid(x) = 1 / (1 + aux) for x >= 0, aux / (1 + aux) below): the forward writes
 * it when aux != NULL, the backward reads it from there (and makes it itself when NULL); the
 * other kinds ignore aux. */
enum fo_loss_kind {
    FO_LOSS_L1 = 0, FO_LOSS_SMOOTH_L1 = 1, FO_LOSS_HUBER = 2, FO_LOSS_BCE = 3,
    FO_LOSS_BCE_LOGITS = 4
};
double fo_pointwise_loss_f32(int kind, int64_t n, const float *x, const float *y,
                             const float *w, const float *pw, double p, float *out,
                             float *aux);
double fo_pointwise_loss_f64(int kind, int64_t n, const double *x, const double *y,
                             const double *w, const double *pw, double p, double *out,
                             double *aux);
void fo_pointwise_loss_backward_f32(int kind, int64_t n, const float *x, const float *y,
                                    const float *w, const float *pw, double p, const float *g,
                                    double g0, float *gx, float *gy, const float *aux);
void fo_pointwise_loss_backward_f64(int kind, int64_t n, const double *x, const double *y,
                                    const double *w, const double *pw, double p,
                                    const double *g, double g0, double *gx, double *gy,
                                    const double *aux);

/* The index of the first target that is neither ignore_index nor in [0, n_classes), or -1. */
int64_t fo_first_bad_target(int64_t n, const int64_t *target, int64_t n_classes,
                            int64_t ignore_index);
/* out = a uniformly random permutation of 0 .. n-1 (Fisher-Yates on rng's 53-bit uniforms). */
void fo_randperm(fo_rng *rng, int64_t n, int64_t *out);

/* torch's linspace, bit for bit (csrc/tensor_creation.c): n values, step = (end - start) /
 * (n - 1) in T (double for i64), out[i] = fma(step, i, start) below n / 2, else
 * fma(-step, n - 1 - i, end); i64 truncates the double toward zero. */
void fo_linspace_f32(int64_t n, float start, float end, float *out);
void fo_linspace_f64(int64_t n, double start, double end, double *out);
void fo_linspace_i64(int64_t n, int64_t start, int64_t end, int64_t *out);

/* Activations (out = f(x; p0), gx = g * f'(x; p0), n elements, computed in T):
 *   FO_ACT_LEAKY_RELU  x > 0 ? x : p0 x              (p0 = negative_slope)
 *   FO_ACT_ELU         x > 0 ? x : p0 expm1(x)       (p0 = alpha)
 *   FO_ACT_GELU        x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
 *   FO_ACT_GELU_TANH   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 *   FO_ACT_SILU        x sigmoid(x) */
enum fo_act_op {
    FO_ACT_LEAKY_RELU = 0, FO_ACT_ELU = 1, FO_ACT_GELU = 2, FO_ACT_GELU_TANH = 3,
    FO_ACT_SILU = 4
};
void fo_activation_f32(int op, int64_t n, const float *x, double p0, float *out);
void fo_activation_f64(int op, int64_t n, const double *x, double p0, double *out);
void fo_activation_backward_f32(int op, int64_t n, const float *g, const float *x, double p0,
                                float *gx);
void fo_activation_backward_f64(int op, int64_t n, const double *g, const double *x,
                                double p0, double *gx);

/* The loss and activation kernels by dtype (as fo_tensor_kernels: each entry is the kernel
 * of the same name above with every T * turned into void *). */
typedef struct fo_loss_kernels {
    void (*softmax)(int64_t outer, int64_t n, int64_t inner, const void *x, int log_, void *out,
                    void *saved);
    void (*softmax_backward)(int64_t outer, int64_t n, int64_t inner, const void *y,
                             const void *g, int log_, void *gx, const void *saved);
    double (*nll)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                  const int64_t *target, const void *weight, int64_t ignore_index,
                  double smoothing, void *out, double *wsum);
    void (*nll_backward)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                         const int64_t *target, const void *weight, int64_t ignore_index,
                         double smoothing, const void *g, double g0, int through_log_softmax,
                         void *gx);
    double (*soft_ce)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                      const void *target, const void *weight, double smoothing, void *out);
    void (*soft_ce_backward)(int64_t outer, int64_t C, int64_t inner, const void *lp,
                             const void *target, const void *weight, double smoothing,
                             const void *g, double g0, void *gx, void *gt);
    double (*pointwise)(int kind, int64_t n, const void *x, const void *y, const void *w,
                        const void *pw, double p, void *out, void *aux);
    void (*pointwise_backward)(int kind, int64_t n, const void *x, const void *y,
                               const void *w, const void *pw, double p, const void *g,
                               double g0, void *gx, void *gy, const void *aux);
    /* the index of the first of n elements outside [lo, hi] (or NaN), or -1 */
    int64_t (*first_outside)(int64_t n, const void *x, double lo, double hi);
    double (*cross_entropy)(int64_t outer, int64_t C, int64_t inner, const void *x,
                            const int64_t *target, const void *weight, int64_t ignore_index,
                            double smoothing, void *out, void *probs, double *wsum);
    void (*cross_entropy_backward)(int64_t outer, int64_t C, int64_t inner, const void *probs,
                                   const int64_t *target, const void *weight,
                                   int64_t ignore_index, double smoothing, const void *g,
                                   double g0, void *gx);
} fo_loss_kernels;
extern const fo_loss_kernels fo_loss_kernels_f32;
extern const fo_loss_kernels fo_loss_kernels_f64;

typedef struct fo_act_kernels {
    void (*activation)(int op, int64_t n, const void *x, double p0, void *out);
    void (*activation_backward)(int op, int64_t n, const void *g, const void *x, double p0,
                                void *gx);
} fo_act_kernels;
extern const fo_act_kernels fo_act_kernels_f32;
extern const fo_act_kernels fo_act_kernels_f64;

/* ======================================================================================
 * Optimizer updates (csrc/optim_*.c): multi-tensor, in place, one pass.
 * ====================================================================================== */
/* @@OPTIM-PROTOTYPES@@ (optimizer kernels go below this line) */

/* Common to the optimizer kernels below:
 *   - One call updates a whole param group of `ntensors` tensors: params[i], grads[i] and the
 *     state arrays [i] all hold numels[i] contiguous elements of the kernel's type.  params and
 *     states are read and written in place; grads are only read.  No two arrays may overlap
 *     (grads may overlap each other).
 *   - steps[i] points to tensor i's float32 step counter (torch's 0-dim state['step']).  The
 *     kernel does *steps[i] += 1 (in float32, as torch) and uses the new value t, converted to
 *     double, for that tensor's scalars; tensors of one call may be at different steps.
 *   - Per-step scalars (1 - beta, lr / bc1, bc2 ** 0.5, ...) are computed in double, then cast to
 *     the element type; element arithmetic is in the element type, in torch 2.13's
 *     single-tensor order of operations.  "g" below is -grad under maximize, else grad.
 *   - Above FO_OMP_MIN_ELEMS elements in total the group is split across OpenMP threads as one
 *     flat index space; each element's update is independent, so results do not depend on the
 *     thread count.
 *   - Each optimizer's hyperparameters cross BY NAME: a struct fo_<name>_hyper (its scalars, in
 *     double, then its flags, in the order of fastoptim/optim/_descriptions.py, which a test
 *     holds against this header) taken by fo_<name>_update_f32/_f64.  fo_<name>_step_f32/_f64
 *     are the same kernels with the hyperparameters as trailing positional arguments, in the
 *     struct's order: thin wrappers kept for callers of the original interface. */

/* SGD (torch.optim.SGD).  Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   if momentum != 0:
 *       buf = g                                    (buffer_is_new[i]: first step, no dampening)
 *       buf = momentum * buf + (1 - dampening) * g        (otherwise)
 *       g = nesterov ? g + momentum * buf : buf
 *   p = p - lr * g
 * Reads grads; writes params and, when momentum != 0, momentum_buffers (a buffer flagged
 * buffer_is_new[i] need not be initialised: it is overwritten).  momentum_buffers and
 * buffer_is_new may be NULL when momentum == 0; buffer_is_new NULL means "no buffer is new".
 * SGD keeps no step counter. */
typedef struct fo_sgd_hyper {
    double lr, momentum, dampening, weight_decay;
    int nesterov, maximize;
} fo_sgd_hyper;
void fo_sgd_update_f32(float *const *params, const float *const *grads,
                       float *const *momentum_buffers, const unsigned char *buffer_is_new,
                       const int64_t *numels, int64_t ntensors, const fo_sgd_hyper *hyper);
void fo_sgd_update_f64(double *const *params, const double *const *grads,
                       double *const *momentum_buffers, const unsigned char *buffer_is_new,
                       const int64_t *numels, int64_t ntensors, const fo_sgd_hyper *hyper);
void fo_sgd_step_f32(float *const *params, const float *const *grads,
                     float *const *momentum_buffers, const unsigned char *buffer_is_new,
                     const int64_t *numels, int64_t ntensors, double lr, double momentum,
                     double dampening, double weight_decay, int nesterov, int maximize);
void fo_sgd_step_f64(double *const *params, const double *const *grads,
                     double *const *momentum_buffers, const unsigned char *buffer_is_new,
                     const int64_t *numels, int64_t ntensors, double lr, double momentum,
                     double dampening, double weight_decay, int nesterov, int maximize);

/* Adam (torch.optim.Adam) and, with decoupled_weight_decay, AdamW.  Per tensor, with t the
 * incremented step: bc1 = 1 - beta1**t, bc2 = 1 - beta2**t, step_size = lr / bc1.  Per element:
 *   if weight_decay != 0:  p = p * (1 - lr*weight_decay)      (decoupled, before the moments)
 *                          or g = g + weight_decay * p        (coupled L2)
 *   m = lerp(m, g, 1 - beta1)                                 (ATen's lerp formula)
 *   v = beta2 * v + (1 - beta2) * g * g
 *   vmax = max(vmax, v) and use vmax for v below              (amsgrad; NaN-propagating)
 *   p = p - step_size * m / (sqrt(v) / bc2**0.5 + eps)
 * Reads grads; writes params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs (only if amsgrad; may be
 * NULL otherwise) and steps. */
typedef struct fo_adam_hyper {
    double lr, beta1, beta2, eps, weight_decay;
    int amsgrad, maximize, decoupled_weight_decay;
} fo_adam_hyper;
void fo_adam_update_f32(float *const *params, const float *const *grads,
                        float *const *exp_avgs, float *const *exp_avg_sqs,
                        float *const *max_exp_avg_sqs, float *const *steps,
                        const int64_t *numels, int64_t ntensors, const fo_adam_hyper *hyper);
void fo_adam_update_f64(double *const *params, const double *const *grads,
                        double *const *exp_avgs, double *const *exp_avg_sqs,
                        double *const *max_exp_avg_sqs, float *const *steps,
                        const int64_t *numels, int64_t ntensors, const fo_adam_hyper *hyper);
void fo_adam_step_f32(float *const *params, const float *const *grads, float *const *exp_avgs,
                      float *const *exp_avg_sqs, float *const *max_exp_avg_sqs,
                      float *const *steps, const int64_t *numels, int64_t ntensors, double lr,
                      double beta1, double beta2, double eps, double weight_decay, int amsgrad,
                      int maximize, int decoupled_weight_decay);
void fo_adam_step_f64(double *const *params, const double *const *grads,
                      double *const *exp_avgs, double *const *exp_avg_sqs,
                      double *const *max_exp_avg_sqs, float *const *steps,
                      const int64_t *numels, int64_t ntensors, double lr, double beta1,
                      double beta2, double eps, double weight_decay, int amsgrad, int maximize,
                      int decoupled_weight_decay);

/* RMSprop (torch.optim.RMSprop).  Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   sq = alpha * sq + (1 - alpha) * g * g
 *   if centered: ga = lerp(ga, g, 1 - alpha); avg = sqrt(sq - ga * ga) + eps
 *   else:        avg = sqrt(sq) + eps                     (eps outside the sqrt)
 *   if momentum > 0: buf = momentum * buf + g / avg; p = p - lr * buf
 *   else:            p = p - lr * g / avg
 * Reads grads; writes params, square_avgs, grad_avgs (only if centered; may be NULL otherwise),
 * momentum_buffers (only if momentum > 0; may be NULL otherwise; start at zero) and steps (a
 * counter only: t does not enter the math). */
typedef struct fo_rmsprop_hyper {
    double lr, alpha, eps, weight_decay, momentum;
    int centered, maximize;
} fo_rmsprop_hyper;
void fo_rmsprop_update_f32(float *const *params, const float *const *grads,
                           float *const *square_avgs, float *const *grad_avgs,
                           float *const *momentum_buffers, float *const *steps,
                           const int64_t *numels, int64_t ntensors,
                           const fo_rmsprop_hyper *hyper);
void fo_rmsprop_update_f64(double *const *params, const double *const *grads,
                           double *const *square_avgs, double *const *grad_avgs,
                           double *const *momentum_buffers, float *const *steps,
                           const int64_t *numels, int64_t ntensors,
                           const fo_rmsprop_hyper *hyper);
void fo_rmsprop_step_f32(float *const *params, const float *const *grads,
                         float *const *square_avgs, float *const *grad_avgs,
                         float *const *momentum_buffers, float *const *steps,
                         const int64_t *numels, int64_t ntensors, double lr, double alpha,
                         double eps, double weight_decay, double momentum, int centered,
                         int maximize);
void fo_rmsprop_step_f64(double *const *params, const double *const *grads,
                         double *const *square_avgs, double *const *grad_avgs,
                         double *const *momentum_buffers, float *const *steps,
                         const int64_t *numels, int64_t ntensors, double lr, double alpha,
                         double eps, double weight_decay, double momentum, int centered,
                         int maximize);

/* Adagrad (torch.optim.Adagrad, dense grads).  Per tensor, with t the incremented step:
 * clr = lr / (1 + (t - 1) * lr_decay).  Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   sum = sum + g * g
 *   p = p - clr * g / (sqrt(sum) + eps)
 * Reads grads; writes params, state_sums and steps. */
typedef struct fo_adagrad_hyper {
    double lr, weight_decay, lr_decay, eps;
    int maximize;
} fo_adagrad_hyper;
void fo_adagrad_update_f32(float *const *params, const float *const *grads,
                           float *const *state_sums, float *const *steps,
                           const int64_t *numels, int64_t ntensors,
                           const fo_adagrad_hyper *hyper);
void fo_adagrad_update_f64(double *const *params, const double *const *grads,
                           double *const *state_sums, float *const *steps,
                           const int64_t *numels, int64_t ntensors,
                           const fo_adagrad_hyper *hyper);
void fo_adagrad_step_f32(float *const *params, const float *const *grads,
                         float *const *state_sums, float *const *steps, const int64_t *numels,
                         int64_t ntensors, double lr, double weight_decay, double lr_decay,
                         double eps, int maximize);
void fo_adagrad_step_f64(double *const *params, const double *const *grads,
                         double *const *state_sums, float *const *steps, const int64_t *numels,
                         int64_t ntensors, double lr, double weight_decay, double lr_decay,
                         double eps, int maximize);

/* Adadelta (torch.optim.Adadelta).  Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   sq = rho * sq + (1 - rho) * g * g
 *   delta = sqrt(acc + eps) / sqrt(sq + eps) * g          (eps inside both; the old acc)
 *   acc = rho * acc + (1 - rho) * delta * delta
 *   p = p - lr * delta
 * Reads grads; writes params, square_avgs, acc_deltas and steps (a counter only). */
typedef struct fo_adadelta_hyper {
    double lr, rho, eps, weight_decay;
    int maximize;
} fo_adadelta_hyper;
void fo_adadelta_update_f32(float *const *params, const float *const *grads,
                            float *const *square_avgs, float *const *acc_deltas,
                            float *const *steps, const int64_t *numels, int64_t ntensors,
                            const fo_adadelta_hyper *hyper);
void fo_adadelta_update_f64(double *const *params, const double *const *grads,
                            double *const *square_avgs, double *const *acc_deltas,
                            float *const *steps, const int64_t *numels, int64_t ntensors,
                            const fo_adadelta_hyper *hyper);
void fo_adadelta_step_f32(float *const *params, const float *const *grads,
                          float *const *square_avgs, float *const *acc_deltas,
                          float *const *steps, const int64_t *numels, int64_t ntensors,
                          double lr, double rho, double eps, double weight_decay, int maximize);
void fo_adadelta_step_f64(double *const *params, const double *const *grads,
                          double *const *square_avgs, double *const *acc_deltas,
                          float *const *steps, const int64_t *numels, int64_t ntensors,
                          double lr, double rho, double eps, double weight_decay, int maximize);

/* Adamax (torch.optim.Adamax).  Per tensor, with t the incremented step:
 * clr = lr / (1 - beta1**t).  Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   m = lerp(m, g, 1 - beta1)                             (ATen's lerp formula)
 *   u = max(beta2 * u, |g| + eps)                         (NaN-propagating, as torch.maximum)
 *   p = p - clr * m / u
 * Reads grads; writes params, exp_avgs, exp_infs and steps. */
typedef struct fo_adamax_hyper {
    double lr, beta1, beta2, eps, weight_decay;
    int maximize;
} fo_adamax_hyper;
void fo_adamax_update_f32(float *const *params, const float *const *grads,
                          float *const *exp_avgs, float *const *exp_infs, float *const *steps,
                          const int64_t *numels, int64_t ntensors,
                          const fo_adamax_hyper *hyper);
void fo_adamax_update_f64(double *const *params, const double *const *grads,
                          double *const *exp_avgs, double *const *exp_infs,
                          float *const *steps, const int64_t *numels, int64_t ntensors,
                          const fo_adamax_hyper *hyper);
void fo_adamax_step_f32(float *const *params, const float *const *grads, float *const *exp_avgs,
                        float *const *exp_infs, float *const *steps, const int64_t *numels,
                        int64_t ntensors, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int maximize);
void fo_adamax_step_f64(double *const *params, const double *const *grads,
                        double *const *exp_avgs, double *const *exp_infs, float *const *steps,
                        const int64_t *numels, int64_t ntensors, double lr, double beta1,
                        double beta2, double eps, double weight_decay, int maximize);

/* RAdam (torch.optim.RAdam; RAdamW with decoupled_weight_decay).  Per tensor, with t the
 * incremented step: bc1 = 1 - beta1**t, bc2 = 1 - beta2**t, rho_inf = 2 / (1 - beta2) - 1,
 * rho_t = rho_inf - 2 t beta2**t / bc2 and, when rho_t > 5,
 * rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)).
 * Per element:
 *   weight decay as Adam (decoupled or coupled)
 *   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
 *   if rho_t > 5: p = p - m / bc1 * lr * (1 / (sqrt(v) + eps) * bc2**0.5) * rect
 *   else:         p = p - m / bc1 * lr
 * Reads grads; writes params, exp_avgs, exp_avg_sqs and steps. */
typedef struct fo_radam_hyper {
    double lr, beta1, beta2, eps, weight_decay;
    int decoupled_weight_decay, maximize;
} fo_radam_hyper;
void fo_radam_update_f32(float *const *params, const float *const *grads,
                         float *const *exp_avgs, float *const *exp_avg_sqs, float *const *steps,
                         const int64_t *numels, int64_t ntensors, const fo_radam_hyper *hyper);
void fo_radam_update_f64(double *const *params, const double *const *grads,
                         double *const *exp_avgs, double *const *exp_avg_sqs,
                         float *const *steps, const int64_t *numels, int64_t ntensors,
                         const fo_radam_hyper *hyper);
void fo_radam_step_f32(float *const *params, const float *const *grads, float *const *exp_avgs,
                       float *const *exp_avg_sqs, float *const *steps, const int64_t *numels,
                       int64_t ntensors, double lr, double beta1, double beta2, double eps,
                       double weight_decay, int decoupled_weight_decay, int maximize);
void fo_radam_step_f64(double *const *params, const double *const *grads,
                       double *const *exp_avgs, double *const *exp_avg_sqs,
                       float *const *steps, const int64_t *numels, int64_t ntensors, double lr,
                       double beta1, double beta2, double eps, double weight_decay,
                       int decoupled_weight_decay, int maximize);

/* Rprop (torch.optim.Rprop).  Per element, with sign() torch's (0 for NaN):
 *   s = sign(g * prev); s = etaplus where s > 0; then etaminus where s < 0; then 1 where s == 0
 *   step_size = min(max(step_size * s, step_size_min), step_size_max)   (NaN stays NaN)
 *   g = 0 where s == etaminus                             (the sign flipped: no move)
 *   p = p - sign(g) * step_size;  prev = g
 * Reads grads; writes params, prevs, step_sizes (torch starts them at lr) and steps (a counter
 * only).  lr itself does not enter the kernel. */
typedef struct fo_rprop_hyper {
    double etaminus, etaplus, step_size_min, step_size_max;
    int maximize;
} fo_rprop_hyper;
void fo_rprop_update_f32(float *const *params, const float *const *grads, float *const *prevs,
                         float *const *step_sizes, float *const *steps, const int64_t *numels,
                         int64_t ntensors, const fo_rprop_hyper *hyper);
void fo_rprop_update_f64(double *const *params, const double *const *grads,
                         double *const *prevs, double *const *step_sizes, float *const *steps,
                         const int64_t *numels, int64_t ntensors, const fo_rprop_hyper *hyper);
void fo_rprop_step_f32(float *const *params, const float *const *grads, float *const *prevs,
                       float *const *step_sizes, float *const *steps, const int64_t *numels,
                       int64_t ntensors, double etaminus, double etaplus, double step_size_min,
                       double step_size_max, int maximize);
void fo_rprop_step_f64(double *const *params, const double *const *grads, double *const *prevs,
                       double *const *step_sizes, float *const *steps, const int64_t *numels,
                       int64_t ntensors, double etaminus, double etaplus, double step_size_min,
                       double step_size_max, int maximize);

/* Kernels with per-tensor SCALAR state besides the step counters (NAdam's mu_product, ASGD's
 * eta and mu: torch 0-dim tensors, one per param) take them as arrays of pointers, like steps
 * (mu_products[i] -> tensor i's scalar).  torch creates them float32, but its load_state_dict
 * casts every state entry except 'step' to the param's dtype, so a float64 param's scalars are
 * float64 after a load: the pointers are void *, and scalars_f64 says whether all of them are
 * doubles (1) or floats (0) -- a group holding both kinds takes two calls.  The kernel reads
 * each once (the value before this step) and stores the new value once per tensor after its
 * parallel region, from the incremented step count, through fo_<name>_advance, which it calls
 * itself.  A caller running the kernels in team mode (optim_multi.h), which advances the step
 * counters itself, must call fo_<name>_advance after it has done so.  No two of these pointers
 * may be equal, nor point into an array the kernel writes. */

/* NAdam (torch.optim.NAdam; NAdamW with decoupled_weight_decay).  Per tensor, with t the
 * incremented step and P the tensor's mu_product before this step:
 *   mu = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay)), mu_next the same at t + 1,
 *   P' = P * mu in P's dtype (stored as the new mu_product), bc2 = 1 - beta2**t,
 *   c_grad = -lr * (1 - mu) / (1 - P'),  c_avg = -lr * mu_next / (1 - P' * mu_next).
 * Per element:
 *   if weight_decay != 0:  p = p * (1 - lr*weight_decay)      (decoupled, before the moments)
 *                          or g = g + weight_decay * p        (coupled L2)
 *   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
 *   denom = sqrt(v / bc2) + eps
 *   p = p + c_grad * g / denom;  p = p + c_avg * m / denom   (two roundings, as torch)
 * Reads grads; writes params, exp_avgs, exp_avg_sqs, mu_products (one float, or double with
 * scalars_f64, per tensor: torch's state['mu_product'], starting at 1) and steps. */
typedef struct fo_nadam_hyper {
    double lr, beta1, beta2, eps, weight_decay, momentum_decay;
    int decoupled_weight_decay, maximize;
} fo_nadam_hyper;
void fo_nadam_update_f32(float *const *params, const float *const *grads,
                         float *const *exp_avgs, float *const *exp_avg_sqs,
                         void *const *mu_products, float *const *steps, const int64_t *numels,
                         int64_t ntensors, int scalars_f64, const fo_nadam_hyper *hyper);
void fo_nadam_update_f64(double *const *params, const double *const *grads,
                         double *const *exp_avgs, double *const *exp_avg_sqs,
                         void *const *mu_products, float *const *steps, const int64_t *numels,
                         int64_t ntensors, int scalars_f64, const fo_nadam_hyper *hyper);
void fo_nadam_step_f32(float *const *params, const float *const *grads, float *const *exp_avgs,
                       float *const *exp_avg_sqs, void *const *mu_products, float *const *steps,
                       const int64_t *numels, int64_t ntensors, int scalars_f64, double lr,
                       double beta1, double beta2, double eps, double weight_decay,
                       double momentum_decay, int decoupled_weight_decay, int maximize);
void fo_nadam_step_f64(double *const *params, const double *const *grads,
                       double *const *exp_avgs, double *const *exp_avg_sqs,
                       void *const *mu_products, float *const *steps, const int64_t *numels,
                       int64_t ntensors, int scalars_f64, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double momentum_decay,
                       int decoupled_weight_decay, int maximize);
/* The per-tensor store of fo_nadam_update: mu_product *= mu(t), t = *steps[i] the ALREADY
 * incremented count, in the scalar's dtype (mu rounded to it first, as torch's 0-dim `*=`).
 * Called by fo_nadam_update itself; call it directly only after running it in team mode (and
 * after advancing the counters). */
void fo_nadam_advance(void *const *mu_products, const float *const *steps, int64_t ntensors,
                      int scalars_f64, const fo_nadam_hyper *hyper);

/* ASGD (torch.optim.ASGD).  Per tensor, eta and mu are the tensor's scalars before this step
 * (the lists in torch's functional order: axs, mus, etas).  Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   p = p * (1 - lambd * eta);  p = p - eta * g
 *   ax = (mu != 1) ? ax + (p - ax) * mu : p
 * Then, with t the incremented step, stored once per tensor, rounded to float32 even when
 * stored as double (torch makes them float32 tensors with as_tensor, then copies them in):
 *   eta = lr / (1 + lambd * lr * t)**alpha;  mu = 1 / max(1, t - t0).
 * Reads grads; writes params, axs, mus and etas (one float each per tensor, or double with
 * scalars_f64: torch's state['mu'], starting at 1, and state['eta'], starting at lr), steps. */
typedef struct fo_asgd_hyper {
    double lr, lambd, alpha, t0, weight_decay;
    int maximize;
} fo_asgd_hyper;
void fo_asgd_update_f32(float *const *params, const float *const *grads, float *const *axs,
                        void *const *mus, void *const *etas, float *const *steps,
                        const int64_t *numels, int64_t ntensors, int scalars_f64,
                        const fo_asgd_hyper *hyper);
void fo_asgd_update_f64(double *const *params, const double *const *grads, double *const *axs,
                        void *const *mus, void *const *etas, float *const *steps,
                        const int64_t *numels, int64_t ntensors, int scalars_f64,
                        const fo_asgd_hyper *hyper);
void fo_asgd_step_f32(float *const *params, const float *const *grads, float *const *axs,
                      void *const *mus, void *const *etas, float *const *steps,
                      const int64_t *numels, int64_t ntensors, int scalars_f64, double lr,
                      double lambd, double alpha, double t0, double weight_decay, int maximize);
void fo_asgd_step_f64(double *const *params, const double *const *grads, double *const *axs,
                      void *const *mus, void *const *etas, float *const *steps,
                      const int64_t *numels, int64_t ntensors, int scalars_f64, double lr,
                      double lambd, double alpha, double t0, double weight_decay, int maximize);
/* The per-tensor store of fo_asgd_update, from t = *steps[i], the ALREADY incremented count.
 * Called by fo_asgd_update itself; call it directly only after running it in team mode (and
 * after advancing the counters). */
void fo_asgd_advance(void *const *mus, void *const *etas, const float *const *steps,
                     int64_t ntensors, int scalars_f64, const fo_asgd_hyper *hyper);

/* ======================================================================================
 * Model averaging (csrc/optim_average.c): swa_utils.AveragedModel's update, all params of a
 * model in one call.
 * ====================================================================================== */

/* How fo_average combines an averaged tensor a with the model's tensor m. */
enum fo_average_mode {
    FO_AVERAGE_LERP = 0,  /* a = lerp(a, m, w): EMA (w = 1 - decay) and SWA (w = 1 / (n + 1)) */
    FO_AVERAGE_MEAN = 1   /* a = a + (m - a) / w: the running mean, w = n_averaged + 1 */
};

/* For each tensor i < ntensors and element j < numels[i], with w = (T)weight:
 *   FO_AVERAGE_LERP:  ATen's lerp with a scalar weight, in the element type:
 *                       a + w * (m - a)         if |w| < 0.5
 *                       m + (w - 1) * (m - a)   otherwise (exact at w == 1)
 *   FO_AVERAGE_MEAN:  a + (m - a) / w
 * Reads model[i]; writes averaged[i] in place.  The model's arrays may overlap each other
 * (they are only read), no averaged array may overlap any other array.  Threads as the
 * optimizers (optim_multi.h): results are bit-identical for any thread count. */
void fo_average_f32(float *const *averaged, const float *const *model, const int64_t *numels,
                    int64_t ntensors, int mode, double weight);
void fo_average_f64(double *const *averaged, const double *const *model,
                    const int64_t *numels, int64_t ntensors, int mode, double weight);

/* --------------------------------------------------------------------------------------------
 * Adafactor (csrc/optim_adafactor.c): torch 2.13's step, every param of a group in one call.
 * Not a multi-tensor elementwise kernel: each param's step has reductions (its norm, the row
 * and column means of g^2, the update's norm) that gate the rest. */

/* The group's settings; eps1 already resolved (torch: None -> finfo(dtype).eps). */
typedef struct fo_adafactor_hyper {
    double lr;            /* the relative step size's cap, and weight decay's factor */
    double beta2_decay;   /* tau: 1 - beta2_t = t^tau */
    double eps1;          /* floor of sqrt(variance estimate), and of mean(row_var) */
    double eps2;          /* floor of the param's RMS in the step size */
    double d;             /* clipping threshold of the update's RMS */
    double weight_decay;  /* decoupled: p *= 1 - lr * weight_decay */
    int maximize;
} fo_adafactor_hyper;

/* One param's arrays (C-contiguous, none overlapping another).  Factored (ndim >= 2): the param
 * is batch matrices of rows x cols, row_var holds batch*rows, col_var batch*cols, variance is
 * NULL.  Vector (ndim <= 1): batch = rows = 1, cols = numel, variance holds numel, row_var and
 * col_var are NULL.  step: the param's float32 counter (incremented). */
typedef struct fo_adafactor_tensor_f32 {
    float *param;
    const float *grad;
    float *row_var, *col_var, *variance;
    float *step;
    int64_t batch, rows, cols;
} fo_adafactor_tensor_f32;
typedef struct fo_adafactor_tensor_f64 {
    double *param;
    const double *grad;
    double *row_var, *col_var, *variance;
    float *step;
    int64_t batch, rows, cols;
} fo_adafactor_tensor_f64;

/* The doubles of work buffer one param needs (the call needs the largest over its params). */
int64_t fo_adafactor_work_size(int64_t numel, int64_t cols, int factored);

/* For each param, with t = ++step, G = maximize ? -grad : grad, rho = min(lr, t^-1/2),
 * w = t^beta2_decay, alpha = max(eps2, RMS(param)) * rho:
 *   factored, per matrix:  row_var = lerp(row_var, mean_j G^2, w),
 *                          col_var = lerp(col_var, mean_i G^2, w),
 *                          V_ij = row_var_i col_var_j / max(mean(row_var), eps1)
 *   vector:                variance = lerp(variance, G^2, w), V = variance
 *   U = G / sqrt(max(V, eps1^2));  p = p * (1 - lr * weight_decay)  (if weight_decay != 0)
 *   p = p - alpha / max(1, RMS(U) / d) * U
 * (lerp is ATen's; RMS over the whole param).  Reads grad; writes param, the state arrays and
 * step; work: fo_adafactor_work_size doubles.  Bit-identical for any thread count. */
void fo_adafactor_update_f32(const fo_adafactor_tensor_f32 *tensors, int64_t ntensors,
                             const fo_adafactor_hyper *hyper, double *work);
void fo_adafactor_update_f64(const fo_adafactor_tensor_f64 *tensors, int64_t ntensors,
                             const fo_adafactor_hyper *hyper, double *work);

/* --------------------------------------------------------------------------------------------
 * Data-parallel gradient buckets (csrc/dist_pack.c, fastoptim.distributed): a piece is a run
 * of n elements of one tensor's flat data, from element lo, at element offset of a flat
 * buffer.  fo_pack_pieces: buffer[offset:offset+n] = srcs[k][lo:lo+n] for piece k (zeros
 * where srcs[k] is NULL), itemsize bytes per element.  fo_unpack_pieces: dsts[k][lo:lo+n] =
 * buffer[offset:offset+n] / divisor, one division per element in the buffer's type (a divisor
 * of 1 copies).  Pieces must not overlap each other or the buffer. */
typedef struct fo_piece {
    int64_t lo;       /* first element of the piece in its tensor's flat data */
    int64_t n;        /* elements */
    int64_t offset;   /* first element of the piece in the buffer */
} fo_piece;

void fo_pack_pieces(void *buffer, int64_t itemsize, const fo_piece *pieces,
                    const void *const *srcs, int64_t npieces);
void fo_unpack_pieces_f32(const float *buffer, const fo_piece *pieces, float *const *dsts,
                          int64_t npieces, float divisor);
void fo_unpack_pieces_f64(const double *buffer, const fo_piece *pieces, double *const *dsts,
                          int64_t npieces, double divisor);

/* --------------------------------------------------------------------------------------------
 * L-BFGS's flat-vector work (csrc/optim_lbfgs.c), torch 2.13's order of operations, serial.
 * Every dot below sums in double over fixed lanes (the same result on every CPU) and is
 * rounded to T; "fma" is one rounding, torch's add_(x, alpha=a).  No output may overlap an
 * input. */

/* y[i] = fma(x[i], alpha, y[i]) over n elements (alpha cast to T), torch's add_(x, alpha). */
void fo_lbfgs_axpy_f32(int64_t n, double alpha, const float *x, float *y);
void fo_lbfgs_axpy_f64(int64_t n, double alpha, const double *x, double *y);

/* One param's slice of the flat vector: numel elements at data (a grad to read, NULL for a
 * param without one; or a param to update). */
typedef struct fo_lbfgs_segment_f32 {
    float *data;
    int64_t numel;
} fo_lbfgs_segment_f32;
typedef struct fo_lbfgs_segment_f64 {
    double *data;
    int64_t numel;
} fo_lbfgs_segment_f64;

/* torch's _gather_flat_grad: flat = concat(segs' data, zeros where data is NULL); returns
 * max|flat| (NaN if flat holds one; 0 for no elements).  Reads the segments, writes flat. */
float fo_lbfgs_gather_f32(const fo_lbfgs_segment_f32 *segs, int64_t nsegs, float *flat);
double fo_lbfgs_gather_f64(const fo_lbfgs_segment_f64 *segs, int64_t nsegs, double *flat);

/* A new curvature pair, one pass: y = g - prev, s = d * t (t cast to T), ys = y.s, yy = y.y. */
typedef struct fo_lbfgs_pair_args_f32 {
    int64_t n;
    const float *g, *prev, *d;
    double t;
    float *y, *s;           /* written */
    float ys, yy;           /* out */
} fo_lbfgs_pair_args_f32;
typedef struct fo_lbfgs_pair_args_f64 {
    int64_t n;
    const double *g, *prev, *d;
    double t;
    double *y, *s;
    double ys, yy;
} fo_lbfgs_pair_args_f64;
void fo_lbfgs_pair_f32(fo_lbfgs_pair_args_f32 *w);
void fo_lbfgs_pair_f64(fo_lbfgs_pair_args_f64 *w);

/* fo_lbfgs_gather fused with the pair that follows it (and the recursion's first dot), block by
 * block in one pass: g = concat(segs' data, zeros where NULL), gmax = max|g|; y = g - prev,
 * s = d * t, ys = y.s, yy = y.y; and when q is not NULL, q = -g and sq = s.q (in double, not
 * rounded: the recursion's first dot over this pair, see fo_lbfgs_direction's q_ready).  The
 * same values, bit for bit, as fo_lbfgs_gather, fo_lbfgs_pair and the recursion's first pass
 * one after the other.  Reads the segments, prev and d; writes g, y, s, q. */
typedef struct fo_lbfgs_gather_pair_args_f32 {
    const fo_lbfgs_segment_f32 *segs;
    int64_t nsegs, n;       /* n = the segments' numels summed */
    const float *prev, *d;
    double t;
    float *g, *y, *s, *q;   /* written (q may be NULL) */
    float gmax, ys, yy;     /* out */
    double sq;              /* out, when q */
} fo_lbfgs_gather_pair_args_f32;
typedef struct fo_lbfgs_gather_pair_args_f64 {
    const fo_lbfgs_segment_f64 *segs;
    int64_t nsegs, n;
    const double *prev, *d;
    double t;
    double *g, *y, *s, *q;
    double gmax, ys, yy;
    double sq;
} fo_lbfgs_gather_pair_args_f64;
void fo_lbfgs_gather_pair_f32(fo_lbfgs_gather_pair_args_f32 *w);
void fo_lbfgs_gather_pair_f64(fo_lbfgs_gather_pair_args_f64 *w);

/* The two-loop recursion over the m pairs (dirs[i] = y_i, stps[i] = s_i, ro[i], oldest first),
 * d = -H g in torch's order, then gtd = g.d:
 *   q = -g;  for i = m-1 .. 0: al[i] = (s_i.q) ro[i];  q = fma(y_i, -al[i], q)
 *   r = q * h_diag;  for i = 0 .. m-1: be = (y_i.r) ro[i];  r = fma(s_i, al[i] - be, r)
 * in 2m + 1 passes (each fma pass also takes the next dot).  Writes d (q and r) and al[0..m).
 * q_ready (m >= 1): d already holds -g and sq is s_{m-1}.(-g) in double (fo_lbfgs_gather_pair's
 * q and sq), so the first pass is skipped: 2m passes, the same result. */
typedef struct fo_lbfgs_direction_args_f32 {
    int64_t n, m;
    const float *const *dirs, *const *stps;
    const float *ro;
    float h_diag;
    const float *g;
    float *d, *al;          /* written */
    float gtd;              /* out */
    int q_ready;
    double sq;
} fo_lbfgs_direction_args_f32;
typedef struct fo_lbfgs_direction_args_f64 {
    int64_t n, m;
    const double *const *dirs, *const *stps;
    const double *ro;
    double h_diag;
    const double *g;
    double *d, *al;
    double gtd;
    int q_ready;
    double sq;
} fo_lbfgs_direction_args_f64;
void fo_lbfgs_direction_f32(fo_lbfgs_direction_args_f32 *w);
void fo_lbfgs_direction_f64(fo_lbfgs_direction_args_f64 *w);

/* torch's _add_grad: each segment's param += t * its slice of d (fma, t cast to T); returns
 * max|d * t| (NaN if one; 0 for no elements).  Reads d, updates the segments. */
float fo_lbfgs_add_grad_f32(const fo_lbfgs_segment_f32 *segs, int64_t nsegs, const float *d,
                            double t);
double fo_lbfgs_add_grad_f64(const fo_lbfgs_segment_f64 *segs, int64_t nsegs, const double *d,
                             double t);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* FASTOPTIM_H */
