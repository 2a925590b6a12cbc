/* zombies.h -- engine pools whose Pool object is gone but whose threads may
 * still be finishing fire-and-forget work (zombies.c).  The GIL guards the
 * registry, which lives in the module state. */
#ifndef SFPY_ZOMBIES_H
#define SFPY_ZOMBIES_H

#include "pool_ctx.h"

/* Take over pool and its ctx (never fails: the link is in ctx). */
void sfpy_zombie_add(sfpy_state *st, sf_pool *pool, sfpy_pool_ctx *ctx);
/* Join and free the zombies whose threads have ended, or (block) all of
 * them, waiting with the GIL released.  A zombie left with nothing but a
 * pull blocked for a consumer stays listed.  -1 with an exception set when
 * a signal handler raised while waiting. */
int sfpy_zombies_reap(sfpy_state *st, int block);

/* After sf_pool_shutdown: sf_pool_join with the GIL released, waking every
 * slice to run signal handlers (a join must not be deaf to Ctrl-C).  0:
 * joined; 1: only pulls blocked for a consumer remain (their threads go
 * on); -1 with an exception set: a signal handler raised. */
int sfpy_pool_join(sf_pool *pool);

#endif
