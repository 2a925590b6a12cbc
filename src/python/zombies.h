/* zombies.h -- engine pools whose Pool object is gone but whose threads may
 * still be finishing fire-and-forget work (zombies.c).  The GIL guards the
 * registry, which lives in the module state. */
#ifndef SFPY_ZOMBIES_H
#define SFPY_ZOMBIES_H

#include "pool_ctx.h"

/* Take over pool and its ctx (never fails: the link is in ctx). */
void sfpy_zombie_add(sfpy_state *st, sf_pool *pool, sfpy_pool_ctx *ctx);
/* Join and free the zombies whose threads have ended, or (block) all of
 * them, waiting with the GIL released. */
void sfpy_zombies_reap(sfpy_state *st, int block);

#endif
