/* fo_instantiate.h -- include FO_TEMPLATE once for float (fo_*_f32) and once for double
 * (fo_*_f64).  Deliberately has no include guard: every kernel .c file includes it.
 *
 *   #define FO_TEMPLATE "optim_adam.inc"
 *   #include "fo_instantiate.h"
 */
#include "common.h"

#define T float
#define FO_SFX _f32
#include FO_TEMPLATE
#undef T
#undef FO_SFX

#define T double
#define FO_SFX _f64
#include FO_TEMPLATE
#undef T
#undef FO_SFX

#undef FO_TEMPLATE
