/* internal.h -- names shared between src/core files (sf__ prefix). */
#ifndef SF_INTERNAL_H
#define SF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "streamfutures.h"

/* ---- sync.c: event count on a futex ---------------------------------- */

/* A waiter reads a key with sf__event_prepare, re-checks its condition,
 * then sleeps in sf__event_wait until the key changes.  A signal bumps the
 * key and makes a futex call only when somebody announced waiting. */
typedef struct sf__event {
    _Atomic uint32_t key;
    _Atomic uint32_t waiters;
} sf__event;

void sf__event_init(sf__event *event);
uint32_t sf__event_prepare(sf__event *event);
void sf__event_cancel(sf__event *event);
/* 0 when woken (or key already changed), -ETIMEDOUT at the deadline,
 * -EINTR when a signal interrupted the sleep.  deadline_ns -1: none. */
int sf__event_wait(sf__event *event, uint32_t key, int64_t deadline_ns);
void sf__event_signal_one(sf__event *event);
void sf__event_signal_all(sf__event *event);

/* Bumped in the child after every fork (pthread_atfork). */
unsigned sf__fork_generation(void);

void sf__mutex_init(pthread_mutex_t *mutex);
void sf__lock(pthread_mutex_t *mutex);
void sf__unlock(pthread_mutex_t *mutex);

/* ---- pool.c: what maps need from the pool ----------------------------- */

enum sf__lane { SF__LANE_WORK = 0, SF__LANE_INPUT = 1 };

/* Who is posting: a consumer-side post is refused after shutdown; an
 * engine-side post (made while the pool still has active jobs, e.g. from a
 * running job or to keep a detached map draining) is accepted until the
 * pool has gone quiet. */
enum sf__poster { SF__BY_CONSUMER = 0, SF__BY_ENGINE = 1 };

int sf__pool_post(sf_pool *pool, sf_job *job, enum sf__lane lane,
                  enum sf__poster poster);
/* 1 in a child process that inherited this pool through fork(). */
int sf__pool_forked(const sf_pool *pool);
int sf__pool_register_map(sf_pool *pool, sf_map *map);
void sf__pool_unregister_map(sf_pool *pool, sf_map *map);

/* ---- window.c: what the pool needs from maps --------------------------- */

/* Map registry link, embedded in sf_map. */
typedef struct sf__map_link {
    struct sf__map_link *prev, *next;
} sf__map_link;

sf__map_link *sf__map_link_of(sf_map *map);
sf_map *sf__map_of_link(sf__map_link *link);
int sf__map_try_ref(sf_map *map);
void sf__map_unref(sf_map *map);
/* Shutdown reached this map: cancel items not started (cancel_pending) and
 * stop its input if it still has a consumer (cancel_input). */
void sf__map_on_shutdown(sf_map *map, int cancel_pending, int cancel_input);

/* ---- proc_ring.c: a worker's results in shared memory ------------------ */

typedef struct sf__ring sf__ring;
sf__ring *sf__ring_map(int fd);
void sf__ring_unmap(sf__ring *ring);
size_t sf__ring_max_payload(const sf__ring *ring);
/* Writer: publish a record (waiting for space; -EPIPE if the parent is
 * gone meanwhile).  1 when the reader is asleep and must be woken. */
int sf__ring_put(sf__ring *ring, uint64_t id, uint32_t kind, const void *data, uint32_t len,
                 int task_fd);
int sf__ring_skip(const sf__ring *ring, uint64_t id);
/* Reader: the oldest record (1) or none (0); consume it after use. */
int sf__ring_peek(sf__ring *ring, sf_proc_msg *msg);
void sf__ring_consume(sf__ring *ring, const sf_proc_msg *msg);
/* Before sleeping: 1 when a record arrived (do not sleep).  After: woke. */
int sf__ring_announce_sleep(sf__ring *ring);
void sf__ring_woke(sf__ring *ring);
int sf__ring_empty(sf__ring *ring);
/* Reader: the fraction of the ring that holds records not yet taken. */
double sf__ring_fill(sf__ring *ring);
void sf__ring_cancel_below(sf__ring *ring, uint64_t id);

#endif
