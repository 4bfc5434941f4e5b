/* bench_roofline.c -- the memory-traffic yardstick of the benchmark suite (benchmarks/).
 *
 * Why it exists: a large optimizer step is memory-bound, so its speed limit is the time the
 * machine needs to move the bytes the step must touch.  Rather than quote an absolute bandwidth
 * (which differs per machine and per thread count), the suite times this kernel on the same
 * arrays, in the same run, with the same threads, and reports "% of limit" as a ratio of two
 * timings.  The kernel reads and writes exactly the arrays the optimizer does, in one pass, with
 * almost no arithmetic, split across threads exactly as the optimizers split a group
 * (optim_multi.h: equal contiguous shares, serial below FO_OMP_MIN_ELEMS).
 */
#include "bench_roofline.h"
#include "optim_multi.h"   /* FO_ALWAYS_INLINE, FO_SEGMENT_ALIGN: the optimizers' split */

/* Elements per block of the generic (uncommon-shape) path: its block sum lives on the stack. */
#define FO_ROOF_BLOCK 2048

#define FO_TEMPLATE "bench_roofline.inc"
#include "fo_instantiate.h"
