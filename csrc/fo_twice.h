/* fo_twice.h -- FO_TWICE: an element pass compiled twice, for the baseline target and for
 * AVX2, and run in the variant fo_simd.h's flag chose at load.  The one definition of how a
 * pass is written twice and dispatched, for the loss kernels (tensor_loss.inc) and the
 * reductions (tensor_reduce.inc). */
#ifndef FASTOPTIM_FO_TWICE_H
#define FASTOPTIM_FO_TWICE_H

#include "common.h"
#include "fo_simd.h"
#include "fo_vmath.h"   /* FO_NO_TRAPPING */

/* The element passes (the loss kernels' exp and log polynomials, point-wise formulas and
 * class gradients; the reductions' add chains) are bound by arithmetic, so each is compiled
 * twice: FO_TWICE(name, params, args) makes, from the always-inline body name##body (declared
 * FO_BODY), the function name() that runs it compiled for the baseline target or, when
 * fo_simd_avx2 says so, for AVX2 (eight float lanes, blends, three-operand forms).  No FMA
 * in either (the AVX2 target does not enable it, -std=c99 does not contract): the two give
 * the same bits (fo_simd.c).  Both carry FO_NO_TRAPPING, without which gcc would not
 * if-convert fo_vmath.h's selects (last session's target_clones attempt lost it in the
 * clone, whose exp pass stayed scalar). */
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

/* a private helper's name for the dtype being instantiated (fo_exp_run_f32_), and its
 * FO_TWICE body's (fo_exp_run_f32_body): FO_TWICE(FO_H(x), ...) takes the body FO_B(x) */
#define FO_CAT4_(a, b, c, d) a##b##c##d
#define FO_CAT4(a, b, c, d) FO_CAT4_(a, b, c, d)
#define FO_H(name) FO_CAT4(fo_, name, FO_SFX, _)
#define FO_B(name) FO_CAT4(fo_, name, FO_SFX, _body)

#endif /* FASTOPTIM_FO_TWICE_H */
