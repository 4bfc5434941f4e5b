/* fo_simd.h -- whether this build compiles some element loops a second time for AVX2, and the
 * flag (set once at load, csrc/fo_simd.c) that says which variant runs.
 *
 * Why it exists: the optimizer segments (FO_SEGMENTS, optim_multi.h) and the loss passes
 * (FO_TWICE, fo_twice.h) dispatch on the same choice, so it is made and tested once.  A
 * build can opt out with CFLAGS=-DFO_NO_SIMD_DISPATCH. */
#ifndef FASTOPTIM_FO_SIMD_H
#define FASTOPTIM_FO_SIMD_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) \
    && !defined(FO_NO_SIMD_DISPATCH)
#define FO_SIMD_DISPATCH 1
extern int fo_simd_avx2; /* fo_simd.c: set once when the library loads */
#endif

#endif /* FASTOPTIM_FO_SIMD_H */
