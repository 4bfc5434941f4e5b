/* bench_roofline.c -- the memory-traffic yardstick of the benchmark suite (benchmarks/).
 *
 * Why it exists: a large optimizer step is memory-bound, so its speed limit is the time the
 * machine needs to move the bytes the step must touch.  Rather than quote an absolute bandwidth
 * (which differs per machine and per thread count), the suite times this kernel on the same
 * arrays, in the same run, with the same threads, and reports "% of limit" as a ratio of two
 * timings.  The kernel reads and writes exactly the arrays the optimizer does, in one pass, with
 * almost no arithmetic, split across threads exactly as the optimizers split a group
 * (optim_multi.h: equal contiguous shares, serial below FO_OMP_MIN_ELEMS).
 *
 * Why it runs AVX2 where the CPU has it: the ratio means something only if the yardstick is an
 * upper bound of a streaming pass on this machine.  One core does not saturate the memory
 * system: how many bytes it moves per second depends on how many loads and stores it can issue
 * and keep in flight, and a 32-byte AVX2 load or store moves twice what a 16-byte SSE2 one does
 * for the same slot.  Compiled for baseline SSE2 only, the pass was no upper bound for the
 * optimizers' own AVX2 loops (fo_simd.c): the five that had them read 97-154% of "the roofline"
 * in one run (some of that is the noise between processes).  So the pass is compiled for both
 * targets, like the optimizers' loops, and runs the widest this CPU has: AVX2 when
 * __builtin_cpu_supports says so, whatever FASTOPTIM_SIMD says (that variable picks the
 * optimizers' loops; the machine's limit does not change with it, so a forced-baseline run reads
 * how far the baseline loops are from that limit).  fo_roofline_simd() names the variant, and
 * the `baseline` argument runs the other one (for comparison; the values are the same: no FMA).
 * Only the instruction width changes between them: the same arrays, the same order of passes
 * through memory, plain (temporal) stores as the optimizers' in-place updates use.  Where the
 * width shows most is where the written arrays alias each other modulo 4 KiB (fastoptim puts
 * every state array half a page past its param, so they all do): with one read and four
 * written float32 arrays of 4M elements, 7.1 ms per pass for SSE2 against 4.6 ms for AVX2 (CPU
 * time, best of 40, on the 2-core EPYC under load); with two or three written, within noise.
 * The suite runs the pass on the step's own arrays (benchmarks/contenders.py), so the addresses
 * are the step's too.
 */
#include "bench_roofline.h"
#include "optim_multi.h"   /* FO_ALWAYS_INLINE, FO_SEGMENT_ALIGN, FO_SIMD_DISPATCH */

/* Elements per block of the generic (uncommon-shape) path: its block sum lives on the stack. */
#define FO_ROOF_BLOCK 2048

/* The AVX2 variant exists where the optimizers' dispatch does (x86-64, GCC or clang, no
 * -DFO_NO_SIMD_DISPATCH); its own CPU test, since the library's choice follows FASTOPTIM_SIMD. */
#ifdef FO_SIMD_DISPATCH
#define FO_ROOF_AVX2 1
static int fo_roof_avx2 = 0;

__attribute__((constructor)) static void fo_roof_init(void)
{
    __builtin_cpu_init();   /* the constructor may run before libgcc's own */
    fo_roof_avx2 = __builtin_cpu_supports("avx2");
}
#endif

const char *fo_roofline_simd(void)
{
#ifdef FO_ROOF_AVX2
    return fo_roof_avx2 ? "avx2" : "baseline";
#else
    return "baseline";
#endif
}

#define FO_TEMPLATE "bench_roofline.inc"
#include "fo_instantiate.h"
