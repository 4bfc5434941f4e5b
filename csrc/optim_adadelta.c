/* optim_adadelta.c -- Adadelta (weight decay) multi-tensor update kernels,
 * fo_adadelta_step_f32 / fo_adadelta_step_f64, generated from optim_adadelta.inc. */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_adadelta.inc"
#include "fo_instantiate.h"
