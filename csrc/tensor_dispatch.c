/* tensor_dispatch.c -- the dtype dispatch of the tensor kernels, written once: one table of
 * function pointers per element type (fo_tensor_kernels_f32 / _f64, fastoptim.h), so the
 * Cython layer picks a table by dtype and calls through it instead of writing out an f32 and an
 * f64 arm at every call site.  Body in tensor_dispatch.inc. */
#define FO_TEMPLATE "tensor_dispatch.inc"
#include "fo_instantiate.h"
