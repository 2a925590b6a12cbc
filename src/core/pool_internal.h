/* pool_internal.h -- what the engine's own job producers (map.c) use of a
 * pool beyond the public API: the two lanes, engine-side posting, and a
 * shutdown listener, so the pool can reach live maps at shutdown without
 * knowing what a map is. */
#ifndef SF_POOL_INTERNAL_H
#define SF_POOL_INTERNAL_H

#include "streamfutures.h"

enum sf__lane { SF__LANE_WORK = 0, SF__LANE_INPUT = 1 };

/* Who is posting: a consumer-side post is refused after shutdown; an
 * engine-side post (made while the pool still has active jobs, e.g. from a
 * running job or to keep a detached map draining) is accepted until the
 * pool has gone quiet. */
enum sf__poster { SF__BY_CONSUMER = 0, SF__BY_ENGINE = 1 };

int sf__pool_post(sf_pool *pool, sf_job *job, enum sf__lane lane, enum sf__poster poster);
/* 1 in a child process that inherited this pool through fork(). */
int sf__pool_forked(const sf_pool *pool);

/* Around an input pull made for a map whose consumer is attached: such a
 * pull may wait on the embedder's code forever (a generator blocked on a
 * queue), and sf_pool_join does not wait for it, as a consumer reading its
 * own input would not be waited for either. */
void sf__pool_pull_begin(sf_pool *pool);
void sf__pool_pull_end(sf_pool *pool);

/* Something that must hear of the pool's shutdown.  The pool keeps the
 * registered listeners in a list under its lock; at shutdown it takes a
 * hold on each (hold returns 0 for one already being freed, which is
 * skipped), drops its lock, calls on_shutdown, then release. */
typedef struct sf__shutdown_listener sf__shutdown_listener;
typedef struct sf__shutdown_listener_ops {
    int (*hold)(sf__shutdown_listener *listener);
    void (*release)(sf__shutdown_listener *listener);
    /* cancel_pending: cancel what has not started; cancel_input: stop
     * acquiring input if a consumer is still attached */
    void (*on_shutdown)(sf__shutdown_listener *listener, int cancel_pending, int cancel_input);
} sf__shutdown_listener_ops;
struct sf__shutdown_listener {
    sf__shutdown_listener *prev, *next; /* the pool's list, under its lock */
    const sf__shutdown_listener_ops *ops;
};
/* -ESHUTDOWN, -EPIPE (broken) or -ECHILD (forked) instead of registering. */
int sf__pool_listen(sf_pool *pool, sf__shutdown_listener *listener);
void sf__pool_unlisten(sf_pool *pool, sf__shutdown_listener *listener);

#endif
