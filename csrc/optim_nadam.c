/* optim_nadam.c -- NAdam multi-tensor update kernels,
 * fo_nadam_update_f32 / fo_nadam_update_f64,
 * generated from optim_nadam.inc, and fo_nadam_advance, the once-per-tensor store of the
 * mu_product scalars (dtype-free, so written once here; prototypes in fastoptim.h). */
#include "fastoptim.h"
#include "optim_multi.h"

/* torch's momentum schedule mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)), in Python
 * float arithmetic.  One definition for the segments and fo_nadam_advance, so both agree. */
FO_INLINE double fo_nadam_mu(double beta1, double momentum_decay, double t)
{
    return beta1 * (1.0 - 0.5 * pow(0.96, t * momentum_decay));
}

/* torch's `mu_product *= mu` on a 0-dim tensor: mu rounds to the tensor's dtype first. */
FO_INLINE double fo_nadam_mul(double mu_product, double mu, int f64)
{
    return f64 ? mu_product * mu : (double)((float)mu_product * (float)mu);
}

#define FO_TEMPLATE "optim_nadam.inc"
#include "fo_instantiate.h"

void fo_nadam_advance(void *const *mu_products, const float *const *steps, int64_t ntensors,
                      int scalars_f64, const fo_nadam_hyper *hyper)
{
    /* mu depends on the step count only, and consecutive tensors are usually at the same step:
     * one pow() per distinct count in a row, not one per tensor.  A NaN count never equals the
     * last one: computed each time. */
    float last_t = 0.0f;
    double mu = 0.0;
    int have = 0;
    for (int64_t i = 0; i < ntensors; ++i) {
        if (!have || *steps[i] != last_t) {
            mu = fo_nadam_mu(hyper->beta1, hyper->momentum_decay, (double)*steps[i]);
            last_t = *steps[i];
            have = 1;
        }
        const double mp = fo_scalar_get(mu_products[i], scalars_f64);
        fo_scalar_set(mu_products[i], scalars_f64, fo_nadam_mul(mp, mu, scalars_f64));
    }
}
