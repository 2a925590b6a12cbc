/* test_ring.c -- the broadcast ring (src/core/ring.c): every reader sees
 * every item in order, the input is read once and never more than
 * `capacity` ahead of the slowest open reader, a closed reader stops
 * counting, the input's error reaches every reader, cancel wakes sleepers,
 * a wait that could never end is refused, and every item pulled is
 * discarded exactly once, also when a producer turn reads ahead.  Items are the numbers 1..N as pointers. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "streamfutures.h"
#include "test.h"

typedef struct source {
    long limit;          /* items; -1: endless */
    long fail_at;        /* pull that fails with the error value -999; -1: never */
    size_t capacity;
    int pull_sleep_us;   /* a slow input: each pull sleeps this long */
    sf_ring *_Atomic ring;
    _Atomic long pulled, discarded, errors_discarded, destroyed, bound_violations;
    pthread_t *pulled_by;           /* optional: the thread that pulled each item */
    _Atomic long discarded_elsewhere; /* with pulled_by: discards on another thread */
    _Atomic long *seen_by;          /* optional, per reader: items it has read */
    _Atomic long unseen_waits;      /* with seen_by: pulls that gave up waiting */
} source;

/* With seen_by: the pull after item n waits until a reader has read item
 * n, as an input fed back by one of its consumers would (gives up after
 * 10 s, counted). */
static void wait_until_seen(source *s, long n)
{
    int64_t give_up = sf_now_ns() + 10 * (int64_t)1000000000;
    for (;;) {
        if (atomic_load(&s->seen_by[0]) >= n || atomic_load(&s->seen_by[1]) >= n)
            return;
        if (sf_now_ns() > give_up) {
            atomic_fetch_add(&s->unseen_waits, 1);
            return;
        }
        usleep(100);
    }
}

static enum sf_pull source_pull(void *ctx, void **item)
{
    source *s = ctx;
    long n = atomic_load(&s->pulled);
    sf_ring *ring = atomic_load(&s->ring);
    /* the new item is about to take a slot: what is held must leave room */
    if (ring && sf_ring_held(ring) >= s->capacity)
        atomic_fetch_add(&s->bound_violations, 1);
    if (n == s->fail_at) {
        *item = (void *)(intptr_t)-999;
        return SF_PULL_ERROR;
    }
    if (s->limit >= 0 && n >= s->limit)
        return SF_PULL_END;
    if (s->seen_by && n > 0)
        wait_until_seen(s, n);
    if (s->pull_sleep_us)
        usleep((useconds_t)s->pull_sleep_us);
    atomic_store(&s->pulled, n + 1);
    if (s->pulled_by)
        s->pulled_by[n] = pthread_self();
    *item = (void *)(intptr_t)(n + 1);
    return SF_PULL_ITEM;
}

static void source_discard(void *ctx, void *value)
{
    source *s = ctx;
    if ((intptr_t)value == -999) {
        atomic_fetch_add(&s->errors_discarded, 1);
        return;
    }
    atomic_fetch_add(&s->discarded, 1);
    if (s->pulled_by && !pthread_equal(s->pulled_by[(intptr_t)value - 1], pthread_self()))
        atomic_fetch_add(&s->discarded_elsewhere, 1);
}

static void source_destroy(void *ctx) { atomic_fetch_add(&((source *)ctx)->destroyed, 1); }

static const sf_ring_ops ops = {
    .pull = source_pull, .discard = source_discard, .destroy = source_destroy};

static sf_ring *open_ring(source *s, unsigned readers, size_t capacity)
{
    sf_ring *ring = NULL;
    s->capacity = capacity;
    if (sf_ring_create(&ring, readers, capacity, &ops, s) != 0)
        abort();
    atomic_store(&s->ring, ring);
    return ring;
}

static int64_t in_ms(int ms) { return sf_now_ns() + (int64_t)ms * 1000000; }

TEST(ring_refuses_bad_arguments)
{
    source s = {.limit = 1, .fail_at = -1};
    sf_ring *ring = NULL;
    CHECK_EQ(sf_ring_create(&ring, 0, 4, &ops, &s), -EINVAL);
    CHECK_EQ(sf_ring_create(&ring, SF_RING_MAX_READERS + 1, 4, &ops, &s), -EINVAL);
    CHECK_EQ(sf_ring_create(&ring, 2, SIZE_MAX, &ops, &s), -EINVAL);
    CHECK_EQ(s.destroyed, 0);
}

TEST(ring_readers_on_one_thread_see_every_item_in_order_within_capacity)
{
    source s = {.limit = 100, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 3, 4);
    long seen[3] = {0, 0, 0};
    int ended[3] = {0, 0, 0};
    /* round robin: reader 0 reads 3 at a time, the others 1 */
    while (!(ended[0] && ended[1] && ended[2])) {
        for (unsigned r = 0; r < 3; r++) {
            for (int k = 0; k < (r == 0 ? 3 : 1) && !ended[r]; k++) {
                void *v;
                int rc = sf_ring_next(ring, r, &v, 0);
                if (rc == -EDEADLK)
                    break; /* ahead of readers this thread must move first */
                if (rc == SF_END) {
                    ended[r] = 1;
                    break;
                }
                CHECK_EQ(rc, SF_RESULT);
                CHECK_EQ((intptr_t)v, seen[r] + 1);
                seen[r]++;
            }
        }
    }
    CHECK_EQ(seen[0], 100);
    CHECK_EQ(seen[1], 100);
    CHECK_EQ(seen[2], 100);
    CHECK_EQ(s.pulled, 100);
    CHECK_EQ(s.bound_violations, 0);
    for (unsigned r = 0; r < 3; r++)
        sf_ring_close_reader(ring, r);
    CHECK_EQ(s.discarded, 100);
    CHECK_EQ(s.destroyed, 1);
}

TEST(ring_refuses_a_wait_on_readers_last_read_by_the_same_thread)
{
    source s = {.limit = -1, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 2, 4);
    void *v;
    CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_RESULT); /* reader 1 is read here */
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
    /* reader 0 is 4 ahead of reader 1, last read on this thread */
    CHECK_EQ(sf_ring_next(ring, 0, &v, in_ms(1000)), -EDEADLK);
    CHECK_EQ(sf_ring_held(ring), 4);
    CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_RESULT);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT); /* room again */
    CHECK_EQ((intptr_t)v, 5);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT); /* nobody holds it back now */
    sf_ring_close_reader(ring, 0);
    CHECK_EQ(s.discarded, s.pulled);
    CHECK_EQ(s.destroyed, 1);
}

TEST(ring_a_never_read_reader_may_belong_to_another_thread_so_it_is_waited_for)
{
    source s = {.limit = -1, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 2, 2);
    void *v;
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), -EAGAIN);
    CHECK_EQ(sf_ring_next(ring, 0, &v, in_ms(20)), -ETIMEDOUT);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(s.pulled, 2);
    CHECK_EQ(s.discarded, 2);
}

typedef struct reading {
    sf_ring *ring;
    source *src;
    unsigned index;
    long stop_after;  /* close after this many items; -1: read to the end */
    int delay_every;  /* sleep 1 ms every this many items; 0: never */
    size_t take_more; /* sf_ring_next_many: up to this many behind each item */
    int slice_ms;     /* waits of at most this long, repeated (as the binding's); 0: one */
    long count, sum, last_outcome, order_errors;
    void *error;
} reading;

/* The reader's item and the ones it took behind it, in order: 0 to go on,
 * 1 once it stops after stop_after items. */
static int count_item(reading *rd, void *v)
{
    if ((intptr_t)v != rd->count + 1)
        rd->order_errors++;
    rd->count++;
    rd->sum += (intptr_t)v;
    if (rd->src->seen_by)
        atomic_store(&rd->src->seen_by[rd->index], rd->count);
    if (rd->delay_every && rd->count % rd->delay_every == 0)
        usleep(1000);
    return rd->stop_after >= 0 && rd->count >= rd->stop_after;
}

static void *read_all(void *arg)
{
    reading *rd = arg;
    void *more[64];
    for (;;) {
        void *v;
        size_t n_more = 0;
        int rc;
        do
            rc = sf_ring_next_many(rd->ring, rd->index, &v, rd->slice_ms ? in_ms(rd->slice_ms) : -1,
                                   more, rd->take_more, &n_more);
        while (rc == -ETIMEDOUT && rd->slice_ms);
        if (rc != SF_RESULT) {
            rd->last_outcome = rc;
            if (rc == SF_INPUT_ERROR) {
                rd->error = v;
                rc = sf_ring_next(rd->ring, rd->index, &v, -1);
                rd->last_outcome = rc == SF_END ? SF_INPUT_ERROR : -1000 - rc;
            }
            break;
        }
        if (n_more > rd->take_more)
            rd->order_errors++;
        int stop = count_item(rd, v);
        for (size_t k = 0; k < n_more && !stop; k++)
            stop = count_item(rd, more[k]);
        if (stop)
            break;
    }
    sf_ring_close_reader(rd->ring, rd->index);
    return NULL;
}

/* 1 when the reader saw items 1..n in order, then the end; else 0, after
 * saying what it saw. */
static int saw_whole_input(const reading *rd, long n)
{
    if (rd->last_outcome == SF_END && rd->count == n && rd->order_errors == 0 &&
        rd->sum == n * (n + 1) / 2)
        return 1;
    fprintf(stderr, "  reader %u: outcome %ld, %ld items, %ld out of order, sum %ld\n",
            rd->index, rd->last_outcome, rd->count, rd->order_errors, rd->sum);
    return 0;
}

/* 1 when n items were pulled once each, never beyond capacity, each
 * discarded once, and the ring freed; else 0, after saying what happened. */
static int read_once_within_capacity(const source *s, long n)
{
    if (s->pulled == n && s->bound_violations == 0 && s->discarded == n && s->destroyed == 1)
        return 1;
    fprintf(stderr, "  %ld pulled, %ld beyond capacity, %ld discarded, destroyed %ld times\n",
            (long)s->pulled, (long)s->bound_violations, (long)s->discarded, (long)s->destroyed);
    return 0;
}

static void run_readers(reading *rd, unsigned n)
{
    pthread_t threads[8];
    for (unsigned i = 0; i < n; i++)
        pthread_create(&threads[i], NULL, read_all, &rd[i]);
    for (unsigned i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
}

TEST(ring_readers_on_threads_each_see_the_whole_input_once)
{
    enum { N = 200000, READERS = 4 };
    source s = {.limit = N, .fail_at = -1};
    sf_ring *ring = open_ring(&s, READERS, 64);
    reading rd[READERS];
    for (unsigned i = 0; i < READERS; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = -1,
                          .delay_every = i == 3 ? 20000 : 0};
    run_readers(rd, READERS);
    for (unsigned i = 0; i < READERS; i++)
        CHECK(saw_whole_input(&rd[i], N));
    CHECK(read_once_within_capacity(&s, N));
}

TEST(ring_read_ahead_readers_on_threads_each_see_the_whole_input_once_within_capacity)
{
    enum { N = 200000, READERS = 3 };
    source s = {.limit = N, .fail_at = -1};
    sf_ring *ring = open_ring(&s, READERS, 64);
    sf_ring_read_ahead(ring, 48);
    reading rd[READERS];
    for (unsigned i = 0; i < READERS; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = i == 1 ? 777 : -1,
                          .delay_every = i == 2 ? 20000 : 0};
    run_readers(rd, READERS);
    for (unsigned i = 0; i < READERS; i += 2)
        CHECK(saw_whole_input(&rd[i], N));
    CHECK_EQ(rd[1].count, 777);
    CHECK(read_once_within_capacity(&s, N));
}

TEST(ring_readers_taking_runs_of_items_see_the_whole_input_once_within_capacity)
{
    enum { N = 200000, READERS = 3 };
    source s = {.limit = N, .fail_at = -1};
    sf_ring *ring = open_ring(&s, READERS, 64);
    sf_ring_read_ahead(ring, 48);
    reading rd[READERS];
    for (unsigned i = 0; i < READERS; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = -1,
                          .take_more = i == 0 ? 0 : 3 + 3 * i,
                          .delay_every = i == 2 ? 20000 : 0};
    run_readers(rd, READERS);
    for (unsigned i = 0; i < READERS; i++)
        CHECK(saw_whole_input(&rd[i], N));
    CHECK(read_once_within_capacity(&s, N));
}

TEST(ring_items_are_discarded_on_the_thread_that_pulled_them)
{
    /* readers on threads trade the producer role; a slot's item is
     * discarded by the reader that pulled it, not by the one whose pull
     * reuses the slot: only what is left at the closes (a ring's worth per
     * reader) may be discarded elsewhere */
    enum { N = 200000, READERS = 3, CAPACITY = 64 };
    static pthread_t pulled_by[N];
    source s = {.limit = N, .fail_at = -1, .pulled_by = pulled_by};
    sf_ring *ring = open_ring(&s, READERS, CAPACITY);
    sf_ring_read_ahead(ring, 16);
    reading rd[READERS];
    for (unsigned i = 0; i < READERS; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = -1,
                          .take_more = i == 1 ? 8 : 0, .delay_every = i == 2 ? 20000 : 0};
    run_readers(rd, READERS);
    for (unsigned i = 0; i < READERS; i++)
        CHECK(saw_whole_input(&rd[i], N));
    CHECK(read_once_within_capacity(&s, N));
    CHECK(s.discarded_elsewhere <= 2 * READERS * CAPACITY);
}

TEST(ring_a_run_of_items_is_what_was_published_and_holds_the_ring_until_the_next_call)
{
    source s = {.limit = 20, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 2, 8);
    void *v, *more[8];
    size_t n_more = 99;
    for (int i = 1; i <= 6; i++) /* reader 0 pulls 1..6 */
        CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
    CHECK_EQ(sf_ring_next_many(ring, 1, &v, 0, more, 3, &n_more), SF_RESULT);
    CHECK_EQ((intptr_t)v, 1);
    CHECK_EQ(n_more, 3); /* at most max_more */
    CHECK_EQ((intptr_t)more[0], 2);
    CHECK_EQ((intptr_t)more[2], 4);
    CHECK_EQ(sf_ring_held(ring), 6); /* 1..4 still lent to reader 1 */
    CHECK_EQ(sf_ring_next_many(ring, 1, &v, 0, more, 8, &n_more), SF_RESULT);
    CHECK_EQ((intptr_t)v, 5);
    CHECK_EQ(n_more, 1); /* only what is published: nothing is pulled for the run */
    CHECK_EQ((intptr_t)more[0], 6);
    CHECK_EQ(s.pulled, 6);
    CHECK_EQ(sf_ring_held(ring), 2);
    /* reader 1 now needs an item nobody pulled: it pulls just that one */
    CHECK_EQ(sf_ring_next_many(ring, 1, &v, 0, more, 8, &n_more), SF_RESULT);
    CHECK_EQ((intptr_t)v, 7);
    CHECK_EQ(n_more, 0);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(s.discarded, 7);
    CHECK_EQ(s.destroyed, 1);
}

TEST(ring_read_ahead_pulls_ahead_of_a_quick_input_only)
{
    void *v;
    /* a turn ends early if the thread is descheduled inside it: of a few
     * fresh rings, one reads the whole turn, and none reads more */
    int whole_turns = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        source quick = {.limit = -1, .fail_at = -1};
        sf_ring *ring = open_ring(&quick, 2, 64);
        sf_ring_read_ahead(ring, 16);
        CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
        CHECK_EQ((intptr_t)v, 1);
        long pulled = atomic_load(&quick.pulled);
        CHECK(pulled >= 1 && pulled <= 16);
        whole_turns += pulled == 16;
        for (long k = 1; k <= 16; k++) { /* published for reader 1 too */
            CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_RESULT);
            CHECK_EQ((intptr_t)v, k);
        }
        sf_ring_close_reader(ring, 0);
        sf_ring_close_reader(ring, 1);
        CHECK_EQ(quick.discarded, quick.pulled);
    }
    CHECK(whole_turns > 0);

    /* a pull that takes longer than a turn may: the reader gets its item
     * after that one pull, not after 16 */
    source slow = {.limit = -1, .fail_at = -1, .pull_sleep_us = 2000};
    sf_ring *ring = open_ring(&slow, 2, 64);
    sf_ring_read_ahead(ring, 16);
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
    CHECK_EQ(slow.pulled, 1);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(slow.discarded, 1);
}

TEST(ring_an_item_stored_in_a_producer_turn_is_read_before_the_next_pull_returns)
{
    /* the producer publishes head once per few items of a turn; an input
     * whose next pull waits until the other reader has read the last item
     * must still go on (the waiting reader publishes what was stored) */
    enum { N = 40 };
    _Atomic long seen_by[2] = {0, 0};
    source s = {.limit = N, .fail_at = -1, .seen_by = seen_by};
    sf_ring *ring = open_ring(&s, 2, 64);
    sf_ring_read_ahead(ring, 64);
    reading rd[2];
    for (unsigned i = 0; i < 2; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = -1, .slice_ms = 20};
    run_readers(rd, 2);
    CHECK_EQ(s.unseen_waits, 0);
    for (unsigned i = 0; i < 2; i++)
        CHECK(saw_whole_input(&rd[i], N));
    CHECK(read_once_within_capacity(&s, N));
}

TEST(ring_a_reader_that_closes_mid_stream_never_holds_the_others_back)
{
    enum { N = 50000 };
    source s = {.limit = N, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 3, 8);
    reading rd[3] = {
        {.ring = ring, .src = &s, .index = 0, .stop_after = -1},
        {.ring = ring, .src = &s, .index = 1, .stop_after = 10},
        {.ring = ring, .src = &s, .index = 2, .stop_after = -1},
    };
    run_readers(rd, 3);
    CHECK(saw_whole_input(&rd[0], N));
    CHECK_EQ(rd[1].count, 10);
    CHECK(saw_whole_input(&rd[2], N));
    CHECK(read_once_within_capacity(&s, N));
}

TEST(ring_the_inputs_error_reaches_every_reader_after_every_earlier_item)
{
    source s = {.limit = -1, .fail_at = 5000};
    sf_ring *ring = open_ring(&s, 3, 16);
    reading rd[3];
    for (unsigned i = 0; i < 3; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = -1};
    run_readers(rd, 3);
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(rd[i].count, 5000);
        CHECK_EQ(rd[i].last_outcome, SF_INPUT_ERROR);
        CHECK_EQ((intptr_t)rd[i].error, -999);
        CHECK_EQ(rd[i].order_errors, 0);
    }
    CHECK_EQ(s.pulled, 5000);
    CHECK_EQ(s.discarded, 5000);
    CHECK_EQ(s.errors_discarded, 1);
    CHECK_EQ(s.destroyed, 1);
}

TEST(ring_an_empty_input_ends_every_reader)
{
    source s = {.limit = 0, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 2, 4);
    void *v;
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_END);
    CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_END);
    CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_END);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(s.destroyed, 1);
}

static void *cancel_later(void *arg)
{
    usleep(20000);
    sf_ring_cancel(arg);
    return NULL;
}

TEST(ring_cancel_wakes_a_reader_asleep_on_a_full_ring_and_stops_the_input)
{
    source s = {.limit = -1, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 2, 4);
    void *v;
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, ring);
    /* reader 1 was never read: reader 0 sleeps until the cancel */
    CHECK_EQ(sf_ring_next(ring, 0, &v, in_ms(10000)), SF_CANCELLED);
    pthread_join(t, NULL);
    CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_CANCELLED);
    CHECK_EQ(s.pulled, 4);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(s.discarded, 4);
}

static source *reentrant_source;
static enum sf_pull pull_from_itself(void *ctx, void **item)
{
    (void)ctx;
    void *v;
    int rc = sf_ring_next(atomic_load(&reentrant_source->ring), 1, &v, 0);
    *item = (void *)(intptr_t)rc;
    return SF_PULL_ITEM;
}

TEST(ring_a_pull_that_reads_its_own_ring_is_refused_not_hung)
{
    source s = {.limit = -1, .fail_at = -1};
    static const sf_ring_ops self_ops = {.pull = pull_from_itself};
    sf_ring *ring = NULL;
    CHECK_EQ(sf_ring_create(&ring, 2, 4, &self_ops, &s), 0);
    atomic_store(&s.ring, ring);
    reentrant_source = &s;
    void *v;
    CHECK_EQ(sf_ring_next(ring, 0, &v, in_ms(1000)), SF_RESULT);
    CHECK_EQ((intptr_t)v, -EDEADLK);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
}

TEST(ring_unbounded_grows_instead_of_waiting_and_discards_each_item_once)
{
    source s = {.limit = 10000, .fail_at = -1};
    sf_ring *ring = open_ring(&s, 3, SF_RING_UNBOUNDED);
    s.capacity = SIZE_MAX; /* no bound to check */
    void *v;
    for (long i = 1; i <= 5000; i++) { /* reader 0 runs 5000 ahead: no wait, no refusal */
        CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
        CHECK_EQ((intptr_t)v, i);
    }
    CHECK_EQ(sf_ring_held(ring), 5000);
    for (long i = 1; i <= 3000; i++) {
        CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_RESULT);
        CHECK_EQ((intptr_t)v, i);
    }
    sf_ring_close_reader(ring, 2); /* never read: stops counting */
    for (long i = 5001; i <= 10000; i++) {
        CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_RESULT);
        CHECK_EQ((intptr_t)v, i);
    }
    CHECK_EQ(sf_ring_next(ring, 0, &v, 0), SF_END);
    for (long i = 3001; i <= 10000; i++) {
        CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_RESULT);
        CHECK_EQ((intptr_t)v, i);
    }
    CHECK_EQ(sf_ring_next(ring, 1, &v, 0), SF_END);
    sf_ring_close_reader(ring, 0);
    sf_ring_close_reader(ring, 1);
    CHECK_EQ(s.pulled, 10000);
    CHECK_EQ(s.discarded, 10000);
    CHECK_EQ(s.destroyed, 1);
}

TEST(ring_unbounded_readers_on_threads_each_see_the_whole_input_once)
{
    enum { N = 100000, READERS = 3 };
    source s = {.limit = N, .fail_at = -1};
    sf_ring *ring = open_ring(&s, READERS, SF_RING_UNBOUNDED);
    s.capacity = SIZE_MAX;
    reading rd[READERS];
    for (unsigned i = 0; i < READERS; i++)
        rd[i] = (reading){.ring = ring, .src = &s, .index = i, .stop_after = -1,
                          .delay_every = i == 2 ? 10000 : 0};
    run_readers(rd, READERS);
    for (unsigned i = 0; i < READERS; i++)
        CHECK(saw_whole_input(&rd[i], N));
    CHECK(read_once_within_capacity(&s, N));
}
