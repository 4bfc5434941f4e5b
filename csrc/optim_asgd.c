/* optim_asgd.c -- ASGD multi-tensor update kernels,
 * fo_asgd_update_f32 / fo_asgd_update_f64,
 * generated from optim_asgd.inc, and fo_asgd_advance, the once-per-tensor store of the eta and
 * mu scalars (dtype-free, so written once here; prototypes in fastoptim.h). */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_asgd.inc"
#include "fo_instantiate.h"

void fo_asgd_advance(void *const *mus, void *const *etas, const float *const *steps,
                     int64_t ntensors, int scalars_f64, const fo_asgd_hyper *hyper)
{
    const double lr = hyper->lr, lambd = hyper->lambd, alpha = hyper->alpha, t0 = hyper->t0;
    /* eta and mu depend on the step count only, and consecutive tensors are usually at the same
     * step: one pow() per distinct count in a row, not one per tensor (it cost more than the
     * update of a small tensor).  A NaN count never equals the last one: computed each time. */
    float last_t = 0.0f, eta = 0.0f, mu = 0.0f;
    int have = 0;
    for (int64_t i = 0; i < ntensors; ++i) {
        /* torch: eta.copy_(as_tensor(lr / ((1 + lambd * lr * step) ** alpha)));
         *        mu.copy_(as_tensor(1 / max(1, step - t0))):
         * Python floats made float32 tensors by as_tensor (the default dtype) and then copied,
         * so a float64 eta or mu (loaded into a float64 param) holds float32 values too.
         * Python's max(1, x) is x only when x > 1, so a NaN gives 1. */
        if (!have || *steps[i] != last_t) {
            const double t = (double)*steps[i];
            const double d = t - t0;
            eta = (float)(lr / pow(1.0 + lambd * lr * t, alpha));
            mu = (float)(1.0 / (d > 1.0 ? d : 1.0));
            last_t = *steps[i];
            have = 1;
        }
        fo_scalar_set(etas[i], scalars_f64, (double)eta);
        fo_scalar_set(mus[i], scalars_f64, (double)mu);
    }
}
