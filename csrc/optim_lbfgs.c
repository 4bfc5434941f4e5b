/* optim_lbfgs.c -- the axpy of L-BFGS's flat-vector work (fastoptim/optim/lbfgs.py):
 * y[i] = fma(x[i], alpha, y[i]), one rounding per element, as torch's add_(x, alpha=alpha)
 * computes it on the CPU (ATen's vectorised fmadd); a mul then add rounds twice and drifts
 * from torch's iterates by an ulp per iteration. Serial: the vectors are what one closure
 * evaluates, and the per-iteration cost is the call, not the pass. */
#include <math.h>
#include "fastoptim.h"

void fo_lbfgs_axpy_f32(int64_t n, double alpha, const float *restrict x, float *restrict y)
{
    const float a = (float)alpha;
    for (int64_t i = 0; i < n; i++)
        y[i] = fmaf(x[i], a, y[i]);
}

void fo_lbfgs_axpy_f64(int64_t n, double alpha, const double *restrict x, double *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fma(x[i], alpha, y[i]);
}
