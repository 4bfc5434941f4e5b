/* fo_simd.c -- the instruction set of the element loops compiled twice, chosen once when the
 * library loads (fo_simd in fastoptim.h; fo_simd.h says which loops).
 *
 * Why it exists: what we ship is compiled for baseline x86-64 (SSE2: 4 float lanes, two-operand
 * instructions, selects as and/andnot/or), and at that width some loops are bound by arithmetic
 * rather than by memory: those of Adam/AdamW, RMSprop, Adagrad, Adadelta, NAdam and RAdam (one to
 * three divisions or square roots per element), Adamax and Rprop (chains of compares and
 * selects), and the loss kernels' exp and log polynomials (csrc/tensor_loss.inc).  The segment
 * callbacks of the eleven elementwise optimizers (SGD's and ASGD's too: fewer instructions per
 * byte) and the loss passes are therefore compiled a second time for AVX2 (FO_SEGMENTS in
 * optim_multi.h, FO_TWICE in fo_twice.h) and this file says which one runs.  Both run the
 * same IEEE operations in the same order (the AVX2 target has no FMA, and -std=c99 keeps the
 * compiler from contracting a*b+c anyway), so the results are bit-identical whichever runs;
 * FASTOPTIM_SIMD=baseline forces the baseline loops, so the tests can check exactly that.  The
 * choice is a plain global set by a constructor, before any kernel can run, and only read
 * afterwards: no locking, no per-call CPU query. */
#include <stdlib.h>
#include <string.h>

#include "fastoptim.h"
#include "fo_simd.h"

#ifdef FO_SIMD_DISPATCH
int fo_simd_avx2 = 0;

__attribute__((constructor)) static void fo_simd_init(void)
{
    const char *force = getenv("FASTOPTIM_SIMD");
    __builtin_cpu_init();   /* the constructor may run before libgcc's own */
    fo_simd_avx2 = __builtin_cpu_supports("avx2") && !(force && strcmp(force, "baseline") == 0);
}
#endif

const char *fo_simd(void)
{
#ifdef FO_SIMD_DISPATCH
    return fo_simd_avx2 ? "avx2" : "baseline";
#else
    return "baseline";
#endif
}
