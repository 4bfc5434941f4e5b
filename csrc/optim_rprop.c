/* optim_rprop.c -- Rprop multi-tensor update kernels,
 * fo_rprop_update_f32 / fo_rprop_update_f64,
 * generated from optim_rprop.inc (prototypes in fastoptim.h). */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_rprop.inc"
#include "fo_instantiate.h"
