/* process_pool.h -- running a map's batches and submitted calls on the
 * calling engine thread's worker process (process_pool.c). */
#ifndef SFPY_PROCESS_POOL_H
#define SFPY_PROCESS_POOL_H

#include "map_ctx.h"

/* sf_map_ops.work_batch of a process pool's map (ctx: an sfpy_map_ctx). */
void sfpy_process_map_batch(void *ctx, sf_batch *batch);
/* Run fn(*args, **kwargs) for future on this thread's worker process. */
void sfpy_process_run_submitted(sfpy_pool_ctx *ctx, sf_pool *pool, PyObject *future,
                                PyObject *fn, PyObject *args, PyObject *kwargs,
                                double task_timeout);

#endif
