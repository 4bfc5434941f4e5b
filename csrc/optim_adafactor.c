/* optim_adafactor.c -- Adafactor's step (torch 2.13's single-tensor loop), all params of a
 * group in one call: fo_adafactor_update_f32/_f64, generated from optim_adafactor.inc, and
 * fo_adafactor_work_size.
 *
 * Why a kernel of its own: Adafactor is not elementwise.  Its step needs three reductions that
 * each gate what follows (the param's norm for the step size, the row and column means of g^2
 * for the factored second moment, the update's norm for clipping), so a factored param takes
 * three passes: (1) read p and g: sum p^2, row sums and column sums of g^2 -> row_var, col_var;
 * (2) read g: sum of u^2, u = g / sqrt(max(r_i c_j / mean(r), eps1^2)); (3) read p and g,
 * write p.  Nothing is materialised: torch's var_estimate (a full m x n temporary) is recomputed
 * from row_var and col_var in passes 2 and 3.  A vector param takes two: (1) read p, g and
 * variance, write variance, sum p^2 and u^2; (2) write p.
 *
 * Determinism: every sum runs over fixed blocks (FO_AF_BLOCKS row ranges of a matrix;
 * FO_AF_VBLOCK elements of a vector), each row or block summed in the SIMD lanes of an
 * ``omp simd reduction`` (a fixed order for a given build), and the blocks' partial sums are
 * added in block order, so the result is bit-identical for any thread count.  Sums are
 * taken in double whatever T is.  The column sums of a matrix's blocks go to the caller's work
 * buffer (fo_adafactor_work_size doubles), so a step allocates nothing. */
#include "fastoptim.h"
#include "optim_multi.h"

/* The passes are bound by division and sqrt throughput, not memory: an AVX2 variant, chosen at
 * load time, runs them eight floats wide (baseline x86-64: four).  Without FMA contraction
 * (-std=c99 turns it off) the per-element arithmetic is the same; only the SIMD lanes of the
 * sums differ, so results are bit-identical for any thread count on a given CPU, and within
 * rounding of the sums across CPUs. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FO_AF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FO_AF_CLONES
#endif

#define FO_AF_BLOCKS 16      /* row blocks of a matrix (the parallelism of its passes) */
#define FO_AF_VBLOCK 32768   /* elements per block of a vector */

int64_t fo_adafactor_work_size(int64_t numel, int64_t cols, int factored)
{
    if (factored)
        return FO_AF_BLOCKS * cols + FO_AF_BLOCKS;
    return 2 * ((numel + FO_AF_VBLOCK - 1) / FO_AF_VBLOCK);
}

#define FO_TEMPLATE "optim_adafactor.inc"
#include "fo_instantiate.h"
