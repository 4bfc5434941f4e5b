/* tensor_elementwise.c -- element-wise forward/backward kernels of the autograd, and the
 * in-place updates used by optimizer code written in Python.  Bodies in tensor_elementwise.inc. */
#include "common.h"
#include "fo_simd.h"

#define FO_TEMPLATE "tensor_elementwise.inc"
#include "fo_instantiate.h"
