/* optim_team.h -- private: the parallel region of fastoptim's steady-state step (optim_team.c). */
#ifndef FASTOPTIM_OPTIM_TEAM_H
#define FASTOPTIM_OPTIM_TEAM_H

/* Open a parallel region; on its thread 0 (the calling thread) run prepare(ctx) while the other
 * threads wait; when it returns 1, every thread runs run(ctx, thread number) with the kernels in
 * team mode (each thread its share; they must all make the same kernel calls).  Returns what
 * prepare returned.  Without OpenMP: prepare, then run on the caller alone. */
int fo_team_run(int (*prepare)(void *), void (*run)(void *, int), void *ctx);

#endif /* FASTOPTIM_OPTIM_TEAM_H */
