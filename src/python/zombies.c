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
 * over never allocates and never fails.  The state's zombies_lock guards
 * the list (a pool may be collected on any thread while another reaps); it
 * is never held while joining, and an entry is unlinked before its join,
 * so a concurrent reap never sees it twice.  A pool whose only jobs left are pulls blocked for a consumer
 * (an input waiting on something that may never come) is not waited for:
 * it stays listed, and at exit its threads are abandoned to the process's
 * end, as daemon threads are.
 */
#include "zombies.h"

#include <errno.h>

#include "compat.h"

void sfpy_zombie_add(sfpy_state *st, sf_pool *pool, sfpy_pool_ctx *ctx)
{
    ctx->zombie_pool = pool;
    sfpy_mutex_lock(&st->zombies_lock);
    ctx->zombie_next = st->zombies;
    st->zombies = ctx;
    sfpy_mutex_unlock(&st->zombies_lock);
}

int sfpy_pool_join(sf_pool *pool)
{
    for (;;) {
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = sf_pool_join(pool, sf_now_ns() + SFPY_WAIT_SLICE_NS);
        Py_END_ALLOW_THREADS
        if (rc == 0)
            return 0;
        if (rc == -EBUSY)
            return 1;
        if (PyErr_CheckSignals() < 0)
            return -1;
    }
}

int sfpy_zombies_reap(sfpy_state *st, int block)
{
    sfpy_pool_ctx *kept = NULL; /* joined as far as they can be: back on the list at the end */
    int rc = 0;
    sfpy_mutex_lock(&st->zombies_lock);
    sfpy_pool_ctx **link = &st->zombies;
    while (*link) {
        sfpy_pool_ctx *z = *link;
        sf_pool *pool = z->zombie_pool;
        if (sf_pool_owns_current_thread(pool) || (!block && !sf_pool_try_join(pool))) {
            link = &z->zombie_next;
            continue;
        }
        *link = z->zombie_next; /* unlink first: others may reap while we wait */
        sfpy_mutex_unlock(&st->zombies_lock);
        int joined = block ? sfpy_pool_join(pool) : 0;
        if (joined != 0) {
            z->zombie_next = kept;
            kept = z;
        } else {
            sf_pool_destroy(pool);
            sfpy_pool_ctx_free(z);
        }
        sfpy_mutex_lock(&st->zombies_lock);
        if (joined < 0) {
            rc = -1;
            break;
        }
        link = &st->zombies; /* the list may have changed while unlocked */
    }
    while (kept) {
        sfpy_pool_ctx *next = kept->zombie_next;
        kept->zombie_next = st->zombies;
        st->zombies = kept;
        kept = next;
    }
    sfpy_mutex_unlock(&st->zombies_lock);
    return rc;
}
