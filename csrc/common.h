/* common.h -- private helpers shared by every kernel source in csrc/.
 *
 * Why it exists: one place for the portability macros (restrict, inline, OpenMP shims), the
 * size thresholds, and the float32/float64 instantiation trick, so that each kernel is written
 * once and compiled for both dtypes.  Not part of the public API (that is fastoptim.h).
 */
#ifndef FASTOPTIM_COMMON_H
#define FASTOPTIM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>

#define FO_RESTRICT restrict
#define FO_INLINE static inline

/* OpenMP is optional: setup.py probes the compiler and defines FO_HAVE_OPENMP when it works.
 * Without it the pragmas below vanish and every loop runs serially. */
#ifdef FO_HAVE_OPENMP
#include <omp.h>
#define FO_PRAGMA(x) _Pragma(#x)
#define FO_OMP_FOR(n) FO_PRAGMA(omp parallel for schedule(static) if ((n) >= FO_OMP_MIN_ELEMS))
#else
#define FO_PRAGMA(x)
#define FO_OMP_FOR(n)
#endif

/* FO_LOOP(n, body...): run body for int64_t i in [0, n), with a static OpenMP schedule only
 * when n reaches FO_OMP_MIN_ELEMS.  Prefer it to FO_OMP_FOR: even a parallel region whose
 * if() clause is false still enters the OpenMP runtime (~0.1-0.2 us), which dominates the tiny
 * kernels of a small model's training step. */
#define FO_LOOP(n, ...)                                                                   \
    do {                                                                                  \
        const int64_t fo_n_ = (n);                                                        \
        if (fo_n_ >= FO_OMP_MIN_ELEMS) {                                                  \
            FO_PRAGMA(omp parallel for schedule(static))                                  \
            for (int64_t i = 0; i < fo_n_; i++) { __VA_ARGS__ }                           \
        } else {                                                                          \
            for (int64_t i = 0; i < fo_n_; i++) { __VA_ARGS__ }                           \
        }                                                                                 \
    } while (0)

/* Below this many elements a parallel region costs more than it gives.  Measured on the 2-core
 * benchmark machine (a VM) with OMP_WAIT_POLICY=PASSIVE, which fastoptim sets on import: waking a
 * sleeping thread costs 30-70 us there, so one float32 param's step on 1 thread / 2 threads took
 *     elements   SGD (momentum)    Adam
 *     65536      12 / 38 us        37 / 41 us
 *     262144     99 / 107 us      149 / 174 us
 *     524288    219 / 202 us      312 / 265 us
 *     1048576   440 / 322 us      609 / 446 us
 * (with threads that spin instead, 2 threads already win at 65536).  Element updates are
 * independent, so results do not depend on whether (or how many) threads run.  A build can
 * override it: CFLAGS=-DFO_OMP_MIN_ELEMS=... */
#ifndef FO_OMP_MIN_ELEMS
#define FO_OMP_MIN_ELEMS 524288
#endif

/* Instantiation: a kernel body lives in a .inc file written in terms of
 *   T          the element type (float or double)
 *   FO_FN(x)   the kernel name fo_x_f32 / fo_x_f64
 * and the matching .c file includes it twice through fo_instantiate.h. */
#define FO_CAT3_(a, b, c) a##b##c
#define FO_CAT3(a, b, c) FO_CAT3_(a, b, c)
#define FO_FN(name) FO_CAT3(fo_, name, FO_SFX)

#endif /* FASTOPTIM_COMMON_H */
