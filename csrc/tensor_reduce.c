/* tensor_reduce.c -- reductions (sum, mean, max/min over all elements), their backward
 * broadcasts, and the fused MSE loss.  Bodies in tensor_reduce.inc. */
#define FO_TEMPLATE "tensor_reduce.inc"
#include "fo_instantiate.h"
