/*
 * zombies.c -- engine pools whose Pool object is gone but whose threads may
 * still be finishing fire-and-forget work.
 *
 * DESIGN.  A Pool collected while its threads work (a detached map) cannot
 * join them there: the collection may run on one of those threads, or
 * anywhere the GIL is held.  Its engine pool and context go on a list in
 * the module state; reap() joins them, without blocking whenever a new
 * Pool is made, and blocking from the package's exit hook before
 * finalization.  The link lives in the pool's context, so taking a pool
 * over never allocates and never fails.  The GIL guards the list; it is released only while
 * joining, after the entry was unlinked, so a concurrent reap never sees
 * it twice.
 */
#include "zombies.h"

void sfpy_zombie_add(sfpy_state *st, sf_pool *pool, sfpy_pool_ctx *ctx)
{
    ctx->zombie_pool = pool;
    ctx->zombie_next = st->zombies;
    st->zombies = ctx;
}

void sfpy_zombies_reap(sfpy_state *st, int block)
{
    sfpy_pool_ctx **link = &st->zombies;
    while (*link) {
        sfpy_pool_ctx *z = *link;
        sf_pool *pool = z->zombie_pool;
        if (sf_pool_owns_current_thread(pool)) {
            link = &z->zombie_next;
            continue;
        }
        if (block) {
            *link = z->zombie_next; /* unlink first: others may reap while we wait */
            Py_BEGIN_ALLOW_THREADS
            sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
            Py_END_ALLOW_THREADS
        } else if (sf_pool_try_join(pool)) {
            *link = z->zombie_next;
        } else {
            link = &z->zombie_next;
            continue;
        }
        sf_pool_destroy(pool);
        sfpy_pool_ctx_free(z);
        link = &st->zombies; /* the list may have changed while unlocked */
    }
}
