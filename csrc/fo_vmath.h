/* fo_vmath.h -- branch-free float32 exp and log that gcc vectorizes, and a double sum in a
 * fixed lane order, for the loss kernels (csrc/tensor_loss.inc).
 *
 * Why it exists: libm's expf/logf/log1pf are scalar calls (~20-40 instructions each, and a
 * call per element stops the loop from vectorizing); on a 64 x 10 batch they were most of a
 * BCE's or a cross-entropy's time.  These are Cephes' expf and logf (Cody-Waite reduction and
 * a minimax polynomial, < 2 ulp over the whole float range; the polynomials by Estrin's scheme,
 * for a short dependency chain), written with selects instead of
 * branches so that a loop over them becomes SSE2 code (4 lanes).  Special values are handled
 * by the selects: expf(-inf) = 0, 0 below -87 (where expf goes subnormal: torch's Sleef
 * flushes there too), NaN stays NaN (fo_vexpf_le0: the same for arguments <= 0, cheaper);
 * logf(0) = -inf, logf(inf) = inf, logf(x < 0) and logf(NaN) = NaN, subnormals are scaled
 * into the normal range first.
 * float64 keeps libm (its exp/log are the oracle's to the last bit).
 *
 * gcc if-converts (and so vectorizes) these selects only without -ftrapping-math (a select
 * could raise an FP exception the branchy code would not); nothing in fastoptim reads the FP
 * flags, so every function that inlines them carries FO_NO_TRAPPING. */
#ifndef FASTOPTIM_VMATH_H
#define FASTOPTIM_VMATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(__GNUC__) && !defined(__clang__)
#define FO_NO_TRAPPING __attribute__((optimize("no-trapping-math")))
#else
#define FO_NO_TRAPPING
#endif

/* exp(r) for |r| <= ln 2 / 2 + a little (Cephes' minimax polynomial), 1 + r + r^2 P(r) with
 * P of degree 5 evaluated by Estrin's scheme: the three pairs c r + c' and r^2, r^4 are
 * independent, so the chain is ~7 dependent mul/add instead of Horner's ~13 (the loops over
 * this were latency-bound, not op-bound).  r + r^2 P is summed first and 1 added last, as
 * Cephes does (1 + r first would round away r's low bits). */
FO_NO_TRAPPING static inline float fo_vexpf_poly(float r)
{
    const float z = r * r, z2 = z * z;
    const float q0 = 1.6666665459e-1f * r + 5.0000001201e-1f;
    const float q1 = 8.3334519073e-3f * r + 4.1665795894e-2f;
    const float q2 = 1.9875691500e-4f * r + 1.3981999507e-3f;
    const float y = z * q0 + z2 * (q1 + z * q2);
    return (y + r) + 1.0f;
}

/* The reduction x = k ln 2 + r, k = round(x log2 e), for |x| <= 2^21: adding 1.5 * 2^23 rounds
 * x log2 e to an integer (to nearest, the default mode) whose value sits in the sum's low
 * mantissa bits, so k comes out as an int by one integer subtraction (no float -> int
 * conversion, no floor fix-up); ln 2 in two parts keeps r exact to float rounding. */
#define FO_VEXP_MAGIC 12582912.0f                         /* 1.5 * 2^23 */
#define FO_VEXP_MAGIC_BITS 0x4b400000
FO_NO_TRAPPING static inline float fo_vexpf_reduce(float v, int32_t *k)
{
    const float kf = v * 1.44269504088896341f + FO_VEXP_MAGIC;
    int32_t kb;
    memcpy(&kb, &kf, sizeof kb);
    *k = kb - FO_VEXP_MAGIC_BITS;
    const float kr = kf - FO_VEXP_MAGIC;
    const float r = v - kr * 0.693359375f;
    return r - kr * -2.12194440e-4f;
}

FO_NO_TRAPPING static inline float fo_vexpf(float xi)
{
    /* exp(x) = 2^k exp(r); the argument is clamped to [-87, ln FLT_MAX] for the reduction and
     * the ends fixed by select */
    const float v0 = xi < -87.0f ? -87.0f : xi;          /* NaN passes through */
    const float v = v0 > 88.72283935546875f ? 88.72283935546875f : v0;   /* ln FLT_MAX */
    int32_t kb;
    const float y = fo_vexpf_poly(fo_vexpf_reduce(v, &kb));
    /* 2^k in two halves, so k = 128 (x near 88.7) does not overflow the exponent field
     * (unsigned: a NaN's k is garbage, which must not make the shift undefined) */
    const int32_t k1 = kb >> 1, k2 = kb - k1;
    const uint32_t b1 = ((uint32_t)k1 + 127u) << 23, b2 = ((uint32_t)k2 + 127u) << 23;
    float p1, p2;
    memcpy(&p1, &b1, sizeof p1);
    memcpy(&p2, &b2, sizeof p2);
    float out = y * p1 * p2;
    out = xi < -87.0f ? 0.0f : out;
    out = xi > 88.72283935546875f ? INFINITY : out;
    return out;
}

/* exp(x) for x <= 0 or NaN only (softmax's x - max, log-probabilities): fo_vexpf's values, bit
 * for bit (0 below -87, NaN stays NaN, exp(-inf) = 0), without its upper end: k is in
 * [-126, 0], 2^k one exponent field, and every result >= exp(-87) is normal. */
FO_NO_TRAPPING static inline float fo_vexpf_le0(float xi)
{
    const float v = xi < -87.0f ? -87.0f : xi;           /* NaN passes through */
    int32_t kb;
    const float y = fo_vexpf_poly(fo_vexpf_reduce(v, &kb));
    const uint32_t b = ((uint32_t)kb + 127u) << 23;
    float p;
    memcpy(&p, &b, sizeof p);
    const float out = y * p;
    return xi < -87.0f ? 0.0f : out;
}

/* log(2^e (1 + f)) for f in [sqrt(1/2) - 1, sqrt 2 - 1): Cephes' logf polynomial (degree 9,
 * f^3 P(f) with P of degree 8) and its order of the e ln 2 terms (ln 2 in two parts).  P by
 * Estrin's scheme (pairs p_i + p_{i+1} f with f^2, f^4 alongside), and f^3 formed apart:
 * ~8 dependent mul/add to P f^3 instead of Horner's ~18. */
FO_NO_TRAPPING static inline float fo_vlogf_core(float f, float fe)
{
    const float z = f * f, z2 = z * z, f3 = z * f;
    const float q0 = -2.4999993993e-1f * f + 3.3333331174e-1f;
    const float q1 = -1.6668057665e-1f * f + 2.0000714765e-1f;
    const float q2 = -1.2420140846e-1f * f + 1.4249322787e-1f;
    const float q3 = -1.1514610310e-1f * f + 1.1676998740e-1f;
    const float p = (q0 + z * q1) + z2 * ((q2 + z * q3) + z2 * 7.0376836292e-2f);
    float y = p * f3;
    y = y + fe * -2.12194440e-4f;
    y = y - 0.5f * z;
    const float out = f + y;
    return out + fe * 0.693359375f;
}

/* The reduction x = 2^k m, m in [sqrt(1/2), sqrt 2), for a positive normal x, then
 * log x = k ln 2 + log1p(m - 1) by fo_vlogf_core: the bits of x less those of sqrt(1/2)
 * (0x3f3504f3, the float nearest) give k in their exponent field (an arithmetic shift) and, in
 * their mantissa put back on sqrt(1/2)'s bits, m: integer adds and masks only, where taking m
 * in [1/2, 1) and then doubling it below sqrt(1/2) cost a compare and two selects (a 640-float
 * log pass, ~650 -> ~560 ns).  m - 1 is exact (Sterbenz).  x = 0 would give k = -127, m = 1,
 * a finite -88.03: fo_vlogf_unit scales 0 (and subnormals) first, and the other callers below
 * never pass it (fo_vlog1p_neg_unit replaces its one case). */
FO_NO_TRAPPING static inline float fo_vlogf_normal(float x, int32_t k_bias)
{
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int32_t ix = bits - 0x3f3504f3;
    const int32_t mb = (ix & 0x007fffff) + 0x3f3504f3;
    float m;
    memcpy(&m, &mb, sizeof m);
    return fo_vlogf_core(m - 1.0f, (float)((ix >> 23) - k_bias));
}

/* log x without the special-value selects: the reduction and polynomial fo_vlogf finishes
 * with its selects, so for x > 0 (finite) the same values bit for bit.  Called alone, for
 * 0 <= x <= 1 only, as the clamp max(., -100) of BCE's log terms (torch's) reads it: for x = 0
 * -150 ln 2 (< -100) instead of -inf; no selects for the special values a range-checked x
 * cannot be.  Subnormals (and 0) are scaled into the normal range first. */
FO_NO_TRAPPING static inline float fo_vlogf_unit(float x)
{
    const int sub = x < 1.17549435e-38f;                  /* subnormal or 0: scale up */
    return fo_vlogf_normal(sub ? x * 8388608.0f : x, sub ? 23 : 0);   /* 2^23 */
}

FO_NO_TRAPPING static inline float fo_vlogf(float x)
{
    float out = fo_vlogf_unit(x);    /* the reduction and polynomial; then the ends */
    out = x == 0.0f ? -INFINITY : out;
    out = x == INFINITY ? INFINITY : out;
    out = (x < 0.0f || x != x) ? NAN : out;
    return out;
}

/* log x for x >= 1 (finite) or NaN only -- the softmax row sums s = sum exp(x - max), each
 * >= 1 (the max's own term) and < 2^31: fo_vlogf's values bit for bit (no subnormal scaling
 * to skip past, and of its end selects only NaN's can apply), with a chain ~6 ops shorter
 * for the short (latency-bound) passes over one sum per row. */
FO_NO_TRAPPING static inline float fo_vlogf_ge1(float x)
{
    const float r = fo_vlogf_normal(x, 0);
    return x != x ? x : r;
}

/* log1p(u) for -1 < u <= 1: w = 1 + u rounded, c = u - (w - 1) its rounding error, exact
 * (Fast2Sum: |u| <= 1), and log1p(u) = log(w) + log1p(c / w) = log(w) + c / w to far below
 * an ulp; 1 / w is taken as 2 - w, off by (1 - w)^2 relatively: c is at most half an ulp of
 * w (0 where w is exact, as for all u <= -1/2), so where w is far from 1 c / w is a tiny part
 * of the result.  w is never subnormal: w >= 2^-24 or w = 0 (u = -1, for the caller).
 * Checked against double log1p on every float u in [-1, 1]: at most 1.44 ulp (u <= 0) and
 * 1.37 (u >= 0), where Goldberg's log(w) u / (w - 1) here was 2.02 and 2.47; and no division
 * and no select.  A NaN u gives NaN (through c). */
FO_NO_TRAPPING static inline float fo_vlog1pf_small(float u)
{
    const float w = 1.0f + u, c = u - (w - 1.0f);
    return fo_vlogf_normal(w, 0) + c * (2.0f - w);
}

/* log1p(-x) for 0 <= x <= 1 only, read through BCE's clamp max(., -100): -inf for x = 1 */
FO_NO_TRAPPING static inline float fo_vlog1p_neg_unit(float x)
{
    const float r = fo_vlog1pf_small(-x);
    return x == 1.0f ? -INFINITY : r;
}

/* log1p(u) = log(w) u / (w - 1) with w = 1 + u rounded (exact where w == 1: u): the rounding
 * of 1 + u cancels, so it is accurate to a few ulp for tiny u (Goldberg's trick); for any u,
 * the special values included. */
FO_NO_TRAPPING static inline float fo_vlog1pf(float u)
{
    const float w = 1.0f + u, d = w - 1.0f;
    const float r = fo_vlogf(w) * (u / (d == 0.0f ? 1.0f : d));
    return d == 0.0f ? u : (w == INFINITY ? w : r);
}

/* The lane order of every double sum in the loss and reduction kernels: sum over i < n of
 * term (a double expression of the index variable named by i), in 4 interleaved lanes (lane k
 * takes i = k mod 4), then (lane 0 + lane 1) + (lane 2 + lane 3), then the tail in index
 * order.  A fixed order, so results are deterministic (whatever the build's vector width), and
 * the four chains overlap instead of each add waiting on the last (a 640-element float32 sum:
 * ~1260 TSC ticks as one serial chain, ~350 in lanes).  The lanes are an array updated by one
 * inner loop, which gcc turns into one vector add (two with SSE2).  The NumPy twins spell the
 * same order out (fastoptim/_reference.py: lane_sum). */
#define FO_LANES_SUM(n, i, term, result)                                                  \
    do {                                                                                  \
        double a_[4] = {0.0, 0.0, 0.0, 0.0};                                              \
        int64_t b_ = 0;                                                                   \
        for (; b_ + 4 <= (n); b_ += 4)                                                    \
            for (int j_ = 0; j_ < 4; j_++) {                                              \
                const int64_t i = b_ + j_;                                                \
                a_[j_] += (term);                                                         \
            }                                                                             \
        double s_ = (a_[0] + a_[1]) + (a_[2] + a_[3]);                                    \
        for (int64_t i = b_; i < (n); i++) s_ += (term);                                  \
        (result) = s_;                                                                    \
    } while (0)

/* FO_SUM_LANES with the four lanes held in one 4-double vector (GCC vector extensions): the
 * same adds in the same order, so the same bits.  For code compiled for AVX2 only (a
 * FO_TWICE_V body's avx2 branch): there the lanes are one ymm register and each step one
 * vcvtps2pd and one vaddpd (tensor_loss.inc's weigh_sum, 640 floats: 1.83k -> 0.88k
 * instructions); in an SSE2 build gcc keeps this vector on the stack instead (a 640-float
 * sum, 212 -> 395 ns).  The element-wise initializer, not __builtin_convertvector, is what
 * gcc 12 turns into one vcvtps2pd. */
#if defined(__GNUC__) || defined(__clang__)
#define FO_SUM_LANES_VEC(T, n, v, result)                                                 \
    do {                                                                                  \
        typedef T t4_ __attribute__((vector_size(4 * sizeof(T))));                        \
        typedef double d4_ __attribute__((vector_size(32)));                              \
        d4_ a_ = {0.0, 0.0, 0.0, 0.0};                                                    \
        int64_t b_ = 0;                                                                   \
        for (; b_ + 4 <= (n); b_ += 4) {                                                  \
            t4_ x_;                                                                       \
            memcpy(&x_, (v) + b_, sizeof x_);                                             \
            a_ += (d4_){(double)x_[0], (double)x_[1], (double)x_[2], (double)x_[3]};      \
        }                                                                                 \
        double s_ = (a_[0] + a_[1]) + (a_[2] + a_[3]);                                    \
        for (int64_t i_ = b_; i_ < (n); i_++) s_ += (double)(v)[i_];                      \
        (result) = s_;                                                                    \
    } while (0)
#else
#define FO_SUM_LANES_VEC(T, n, v, result) FO_SUM_LANES(T, n, v, result)
#endif

/* the sum of the n values (double)v[i] in that order */
#define FO_SUM_LANES(T, n, v, result) FO_LANES_SUM(n, i_, (double)(v)[i_], result)

/* the same order for the sum of the products (double)u[i] * (double)v[i] */
#define FO_DOT_LANES(T, n, u, v, result)                                                  \
    FO_LANES_SUM(n, i_, (double)(u)[i_] * (double)(v)[i_], result)

#endif
