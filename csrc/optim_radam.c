/* optim_radam.c -- RAdam multi-tensor update kernels,
 * fo_radam_update_f32 / fo_radam_update_f64,
 * generated from optim_radam.inc (prototypes in fastoptim.h). */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_radam.inc"
#include "fo_instantiate.h"
