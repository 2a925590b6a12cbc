/*
 * map.c -- sf_map, the lazy map: serial input -> parallel work -> serial output,
 * bounded by a window of W tokens (the TBB pipeline shape).
 *
 * DESIGN.  A token is a slot.  The input stage (a job on the pool's input
 * lane) takes a free slot *before* pulling, so items acquired and not yet
 * taken by the consumer (`held`, plus those being pulled) never exceed W;
 * it pulls one item per lock round trip, or a burst of free slots' worth
 * when the embedder says the input never blocks (a list in memory).
 * Pulled items queue in `ready` (FIFO, input order); work jobs on the worker
 * lane claim them in batches sized from the measured item cost (claiming is
 * what batching saves; options may fix the size or move the target), run
 * them with no lock held, and hand each result to the consumer the moment
 * it exists: published under the lock one by one, or, in an ordered map
 * with a bounded window, shown with no lock (the slot's state, stored after
 * its value) and published, i.e. counted and freed, with the rest of its
 * batch, so trivial items do not take the lock every worker shares once
 * each.  Items of a batch not yet started are still cancellable.  The
 * consumer takes results (shown or published)
 * in input order (slot of seq = seq_slot[seq % W], valid because in ordered
 * mode the acquired seqs are exactly [taken, pulled)) or in completion order
 * (`done` FIFO), one at a time or, with sf_map_next_many, a result and the
 * small finished ones right behind it in one trip.  A consumer that looks
 * finds each result the moment it exists; one that has to sleep while
 * results come microseconds apart is woken for a group of them
 * (results_to_gather: about a millisecond's worth), its sleep timed so
 * that none waits for company longer than twice that.  Taking a result
 * frees its slot, which re-posts the input stage if it had stopped on a full
 * window.  The slots are made in pages as the window first needs them (a
 * short map on a large window makes one page) and never move; the index
 * arrays (free stack, FIFOs, seq mapping) are allocated once, at the
 * window's largest rounded up to a power of two (an index wraps with a
 * mask), and touched only as far as they are used; only
 * buffersize=None (unbounded) grows them, doubling.  How many slots may be
 * held now is the window's policy (window.c): a fixed size, or one that
 * follows the results' cost in bytes (ops.result_bytes, measured on the
 * worker and counted when published); a worker claims no more items than
 * the budget left holds (in_work counts those claimed and not finished).
 * With such a window the input stage also stops once the ready items are
 * as much work as window.c lets it read ahead of the workers, and a claim
 * that takes them below half of that re-posts it.  A work job that starts
 * work posts the next one on its way when more is ready, except while
 * the jobs posted find nothing to claim and items are short
 * (chain_next_job: with a GIL those are wake-ups for nothing).
 * An embedder may take a whole claimed batch at once (ops.work_batch, for
 * pipelining to a process); each item is still published the moment
 * sf_batch_done says it finished.
 *
 * Invariants (under map->mu):
 *   held + pulling <= cap, and held <= the window's limit when it was
 *   acquired (a shrinking window lets what is held drain);
 *   in_work = items claimed by work jobs and not yet published or given up;
 *   every slot is in exactly one place: free stack, ready FIFO, claimed by a
 *   worker (RUNNING), or finished (DONE_*, CANCELLED, BROKEN: in `done` when
 *   unordered, addressed by seq when ordered);
 *   a drained map (consumer gone) keeps no finished value: it is discarded
 *   and its slot freed at once, so a fire-and-forget map stays O(W);
 *   refs = consumer (0/1) + posted feed job (0/1) + posted work jobs;
 *   jobs_working <= jobs_posted <= max_jobs (the pool's worker count);
 *   pull_for_consumer (set under mu, cleared by whoever exchanges it
 *   first): the pull under way counts once in the pool's in_pull, which a
 *   join does not wait for; set only while a consumer is attached (a
 *   detach takes it back).
 *
 * The pool reaches a live map only through its shutdown listener, which
 * takes a reference (refs > 0) for the call.
 *
 * Lock order: map->mu, then pool->mu (posting a job).  No callback (pull,
 * work, discard, destroy) is ever made with map->mu held: values to discard
 * are collected under the lock and released after it.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"
#include "sync.h"
#include "window.h"

#define DEFAULT_MAX_BATCH 128
#define BATCH_EXTENSIONS 4        /* a work_batch batch may grow to this many claims */
#define ROUNDS_PER_JOB 16         /* batches before a work job yields its worker */
#define IDLE_ARRIVALS_TO_STOP_CHAINING 2 /* see chain_next_job */
#define ITEM_NS_WORTH_A_WAKE_UP 10000.0 /* an item this long is worth waking a worker for */
#define DEFAULT_BATCH_NS 50000.0  /* a batch should take about this long */
#define MAX_PUBLISH_GROUP 128     /* finished items counted in one lock round trip */
#define RESULTS_GATHER_NS 1000000.0 /* a sleeping consumer is woken for about this much work */
#define MAX_RESULTS_GATHERED 64   /* ... and for at most this many results */
#define MIN_RESULT_NS_TO_GATHER 2000.0 /* results closer than this: see results_to_gather */
#define SLOT_PAGE 256             /* slots are made this many at a time, as the window needs them */
#define UNBOUNDED_START SLOT_PAGE
#define PULL_BURST 512            /* items pulled per lock round trip, inputs that never block */
#define SPILL_SLACK (PULL_BURST + 2) /* values a map owns beyond its slots: a burst, an input error */

enum slot_state {
    SLOT_FREE,
    SLOT_READY,
    SLOT_RUNNING,
    /* a grouped item (work_each): its result is shown to the consumer the
     * moment it exists, with no lock (SHOWN_OK/ERROR, stored after the
     * value), and published (counted, DONE_*) with its
     * group; a consumer that takes it first leaves SHOWN_TAKEN, and the
     * group's publish frees the slot */
    SLOT_SHOWN_TAKEN,
    SLOT_SHOWN_OK,
    SLOT_SHOWN_ERROR,
    SLOT_DONE_OK,
    SLOT_DONE_ERROR,
    SLOT_CANCELLED,
    SLOT_BROKEN,
};

enum input_state {
    INPUT_OPEN,    /* more may come */
    INPUT_ENDED,   /* the input said so */
    INPUT_FAILED,  /* the input raised; input_error holds it */
    INPUT_STOPPED, /* the consumer closed the map */
    INPUT_SHUT,    /* shutdown stopped acquisition */
    INPUT_BROKEN,  /* the pool broke */
};

typedef struct slot {
    void *value;
    size_t bytes; /* a finished result's cost, counted in the window (ops.result_bytes) */
    _Atomic unsigned char state; /* under mu, but for a grouped item's SHOWN_* store */
} slot;

typedef struct slot_fifo {
    uint32_t *buf;
    size_t head, len;
} slot_fifo;

typedef struct work_job {
    sf_job job;
    sf_map *map;
    struct work_job *next_free;
    int requeued; /* back on the queue after ROUNDS_PER_JOB, not posted anew */
    /* one claimed batch (max_batch entries each) */
    uint32_t *idx;
    void **values;
    int *failed;
    size_t *bytes;
    unsigned char *done;
} work_job;

struct sf_map {
    /* set when made, then only read, by every thread (cap and slot_pages
     * change only in an unbounded map, under mu, and no worker reads them
     * without it there): on lines nobody writes, so that reading them per
     * item costs no cache line taken from another core */
    sf_pool *pool;
    sf_map_ops ops;
    void *ctx;
    int bounded, unordered;
    int pull_never_blocks;
    unsigned max_jobs;
    int fixed_batch; /* options.batch: claim exactly this many (fewer at the end) */
    int max_batch;
    int batch_cap;   /* a batch's room, extensions included */
    double batch_ns;
    size_t cap;      /* slots; the most the window can ever be */
    /* the slots, in pages of SLOT_PAGE, made when the window first needs
     * them (a short map on a large window makes one page); a page never
     * moves, so a worker shows a result in its slot with no lock */
    slot **slot_pages;
    work_job *jobs;

    /* read by workers between items, with no lock; written only when the
     * consumer goes to sleep or the map is cancelled */
    _Alignas(64) sf__event changed; /* the consumer sleeps here */
    _Atomic int cancelled; /* items not started must not start any more (written under mu) */
    _Atomic long awaited_slot; /* the slot a sleeping ordered consumer waits for; -1: any */
    /* results a sleeping consumer lets gather before it is woken (1: each
     * at once; more only while its sleep is timed, see results_to_gather),
     * and how many have come since it went to sleep */
    _Atomic int wake_after, gathered;

    /* the rest changes all the time, under mu */
    _Alignas(64) pthread_mutex_t mu;
    _Atomic long refs;
    sf__shutdown_listener listener; /* the pool tells us of its shutdown */
    sf__window win;   /* how many slots may be held now (window.c), when bounded */
    size_t slots_made;
    /* the free slots made, reused in the order they were freed: the one
     * the consumer freed last (its line still on the consumer's core, next
     * to slots it is freeing) is the last to be filled again */
    slot_fifo free_slots;
    uint32_t *seq_slot;
    slot_fifo ready, done;
    void **spill; /* cap + SPILL_SLACK values to discard (trash_add) */
    size_t nspill;
    uint64_t pulled, taken;
    size_t held;
    size_t in_work; /* items claimed by work jobs and not yet finished */
    int held_back;  /* ready items left unstarted for the results' budget: a take re-posts */

    int input_state;
    void *input_error;
    int pulling, feed_posted; /* pulling: slots taken by pulls under way */
    _Atomic int pull_for_consumer; /* the pull under way counts as the consumer's (in_pull) */
    sf_job feed_job;

    int consumer, drain, finished;
    unsigned jobs_posted;
    unsigned jobs_working; /* posted jobs between claiming a batch and its end */
    work_job *free_jobs;
    /* posted jobs in a row that found nothing to claim when they started
     * (reset by one that found work while another job worked) */
    unsigned idle_arrivals;
    double item_ns; /* moving average of one item's work */

    /* sf_map_stats: where the time went */
    int64_t busy_ns, input_ns, full_ns;
    int64_t full_since; /* blocked on output since then (note_blocked_on_output); 0: not */
};

static void map_unref(sf_map *m);

/* map->mu held: a slot's state is read only under the lock, which orders
 * it; the one store made without the lock, show()'s, keeps seq_cst for the
 * consumer's wake-up protocol.  A seq_cst store here would be a full fence
 * per item on each stage's path. */
static inline void set_state(slot *s, enum slot_state state)
{
    atomic_store_explicit(&s->state, (unsigned char)state, memory_order_relaxed);
}

static inline slot *slot_at(const sf_map *m, size_t idx)
{
    return &m->slot_pages[idx / SLOT_PAGE][idx % SLOT_PAGE];
}

/* mu held: start counting full_ns when the stage is held back by its
 * consumer: the input stage stands on a full window and no item waits for
 * a worker (a window full of items waiting for the stage's own workers is
 * the stage being slow, which busy_ns shows).  maybe_post_feed stops it. */
static void note_blocked_on_output(sf_map *m)
{
    if (!m->full_since && !m->feed_posted && m->input_state == INPUT_OPEN && m->bounded &&
        !sf__window_admits(&m->win, m->held) && m->ready.len == 0)
        m->full_since = sf_now_ns();
}
static void on_shutdown(sf__shutdown_listener *listener, int cancel_pending, int cancel_input);

/* ---- small helpers (map->mu held) ----------------------------------- */

/* Where the n-th entry of an index array lives: cap is a power of two, so
 * a mask, not a division, on each of the several per-item lookups. */
static inline size_t wrap(const sf_map *m, uint64_t n)
{
    return (size_t)(n & (m->cap - 1));
}

static void fifo_push(const sf_map *m, slot_fifo *r, uint32_t idx)
{
    assert(r->len < m->cap && idx < m->cap);
    r->buf[wrap(m, r->head + r->len)] = idx;
    r->len++;
}

static uint32_t fifo_pop(const sf_map *m, slot_fifo *r)
{
    assert(r->len > 0);
    uint32_t idx = r->buf[r->head];
    r->head = wrap(m, r->head + 1);
    r->len--;
    return idx;
}

/* Back on the free stack; its result, if any, is out of the window's count. */
static void free_slot(sf_map *m, uint32_t idx)
{
    slot *s = slot_at(m, idx);
    assert(m->held > 0 && m->free_slots.len < m->slots_made && s->state != SLOT_FREE);
    s->bytes = 0;
    s->value = NULL;
    set_state(s, SLOT_FREE);
    fifo_push(m, &m->free_slots, idx);
    m->held--;
}

static void release_slot(sf_map *m, uint32_t idx)
{
    if (m->bounded)
        sf__window_results_released(&m->win, slot_at(m, idx)->bytes, 1);
    free_slot(m, idx);
}

/* A growable list of values to discard once map->mu is released. */
typedef struct trash trash;
static void trash_add(sf_map *m, trash *t, void *value);

/* An item that will not run after all (cancelled, or the pool broke): its
 * value goes to the trash, and the consumer, if there is one, finds the
 * slot at the item's position in the given state. */
static void give_up_item(sf_map *m, uint32_t idx, void *value, enum slot_state why, trash *t)
{
    trash_add(m, t, value);
    if (m->drain) {
        release_slot(m, idx);
        return;
    }
    slot *s = slot_at(m, idx);
    s->value = NULL;
    set_state(s, why);
    if (m->unordered)
        fifo_push(m, &m->done, idx);
}


/* Values to discard are collected under map->mu and discarded after it
 * (the no-callback-under-lock rule).  A trash grows on the heap; should
 * that fail, the value goes on the map's spill stack instead, preallocated
 * for every value the map can own at once (its slots, a pull burst and
 * the input's error), so collecting never fails and never aborts. */
struct trash {
    void **items;
    size_t len, cap;
    int spilled; /* a value went to the map's spill stack */
};

static void trash_add(sf_map *m, trash *t, void *value)
{
    if (!value)
        return;
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        void **items = realloc(t->items, cap * sizeof *items);
        if (!items) {
            assert(m->nspill < m->cap + SPILL_SLACK);
            m->spill[m->nspill++] = value;
            t->spilled = 1;
            return;
        }
        t->items = items;
        t->cap = cap;
    }
    t->items[t->len++] = value;
}

static void trash_empty(sf_map *m, trash *t)
{
    size_t i;
    for (i = 0; i < t->len; i++)
        m->ops.discard(m->ctx, t->items[i]);
    free(t->items);
    t->items = NULL;
    t->len = t->cap = 0;
    /* the spill stack is shared: take one value per lock round trip until
     * it is empty (values another trash spilled are discarded here too) */
    while (t->spilled) {
        void *value = NULL;
        sf__lock(&m->mu);
        if (m->nspill)
            value = m->spill[--m->nspill];
        sf__unlock(&m->mu);
        if (!value)
            t->spilled = 0;
        else
            m->ops.discard(m->ctx, value);
    }
}

/* mu held: make pages of slots until `want` are free or every slot is
 * made; -ENOMEM when a page could not be made (the slots made stay). */
static int make_slots(sf_map *m, size_t want)
{
    while (m->free_slots.len < want && m->slots_made < m->cap) {
        slot *page = calloc(SLOT_PAGE, sizeof *page);
        if (!page)
            return -ENOMEM;
        size_t first = m->slots_made;
        m->slot_pages[first / SLOT_PAGE] = page;
        for (size_t i = 0; i < SLOT_PAGE; i++)
            fifo_push(m, &m->free_slots, (uint32_t)(first + i));
        m->slots_made += SLOT_PAGE;
    }
    return 0;
}

/* grow(): a FIFO's entries, in order, to the start of `to` (room for the
 * new capacity); the old buffer, of `old` entries, is freed. */
static void fifo_move(slot_fifo *r, uint32_t *to, size_t old)
{
    for (size_t i = 0; i < r->len; i++)
        to[i] = r->buf[(r->head + i) % old];
    free(r->buf);
    r->buf = to;
    r->head = 0;
}

/* Double the capacity of an unbounded map: the index arrays (re-laying the
 * FIFOs and the seq mapping for the new modulus) and the page directory;
 * the slots made stay where they are.  -ENOMEM leaves the map as it was. */
static int grow(sf_map *m)
{
    size_t old = m->cap, cap = old * 2;
    slot **pages = calloc(cap / SLOT_PAGE, sizeof *pages);
    uint32_t *free_slots = malloc(cap * sizeof *free_slots);
    uint32_t *seq_slot = malloc(cap * sizeof *seq_slot);
    uint32_t *ready = malloc(cap * sizeof *ready);
    uint32_t *done = malloc(cap * sizeof *done);
    void **spill = malloc((cap + SPILL_SLACK) * sizeof *spill);
    if (!pages || !free_slots || !seq_slot || !ready || !done || !spill) {
        free(spill);
        free(pages);
        free(free_slots);
        free(seq_slot);
        free(ready);
        free(done);
        return -ENOMEM;
    }
    memcpy(pages, m->slot_pages, old / SLOT_PAGE * sizeof *pages);
    for (uint64_t seq = m->taken; seq < m->pulled; seq++)
        seq_slot[seq % cap] = m->seq_slot[seq % old];
    fifo_move(&m->free_slots, free_slots, old);
    fifo_move(&m->ready, ready, old);
    fifo_move(&m->done, done, old);
    free(m->slot_pages);
    free(m->seq_slot);
    memcpy(spill, m->spill, m->nspill * sizeof *spill);
    free(m->spill);
    m->spill = spill;
    m->slot_pages = pages;
    m->seq_slot = seq_slot;
    m->cap = cap;
    return 0;
}

/* Items that make about batch_ns of work (at least 1). */
static size_t batch_of_work(const sf_map *m)
{
    if (m->fixed_batch)
        return (size_t)m->fixed_batch;
    double n = m->item_ns > 0 ? m->batch_ns / m->item_ns : 1;
    return n < 1 ? 1 : n > 1e9 ? (size_t)1e9 : (size_t)n;
}

/* A full batch: about batch_ns of work, at most max_batch items. */
static int full_batch(const sf_map *m)
{
    size_t n = batch_of_work(m);
    return n > (size_t)m->max_batch ? m->max_batch : (int)n;
}

/* mu held: the acquired items waiting for the workers are about as much
 * work as the window lets the input read ahead of them (window.c), or
 * `fraction` of it. */
static int read_far_enough_ahead(const sf_map *m, size_t fraction)
{
    if (!m->bounded)
        return 0;
    size_t at_least = 2 * (size_t)m->max_jobs * (size_t)full_batch(m);
    return m->ready.len >= sf__window_read_ahead(&m->win, m->item_ns, m->max_jobs, at_least) /
                               fraction;
}

/* What a worker claims: a full batch, or a fair share of what is ready
 * when that is less and what is ready is more than a batch of work (the
 * last items of a map are spread over workers; a few trivial ones are
 * not: splitting them would cost more lock trips than it saves time). */
static int batch_size(const sf_map *m)
{
    int n = full_batch(m);
    size_t share = (m->ready.len + m->max_jobs - 1) / m->max_jobs;
    if (!m->fixed_batch && (size_t)n > share && (double)m->ready.len * m->item_ns > m->batch_ns)
        n = share < 1 ? 1 : (int)share;
    return n;
}

/* Ready items that no work job will claim: the pool refused the work. */
static void break_ready(sf_map *m, trash *t)
{
    while (m->ready.len) {
        uint32_t idx = fifo_pop(m, &m->ready);
        give_up_item(m, idx, slot_at(m, idx)->value, SLOT_BROKEN, t);
    }
    if (m->input_state == INPUT_OPEN)
        m->input_state = INPUT_BROKEN;
}

static int work_run(sf_job *job);
static void work_drop(sf_job *job, int reason);
static long takeable(sf_map *m);

/* How many more items may start now (window.c: the results' budget). */
static size_t startable(sf_map *m)
{
    if (!m->bounded)
        return SIZE_MAX;
    return sf__window_startable(&m->win, m->in_work, takeable(m) < 0);
}

static int post_one_work_job(sf_map *m, trash *t);

/* Post a work job when the ready items need one more worker than is at
 * work or on its way. */
static void maybe_post_work(sf_map *m, trash *t)
{
    m->held_back = m->ready.len && startable(m) == 0;
    if (m->held_back)
        return; /* the held results fill the budget: a take re-posts */
    /* another worker is worth waking for a full batch of work (batch_ns,
     * however many items), not for a fair share of a few trivial items:
     * its wake-up would cost more than they do, and the workers at work
     * claim them as they go; any ready item needs one when none works */
    size_t want = m->ready.len / batch_of_work(m);
    if (want == 0 && m->ready.len && m->jobs_working == 0)
        want = 1;
    /* one job at a time is on its way to a worker (posted, not yet at
     * work); it posts the next as it starts, if the work is still there
     * (work_run), so a slow item never keeps the ones behind it waiting.
     * Posting a burst at once would wake workers that find the work gone:
     * with a GIL, the first one to get it ran it all. */
    if (want && m->jobs_posted == m->jobs_working && m->free_jobs)
        post_one_work_job(m, t);
}

static int post_one_work_job(sf_map *m, trash *t)
{
    work_job *wj = m->free_jobs;
    m->free_jobs = wj->next_free;
    m->jobs_posted++;
    assert(m->jobs_working <= m->jobs_posted && m->jobs_posted <= m->max_jobs);
    atomic_fetch_add(&m->refs, 1);
    wj->job.run = work_run;
    wj->job.drop = work_drop;
    if (sf__pool_post(m->pool, &wj->job, SF__LANE_WORK, SF__BY_ENGINE) != 0) {
        wj->next_free = m->free_jobs;
        m->free_jobs = wj;
        m->jobs_posted--;
        atomic_fetch_sub(&m->refs, 1); /* the caller holds another */
        if (m->jobs_posted == 0)
            break_ready(m, t);
        return -1;
    }
    return 0;
}

static int feed_run(sf_job *job);
static void feed_drop(sf_job *job, int reason);

/* Re-start the input stage if it stopped on a full window. */
static void maybe_post_feed(sf_map *m, enum sf__poster poster)
{
    /* a stopped input stage restarts only once a sixteenth of the window
     * is free: waking a thread and taking a runtime lock to pull one item
     * per item taken would cost more than the items (the bound is exact
     * either way) */
    size_t refill_gap = m->bounded ? m->win.limit / 16 : 1;
    if (refill_gap < 1)
        refill_gap = 1;
    if (m->feed_posted || m->input_state != INPUT_OPEN ||
        (m->bounded && m->held > 0 &&
         (m->held + refill_gap > m->win.limit || !sf__window_admits(&m->win, m->held))) ||
        read_far_enough_ahead(m, 2)) /* a claim re-posts us once half of it is gone */
        return;
    if (m->full_since) {
        m->full_ns += sf_now_ns() - m->full_since;
        m->full_since = 0;
    }
    m->feed_posted = 1;
    atomic_fetch_add(&m->refs, 1);
    m->feed_job.run = feed_run;
    m->feed_job.drop = feed_drop;
    int rc = sf__pool_post(m->pool, &m->feed_job, SF__LANE_INPUT, poster);
    if (rc != 0) {
        m->feed_posted = 0;
        atomic_fetch_sub(&m->refs, 1);
        m->input_state = rc == -ESHUTDOWN ? INPUT_SHUT : INPUT_BROKEN;
    }
}

/* ---- input stage ----------------------------------------------------- */

/* Place a pulled item in a free slot and hand it to the workers (mu held). */
static void accept_item(sf_map *m, void *item, trash *t)
{
    if (m->input_state != INPUT_OPEN) {
        trash_add(m, t, item); /* closed or shut while we pulled */
        return;
    }
    assert(m->free_slots.len > 0 && m->held < m->cap); /* a slot was made before pulling */
    uint32_t idx = fifo_pop(m, &m->free_slots);
    slot *s = slot_at(m, idx);
    assert(s->state == SLOT_FREE);
    s->value = item;
    set_state(s, SLOT_READY);
    m->seq_slot[wrap(m, m->pulled)] = idx;
    m->pulled++;
    m->held++;
    fifo_push(m, &m->ready, idx);
}

/* The pull under way no longer counts as the consumer's own reading (it
 * ended, or the consumer detached and left it to the pool): whichever of
 * the two comes first takes it back, without mu. */
static void stop_counting_pull_as_consumers(sf_map *m)
{
    if (atomic_exchange(&m->pull_for_consumer, 0))
        sf__pool_pull_end(m->pool);
}

/* Items are pulled one per lock round trip: an input may block at any item
 * (a generator waiting for data), and the items pulled before it must
 * already be with the workers.  Only an input said never to block (a list,
 * a range) is pulled in bursts, each burst within the free slots. */
static int feed_run(sf_job *job)
{
    sf_map *m = (sf_map *)((char *)job - offsetof(sf_map, feed_job));
    trash t = {0};

    sf__lock(&m->mu);
    while (m->input_state == INPUT_OPEN) {
        if (m->bounded ? !sf__window_admits(&m->win, m->held)
                       : m->held >= m->cap && grow(m) != 0) {
            m->feed_posted = 0;
            note_blocked_on_output(m);
            break; /* full: the next take re-posts us */
        }
        if (read_far_enough_ahead(m, 1)) {
            m->feed_posted = 0;
            break; /* the workers have plenty: a claim re-posts us */
        }
        size_t room = (m->bounded ? m->win.limit : m->cap) - m->held;
        int want = m->pull_never_blocks ? (room < PULL_BURST ? (int)room : PULL_BURST) : 1;
        if (make_slots(m, (size_t)want) != 0 && m->free_slots.len == 0) {
            /* no memory for a page of slots: a take frees one and re-posts
             * us; with nothing held, nothing would */
            m->feed_posted = 0;
            if (m->held == 0)
                m->input_state = INPUT_BROKEN;
            break;
        }
        if ((size_t)want > m->free_slots.len)
            want = (int)m->free_slots.len;
        void *items[PULL_BURST], *last = NULL;
        enum sf_pull got = SF_PULL_ITEM;
        int n = 0;
        m->pulling = want;
        /* a pull for an attached consumer is the consumer's own reading,
         * which a pool's join does not wait for; a detached map's input is
         * work it promised to run, so detaching mid-pull makes the pull
         * under way one the join waits for (let_go) */
        if (m->consumer) {
            sf__pool_pull_begin(m->pool);
            atomic_store(&m->pull_for_consumer, 1);
        }
        sf__unlock(&m->mu);
        int64_t pull_started = sf_now_ns();
        while (n < want && (got = m->ops.pull(m->ctx, &last)) == SF_PULL_ITEM)
            items[n++] = last;
        int64_t pull_ns = sf_now_ns() - pull_started;
        stop_counting_pull_as_consumers(m);
        sf__lock(&m->mu);
        m->input_ns += pull_ns;
        m->pulling = 0;
        for (int k = 0; k < n; k++)
            accept_item(m, items[k], &t);
        /* between bursts a worker is woken for a full batch, or when none
         * is at work: those at work claim what comes as they go */
        if (n && (m->jobs_posted == 0 || m->ready.len >= batch_of_work(m) || n < want))
            maybe_post_work(m, &t);
        if (n == want)
            continue;
        if (got == SF_PULL_END) {
            if (m->input_state == INPUT_OPEN)
                m->input_state = INPUT_ENDED;
        } else {
            if (m->input_state == INPUT_OPEN && !m->drain) {
                m->input_state = INPUT_FAILED;
                m->input_error = last;
            } else {
                if (m->input_state == INPUT_OPEN)
                    m->input_state = INPUT_FAILED;
                trash_add(m, &t, last);
            }
        }
    }
    m->feed_posted = 0;
    /* a consumer waits on the input only for its end: a feed that stopped
     * on a full window, or far enough ahead, has nothing to tell it */
    int input_over = m->input_state != INPUT_OPEN;
    sf__unlock(&m->mu);
    if (input_over)
        sf__event_signal_all(&m->changed);
    trash_empty(m, &t);
    map_unref(m);
    return SF_JOB_DONE;
}

static void feed_drop(sf_job *job, int reason)
{
    sf_map *m = (sf_map *)((char *)job - offsetof(sf_map, feed_job));
    sf__lock(&m->mu);
    m->feed_posted = 0;
    if (m->input_state == INPUT_OPEN)
        m->input_state = reason == -EPIPE ? INPUT_BROKEN : INPUT_SHUT;
    sf__unlock(&m->mu);
    sf__event_signal_all(&m->changed);
    map_unref(m);
}

static long takeable(sf_map *m);

/* ---- work stage ------------------------------------------------------ */

/* A result the consumer may want was stored (seq_cst) after it may have
 * gone to sleep: whether it is woken now.  While it gathers results
 * (wake_after > 1, read after that store: see results_to_gather) only
 * the one that completes its count wakes it. */
static int gathered_enough(sf_map *m, int results)
{
    int after = atomic_load(&m->wake_after);
    return after <= 1 || atomic_fetch_add(&m->gathered, results) + results >= after;
}

/* map->mu held, after publishing `results` new ones (0: they were shown
 * already, and counted then): whether a consumer asleep in sf_map_next
 * must be woken: in input order it only cares once the result it waits
 * for is here; a freed slot only when that ends the map; a result it
 * gathers only once enough are here, or once nothing else is running or
 * waiting to run (no more would come soon).  Read under the lock: a
 * consumer announces itself before it unlocks. */
static int consumer_to_wake(sf_map *m, int freed, int results)
{
    if (!atomic_load(&m->changed.waiters))
        return 0;
    if (m->drain || (freed && m->held == 0 && m->input_state != INPUT_OPEN))
        return 1;
    if (takeable(m) < 0)
        return 0;
    if (m->in_work == 0 && m->ready.len == 0)
        return 1;
    return results > 0 && gathered_enough(m, results);
}

/* map->mu held: hand finished items [from, to) of a batch to the consumer
 * (or discard them when nobody consumes).  Returns whether it freed a slot
 * whose result the consumer had taken already (shown): that may be what
 * ends the map, or what makes room in its window. */
static int publish(sf_map *m, const uint32_t *idx, void *const *values, const int *failed,
                    const size_t *bytes, int from, int to, trash *t)
{
    int freed = 0;
    /* the window counts the group's results at once: those finished here,
     * and of them those the consumer has taken already (shown) */
    size_t counted_bytes = 0, counted = 0, taken_bytes = 0, taken = 0;
    for (int i = from; i < to; i++) {
        m->in_work--;
        slot *s = slot_at(m, idx[i]);
        if (s->state == SLOT_SHOWN_TAKEN) {
            counted_bytes += bytes[i];
            counted++;
            taken_bytes += bytes[i];
            taken++;
            free_slot(m, idx[i]);
            freed = 1;
            continue;
        }
        if (m->drain) {
            trash_add(m, t, values[i]);
            release_slot(m, idx[i]);
            continue;
        }
        if (m->bounded) {
            s->bytes = bytes[i];
            counted_bytes += bytes[i];
            counted++;
        }
        s->value = values[i];
        set_state(s, failed[i] ? SLOT_DONE_ERROR : SLOT_DONE_OK);
        if (m->unordered)
            fifo_push(m, &m->done, idx[i]);
    }
    if (m->bounded) {
        sf__window_results_held(&m->win, counted_bytes, counted);
        sf__window_results_released(&m->win, taken_bytes, taken);
    }
    if (m->drain || freed)
        maybe_post_feed(m, SF__BY_ENGINE);
    if (freed && m->held_back)
        maybe_post_work(m, t);
    return freed;
}

struct sf_batch {
    sf_map *map;
    uint32_t *idx;
    void **values;
    int *failed;
    size_t *bytes;     /* each result's cost (ops.result_bytes), 0 when unmeasured */
    unsigned char *done;
    int n, cap;
    int64_t started; /* when the batch op was called */
    int finished;    /* items marked done so far */
    int wake_owed;   /* published quietly; sf_batch_wake not yet called */
    int publish_group; /* work_each publishes this many finished items at once, showing
                        * each to the consumer as it finishes (SLOT_SHOWN_*) */
    int shown;         /* work_each showed each result before publishing it */
    int tail_from, tail_to; /* work_each's last group: shown and marked done, published
                             * by run_batch under the lock it takes anyway */
};

/* map->mu held: claim ready items, in input order, into idx[] and
 * values[] (each RUNNING and counted in in_work): a batch's worth, as
 * many as the results' budget lets start, and at most `limit`.  Returns
 * how many. */
static int claim_ready(sf_map *m, uint32_t *idx, void **values, int limit)
{
    int want = batch_size(m);
    size_t may_start = startable(m);
    if ((size_t)want > may_start)
        want = (int)may_start;
    if (want > limit)
        want = limit;
    int n = 0;
    for (; n < want && m->ready.len; n++) {
        idx[n] = fifo_pop(m, &m->ready);
        slot *s = slot_at(m, idx[n]);
        values[n] = s->value;
        set_state(s, SLOT_RUNNING);
    }
    m->in_work += (size_t)n;
    note_blocked_on_output(m);
    if (n && !m->feed_posted)
        maybe_post_feed(m, SF__BY_ENGINE); /* if it stopped far enough ahead */
    return n;
}

int sf_batch_size(const sf_batch *batch) { return batch->n; }
int sf_batch_capacity(const sf_batch *batch) { return batch->cap; }

int sf_batch_extend(sf_batch *b, int max)
{
    sf_map *m = b->map;
    int added = 0;
    /* what this batch has shown of the item cost so far sizes the claim */
    double per_item = b->finished ? (double)(sf_now_ns() - b->started) / b->finished : 0;
    sf__lock(&m->mu);
    if (per_item > 0)
        m->item_ns = m->item_ns > 0 ? (m->item_ns * 7 + per_item) / 8 : per_item;
    if (!m->cancelled && !sf_pool_broken(m->pool)) {
        added = claim_ready(m, b->idx + b->n, b->values + b->n,
                            max < b->cap - b->n ? max : b->cap - b->n);
        memset(b->done + b->n, 0, (size_t)added);
        memset(b->bytes + b->n, 0, (size_t)added * sizeof *b->bytes);
        b->n += added;
    }
    sf__unlock(&m->mu);
    return added;
}
void **sf_batch_values(sf_batch *batch) { return batch->values; }

/* Publish n finished items under one lock round trip; *wake: a consumer
 * waits for something now takeable. */
static int publish_many(sf_batch *b, const int *indices, const int *failed, int n, int *wake)
{
    sf_map *m = b->map;
    trash t = {0};
    int cancelled, freed = 0;
    for (int k = 0; k < n; k++) {
        int i = indices[k];
        if (i < 0 || i >= b->n || b->done[i])
            abort(); /* the embedder broke the contract */
        b->done[i] = 1;
        b->failed[i] = failed[k];
    }
    b->finished += n;
    /* (work_each measured its own; a window without a budget needs none) */
    if (m->ops.result_bytes && m->ops.work_batch && m->bounded && m->win.budget)
        for (int k = 0; k < n; k++)
            if (!failed[k])
                b->bytes[indices[k]] = m->ops.result_bytes(m->ctx, b->values[indices[k]]);
    sf__lock(&m->mu);
    for (int k = 0; k < n; k++)
        freed |= publish(m, b->idx, b->values, b->failed, b->bytes, indices[k], indices[k] + 1, &t);
    cancelled = m->cancelled;
    *wake = consumer_to_wake(m, freed, b->shown ? 0 : n);
    sf__unlock(&m->mu);
    trash_empty(m, &t);
    return cancelled;
}

int sf_batch_done_many(sf_batch *b, const int *indices, const int *failed, int n)
{
    int wake, cancelled = publish_many(b, indices, failed, n, &wake);
    if (wake)
        sf__event_signal_all(&b->map->changed);
    return cancelled;
}

int sf_batch_publish_many(sf_batch *b, const int *indices, const int *failed, int n)
{
    int wake, cancelled = publish_many(b, indices, failed, n, &wake);
    b->wake_owed |= wake;
    return cancelled;
}

void sf_batch_wake(sf_batch *b)
{
    if (b->wake_owed) {
        b->wake_owed = 0;
        sf__event_signal_all(&b->map->changed);
    }
}

int sf_batch_done(sf_batch *b, int i, int failed) { return sf_batch_done_many(b, &i, &failed, 1); }

/* Without mu: hand a grouped item's result to the consumer now; its group
 * publishes it later.  Nothing else writes the slot until then (the
 * consumer only reads it, and marks it taken, under mu). */
static void show(sf_map *m, uint32_t idx, void *value, size_t bytes, int failed)
{
    slot *s = slot_at(m, idx);
    s->value = value;
    s->bytes = bytes;
    /* seq_cst: a consumer asleep for this slot wakes (sync.c's protocol:
     * the store comes before the load of waiters; the consumer announces
     * itself before it looks again) */
    atomic_store(&s->state, failed ? SLOT_SHOWN_ERROR : SLOT_SHOWN_OK);
    if (atomic_load(&m->changed.waiters)) {
        long awaited = atomic_load(&m->awaited_slot);
        if ((awaited < 0 || awaited == (long)idx || atomic_load(&m->wake_after) > 1) &&
            gathered_enough(m, 1))
            sf__event_signal_all(&m->changed);
    }
}

/* The shown items finished[0..n) (consecutive) end the batch: mark them
 * done and leave their publishing to run_batch. */
static void leave_tail(sf_batch *b, const int *finished, const int *failed, int n)
{
    for (int k = 0; k < n; k++) {
        b->done[finished[k]] = 1;
        b->failed[finished[k]] = failed[k];
    }
    b->finished += n;
    b->tail_from = finished[0];
    b->tail_to = finished[0] + n;
}

/* ops.work as a batch: one item after the other, each published as soon as
 * it ran; in an ordered, bounded map each is shown to the consumer as it
 * finishes and published with the rest of its batch (publishing takes the
 * map's lock, which every worker and the consumer share: one trip per
 * trivial item is what they would contend on).  Once the map is cancelled
 * the rest never start. */
static void work_each(void *ctx, sf_batch *batch)
{
    sf_map *m = batch->map;
    /* read once: the calls below are opaque to the compiler, which would
     * otherwise load each of these again for every item */
    int (*const work)(void *, void **) = m->ops.work;
    size_t (*const result_bytes)(void *, const void *) = m->ops.result_bytes;
    void **const values = batch->values;
    size_t *const bytes = batch->bytes;
    const int n = batch->n, group = batch->publish_group;
    batch->shown = group > 1;
    int finished[MAX_PUBLISH_GROUP], failed[MAX_PUBLISH_GROUP], pending = 0;
    for (int i = 0; i < n; i++) {
        int item_failed = work(ctx, &values[i]);
        if (result_bytes && !item_failed)
            bytes[i] = result_bytes(ctx, values[i]);
        failed[pending] = item_failed;
        finished[pending++] = i;
        if (group > 1)
            show(m, batch->idx[i], values[i], bytes[i], item_failed);
        /* a cancel publishes what is finished at once, and starts no more */
        int stop = atomic_load_explicit(&m->cancelled, memory_order_relaxed);
        if (pending < group && i + 1 < n && !stop)
            continue;
        if (i + 1 == n && group > 1 && !stop) {
            leave_tail(batch, finished, failed, pending);
            break;
        }
        if (sf_batch_done_many(batch, finished, failed, pending))
            break;
        pending = 0;
    }
}

/* map->mu held: how many finished items work_each publishes at once.  Only
 * an ordered map with a bounded window groups: the consumer finds a shown
 * result by its sequence number, and the slots never move.  What a group
 * holds back is only the bookkeeping (the slots freed, the results
 * counted in the window), never a result. */
static int publish_group(const sf_map *m)
{
    return m->unordered || !m->bounded || m->drain ? 1 : MAX_PUBLISH_GROUP;
}

/* map->mu held on entry and exit: run a claimed batch; items it did not
 * finish (cancelled meanwhile) are given up as cancelled. */
static int run_batch(sf_map *m, work_job *wj, int n, trash *t)
{
    int given_up = 0;
    uint32_t *idx = wj->idx;
    void **values = wj->values;
    unsigned char *done = wj->done;
    sf_batch batch = {m, idx, values, wj->failed, wj->bytes, done, n, m->batch_cap, 0, 0, 0,
                      publish_group(m), 0, 0, 0};
    memset(done, 0, (size_t)n);
    memset(wj->bytes, 0, (size_t)n * sizeof *wj->bytes); /* extensions zero their own */
    sf__unlock(&m->mu);
    int64_t started = batch.started = sf_now_ns();
    (m->ops.work_batch ? m->ops.work_batch : work_each)(m->ctx, &batch);
    sf_batch_wake(&batch); /* what the op published quietly is announced by now */
    n = batch.n; /* sf_batch_extend may have added items */
    int64_t took = sf_now_ns() - started;
    double per_item = (double)took / n;
    sf__lock(&m->mu);
    m->busy_ns += took;
    m->item_ns = m->item_ns > 0 ? (m->item_ns * 7 + per_item) / 8 : per_item;
    if (batch.tail_to > batch.tail_from) {
        int freed = publish(m, idx, values, wj->failed, wj->bytes, batch.tail_from,
                            batch.tail_to, t);
        /* signalled under mu: no callback, only a wake-up (its results
         * were counted when shown) */
        if (consumer_to_wake(m, freed, 0))
            sf__event_signal_all(&m->changed);
    }
    for (int i = 0; i < n; i++)
        if (!done[i]) {
            m->in_work--;
            give_up_item(m, idx[i], values[i], SLOT_CANCELLED, t);
            given_up++;
        }
    return given_up;
}

/* mu held: whether a job that starts work posts the next one on its way
 * (maybe_post_work decides if one is needed).  Not while the jobs posted
 * arrive to find the work done and the items are short: with a runtime
 * lock (a GIL) the first worker runs what is ready before the next gets
 * the lock, and each such wake-up is context switches for nothing.  A job
 * that finds work while another works (the runtime runs them at once),
 * or items long enough to be worth a wake-up, chain again; the input
 * stage posts as before either way. */
static int chain_next_job(const sf_map *m)
{
    return m->idle_arrivals < IDLE_ARRIVALS_TO_STOP_CHAINING ||
           m->item_ns >= ITEM_NS_WORTH_A_WAKE_UP;
}

static int work_run(sf_job *job)
{
    work_job *wj = (work_job *)job;
    sf_map *m = wj->map;
    uint32_t *idx = wj->idx;
    void **values = wj->values;
    trash t = {0};
    int rounds = 0, n, arrived = !wj->requeued, held_back = 0;
    wj->requeued = 0;

    sf__lock(&m->mu);
    for (;;) {
        if (sf_pool_broken(m->pool)) {
            /* the pool is not usable any more: what has not started never will */
            break_ready(m, &t);
            sf__unlock(&m->mu);
            sf__event_signal_all(&m->changed);
            trash_empty(m, &t);
            sf__lock(&m->mu);
            break;
        }
        n = claim_ready(m, idx, values, INT_MAX);
        if (n == 0 && m->ready.len)
            m->held_back = held_back = 1; /* the results fill the budget: a take re-posts us */
        else if (n == 0 && m->bounded && m->input_state == INPUT_OPEN)
            sf__window_work_starved(&m->win); /* the input is behind the workers */
        if (arrived) {
            arrived = 0;
            if (n == 0)
                m->idle_arrivals++;
            else if (m->jobs_working)
                m->idle_arrivals = 0;
        }
        if (n == 0)
            break;
        m->jobs_working++;
        if (m->ready.len && chain_next_job(m))
            maybe_post_work(m, &t); /* the next job on its way, if needed */
        int given_up = run_batch(m, wj, n, &t);
        if (t.len || given_up) {
            sf__unlock(&m->mu);
            if (given_up) /* a consumer may be waiting for one of them */
                sf__event_signal_all(&m->changed);
            trash_empty(m, &t);
            sf__lock(&m->mu);
        }
        m->jobs_working--;
        if (++rounds >= ROUNDS_PER_JOB && m->ready.len) {
            wj->requeued = 1;
            sf__unlock(&m->mu);
            return SF_JOB_REQUEUE; /* let other jobs have this worker */
        }
    }
    m->jobs_posted--;
    wj->next_free = m->free_jobs;
    m->free_jobs = wj;
    sf__unlock(&m->mu);
    if (held_back) /* a consumer gathering results is what they wait for */
        sf__event_signal_all(&m->changed);
    map_unref(m);
    return SF_JOB_DONE;
}

static void work_drop(sf_job *job, int reason)
{
    work_job *wj = (work_job *)job;
    sf_map *m = wj->map;
    trash t = {0};
    sf__lock(&m->mu);
    m->jobs_posted--;
    wj->next_free = m->free_jobs;
    m->free_jobs = wj;
    (void)reason;
    if (m->jobs_posted == 0)
        break_ready(m, &t); /* nobody is left to run them */
    sf__unlock(&m->mu);
    sf__event_signal_all(&m->changed);
    trash_empty(m, &t);
    map_unref(m);
}

/* ---- life cycle ------------------------------------------------------ */

static sf_map *map_of(sf__shutdown_listener *listener)
{
    return (sf_map *)((char *)listener - offsetof(sf_map, listener));
}

/* A reference for the pool's shutdown, unless the map is already going. */
static int hold_for_shutdown(sf__shutdown_listener *listener)
{
    sf_map *map = map_of(listener);
    long refs = atomic_load(&map->refs);
    while (refs > 0)
        if (atomic_compare_exchange_weak(&map->refs, &refs, refs + 1))
            return 1;
    return 0;
}

static void release_after_shutdown(sf__shutdown_listener *listener)
{
    map_unref(map_of(listener));
}

static const sf__shutdown_listener_ops shutdown_listener_ops = {
    hold_for_shutdown, release_after_shutdown, on_shutdown};

static void map_free_arrays(sf_map *m)
{
    for (size_t p = 0; p < m->slots_made / SLOT_PAGE; p++)
        free(m->slot_pages[p]);
    free(m->slot_pages);
    free(m->free_slots.buf);
    free(m->seq_slot);
    free(m->ready.buf);
    free(m->done.buf);
    free(m->spill);
    for (unsigned j = 0; m->jobs && j < m->max_jobs; j++) {
        free(m->jobs[j].idx);
        free(m->jobs[j].values);
        free(m->jobs[j].failed);
        free(m->jobs[j].bytes);
        free(m->jobs[j].done);
    }
    free(m->jobs);
}

static void map_unref(sf_map *m)
{
    size_t i;
    long refs = atomic_fetch_sub(&m->refs, 1);
    assert(refs > 0);
    if (refs != 1)
        return;
    sf__pool_unlisten(m->pool, &m->listener);
    for (i = 0; i < m->slots_made; i++) {
        void *value = slot_at(m, i)->value;
        if (value)
            m->ops.discard(m->ctx, value);
    }
    if (m->input_error)
        m->ops.discard(m->ctx, m->input_error);
    if (m->ops.destroy)
        m->ops.destroy(m->ctx);
    map_free_arrays(m);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int sf_map_create(sf_map **out, sf_pool *pool, const sf_map_ops *ops, void *ctx,
                  const sf_map_options *options)
{
    sf_map *m;
    unsigned j;
    int rc;

    if (!ops || !ops->pull || !(ops->work || ops->work_batch) || !ops->discard || !options)
        return -EINVAL;
    m = aligned_alloc(_Alignof(sf_map), sizeof *m);
    if (!m)
        return -ENOMEM;
    memset(m, 0, sizeof *m);
    m->bounded = options->window != SF_WINDOW_UNBOUNDED;
    /* window_max == window with a budget: a window that only shrinks */
    int adaptive = m->bounded && (options->window_max > options->window ||
                                  (options->window_max == options->window && options->result_budget));
    m->cap = !m->bounded ? UNBOUNDED_START : adaptive ? options->window_max : options->window;
    if (m->cap > UINT32_MAX || (adaptive && options->window_min > options->window)) {
        free(m);
        return -EINVAL;
    }
    m->max_jobs = sf_pool_max_threads(pool);
    if (adaptive) {
        size_t floor = options->window_min ? options->window_min : 2 * (size_t)m->max_jobs;
        sf__window_init(&m->win, options->window, floor < options->window ? floor : options->window,
                        m->cap, options->result_budget);
    } else if (m->bounded) {
        sf__window_init(&m->win, m->cap, m->cap, m->cap, 0);
    }
    m->fixed_batch = options->batch;
    m->pull_never_blocks = options->pull_never_blocks;
    m->max_batch = options->batch ? options->batch
                                   : options->max_batch ? options->max_batch : DEFAULT_MAX_BATCH;
    m->batch_ns = options->batch_ns ? (double)options->batch_ns : DEFAULT_BATCH_NS;
    if (options->batch < 0 || options->max_batch < 0 || m->max_batch > 1 << 20) {
        free(m);
        return -EINVAL;
    }
    /* a power of two (wrap()), so whole pages; the slots past the window's
     * largest are never made (pages are made as the window needs them) */
    size_t cap = SLOT_PAGE;
    while (cap < m->cap)
        cap *= 2;
    m->cap = cap;
    m->slot_pages = calloc(m->cap / SLOT_PAGE, sizeof *m->slot_pages);
    m->free_slots.buf = malloc(m->cap * sizeof *m->free_slots.buf);
    m->seq_slot = malloc(m->cap * sizeof *m->seq_slot);
    m->ready.buf = malloc(m->cap * sizeof *m->ready.buf);
    m->done.buf = malloc(m->cap * sizeof *m->done.buf);
    m->spill = malloc((m->cap + SPILL_SLACK) * sizeof *m->spill);
    m->jobs = calloc(m->max_jobs, sizeof *m->jobs);
    if (!m->slot_pages || !m->free_slots.buf || !m->seq_slot || !m->ready.buf || !m->done.buf ||
        !m->spill || !m->jobs) {
        map_free_arrays(m);
        free(m);
        return -ENOMEM;
    }
    /* a batch op may extend its batch (sf_batch_extend) to keep a pipeline
     * full; a few batches' worth, so a job still yields now and then */
    m->batch_cap = m->max_batch * (ops->work_batch ? BATCH_EXTENSIONS : 1);
    for (j = 0; j < m->max_jobs; j++) {
        size_t b = (size_t)m->batch_cap;
        m->jobs[j].idx = malloc(b * sizeof *m->jobs[j].idx);
        m->jobs[j].values = malloc(b * sizeof *m->jobs[j].values);
        m->jobs[j].failed = malloc(b * sizeof *m->jobs[j].failed);
        m->jobs[j].bytes = malloc(b * sizeof *m->jobs[j].bytes);
        m->jobs[j].done = malloc(b);
        if (!m->jobs[j].idx || !m->jobs[j].values || !m->jobs[j].failed || !m->jobs[j].bytes ||
            !m->jobs[j].done) {
            map_free_arrays(m);
            free(m);
            return -ENOMEM;
        }
        m->jobs[j].map = m;
        m->jobs[j].next_free = j + 1 < m->max_jobs ? &m->jobs[j + 1] : NULL;
    }
    m->free_jobs = m->jobs;
    m->pool = pool;
    m->ops = *ops;
    m->ctx = ctx;
    m->unordered = options->unordered != 0;
    m->consumer = 1;
    m->input_state = INPUT_OPEN;
    sf__mutex_init(&m->mu);
    sf__event_init(&m->changed);
    atomic_init(&m->refs, 1);
    atomic_init(&m->awaited_slot, -1);
    atomic_init(&m->wake_after, 1);
    atomic_init(&m->gathered, 0);
    m->listener.prev = m->listener.next = &m->listener;
    m->listener.ops = &shutdown_listener_ops;

    rc = sf__pool_listen(pool, &m->listener);
    if (rc != 0) {
        pthread_mutex_destroy(&m->mu);
        map_free_arrays(m);
        free(m);
        return rc;
    }
    sf__lock(&m->mu);
    maybe_post_feed(m, SF__BY_CONSUMER);
    rc = m->input_state == INPUT_OPEN ? 0 : m->input_state == INPUT_SHUT ? -ESHUTDOWN : -EPIPE;
    sf__unlock(&m->mu);
    if (rc != 0) {
        m->ops.destroy = NULL; /* on failure the caller keeps ctx */
        map_unref(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- consumer -------------------------------------------------------- */

/* map->mu held: the slot the consumer may take now, or -1. */
static long takeable(sf_map *m)
{
    if (m->unordered)
        return m->done.len ? (long)m->done.buf[m->done.head] : -1;
    if (m->taken == m->pulled)
        return -1;
    uint32_t idx = m->seq_slot[wrap(m, m->taken)];
    return slot_at(m, idx)->state >= SLOT_SHOWN_OK ? (long)idx : -1;
}

/* What the consumer gets from a takeable slot (takeable() only returns
 * slots in one of these states). */
static const int slot_outcome[] = {[SLOT_SHOWN_OK] = SF_RESULT, [SLOT_SHOWN_ERROR] = SF_ERROR,
                                   [SLOT_DONE_OK] = SF_RESULT, [SLOT_DONE_ERROR] = SF_ERROR,
                                   [SLOT_CANCELLED] = SF_CANCELLED, [SLOT_BROKEN] = SF_BROKEN};

/* map->mu held: take the finished slot idx for the consumer. */
static int take_slot(sf_map *m, long idx, void **value)
{
    slot *s = slot_at(m, idx);
    unsigned char state = s->state;
    int rc = slot_outcome[state];
    *value = s->value;
    if (state == SLOT_SHOWN_OK || state == SLOT_SHOWN_ERROR) {
        /* its worker has yet to publish it: that frees the slot */
        s->value = NULL;
        set_state(s, SLOT_SHOWN_TAKEN);
        m->taken++;
        return rc;
    }
    if (m->unordered)
        fifo_pop(m, &m->done);
    m->taken++;
    release_slot(m, (uint32_t)idx);
    if (rc == SF_BROKEN)
        m->finished = 1;
    return rc;
}

/* map->mu held, after a result or an item's error was taken: take the
 * results and errors right behind it that are finished already, as long
 * as they are small (a consumer keeps these itself; only what fits in
 * TAKE_AHEAD_BYTES leaves the window early).  Stops at anything else. */
#define TAKE_AHEAD_BYTES (64 * 1024)
static int take_ahead(sf_map *m, void **values, unsigned char *failed, int max)
{
    size_t bytes = 0;
    int n = 0;
    while (n < max) {
        long idx = takeable(m);
        if (idx < 0)
            break;
        const slot *s = slot_at(m, idx);
        int outcome = slot_outcome[s->state];
        if (outcome != SF_RESULT && outcome != SF_ERROR)
            break;
        bytes += s->bytes;
        if (bytes > TAKE_AHEAD_BYTES)
            break;
        failed[n] = outcome == SF_ERROR;
        take_slot(m, idx, &values[n]);
        n++;
    }
    return n;
}

int sf_map_next(sf_map *m, void **value, int64_t deadline_ns)
{
    return sf_map_next_many(m, value, deadline_ns, NULL, NULL, 0, NULL);
}

/* map->mu held, the consumer about to sleep: how many results it lets
 * gather before it is woken.  Each wake-up is a context switch, and on a
 * machine with as many workers as cores it takes a worker's core: for
 * results that come every few tens of microseconds, that is a worker's
 * time lost per result.  So it waits for about RESULTS_GATHER_NS of the
 * workers' output, at the measured item cost, and never for more than a
 * quarter of the window (the rest keeps the workers going).  1: each
 * result wakes it, as when no cost is measured yet (a map's first result
 * comes at once), and when results come quicker than
 * MIN_RESULT_NS_TO_GATHER: the consumer is seldom asleep for those (it
 * takes them in groups, take_ahead), and counting each one a worker shows
 * would be an atomic add per item on a line every worker writes.  The
 * sleep is then timed (*gather_ns), so that a result left waiting for
 * company (its worker went on to a long item) is taken by then anyway;
 * consumer_to_wake wakes it at once when nothing else is running. */
static int results_to_gather(const sf_map *m, int64_t *gather_ns)
{
    unsigned working = m->jobs_working ? m->jobs_working : 1;
    double result_ns = m->item_ns / working; /* between two results, all workers together */
    size_t most = m->bounded ? m->win.limit / 4 : m->cap / 4;
    if (most > MAX_RESULTS_GATHERED)
        most = MAX_RESULTS_GATHERED;
    if (result_ns < MIN_RESULT_NS_TO_GATHER || m->drain || most < 2)
        return 1;
    double want = RESULTS_GATHER_NS / result_ns;
    int gather = want < (double)most ? (int)want : (int)most;
    if (gather < 2)
        return 1;
    *gather_ns = (int64_t)(2 * gather * result_ns);
    return gather;
}

int sf_map_next_many(sf_map *m, void **value, int64_t deadline_ns, void **more,
                     unsigned char *more_failed, int max_more, int *n_more)
{
    int rc, woke = 0; /* woke: -ETIMEDOUT / -EINTR from the last sleep */
    int may_gather = 1; /* not once a gathering sleep timed out */
    trash t = {0};
    *value = NULL;
    if (n_more)
        *n_more = 0;
    if (sf__pool_forked(m->pool))
        return -ECHILD; /* inherited through fork: its threads are the parent's */
    sf__lock(&m->mu);
    for (;;) {
        long idx = m->finished ? -1 : takeable(m);
        if (idx >= 0) {
            rc = take_slot(m, idx, value);
            if (max_more > 0 && (rc == SF_RESULT || rc == SF_ERROR))
                *n_more = take_ahead(m, more, more_failed, max_more);
            maybe_post_feed(m, SF__BY_CONSUMER);
            if (m->held_back)
                maybe_post_work(m, &t);
            break;
        }
        if (m->finished) {
            rc = SF_END;
            break;
        }
        if (m->held == 0 && m->input_state != INPUT_OPEN) {
            static const int ending[] = {
                [INPUT_ENDED] = SF_END,   [INPUT_FAILED] = SF_INPUT_ERROR,
                [INPUT_STOPPED] = SF_END, [INPUT_SHUT] = SF_SHUT_DOWN,
                [INPUT_BROKEN] = SF_BROKEN};
            rc = ending[m->input_state];
            *value = m->input_error;
            m->input_error = NULL;
            m->finished = 1;
            break;
        }
        if (m->held_back)
            maybe_post_work(m, &t); /* the item waited for may be one of them */
        if (deadline_ns == 0 || woke != 0) {
            /* nothing after a last look: report why we stopped waiting */
            rc = deadline_ns == 0 ? -EAGAIN : woke;
            break;
        }
        long awaited = -1;
        if (!m->unordered && m->taken < m->pulled)
            awaited = (long)m->seq_slot[wrap(m, m->taken)];
        atomic_store(&m->awaited_slot, awaited);
        int64_t gather_ns = 0, sleep_until = deadline_ns;
        int gather = may_gather ? results_to_gather(m, &gather_ns) : 1;
        if (gather > 1) {
            int64_t until = sf_now_ns() + gather_ns;
            if (sleep_until < 0 || until < sleep_until)
                sleep_until = until;
            else
                gather = 1; /* the caller's deadline comes first */
        }
        /* seq_cst, before the look below: a worker that reads a gathering
         * count stored its result before, and this look sees it, or the
         * timed sleep ends (gathered_enough) */
        atomic_store(&m->gathered, 0);
        atomic_store(&m->wake_after, gather);
        uint32_t key = sf__event_prepare(&m->changed);
        if (takeable(m) >= 0) { /* shown with no lock since the look above */
            sf__event_cancel(&m->changed);
            continue;
        }
        sf__unlock(&m->mu);
        woke = sf__event_wait(&m->changed, key, sleep_until);
        sf__lock(&m->mu);
        if (gather > 1 && woke == -ETIMEDOUT) {
            woke = 0; /* the gathering ran out, not the caller's time */
            may_gather = 0;
        }
    }
    sf__unlock(&m->mu);
    trash_empty(m, &t); /* only if posting the work failed (a broken pool) */
    return rc;
}

/* Collect every finished value (the consumer is leaving). */
static void drop_finished(sf_map *m, trash *t)
{
    size_t i;
    for (i = 0; i < m->slots_made; i++) {
        slot *s = slot_at(m, i);
        if (s->state >= SLOT_DONE_OK) { /* a shown one: its worker's publish discards it */
            trash_add(m, t, s->value);
            release_slot(m, (uint32_t)i);
        }
    }
    m->done.len = 0;
    trash_add(m, t, m->input_error);
    m->input_error = NULL;
}

void sf_map_cancel(sf_map *m)
{
    trash t = {0};
    if (sf__pool_forked(m->pool))
        return; /* the parent's: leave its memory alone */
    sf__lock(&m->mu);
    m->consumer = 0;
    m->drain = 1;
    m->finished = 1;
    m->cancelled = 1;
    if (m->input_state == INPUT_OPEN)
        m->input_state = INPUT_STOPPED;
    while (m->ready.len) {
        uint32_t idx = fifo_pop(m, &m->ready);
        give_up_item(m, idx, slot_at(m, idx)->value, SLOT_CANCELLED, &t); /* drained: freed */
    }
    drop_finished(m, &t);
    sf__unlock(&m->mu);
    sf__event_signal_all(&m->changed); /* a consumer asleep in next() ends now */
    trash_empty(m, &t);
}

void sf_map_close(sf_map *m)
{
    if (sf__pool_forked(m->pool))
        return;
    sf_map_cancel(m);
    map_unref(m);
}

/* The consumer leaves without cancelling: what was acquired still runs
 * (drained, results discarded); keep_reading says whether the input goes on
 * to its end (detach) or is never read again (abandon). */
static void let_go(sf_map *m, int keep_reading)
{
    trash t = {0};
    if (sf__pool_forked(m->pool))
        return;
    sf__lock(&m->mu);
    m->consumer = 0;
    m->drain = 1;
    m->finished = 1;
    drop_finished(m, &t);
    if (m->held_back)
        maybe_post_work(m, &t);
    if (keep_reading) {
        stop_counting_pull_as_consumers(m);
        maybe_post_feed(m, SF__BY_ENGINE);
    }
    else if (m->input_state == INPUT_OPEN)
        m->input_state = INPUT_STOPPED; /* a pull under way is discarded when it returns */
    sf__unlock(&m->mu);
    trash_empty(m, &t);
    map_unref(m);
}

void sf_map_detach(sf_map *m) { let_go(m, 1); }

void sf_map_abandon(sf_map *m) { let_go(m, 0); }

/* Shutdown reached this map: cancel items not started (cancel_pending) and
 * stop its input if it still has a consumer (cancel_input). */
static void on_shutdown(sf__shutdown_listener *listener, int cancel_pending, int cancel_input)
{
    sf_map *m = map_of(listener);
    trash t = {0};
    sf__lock(&m->mu);
    if ((cancel_pending || (cancel_input && m->consumer)) && m->input_state == INPUT_OPEN)
        m->input_state = INPUT_SHUT;
    if (cancel_pending || (cancel_input && m->consumer)) {
        m->cancelled = 1;
        while (m->ready.len) {
            uint32_t idx = fifo_pop(m, &m->ready);
            give_up_item(m, idx, slot_at(m, idx)->value, SLOT_CANCELLED, &t);
        }
    }
    sf__unlock(&m->mu);
    sf__event_signal_all(&m->changed);
    trash_empty(m, &t);
}

void sf_map_get_stats(sf_map *m, sf_map_stats *out)
{
    sf__lock(&m->mu);
    out->pulled = m->pulled;
    out->taken = m->taken;
    out->busy_ns = m->busy_ns;
    out->input_ns = m->input_ns;
    out->full_ns = m->full_ns + (m->full_since ? sf_now_ns() - m->full_since : 0);
    sf__unlock(&m->mu);
}

size_t sf_map_outstanding(sf_map *m)
{
    size_t held;
    if (sf__pool_forked(m->pool))
        return 0;
    sf__lock(&m->mu);
    held = m->held + (size_t)m->pulling;
    sf__unlock(&m->mu);
    return held;
}
