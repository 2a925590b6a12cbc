/*
 * ring.c -- sf_ring: one input, read once, broadcast to n readers through
 * a ring of `capacity` slots (fan-out and tee).
 *
 * DESIGN.  One write cursor (`head`: items published) and one read cursor
 * per reader (the position it reads next; CLOSED once closed).  Item k
 * lives in slots[k % capacity].  Invariant: head - min(open cursors) <=
 * capacity, so the slot a new item takes was read by every open reader.
 * There is no producer thread and no lock: a reader that has read
 * everything published becomes the producer by a compare-and-swap on
 * `producer` (the token of its thread), pulls one item with no engine
 * state held, stores it, publishes head with release order and gives the
 * role back.  Readers load head with acquire order, so a slot is always
 * written before it is read.  A reader hands its item out borrowed and
 * advances its cursor at its next call (or close), so the producer never
 * reuses a slot whose item a reader has yet to take; the previous item
 * of a reused slot is discarded by the producer after publishing.
 * Sleeping: one event, `changed`, is signalled when head moves, the input
 * ends, the producer role is given back, a reader closes, the ring is
 * cancelled, or a cursor crosses `wake_at`: a reader waiting on a full
 * ring sets that mark capacity/8 slots above the slowest cursor, so a
 * laggard moving one slot at a time wakes it once per chunk, not per item.  Cursor stores, `wake_at` and
 * the events' waiter counts are sequentially consistent, so a sleeper
 * either sees the change or is woken (sync.c's protocol).  The input's
 * end is set after its last head with release order: a reader that sees
 * it re-reads head before reporting the end.  No engine lock exists here,
 * so every callback runs with none held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "streamfutures.h"
#include "sync.h"

#define CLOSED UINT64_MAX

/* A thread's identity: the address of its copy of this variable. */
static _Thread_local char this_thread_token;
#define THIS_THREAD ((const void *)&this_thread_token)

typedef struct reader {
    _Atomic uint64_t cursor;             /* next position to read; CLOSED */
    _Atomic(const void *) last_thread;   /* the thread of its last read; NULL: never read */
    int lent;      /* the item at cursor was handed out; advance at the next call */
    int finished;  /* the end (or the input's error) was reported */
    char pad[64 - sizeof(uint64_t) - sizeof(void *) - 2 * sizeof(int)];
} reader;

struct sf_ring {
    sf_ring_ops ops;
    void *ctx;
    size_t capacity;
    unsigned n_readers;
    unsigned fork_generation;
    void **slots;
    reader *readers;
    _Atomic uint64_t head;            /* items published */
    _Atomic int ended;                /* 0, SF_END or SF_INPUT_ERROR; set after the last head */
    void *error;                      /* the input's error value, with SF_INPUT_ERROR */
    _Atomic(const void *) producer;   /* the thread pulling now; NULL: nobody */
    _Atomic int cancelled;
    _Atomic uint64_t wake_at;         /* a reader waiting for space needs the min cursor here */
    _Atomic unsigned open_readers;
    sf__event changed;
};

int sf_ring_create(sf_ring **out, unsigned readers, size_t capacity, const sf_ring_ops *ops,
                   void *ctx)
{
    if (!out || !ops || !ops->pull || readers == 0 || capacity == 0 ||
        capacity > SIZE_MAX / sizeof(void *))
        return -EINVAL;
    sf_ring *ring = calloc(1, sizeof *ring);
    if (!ring)
        return -ENOMEM;
    ring->slots = calloc(capacity, sizeof *ring->slots);
    ring->readers = aligned_alloc(64, sizeof(reader) * readers);
    if (!ring->slots || !ring->readers) {
        free(ring->slots);
        free(ring->readers);
        free(ring);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < readers; i++) {
        atomic_init(&ring->readers[i].cursor, 0);
        atomic_init(&ring->readers[i].last_thread, NULL);
        ring->readers[i].lent = 0;
        ring->readers[i].finished = 0;
    }
    ring->ops = *ops;
    ring->ctx = ctx;
    ring->capacity = capacity;
    ring->n_readers = readers;
    ring->fork_generation = sf__fork_generation();
    atomic_init(&ring->head, 0);
    atomic_init(&ring->ended, 0);
    atomic_init(&ring->producer, NULL);
    atomic_init(&ring->cancelled, 0);
    atomic_init(&ring->wake_at, 0);
    atomic_init(&ring->open_readers, readers);
    sf__event_init(&ring->changed);
    *out = ring;
    return 0;
}

/* The cursor of the slowest open reader; `head` when all are closed. */
static uint64_t slowest_cursor(const sf_ring *ring, uint64_t head)
{
    uint64_t slowest = head;
    for (unsigned i = 0; i < ring->n_readers; i++) {
        uint64_t c = atomic_load(&ring->readers[i].cursor);
        if (c < slowest)
            slowest = c;
    }
    return slowest;
}

/* The reader moves past the item it was lent; a full ring's waiter is woken
 * when this is the step that crosses its mark. */
static void give_back_lent(sf_ring *ring, reader *r)
{
    if (!r->lent)
        return;
    r->lent = 0;
    uint64_t now = atomic_load_explicit(&r->cursor, memory_order_relaxed) + 1;
    atomic_store(&r->cursor, now);
    if (now == atomic_load(&ring->wake_at))
        sf__event_signal_all(&ring->changed);
}

/* 1 when every open reader holding the ring full last read on this thread:
 * this thread is the only one that could move them, and it would be asleep. */
static int waiting_would_deadlock(const sf_ring *ring, uint64_t slowest)
{
    int laggards = 0;
    for (unsigned i = 0; i < ring->n_readers; i++) {
        const reader *r = &ring->readers[i];
        if (atomic_load(&r->cursor) != slowest)
            continue; /* not holding it back (or it just moved on) */
        if (atomic_load(&r->last_thread) != THIS_THREAD)
            return 0;
        laggards++;
    }
    return laggards > 0;
}

/* Produce one item: the caller holds the producer role. */
static void produce(sf_ring *ring, uint64_t head)
{
    void *item = NULL;
    enum sf_pull got = ring->ops.pull(ring->ctx, &item);
    if (got == SF_PULL_ITEM) {
        size_t slot = (size_t)(head % ring->capacity);
        void *reused = head >= ring->capacity ? ring->slots[slot] : NULL;
        ring->slots[slot] = item;
        atomic_store_explicit(&ring->head, head + 1, memory_order_release);
        atomic_store(&ring->producer, NULL);
        sf__event_signal_all(&ring->changed);
        if (reused && ring->ops.discard)
            ring->ops.discard(ring->ctx, reused);
        return;
    }
    if (got == SF_PULL_ERROR)
        ring->error = item;
    atomic_store_explicit(&ring->ended, got == SF_PULL_ERROR ? SF_INPUT_ERROR : SF_END,
                          memory_order_release);
    atomic_store(&ring->producer, NULL);
    sf__event_signal_all(&ring->changed);
}

/* One step without sleeping: an sf_outcome, -EAGAIN or -EDEADLK. */
static int step(sf_ring *ring, reader *r, void **value)
{
    give_back_lent(ring, r);
    for (;;) {
        if (atomic_load_explicit(&ring->cancelled, memory_order_relaxed))
            return SF_CANCELLED;
        if (r->finished)
            return SF_END;
        uint64_t cursor = atomic_load_explicit(&r->cursor, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (cursor < head) {
            *value = ring->slots[cursor % ring->capacity];
            r->lent = 1;
            if (atomic_load_explicit(&r->last_thread, memory_order_relaxed) != THIS_THREAD)
                atomic_store(&r->last_thread, THIS_THREAD);
            return SF_RESULT;
        }
        int ended = atomic_load_explicit(&ring->ended, memory_order_acquire);
        if (ended) {
            if (atomic_load_explicit(&ring->head, memory_order_acquire) != head)
                continue; /* items published before the end */
            r->finished = 1;
            *value = ended == SF_INPUT_ERROR ? ring->error : NULL;
            return ended;
        }
        const void *producer = atomic_load(&ring->producer);
        if (producer == THIS_THREAD)
            return -EDEADLK; /* called from inside our own pull */
        if (producer)
            return -EAGAIN;
        uint64_t slowest = slowest_cursor(ring, head);
        if (head - slowest >= ring->capacity)
            return waiting_would_deadlock(ring, slowest) ? -EDEADLK : -EAGAIN;
        const void *nobody = NULL;
        if (!atomic_compare_exchange_strong(&ring->producer, &nobody, THIS_THREAD))
            return -EAGAIN;
        if (atomic_load(&ring->head) != head || atomic_load(&ring->ended) ||
            atomic_load(&ring->cancelled)) {
            /* another producer finished in between: read what it made */
            atomic_store(&ring->producer, NULL);
            sf__event_signal_all(&ring->changed);
            continue;
        }
        produce(ring, head);
    }
}

static uint64_t wake_mark(const sf_ring *ring, uint64_t head)
{
    uint64_t chunk = ring->capacity / 8 ? ring->capacity / 8 : 1;
    return head - ring->capacity + chunk;
}

/* 0 when the reader has nothing to do until `changed` is signalled. */
static int may_step(sf_ring *ring, reader *r)
{
    if (atomic_load(&ring->cancelled))
        return 1;
    uint64_t head = atomic_load(&ring->head);
    if (atomic_load(&r->cursor) < head || atomic_load(&ring->ended))
        return 1;
    if (atomic_load(&ring->producer))
        return 0; /* it signals when it publishes or gives the role back */
    if (head - slowest_cursor(ring, head) < ring->capacity)
        return 1; /* this reader may produce */
    /* full: sleep only once the mark the laggards will cross is set */
    return atomic_load(&ring->wake_at) != wake_mark(ring, head);
}

static int wait_for(sf_ring *ring, reader *r, int64_t deadline_ns)
{
    uint64_t head = atomic_load(&ring->head);
    if (!atomic_load(&ring->producer) && head - slowest_cursor(ring, head) >= ring->capacity)
        atomic_store(&ring->wake_at, wake_mark(ring, head));
    uint32_t key = sf__event_prepare(&ring->changed);
    if (may_step(ring, r)) {
        sf__event_cancel(&ring->changed);
        return 0;
    }
    return sf__event_wait(&ring->changed, key, deadline_ns);
}

int sf_ring_next(sf_ring *ring, unsigned index, void **value, int64_t deadline_ns)
{
    if (ring->fork_generation != sf__fork_generation())
        return -ECHILD;
    reader *r = &ring->readers[index];
    for (;;) {
        int rc = step(ring, r, value);
        if (rc != -EAGAIN || deadline_ns == 0)
            return rc;
        if (deadline_ns > 0 && sf_now_ns() >= deadline_ns)
            return -ETIMEDOUT;
        rc = wait_for(ring, r, deadline_ns);
        if (rc < 0)
            return rc;
    }
}

int sf_ring_wait(sf_ring *ring, unsigned index, int64_t deadline_ns)
{
    if (ring->fork_generation != sf__fork_generation())
        return -ECHILD;
    return wait_for(ring, &ring->readers[index], deadline_ns);
}

void sf_ring_cancel(sf_ring *ring)
{
    atomic_store(&ring->cancelled, 1);
    sf__event_signal_all(&ring->changed);
}

static void destroy(sf_ring *ring)
{
    uint64_t head = atomic_load(&ring->head);
    uint64_t first = head > ring->capacity ? head - ring->capacity : 0;
    if (ring->ops.discard) {
        for (uint64_t k = first; k < head; k++)
            ring->ops.discard(ring->ctx, ring->slots[k % ring->capacity]);
        if (ring->error)
            ring->ops.discard(ring->ctx, ring->error);
    }
    if (ring->ops.destroy)
        ring->ops.destroy(ring->ctx);
    free(ring->slots);
    free(ring->readers);
    free(ring);
}

void sf_ring_close_reader(sf_ring *ring, unsigned index)
{
    reader *r = &ring->readers[index];
    if (atomic_load(&r->cursor) == CLOSED)
        return;
    r->lent = 0;
    atomic_store(&r->cursor, CLOSED);
    sf__event_signal_all(&ring->changed);
    if (atomic_fetch_sub(&ring->open_readers, 1) == 1 &&
        ring->fork_generation == sf__fork_generation())
        destroy(ring);
}

size_t sf_ring_held(const sf_ring *ring)
{
    uint64_t head = atomic_load(&ring->head);
    return (size_t)(head - slowest_cursor(ring, head));
}

uint64_t sf_ring_pulled(const sf_ring *ring)
{
    return atomic_load(&ring->head);
}
