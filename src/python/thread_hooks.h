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

/* Called by the binding's per-item callbacks on engine threads with the
 * number of items they just handled, attached and with no exception set:
 * every SFPY_RUN_PENDING_EVERY items the thread runs the interpreter's
 * pending work for it (thread_hooks.c says why). */
#define SFPY_RUN_PENDING_EVERY 256
/* A result counts as one item more per this many bytes it holds, so that
 * large ones dropped elsewhere are freed after a few, not after 256. */
#define SFPY_RUN_PENDING_ITEM_BYTES (64 * 1024)
extern _Thread_local unsigned sfpy_items_since_pending;
void sfpy_run_pending(const sfpy_state *st);

static inline void sfpy_thread_tick(const sfpy_state *st, unsigned items)
{
#if PY_VERSION_HEX >= 0x030D0000
    if ((sfpy_items_since_pending += items) >= SFPY_RUN_PENDING_EVERY)
        sfpy_run_pending(st);
#else
    (void)st;
    (void)items;
#endif
}

#endif
