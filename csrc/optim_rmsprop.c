/* optim_rmsprop.c -- RMSprop (centered, momentum, weight decay) multi-tensor update kernels,
 * fo_rmsprop_step_f32 / fo_rmsprop_step_f64, generated from optim_rmsprop.inc. */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_rmsprop.inc"
#include "fo_instantiate.h"
