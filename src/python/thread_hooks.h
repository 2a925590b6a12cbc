/* thread_hooks.h -- engine threads as Python threads of the pool's
 * interpreter (thread_hooks.c). */
#ifndef SFPY_THREAD_HOOKS_H
#define SFPY_THREAD_HOOKS_H

#include "pool_ctx.h"
#include "streamfutures_proc.h"

sf_thread_hooks sfpy_thread_hooks(sfpy_pool_ctx *ctx);
/* The worker process of the calling engine thread (NULL if none). */
sf_proc_worker *sfpy_current_worker_process(void);
/* In a forked child: the forking thread's box is the parent's. */
void sfpy_thread_hooks_forget_in_child(void);

#endif
