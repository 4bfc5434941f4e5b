/* optim_adagrad.c -- Adagrad (lr decay, weight decay; dense grads) multi-tensor update kernels,
 * fo_adagrad_step_f32 / fo_adagrad_step_f64, generated from optim_adagrad.inc. */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_adagrad.inc"
#include "fo_instantiate.h"
