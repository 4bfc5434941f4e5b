/* optim_sgd.c -- SGD (momentum, dampening, Nesterov, weight decay) multi-tensor update kernels,
 * fo_sgd_step_f32 / fo_sgd_step_f64, generated from optim_sgd.inc. */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_sgd.inc"
#include "fo_instantiate.h"
