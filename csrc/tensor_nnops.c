/* tensor_nnops.c -- the activation functions of fastoptim.nn that the element-wise table does
 * not have (LeakyReLU, ELU, GELU exact and tanh, SiLU), forward and backward, with their dtype
 * table.  Bodies in tensor_nnops.inc. */
#define FO_TEMPLATE "tensor_nnops.inc"
#include "fo_instantiate.h"
