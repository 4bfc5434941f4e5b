/* optim_average.c -- the multi-tensor averaging kernel of swa_utils.AveragedModel (EMA and SWA
 * over all of a model's params in one call), fo_average_f32 / fo_average_f64, generated from
 * optim_average.inc.  Threads and bit-identity for any thread count: optim_multi.h. */
#include "fastoptim.h"
#include "optim_multi.h"

#define FO_TEMPLATE "optim_average.inc"
#include "fo_instantiate.h"
