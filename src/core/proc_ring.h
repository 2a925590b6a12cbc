/* proc_ring.h -- a worker's results in shared memory (proc_ring.c), as
 * proc.c uses it on both sides of a channel. */
#ifndef SF_PROC_RING_H
#define SF_PROC_RING_H

#include <stddef.h>
#include <stdint.h>

#include "streamfutures_proc.h"

typedef struct sf__ring sf__ring;
sf__ring *sf__ring_map(int fd);
void sf__ring_unmap(sf__ring *ring);
size_t sf__ring_max_payload(const sf__ring *ring);
/* Writer: publish a record (waiting for space; -EPIPE if the parent is
 * gone meanwhile).  1 when the reader is asleep and must be woken. */
int sf__ring_put(sf__ring *ring, uint64_t id, uint32_t kind, const void *data, uint32_t len,
                 int task_fd);
int sf__ring_skip(const sf__ring *ring, uint64_t id);
/* Reader: the oldest record (1) or none (0); consume it after use.
 * -EPROTO: the worker corrupted the ring (stop reading it). */
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
