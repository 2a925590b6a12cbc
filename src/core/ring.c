/*
 * ring.c -- sf_ring: one input, read once, broadcast to n readers through
 * a ring of `capacity` slots (fan-out and tee).
 *
 * DESIGN.  One write cursor (`head`: items published) and one read cursor
 * per reader (the position it reads next; CLOSED once closed).  Item k
 * lives in slots[k % capacity].  Invariant: head - min(open cursors) <=
 * capacity, so the slot a new item takes was read by every open reader.
 * An unbounded ring (itertools.tee's rule) keeps the invariant by moving
 * to a segment twice the size instead of waiting; a reader loads head
 * before the segment, and the producer publishes a new segment before any
 * head that needs it, so a reader always finds its item.
 * There is no producer thread and no lock: a reader that has read
 * everything published becomes the producer by a compare-and-swap on
 * `producer` (the token of its thread), pulls with no engine state held,
 * stores each item (counted in `written`), publishes head with release
 * order and gives the role back.  A turn pulls one item, or with
 * sf_ring_read_ahead up to `read_ahead` while the ring has room and the
 * turn is young (readers on different cores then trade the role once per
 * turn, not per item; a slow input ends the turn after its first pull);
 * within a turn head moves after the first item and then once per
 * PUBLISH_EVERY, and a reader about to sleep publishes what was written
 * (head only grows: a compare-and-swap up to `written`).  A reader that
 * finds the role taken spins briefly before it sleeps: the holder
 * publishes within a few pulls.  Readers load head with acquire order,
 * so a slot is always written before it is read; a reader keeps the head
 * it last loaded and
 * loads it again only once it has read up to it (a segment loaded later
 * is never older, and still holds every position the reader has yet to
 * read).  A reader hands its item out borrowed and
 * advances its cursor at its next call (or close), so the producer never
 * reuses a slot whose item a reader has yet to take.  The previous item
 * of a reused slot is discarded by the reader that pulled it (a bounded
 * ring remembers who, per slot): on its thread, where it was made, since
 * a thread-caching allocator or CPython's biased reference counts free an
 * object made elsewhere only through a hand-back to its maker.  The
 * producer discards its own items itself after publishing, and pushes the
 * others' to their reader's queue (single producer: the role; single
 * consumer: that reader, at its next step or close), published once per
 * turn; a closed reader's, or one whose queue is full, it discards itself.
 * Sleeping: one event, `changed`, is signalled when head moves, the input
 * ends, the producer role is given back, a reader closes, the ring is
 * cancelled, or a cursor crosses `wake_at`: a reader waiting on a full
 * ring sets that mark capacity/8 slots above the slowest cursor, so a
 * laggard moving one slot at a time wakes it once per chunk, not per item.
 * Head, the end, the role and closes are published before a signal, whose
 * fence pairs with the sleeper's announcement (sync.c's protocol), so such
 * a sleeper either sees the change or is woken.  A reader's own cursor is
 * stored with release order only (a full fence per item would stall on
 * the line the producer reads), so a waiter on a full ring may miss the
 * crossing of its mark: it looks again every FULL_RECHECK_NS.  The input's
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
    _Alignas(64) _Atomic uint64_t cursor; /* next position to read; CLOSED */
    _Atomic(const void *) last_thread;   /* the thread of its last read; NULL: never read */
    uint64_t seen_head; /* the head it last loaded: below it, no shared load is needed */
    uint64_t lent; /* items from cursor on handed out; advance past them at the next call */
    int finished;  /* the end (or the input's error) was reported */
    _Atomic uint64_t returned_taken; /* of `returned`: discarded by this reader */
    /* Items this reader pulled whose slots another reader's pull reused,
     * returned to be discarded by this reader (a bounded ring only).  A
     * queue of capacity entries, pushed by the producer role (which is
     * exclusive), made at the first push. */
    _Alignas(64) void **returned;
    _Atomic uint64_t returned_count; /* pushed and published (once per turn) */
    uint64_t returned_pushed;        /* pushed; the producer role's own */
    uint64_t returned_room;          /* pushes possible before returned_taken is read again */
} reader;

/* The slots.  An unbounded ring replaces a full segment by one twice its
 * size; the old one is kept (readers may still hold it) until the ring is
 * freed, so all of them together take at most twice the newest. */
typedef struct segment {
    struct segment *retired; /* the segment this one replaced */
    size_t capacity;
    uint64_t base;           /* the first position stored here */
    void *slots[];
} segment;

/* Fields are grouped by who writes them how often, one cache line per
 * group: head moves with every item, the role and the marks once per turn,
 * the rest never after creation; a reader reading the ring sits in its
 * own reader's line and the read-mostly ones. */
struct sf_ring {
    sf_ring_ops ops;
    void *ctx;
    int unbounded;
    unsigned n_readers;
    unsigned fork_generation;
    _Atomic(segment *) seg;           /* replaced only by the producer */
    reader *readers;
    uint16_t *makers;                 /* a bounded ring: the reader that pulled each slot's item */
    size_t returned_mask;             /* a reader's returned queue has this + 1 entries (a power of two) */
    _Atomic size_t read_ahead;        /* most items one producer turn pulls */
    _Alignas(64) _Atomic uint64_t head; /* items published */
    _Alignas(64) _Atomic int cancelled;
    _Atomic int ended;                /* 0, SF_END or SF_INPUT_ERROR; set after the last head */
    void *error;                      /* the input's error value, with SF_INPUT_ERROR */
    _Atomic uint64_t wake_at;         /* a reader waiting for space needs the min cursor here */
    _Alignas(64) _Atomic uint64_t written; /* items stored; head <= written */
    _Alignas(64) _Atomic(const void *) producer; /* the thread pulling now; NULL: nobody */
    _Atomic unsigned open_readers;
    sf__event changed;
};

/* A producer turn of more than one item (sf_ring_read_ahead) ends after
 * this long, checked every READ_AHEAD_CHECK_EVERY items (and after the
 * first): read-ahead is for inputs that answer at once. */
#define READ_AHEAD_NS 20000
#define READ_AHEAD_CHECK_EVERY 32

/* Within a turn, head is published after the first item, then once per
 * this many (and at the turn's end): a reader that has caught up loads
 * head, and reads the slots behind it, while the producer stores them, so
 * a store per item would move those lines between two cores with every
 * item.  Each item is counted in `written` as it is stored, and a reader
 * that is about to sleep publishes what was written (publish_written):
 * an input whose next pull waits for a reader to see an item still ends.
 * Divides READ_AHEAD_CHECK_EVERY, so everything stored is published
 * before each of the turn's signals. */
#define PUBLISH_EVERY 8

/* A reader waiting on a full ring looks again this often: the laggards
 * publish their cursors without a full fence, so the crossing of the mark
 * may go unseen (rarely, and only for this long). */
#define FULL_RECHECK_NS 1000000

int sf_ring_create(sf_ring **out, unsigned readers, size_t capacity, const sf_ring_ops *ops,
                   void *ctx)
{
    if (!out || !ops || !ops->pull || readers == 0 || readers > SF_RING_MAX_READERS ||
        capacity > (SIZE_MAX - sizeof(segment)) / sizeof(void *) / 2)
        return -EINVAL;
    int unbounded = capacity == SF_RING_UNBOUNDED;
    if (unbounded)
        capacity = 64; /* the first segment; it doubles when full */
    sf_ring *ring = aligned_alloc(_Alignof(sf_ring), sizeof *ring);
    segment *seg = calloc(1, sizeof *seg + capacity * sizeof(void *));
    reader *slots_readers = aligned_alloc(64, sizeof(reader) * readers);
    uint16_t *makers = unbounded ? NULL : calloc(capacity, sizeof *makers);
    if (!ring || !seg || !slots_readers || (!unbounded && !makers)) {
        free(ring);
        free(seg);
        free(slots_readers);
        free(makers);
        return -ENOMEM;
    }
    memset(ring, 0, sizeof *ring);
    memset(slots_readers, 0, sizeof(reader) * readers);
    ring->makers = makers;
    /* a power of two at least capacity: its counters wrap with a mask,
     * not a division per item */
    size_t queue = 1;
    while (queue < capacity)
        queue <<= 1;
    ring->returned_mask = queue - 1;
    seg->capacity = capacity;
    ring->readers = slots_readers;
    for (unsigned i = 0; i < readers; i++) {
        atomic_init(&ring->readers[i].cursor, 0);
        atomic_init(&ring->readers[i].last_thread, NULL);
        atomic_init(&ring->readers[i].returned_taken, 0);
        atomic_init(&ring->readers[i].returned_count, 0);
    }
    ring->ops = *ops;
    ring->ctx = ctx;
    ring->unbounded = unbounded;
    atomic_init(&ring->seg, seg);
    ring->n_readers = readers;
    ring->fork_generation = sf__fork_generation();
    atomic_init(&ring->head, 0);
    atomic_init(&ring->written, 0);
    atomic_init(&ring->ended, 0);
    atomic_init(&ring->producer, NULL);
    atomic_init(&ring->cancelled, 0);
    atomic_init(&ring->wake_at, 0);
    atomic_init(&ring->open_readers, readers);
    atomic_init(&ring->read_ahead, 1);
    sf__event_init(&ring->changed);
    *out = ring;
    return 0;
}

/* A bounded ring's capacity (its only segment never changes). */
static size_t capacity_of(const sf_ring *ring)
{
    return atomic_load_explicit(&ring->seg, memory_order_relaxed)->capacity;
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

/* The reader moves past the items it was lent; a full ring's waiter is
 * woken when this is the step that crosses its mark. */
static void give_back_lent(sf_ring *ring, reader *r)
{
    if (!r->lent)
        return;
    uint64_t was = atomic_load_explicit(&r->cursor, memory_order_relaxed);
    uint64_t now = was + r->lent;
    r->lent = 0;
    /* release, not seq_cst: a full fence per item would stall on the line
     * the producer reads; a waiter that misses this crossing looks again
     * within FULL_RECHECK_NS */
    atomic_store_explicit(&r->cursor, now, memory_order_release);
    uint64_t mark = atomic_load_explicit(&ring->wake_at, memory_order_relaxed);
    if (was < mark && mark <= now)
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

/* An unbounded ring is full: move what the open readers have yet to read
 * into a segment twice the size and release what nobody will read again.
 * The caller holds the producer role. */
static segment *grow(sf_ring *ring, segment *old, uint64_t head)
{
    uint64_t slowest = slowest_cursor(ring, head);
    size_t capacity = old->capacity * 2;
    segment *seg = malloc(sizeof *seg + capacity * sizeof(void *));
    if (!seg)
        return NULL;
    seg->capacity = capacity;
    seg->base = slowest;
    seg->retired = old;
    for (uint64_t k = slowest; k < head; k++)
        seg->slots[k % capacity] = old->slots[k % old->capacity];
    atomic_store_explicit(&ring->seg, seg, memory_order_release);
    uint64_t first = head > old->capacity ? head - old->capacity : 0;
    if (first < old->base)
        first = old->base;
    for (uint64_t k = first; k < slowest && ring->ops.discard; k++)
        ring->ops.discard(ring->ctx, old->slots[k % old->capacity]);
    return seg;
}

/* The producer role: queue a value for `owner` to discard; 0 when its
 * queue is full (or cannot be made). */
static int push_returned(const sf_ring *ring, reader *owner, void *value)
{
    if (!owner->returned && !(owner->returned = malloc((ring->returned_mask + 1) * sizeof(void *))))
        return 0;
    if (owner->returned_pushed == owner->returned_room)
        owner->returned_room =
            atomic_load_explicit(&owner->returned_taken, memory_order_acquire) + capacity_of(ring);
    if (owner->returned_pushed == owner->returned_room)
        return 0;
    owner->returned[owner->returned_pushed++ & ring->returned_mask] = value;
    return 1;
}

/* The producer role: an item whose slot this pull reuses goes back to the
 * reader that pulled it, to be discarded on that reader's thread (where it
 * was made: a thread-caching allocator or CPython's biased reference
 * counts free it there cheaply, elsewhere only through a hand-back),
 * unless that is this reader, it is closed, or its queue is full. */
static void release_reused(sf_ring *ring, unsigned me, unsigned maker, void *value)
{
    reader *owner = &ring->readers[maker];
    if (maker != me && atomic_load_explicit(&owner->cursor, memory_order_relaxed) != CLOSED &&
        push_returned(ring, owner, value))
        return;
    if (ring->ops.discard)
        ring->ops.discard(ring->ctx, value);
}

/* The producer role, at the end of its turn: what it returned to other
 * readers is theirs to discard from now on. */
static void publish_returned(sf_ring *ring)
{
    for (unsigned i = 0; i < ring->n_readers; i++) {
        reader *r = &ring->readers[i];
        if (r->returned_pushed != atomic_load_explicit(&r->returned_count, memory_order_relaxed))
            atomic_store_explicit(&r->returned_count, r->returned_pushed, memory_order_release);
    }
}

/* The reader (or its closer, or the ring's destroy) discards what was
 * returned to it, up to `count`.  Each is counted taken before its
 * discard, which may run code that reads this reader again. */
static void discard_returned(sf_ring *ring, reader *r, uint64_t count)
{
    for (;;) {
        uint64_t taken = atomic_load_explicit(&r->returned_taken, memory_order_relaxed);
        if (taken >= count)
            return;
        void *value = r->returned[taken & ring->returned_mask];
        atomic_store_explicit(&r->returned_taken, taken + 1, memory_order_release);
        if (ring->ops.discard)
            ring->ops.discard(ring->ctx, value);
    }
}

/* The reader (or its closer) discards what the producers published as
 * returned to it so far. */
static void discard_published_returned(sf_ring *ring, reader *r)
{
    uint64_t returned = atomic_load_explicit(&r->returned_count, memory_order_acquire);
    if (returned != atomic_load_explicit(&r->returned_taken, memory_order_relaxed))
        discard_returned(ring, r, returned);
}

/* Produce one item: the caller, reader `me`, holds the producer role.  0
 * or -ENOMEM. */
static int produce(sf_ring *ring, unsigned me, uint64_t head)
{
    segment *seg = atomic_load_explicit(&ring->seg, memory_order_relaxed);
    if (ring->unbounded && head - slowest_cursor(ring, head) >= seg->capacity &&
        !(seg = grow(ring, seg, head))) {
        atomic_store(&ring->producer, NULL);
        sf__event_signal_all(&ring->changed);
        return -ENOMEM;
    }
    void *item = NULL, *reused = NULL;
    unsigned reused_maker = me;
    enum sf_pull got;
    size_t read_ahead = atomic_load_explicit(&ring->read_ahead, memory_order_relaxed);
    int64_t started = read_ahead > 1 ? sf_now_ns() : 0;
    uint64_t slowest = read_ahead > 1 ? slowest_cursor(ring, head) : 0;
    uint64_t published = head;
    size_t slot = (size_t)(head % seg->capacity); /* then one step per item */
    for (size_t pulled = 1;; pulled++) {
        got = ring->ops.pull(ring->ctx, &item);
        if (got != SF_PULL_ITEM)
            break;
        if (reused) /* the previous pull's: the turn goes on */
            release_reused(ring, me, reused_maker, reused);
        reused = head >= seg->base + seg->capacity ? seg->slots[slot] : NULL;
        seg->slots[slot] = item;
        if (ring->makers) {
            reused_maker = ring->makers[slot];
            ring->makers[slot] = (uint16_t)me;
        }
        if (++slot == seg->capacity)
            slot = 0;
        atomic_store_explicit(&ring->written, ++head, memory_order_release);
        if (pulled == 1 || pulled % PUBLISH_EVERY == 0) /* so before each signal below */
            atomic_store_explicit(&ring->head, published = head, memory_order_release);
        if (pulled >= read_ahead || ring->unbounded ||
            atomic_load_explicit(&ring->cancelled, memory_order_relaxed))
            break;
        if (head - slowest >= seg->capacity &&
            head - (slowest = slowest_cursor(ring, head)) >= seg->capacity)
            break; /* full */
        /* every few items: wake sleepers for what is published, and stop
         * once this turn has taken long (a slow input, whose items this
         * reader's own caller is waiting for) */
        if (pulled == 1 || pulled % READ_AHEAD_CHECK_EVERY == 0) {
            sf__event_signal_all(&ring->changed);
            if (sf_now_ns() - started > READ_AHEAD_NS)
                break;
        }
    }
    if (published != head)
        atomic_store_explicit(&ring->head, head, memory_order_release);
    if (reused && reused_maker != me) { /* queued, not run: within the role */
        release_reused(ring, me, reused_maker, reused);
        reused = NULL;
    }
    if (ring->makers)
        publish_returned(ring);
    if (got == SF_PULL_ITEM) {
        atomic_store(&ring->producer, NULL);
        sf__event_signal_all(&ring->changed);
        /* the last turn's item out of the role, so whatever its release
         * runs may read the ring */
        if (reused && ring->ops.discard)
            ring->ops.discard(ring->ctx, reused);
        return 0;
    }
    if (got == SF_PULL_ERROR)
        ring->error = item;
    atomic_store_explicit(&ring->ended, got == SF_PULL_ERROR ? SF_INPUT_ERROR : SF_END,
                          memory_order_release);
    atomic_store(&ring->producer, NULL);
    sf__event_signal_all(&ring->changed);
    if (reused && ring->ops.discard)
        ring->ops.discard(ring->ctx, reused);
    return 0;
}

void sf_ring_read_ahead(sf_ring *ring, size_t items)
{
    atomic_store_explicit(&ring->read_ahead, items ? items : 1, memory_order_relaxed);
}

/* One step without sleeping: an sf_outcome, -EAGAIN or -EDEADLK.  With
 * an item, up to max_more published items behind it go to more[]. */
static int step(sf_ring *ring, reader *r, void **value, void **more, size_t max_more,
                size_t *n_more)
{
    give_back_lent(ring, r);
    if (ring->makers)
        discard_published_returned(ring, r);
    for (;;) {
        if (atomic_load_explicit(&ring->cancelled, memory_order_relaxed))
            return SF_CANCELLED;
        if (r->finished)
            return SF_END;
        uint64_t cursor = atomic_load_explicit(&r->cursor, memory_order_relaxed);
        /* head is loaded again only once the reader has caught up with
         * the one it saw: the line it lives on changes with every item */
        uint64_t head = r->seen_head;
        if (cursor >= head)
            r->seen_head = head = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (cursor < head) {
            const segment *seg = atomic_load_explicit(&ring->seg, memory_order_acquire);
            size_t slot = (size_t)(cursor % seg->capacity);
            *value = seg->slots[slot];
            uint64_t behind = head - cursor - 1;
            size_t n = behind < max_more ? (size_t)behind : max_more;
            for (size_t k = 0; k < n; k++) { /* a step, not a division, per item */
                if (++slot == seg->capacity)
                    slot = 0;
                more[k] = seg->slots[slot];
            }
            *n_more = n;
            r->lent = 1 + n;
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
        if (!ring->unbounded && head - slowest >= capacity_of(ring))
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
        if (produce(ring, (unsigned)(r - ring->readers), head) < 0)
            return -ENOMEM;
    }
}

static uint64_t wake_mark(const sf_ring *ring, uint64_t head)
{
    size_t capacity = capacity_of(ring);
    uint64_t chunk = capacity / 8 ? capacity / 8 : 1;
    return head - capacity + chunk;
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
    if (ring->unbounded || head - slowest_cursor(ring, head) < capacity_of(ring))
        return 1; /* this reader may produce */
    /* full: sleep only once the mark the laggards will cross is set */
    return atomic_load(&ring->wake_at) != wake_mark(ring, head);
}

/* How many times a reader looks again, without sleeping, while another
 * reader holds the producer role: that one publishes within one pull, and
 * a futex sleep and wake-up per item would cost more than the pull. */
#define SPIN_WHILE_PRODUCING 256

/* A reader about to sleep: what the producer stored and has yet to
 * publish is published now (head only grows: the producer's own next
 * store is at least what it had written). */
static void publish_written(sf_ring *ring)
{
    uint64_t written = atomic_load_explicit(&ring->written, memory_order_acquire);
    uint64_t head = atomic_load(&ring->head);
    while (head < written && !atomic_compare_exchange_weak(&ring->head, &head, written))
        ;
}

static int wait_for(sf_ring *ring, reader *r, int64_t deadline_ns)
{
    for (int spin = 0; spin < SPIN_WHILE_PRODUCING && atomic_load(&ring->producer); spin++) {
        if (may_step(ring, r))
            return 0;
        sf__cpu_relax();
    }
    publish_written(ring);
    uint64_t head = atomic_load(&ring->head);
    int full = !ring->unbounded && !atomic_load(&ring->producer) &&
               head - slowest_cursor(ring, head) >= capacity_of(ring);
    if (full)
        atomic_store(&ring->wake_at, wake_mark(ring, head));
    uint32_t key = sf__event_prepare(&ring->changed);
    if (may_step(ring, r)) {
        sf__event_cancel(&ring->changed);
        return 0;
    }
    if (full) {
        int64_t recheck = sf_now_ns() + FULL_RECHECK_NS;
        if (deadline_ns < 0 || deadline_ns > recheck) {
            int rc = sf__event_wait(&ring->changed, key, recheck);
            return rc == -ETIMEDOUT ? 0 : rc;
        }
    }
    return sf__event_wait(&ring->changed, key, deadline_ns);
}

int sf_ring_next_many(sf_ring *ring, unsigned index, void **value, int64_t deadline_ns,
                      void **more, size_t max_more, size_t *n_more)
{
    if (ring->fork_generation != sf__fork_generation())
        return -ECHILD;
    reader *r = &ring->readers[index];
    *n_more = 0;
    for (;;) {
        int rc = step(ring, r, value, more, max_more, n_more);
        if (rc != -EAGAIN || deadline_ns == 0)
            return rc;
        if (deadline_ns > 0 && sf_now_ns() >= deadline_ns)
            return -ETIMEDOUT;
        rc = wait_for(ring, r, deadline_ns);
        if (rc < 0)
            return rc;
    }
}

int sf_ring_next(sf_ring *ring, unsigned index, void **value, int64_t deadline_ns)
{
    size_t none;
    return sf_ring_next_many(ring, index, value, deadline_ns, NULL, 0, &none);
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
    segment *seg = atomic_load(&ring->seg);
    uint64_t first = head > seg->capacity ? head - seg->capacity : 0;
    if (first < seg->base)
        first = seg->base;
    if (ring->ops.discard) {
        for (uint64_t k = first; k < head; k++)
            ring->ops.discard(ring->ctx, seg->slots[k % seg->capacity]);
        if (ring->error)
            ring->ops.discard(ring->ctx, ring->error);
    }
    /* returned to readers after their close (a producer that saw them
     * open): no producer is left, so its own count is the final one */
    for (unsigned i = 0; ring->makers && i < ring->n_readers; i++) {
        reader *r = &ring->readers[i];
        if (r->returned)
            discard_returned(ring, r, r->returned_pushed);
        free(r->returned);
    }
    free(ring->makers);
    if (ring->ops.destroy)
        ring->ops.destroy(ring->ctx);
    while (seg) {
        segment *older = seg->retired;
        free(seg);
        seg = older;
    }
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
    /* what a producer returns to it from now on goes with the ring */
    discard_published_returned(ring, r);
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
