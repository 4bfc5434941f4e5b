/* optim_multi.h -- private driver shared by the multi-tensor optimizer kernels (optim_*.c).
 *
 * Why it exists: every optimizer kernel updates a whole param group (many tensors of different
 * sizes) in one call.  Splitting the work per tensor would leave threads idle on a group of many
 * small tensors, and splitting each tensor would fork/join once per tensor.  Instead this driver
 * treats the group as one flat index space (tensor 0's elements, then tensor 1's, ...) and gives
 * each thread one contiguous, equal share of it.  A thread then visits the (tensor, sub-range)
 * segments that fall in its share.  Every element is updated by exactly one thread with the same
 * arithmetic, so results are bit-identical for any thread count.  No allocation, one parallel
 * region per call, and none at all below FO_OMP_MIN_ELEMS elements in total.
 *
 * Step counters: torch keeps state['step'] as a float32 scalar and increments it before the
 * update.  The segment callback receives the incremented value t (computed, not stored), and the
 * driver stores it once per tensor after the parallel region, so that a tensor split across
 * threads never sees a half-incremented counter.
 *
 * Team mode: fastoptim's own steady-state step (fastoptim/_C/_optim.pyx) opens the parallel
 * region itself, before it has collected the group's arrays, so that waking the other threads
 * overlaps that collection.  Every thread of that region then calls the kernel with the same
 * arguments and updates only its share, the same share the driver's own region would give it,
 * and leaves the step counters to that caller, which increments them after the region (a
 * barrier here would cost another wake-up).  fo_team_mode says so; it is thread-private, set
 * only by that caller around its kernel calls, so a kernel called any other way (by a user, even
 * from inside a parallel region of their own) behaves as documented in fastoptim.h.
 */
#ifndef FASTOPTIM_OPTIM_MULTI_H
#define FASTOPTIM_OPTIM_MULTI_H

#include "common.h"
#include "fo_simd.h"

/* The loop bodies are written once with their flags as parameters and instantiated with constant
 * flags (one specialised, vectorizable loop per flag combination) by forcing inlining. */
#if defined(__GNUC__) || defined(__clang__)
#define FO_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define FO_ALWAYS_INLINE static inline
#endif

/* Per-step scalars derived from a step count, cached per thread: consecutive segments usually
 * belong to tensors at the same step, and pow() per tensor would cost more than a small
 * tensor's update. */
typedef struct fo_step_cache {
    int valid;
    float t;          /* the step count the scalars were computed for */
    double s[4];      /* kernel-specific scalars (bias corrections, step sizes) */
} fo_step_cache;

/* Update elements [off, off + len) of tensor i; t is the tensor's incremented step count (or 0
 * when the kernel has no counter). */
typedef void (*fo_segment_fn)(const void *ctx, int64_t i, int64_t off, int64_t len, float t,
                              fo_step_cache *cache);

/* Runtime SIMD dispatch (fo_simd.c says why).  FO_SEGMENTS(name) turns the always-inline segment
 * body FO_FN(name##_segment_body) into the callbacks FO_FN(name##_segment) (the build's baseline
 * target) and, on x86-64 with GCC or clang, FO_FN(name##_segment_avx2) (the same source compiled
 * for AVX2, without FMA), and defines FO_FN(name##_segment_pick)(), the one to run (fo_simd.h). */
#ifdef FO_SIMD_DISPATCH
#define FO_SEGMENT_AVX2(name)                                                                 \
    __attribute__((target("avx2"))) static void FO_FN(name##_segment_avx2)(                 \
        const void *ctx, int64_t i, int64_t off, int64_t n, float t, fo_step_cache *cache)  \
    {                                                                                         \
        FO_FN(name##_segment_body)(ctx, i, off, n, t, cache);                                 \
    }
#define FO_SEGMENT_PICK(name) (fo_simd_avx2 ? FO_FN(name##_segment_avx2) : FO_FN(name##_segment))
#else
#define FO_SEGMENT_AVX2(name)
#define FO_SEGMENT_PICK(name) FO_FN(name##_segment)
#endif
#define FO_SEGMENTS(name)                                                                     \
    static void FO_FN(name##_segment)(const void *ctx, int64_t i, int64_t off, int64_t n,    \
                                      float t, fo_step_cache *cache)                          \
    {                                                                                         \
        FO_FN(name##_segment_body)(ctx, i, off, n, t, cache);                                 \
    }                                                                                         \
    FO_SEGMENT_AVX2(name)                                                                     \
    FO_INLINE fo_segment_fn FO_FN(name##_segment_pick)(void) { return FO_SEGMENT_PICK(name); }

/* Elements are split at multiples of this many, so two threads never write one cache line. */
#define FO_SEGMENT_ALIGN 16

#ifdef FO_HAVE_OPENMP
extern int fo_team_mode; /* defined in optim_team.c */
#pragma omp threadprivate(fo_team_mode)
#define FO_IN_TEAM_MODE fo_team_mode
#else
#define FO_IN_TEAM_MODE 0
#endif
/* A kernel with per-tensor scalar state besides the step counters (NAdam's mu_product, ASGD's
 * eta and mu) stores it after fo_multi_tensor_run, once per tensor, unless FO_IN_TEAM_MODE: then,
 * as for the counters, its caller does (see optim_nadam.inc).  Those scalars are torch 0-dim
 * tensors of float32, or of float64 (a float64 default dtype, or loaded into a float64 param:
 * torch's load_state_dict casts every state entry but 'step' to the param's dtype), so one call
 * takes them as void pointers and a flag saying which for all of them.  fo_scalar_get returns the
 * value as a double (exact); fo_scalar_set rounds to the storage type. */
FO_INLINE double fo_scalar_get(const void *x, int f64)
{
    return f64 ? *(const double *)x : (double)*(const float *)x;
}
FO_INLINE void fo_scalar_set(void *x, int f64, double v)
{
    if (f64)
        *(double *)x = v;
    else
        *(float *)x = (float)v;
}

/* Thread tid's share [*lo, *hi) of nth equal shares of [0, total), inner boundaries rounded down
 * to a multiple of FO_SEGMENT_ALIGN (total * tid cannot overflow: total < 2^48, tid < 2^15). */
FO_INLINE void fo_share(int64_t total, int64_t nth, int64_t tid, int64_t *lo, int64_t *hi)
{
    *lo = tid == 0 ? 0 : total * tid / nth / FO_SEGMENT_ALIGN * FO_SEGMENT_ALIGN;
    *hi = tid == nth - 1 ? total : total * (tid + 1) / nth / FO_SEGMENT_ALIGN * FO_SEGMENT_ALIGN;
}

/* Visit the segments of the flat index range [lo, hi). */
FO_INLINE void fo_multi_tensor_range(const int64_t *numels, int64_t ntensors, float *const *steps,
                                     fo_segment_fn seg, const void *ctx, int64_t lo, int64_t hi)
{
    fo_step_cache cache;
    cache.valid = 0;
    int64_t base = 0;
    for (int64_t i = 0; i < ntensors && base < hi; base += numels[i], ++i) {
        int64_t s = lo > base ? lo - base : 0;
        int64_t e = hi - base < numels[i] ? hi - base : numels[i];
        if (s < e) seg(ctx, i, s, e - s, steps ? *steps[i] + 1.0f : 0.0f, &cache);
    }
}

FO_INLINE void fo_multi_tensor_run(const int64_t *numels, int64_t ntensors, float *const *steps,
                                   fo_segment_fn seg, const void *ctx)
{
    int64_t total = 0;
    for (int64_t i = 0; i < ntensors; ++i) total += numels[i];

#ifdef FO_HAVE_OPENMP
    if (fo_team_mode) {
        /* Called by every thread of the caller's region: this thread's share only. */
        int64_t lo, hi;
        fo_share(total, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        fo_multi_tensor_range(numels, ntensors, steps, seg, ctx, lo, hi);
        return;
    }
    /* Branch rather than `parallel if`: even a one-thread region costs a runtime call. */
    if (total >= FO_OMP_MIN_ELEMS) {
#pragma omp parallel
        {
            int64_t lo, hi;
            fo_share(total, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            fo_multi_tensor_range(numels, ntensors, steps, seg, ctx, lo, hi);
        }
    } else
#endif
    {
        fo_multi_tensor_range(numels, ntensors, steps, seg, ctx, 0, total);
    }
    /* torch does step += 1 on a float32 tensor; empty tensors count their steps too. */
    if (steps)
        for (int64_t i = 0; i < ntensors; ++i) *steps[i] = *steps[i] + 1.0f;
}

/* sqrt for the element type: the .inc bodies call FO_FN(sqrt)(x). */
FO_INLINE float fo_sqrt_f32(float x) { return sqrtf(x); }
FO_INLINE double fo_sqrt_f64(double x) { return sqrt(x); }

/* |x| for the element type (exact, so the same as torch's abs; a float32 |x| through double
 * would cost two conversions per element). */
FO_INLINE float fo_fabs_f32(float x) { return fabsf(x); }
FO_INLINE double fo_fabs_f64(double x) { return fabs(x); }

/* torch.maximum semantics: NaN if either operand is NaN. */
FO_INLINE float fo_nanmax_f32(float a, float b) { return (a != a || a > b) ? a : b; }
FO_INLINE double fo_nanmax_f64(double a, double b) { return (a != a || a > b) ? a : b; }

/* ATen's lerp (aten/src/ATen/native/Lerp.h semantics) for a scalar weight w already rounded to
 * the element type: small weights use a + w*(b - a), others b - (b - a)*(1 - w), which keeps the
 * result exact at w == 1.  The kernels pass `w_small` and `one_minus_w` precomputed. */

#endif /* FASTOPTIM_OPTIM_MULTI_H */
