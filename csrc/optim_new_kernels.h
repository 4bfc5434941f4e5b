/* optim_new_kernels.h -- PRIVATE, for now: the prototypes of the Adamax, NAdam, RAdam, ASGD and
 * Rprop kernels (csrc/optim_{adamax,nadam,radam,asgd,rprop}.c).
 *
 * Why it exists: issue 9 adds these five optimizers while the optimizer pipeline (fastoptim.h,
 * the Cython glue, the classes) is being redesigned elsewhere.  The kernels, their NumPy twins
 * (fastoptim/optim/_reference.py) and the twins' torch parity tests land first; the wiring moves
 * these prototypes, with their comments, into fastoptim.h (below the other optimizer kernels,
 * whose common conventions -- one call per param group, numels[i] contiguous elements per
 * tensor, no overlaps, float32 step counters incremented by the kernel, per-step scalars in
 * double, OpenMP as one flat index space above FO_OMP_MIN_ELEMS -- apply here unchanged) and
 * deletes this file.  Nothing outside csrc/ includes it yet.
 *
 * What is new here: per-tensor SCALAR state besides the step counters.  NAdam's mu_product and
 * ASGD's eta and mu are torch 0-dim tensors, one per param; they arrive as arrays of pointers
 * (mu_products[i] -> tensor i's scalar), like steps.  torch creates them float32 (under its
 * float32 default dtype), but its load_state_dict casts every state entry except 'step' to the
 * param's dtype, so a float64 param's scalars are float64 after a load: the pointers are
 * void *, and one int flag per call says whether all of them are doubles (1) or floats (0) --
 * a group holding both kinds takes two calls.  The kernel reads each
 * once (the value before this step), and stores the new value once per tensor after its
 * parallel region, from the incremented step count -- through fo_nadam_advance /
 * fo_asgd_advance below, which the kernel calls itself.  A caller running the kernels in team
 * mode (optim_multi.h), which advances the step counters itself, must call the *_advance
 * function after it has done so.  No two of these pointers may be equal, nor point into an
 * array the kernel writes.
 */
#ifndef FASTOPTIM_OPTIM_NEW_KERNELS_H
#define FASTOPTIM_OPTIM_NEW_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ASGD (torch.optim.ASGD).  Per tensor, eta and mu are the tensor's scalars before this step.
 * Per element:
 *   g = g + weight_decay * p                              (if weight_decay != 0)
 *   p = p * (1 - lambd * eta);  p = p - eta * g
 *   ax = (mu != 1) ? ax + (p - ax) * mu : p
 * Then, with t the incremented step, stored once per tensor, rounded to float32 even when
 * stored as double (torch makes them float32 tensors with as_tensor, then copies them in):
 *   eta = lr / (1 + lambd * lr * t)**alpha;  mu = 1 / max(1, t - t0).
 * Reads grads; writes params, axs, etas and mus (one float each per tensor, or double with
 * scalars_f64: torch's state['eta'], starting at lr, and state['mu'], starting at 1), steps. */
void fo_asgd_step_f32(float *const *params, const float *const *grads, float *const *axs,
                      void *const *etas, void *const *mus, int scalars_f64, float *const *steps,
                      const int64_t *numels, int64_t ntensors, double lr, double lambd,
                      double alpha, double t0, double weight_decay, int maximize);
void fo_asgd_step_f64(double *const *params, const double *const *grads, double *const *axs,
                      void *const *etas, void *const *mus, int scalars_f64, float *const *steps,
                      const int64_t *numels, int64_t ntensors, double lr, double lambd,
                      double alpha, double t0, double weight_decay, int maximize);
/* The per-tensor store of fo_asgd_step, from t = *steps[i], the ALREADY incremented count.
 * Called by fo_asgd_step itself; call it directly only after running fo_asgd_step in team mode
 * (and after advancing the counters). */
void fo_asgd_advance(void *const *etas, void *const *mus, int scalars_f64,
                     const float *const *steps, int64_t ntensors, double lr, double lambd,
                     double alpha, double t0);

#ifdef __cplusplus
}
#endif

#endif /* FASTOPTIM_OPTIM_NEW_KERNELS_H */
