/* fo_vmath.h -- branch-free float32 exp and log that gcc vectorizes, and a double sum in a
 * fixed lane order, for the loss kernels (csrc/tensor_loss.inc).
 *
 * Why it exists: libm's expf/logf/log1pf are scalar calls (~20-40 instructions each, and a
 * call per element stops the loop from vectorizing); on a 64 x 10 batch they were most of a
 * BCE's or a cross-entropy's time.  These are Cephes' expf and logf (Cody-Waite reduction and
 * a minimax polynomial, < 2 ulp over the whole float range), written with selects instead of
 * branches so that a loop over them becomes SSE2 code (4 lanes).  Special values are handled
 * by the selects: expf(-inf) = 0, 0 below -87.3 (where expf goes subnormal: torch's Sleef
 * flushes there too), NaN stays NaN; logf(0) = -inf, logf(inf) = inf, logf(x < 0) and
 * logf(NaN) = NaN, subnormals are scaled into the normal range first.
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

FO_NO_TRAPPING static inline float fo_vexpf(float xi)
{
    /* exp(x) = 2^k exp(r), k = round(x log2 e), r = x - k ln 2 (ln 2 in two parts); the
     * argument is clamped to [-87, ln FLT_MAX] for the reduction and the ends fixed by select */
    const float v0 = xi < -87.0f ? -87.0f : xi;          /* NaN passes through */
    const float v = v0 > 88.72283935546875f ? 88.72283935546875f : v0;   /* ln FLT_MAX */
    const float fx = v * 1.44269504088896341f + 0.5f;
    const int32_t kt = (int32_t)fx;
    const int32_t kb = kt - ((float)kt > fx);             /* floor, vectorizable */
    const float k = (float)kb;
    float r = v - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    const float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    /* 2^k in two halves, so k = 128 (x near 88.7) does not overflow the exponent field */
    const int32_t k1 = kb >> 1, k2 = kb - k1;
    int32_t b1 = (k1 + 127) << 23, b2 = (k2 + 127) << 23;
    float p1, p2;
    memcpy(&p1, &b1, sizeof p1);
    memcpy(&p2, &b2, sizeof p2);
    float out = y * p1 * p2;
    out = xi < -87.0f ? 0.0f : out;
    out = xi > 88.72283935546875f ? INFINITY : out;
    return out;
}

FO_NO_TRAPPING static inline float fo_vlogf(float x)
{
    /* x = 2^e m with m in [sqrt(1/2), sqrt 2): log x = e ln 2 + log1p(m - 1), the latter a
     * degree-9 polynomial (Cephes' logf) */
    const int sub = x < 1.17549435e-38f;                  /* subnormal (or <= 0): scale up */
    const float xs = sub ? x * 8388608.0f : x;            /* 2^23 */
    int32_t bits;
    memcpy(&bits, &xs, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 126 - (sub ? 23 : 0);
    int32_t mb = (bits & 0x007fffff) | 0x3f000000;        /* m in [0.5, 1) */
    float m;
    memcpy(&m, &mb, sizeof m);
    const int lo = m < 0.707106781186547524f;
    e = e - lo;
    m = lo ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    const float fe = (float)e;
    y = y + fe * -2.12194440e-4f;
    y = y - 0.5f * z;
    float out = m + y;
    out = out + fe * 0.693359375f;
    out = x == 0.0f ? -INFINITY : out;
    out = x == INFINITY ? INFINITY : out;
    out = (x < 0.0f || x != x) ? NAN : out;
    return out;
}

/* log1p(u) = log(w) u / (w - 1) with w = 1 + u rounded (exact where w == 1: u): the rounding
 * of 1 + u cancels, so it is accurate to a few ulp for tiny u (Goldberg's trick). */
FO_NO_TRAPPING static inline float fo_vlog1pf(float u)
{
    const float w = 1.0f + u, d = w - 1.0f;
    const float r = fo_vlogf(w) * (u / (d == 0.0f ? 1.0f : d));
    return d == 0.0f ? u : (w == INFINITY ? w : r);
}

/* sum of n doubles made from T values, in 4 interleaved lanes (lane k takes i = k mod 4) then
 * lane 0 + 1 + 2 + 3 + the tail in index order: a fixed order, so results are deterministic,
 * and the four chains overlap instead of waiting on one add each. */
#define FO_SUM_LANES(T, n, v, result)                                                     \
    do {                                                                                  \
        double a0_ = 0.0, a1_ = 0.0, a2_ = 0.0, a3_ = 0.0;                                \
        int64_t i_ = 0;                                                                   \
        for (; i_ + 4 <= (n); i_ += 4) {                                                  \
            a0_ += (double)(v)[i_];                                                       \
            a1_ += (double)(v)[i_ + 1];                                                   \
            a2_ += (double)(v)[i_ + 2];                                                   \
            a3_ += (double)(v)[i_ + 3];                                                   \
        }                                                                                 \
        double s_ = (a0_ + a1_) + (a2_ + a3_);                                            \
        for (; i_ < (n); i_++) s_ += (double)(v)[i_];                                     \
        (result) = s_;                                                                    \
    } while (0)

#endif
