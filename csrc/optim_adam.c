/* optim_adam.c -- Adam and AdamW (decoupled weight decay) multi-tensor update kernels,
 * fo_adam_step_f32 / fo_adam_step_f64, generated from optim_adam.inc. */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_adam.inc"
#include "fo_instantiate.h"
