/* tensor_matmul.c -- a plain matrix product for tiny operands (the Cython layer sends large
 * products to BLAS through numpy).  Body in tensor_matmul.inc. */
#define FO_TEMPLATE "tensor_matmul.inc"
#include "fo_instantiate.h"
