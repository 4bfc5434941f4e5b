/* bench_roofline.h -- private: the benchmark suite's memory yardstick (bench_roofline.c).
 *
 * Not part of fastoptim's API nor of libfastoptim: it is linked only into the benchmark-only
 * module fastoptim._C._bench, which benchmarks/ times next to the optimizer steps to express
 * their speed as a fraction of the memory limit.
 */
#ifndef FASTOPTIM_BENCH_ROOFLINE_H
#define FASTOPTIM_BENCH_ROOFLINE_H

#include <stdint.h>

/* The memory roofline of an in-place update: one pass over n elements that reads the nread
 * read-only arrays reads[k] and the nwrite arrays writes[k], and sets every writes[k][i] to the
 * mean of all those values at i, with no other arithmetic.  Given the arrays an optimizer step
 * only reads and those it updates in place (e.g. Adam: reads g; updates p, m, v) it moves the
 * same bytes as that step, so the ratio of their times is "% of the memory limit".  No two
 * arrays may overlap.  Threads as the optimizers (optim_multi.h): equal contiguous shares,
 * serial below FO_OMP_MIN_ELEMS.  Specialised loops for 1-2 reads and 1-4 writes.  The pass
 * runs the widest instruction set compiled in that this CPU has (fo_roofline_simd() names it;
 * bench_roofline.c says why), or the build's baseline one when `baseline` is nonzero; both give
 * the same values. */
void fo_roofline_f32(int nread, const float *const *reads, int nwrite, float *const *writes,
                     int64_t n, int baseline);
void fo_roofline_f64(int nread, const double *const *reads, int nwrite, double *const *writes,
                     int64_t n, int baseline);

/* "avx2" or "baseline": what fo_roofline_* run when `baseline` is 0. */
const char *fo_roofline_simd(void);

#endif /* FASTOPTIM_BENCH_ROOFLINE_H */
