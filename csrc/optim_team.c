/* optim_team.c -- the parallel region of fastoptim's own steady-state optimizer step.
 *
 * Why it exists: with OMP_WAIT_POLICY=PASSIVE (set by fastoptim on import, see __init__.py) an
 * idle OpenMP thread sleeps, and waking it for a region costs tens of microseconds on a VM.  A
 * step over a group of many tensors first spends about as long collecting and validating them
 * (Python objects, so on the calling thread).  fo_team_run opens the region first: the other
 * threads wake while the calling thread collects, then every thread runs the kernels in team
 * mode (optim_multi.h).  Nothing is written before the collection has succeeded, so a failed or
 * declined collection still leaves memory untouched.  Not part of the public API.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L /* sched_yield under -std=c99 */
#endif
#include "common.h"
#include "optim_team.h"
#if !defined(_WIN32)
#include <sched.h>
#endif

#ifdef FO_HAVE_OPENMP
int fo_team_mode = 0;
#pragma omp threadprivate(fo_team_mode)

/* Wait for the caller's collection.  Spin a little (the usual wait is a few microseconds per
 * hundred tensors), then yield: a waiting thread must not hold a core that the collecting
 * thread needs (an oversubscribed machine, e.g. next to BLAS's own spinning threads). */
static void fo_wait_ready(const int *ready)
{
    unsigned spins = 0;
    while (!__atomic_load_n(ready, __ATOMIC_ACQUIRE)) {
        if (++spins < 256) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
#if !defined(_WIN32)
            sched_yield();
#endif
        }
    }
}

int fo_team_run(int (*prepare)(void *), void (*run)(void *, int), void *ctx)
{
    int status = 0, ready = 0;
#pragma omp parallel shared(status, ready)
    {
        int tid = omp_get_thread_num();
        if (tid == 0) {
            status = prepare(ctx);
            __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
        } else {
            fo_wait_ready(&ready);
        }
        if (status == 1) {
            fo_team_mode = 1;
            run(ctx, tid);
            fo_team_mode = 0;
        }
    }
    return status;
}
#else
int fo_team_run(int (*prepare)(void *), void (*run)(void *, int), void *ctx)
{
    int status = prepare(ctx);
    if (status == 1) run(ctx, 0);
    return status;
}
#endif
