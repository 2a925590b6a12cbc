/* worker_process.h -- an engine worker thread's worker process, made and
 * reaped through the pool's Python callables (worker_process.c). */
#ifndef SFPY_WORKER_PROCESS_H
#define SFPY_WORKER_PROCESS_H

#include "pool_ctx.h"
#include "streamfutures_proc.h"

/* Start a supervised worker process for the calling engine thread and wait
 * (the GIL released) until it is ready; NULL when none could start (the
 * pool is then broken).  The GIL is held on entry and exit. */
sf_proc_worker *sfpy_worker_process_start(sfpy_pool_ctx *ctx);
/* In a forked child: the forking thread's parked state is the parent's. */
void sfpy_worker_process_forget_in_child(void);

#endif
