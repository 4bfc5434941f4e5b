/* optim_adamax.c -- Adamax multi-tensor update kernels,
 * fo_adamax_update_f32 / fo_adamax_update_f64,
 * generated from optim_adamax.inc (prototypes in fastoptim.h). */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_adamax.inc"
#include "fo_instantiate.h"
