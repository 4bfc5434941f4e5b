/* optim_lbfgs.c -- the axpy of L-BFGS's flat-vector work (fastoptim/optim/lbfgs.py):
 * y[i] = fma(x[i], alpha, y[i]), one rounding per element, as torch's add_(x, alpha=alpha)
 * computes it on the CPU (ATen's vectorised fmadd); a mul then add rounds twice and drifts
 * from torch's iterates by an ulp per iteration. Serial: the vectors are what one closure
 * evaluates, and the per-iteration cost is the call, not the pass.
 * Baseline x86-64 has no FMA instruction, so fma() there is a slow libm routine (~20x): a
 * target_clones "fma" variant, chosen at load time, makes it one vfmadd (same result). */
#include <math.h>
#include "fastoptim.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FO_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FO_FMA_CLONES
#endif

FO_FMA_CLONES
void fo_lbfgs_axpy_f32(int64_t n, double alpha, const float *restrict x, float *restrict y)
{
    const float a = (float)alpha;
    for (int64_t i = 0; i < n; i++)
        y[i] = fmaf(x[i], a, y[i]);
}

FO_FMA_CLONES
void fo_lbfgs_axpy_f64(int64_t n, double alpha, const double *restrict x, double *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fma(x[i], alpha, y[i]);
}
