/* optim_team.h -- private: the parallel region of fastoptim's steady-state step (optim_team.c).
 * Not in the public header, but exported by libfastoptim, because fastoptim's own optimizer glue
 * (fastoptim/_C/_optim.pyx) calls it; nothing else should. */
#ifndef FASTOPTIM_OPTIM_TEAM_H
#define FASTOPTIM_OPTIM_TEAM_H

/* Open a parallel region; on its thread 0 (the calling thread) run prepare(ctx) while the other
 * threads wait; when it returns 1, every thread runs run(ctx, thread number) with the kernels in
 * team mode (each thread its share; they must all make the same kernel calls).  Returns what
 * prepare returned.  Without OpenMP: prepare, then run on the caller alone. */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default) /* exported: the glue (_C/_optim.pyx) calls it */
#endif
int fo_team_run(int (*prepare)(void *), void (*run)(void *, int), void *ctx);
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#endif /* FASTOPTIM_OPTIM_TEAM_H */
