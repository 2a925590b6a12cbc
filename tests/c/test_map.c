/* test_map.c -- the lazy map (src/core/map.c): order, the window bound, per-item errors,
 * input errors, early exit, fire-and-forget, shutdown, unbounded growth.
 * Items are the numbers 1..N (as pointers); a result is 10*item, a work
 * error is -item.  Every pulled item must come back exactly once: as a
 * result, an error, a cancellation, or a discard. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "streamfutures.h"
#include "test.h"

typedef struct feed {
    long limit;          /* items to produce; -1: endless */
    long fail_input_at;  /* pull number that fails; -1: never */
    long fail_work_mod;  /* item % mod == 0 fails; 0: never */
    int work_sleep_us;
    int use_gate;        /* work waits for gate */
    long gate_at;        /* item gate_at alone waits for gate; 0: none */
    _Atomic int gate;
    int gate_patience_ms; /* gate_at waits this long at most, then notes it; 0: forever */
    _Atomic int gate_gave_up;
    int block_pull;      /* pull number block_pull_at waits for pull_gate */
    long block_pull_at;
    _Atomic int pull_gate, pull_blocked;
    size_t window;
    size_t result_bytes;
    sf_map *_Atomic map;
    _Atomic long pulled, worked, discarded, destroyed, bound_violations;
    _Atomic long input_errors_discarded;
    long rendezvous;     /* items 1..rendezvous each wait until that many run at once */
    _Atomic long running, met;
    _Atomic long first_pull_outstanding; /* slots reserved when pulling began */
    _Atomic long most_outstanding;       /* the most slots reserved at any pull */
} feed;

static enum sf_pull feed_pull(void *ctx, void **item)
{
    feed *f = ctx;
    long n = atomic_load(&f->pulled);
    sf_map *m = atomic_load(&f->map);
    long outstanding = m ? (long)sf_map_outstanding(m) : 0;
    if (m && f->window && (size_t)outstanding > f->window)
        atomic_fetch_add(&f->bound_violations, 1);
    for (long most = atomic_load(&f->most_outstanding);
         outstanding > most && !atomic_compare_exchange_weak(&f->most_outstanding, &most, outstanding);)
        ;
    if (m && n == 0)
        atomic_store(&f->first_pull_outstanding, (long)sf_map_outstanding(m));
    if (f->block_pull && n == f->block_pull_at) {
        atomic_store(&f->pull_blocked, 1);
        while (!atomic_load(&f->pull_gate))
            usleep(100);
    }
    if (f->limit >= 0 && n >= f->limit)
        return SF_PULL_END;
    if (n == f->fail_input_at) {
        *item = (void *)(intptr_t)-999;
        return SF_PULL_ERROR;
    }
    atomic_fetch_add(&f->pulled, 1);
    *item = (void *)(intptr_t)(n + 1);
    return SF_PULL_ITEM;
}

static int feed_work(void *ctx, void **value)
{
    feed *f = ctx;
    intptr_t item = (intptr_t)*value;
    int64_t gate_since = f->gate_patience_ms ? sf_now_ns() : 0;
    while ((f->use_gate || (f->gate_at && item == f->gate_at)) && !atomic_load(&f->gate)) {
        if (gate_since && sf_now_ns() - gate_since >= f->gate_patience_ms * 1000000LL) {
            atomic_store(&f->gate_gave_up, 1);
            break;
        }
        usleep(50);
    }
    if (f->work_sleep_us)
        usleep((useconds_t)f->work_sleep_us);
    if (item <= f->rendezvous) {
        atomic_fetch_add(&f->running, 1);
        for (int waited_ms = 0; atomic_load(&f->running) < f->rendezvous && waited_ms < 5000;
             waited_ms++)
            usleep(1000);
        if (atomic_load(&f->running) >= f->rendezvous)
            atomic_fetch_add(&f->met, 1);
    }
    atomic_fetch_add(&f->worked, 1);
    if (f->fail_work_mod && item % f->fail_work_mod == 0) {
        *value = (void *)-item;
        return 1;
    }
    *value = (void *)(item * 10);
    return 0;
}

static void feed_discard(void *ctx, void *value)
{
    feed *f = ctx;
    if ((intptr_t)value == -999)
        atomic_fetch_add(&f->input_errors_discarded, 1);
    else
        atomic_fetch_add(&f->discarded, 1);
}

static void feed_destroy(void *ctx) { atomic_fetch_add(&((feed *)ctx)->destroyed, 1); }

static const sf_map_ops ops = {
    .pull = feed_pull, .work = feed_work, .discard = feed_discard, .destroy = feed_destroy};

/* every result costs feed.result_bytes (the adaptive window's budget) */
static size_t feed_result_bytes(void *ctx, const void *value)
{
    (void)value;
    return ((feed *)ctx)->result_bytes;
}

static const sf_map_ops sized_ops = {.pull = feed_pull, .work = feed_work,
                                     .discard = feed_discard, .destroy = feed_destroy,
                                     .result_bytes = feed_result_bytes};

static sf_pool *make_pool(unsigned threads)
{
    sf_pool_options o = {.max_threads = threads};
    sf_pool *pool = NULL;
    if (sf_pool_create(&pool, &o) != 0)
        abort();
    return pool;
}

/* The bound a pull checks is the window, or an adaptive one's largest. */
static sf_map *start_with(sf_pool *pool, feed *f, const sf_map_ops *o, sf_map_options mo)
{
    sf_map *m = NULL;
    f->window = mo.window_max > mo.window ? mo.window_max : mo.window;
    if (sf_map_create(&m, pool, o, f, &mo) != 0)
        abort();
    atomic_store(&f->map, m);
    return m;
}

/* 1 when the map's next results are those of items from..to (item k's
 * result is 10 k), in order; else 0, after saying what came instead. */
static int took_in_order(sf_map *m, long from, long to)
{
    for (long i = from; i <= to; i++) {
        void *v = NULL;
        int rc = sf_map_next(m, &v, -1);
        if (rc != SF_RESULT || (intptr_t)v != i * 10) {
            fprintf(stderr, "  result %ld: outcome %d, value %ld\n", i, rc, (long)(intptr_t)v);
            return 0;
        }
    }
    return 1;
}

static sf_map *start(sf_pool *pool, feed *f, size_t window, int unordered)
{
    return start_with(pool, f, &ops, (sf_map_options){.window = window, .unordered = unordered});
}

static int64_t in_ms(int ms) { return sf_now_ns() + (int64_t)ms * 1000000; }

static sf_map *start_adaptive(sf_pool *pool, feed *f, size_t start, size_t max, size_t budget)
{
    return start_with(pool, f, &sized_ops,
                      (sf_map_options){.window = start, .window_max = max, .result_budget = budget});
}

TEST(map_adaptive_window_grows_on_small_results_up_to_its_max)
{
    feed f = {.limit = -1, .fail_input_at = -1, .result_bytes = 8};
    sf_pool *pool = make_pool(2);
    sf_map *m = start_adaptive(pool, &f, 8, 256, 1 << 20);
    for (int k = 0; k < 200 && sf_map_outstanding(m) < 8; k++)
        usleep(1000);
    CHECK_EQ(sf_map_outstanding(m), 8); /* where it starts */
    CHECK(took_in_order(m, 1, 5000));
    /* it grew to its max: a pull filled the 256th slot, and none went past */
    for (int k = 0; k < 2000 && f.most_outstanding < 256; k++)
        usleep(1000);
    usleep(20000); /* a wrong engine would go on pulling */
    CHECK_EQ(f.most_outstanding, 256);
    /* and the input stopped in the refill band: a full window is refilled
     * only once a sixteenth of it is free (map.c), so a last take from a
     * full window leaves 255 */
    CHECK(sf_map_outstanding(m) >= 256 - 256 / 16 && sf_map_outstanding(m) <= 256);
    CHECK_EQ(f.bound_violations, 0);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.pulled, 5000 + f.discarded);
    CHECK_EQ(f.destroyed, 1);
}

/* Work slower than its input (usleep per item, 2 workers) over an endless
 * input on an adaptive window of [start, max]: take n results, let 20 ms
 * pass, close, then check what every such map must show (results in
 * order, the window never passed, every item pulled either taken or
 * discarded), and that the most it held at any pull was within
 * [least, most] and what it held just before the close at most `most`.
 * The checks come after the close: the feed lives on this stack. */
static void take_slow_work(int sleep_us, size_t start, size_t max, long n, long least,
                           long most, int *failed_)
{
    feed f = {.limit = -1, .fail_input_at = -1, .result_bytes = 8, .work_sleep_us = sleep_us};
    sf_pool *pool = make_pool(2);
    sf_map *m = start_adaptive(pool, &f, start, max, 1 << 20);
    int in_order = took_in_order(m, 1, n);
    usleep(20000); /* a window that grew would be filling now */
    long held_after = (long)sf_map_outstanding(m);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK(in_order);
    CHECK_EQ(f.bound_violations, 0);
    CHECK_EQ(f.pulled, n + f.discarded);
    CHECK_EQ(f.destroyed, 1);
    CHECK(f.most_outstanding >= least && f.most_outstanding <= most);
    CHECK(held_after <= most);
}

/* The workers always have acquired items waiting, so a larger window would
 * only pull more input ahead of them.  Taking 600 results would have
 * doubled a window of 8 five times, to 256; a doubling or two may come
 * from moments the input fell behind (the start, a busy machine), not the
 * five of a growing window. */
TEST(map_adaptive_window_does_not_grow_while_items_wait_for_the_workers)
{
    take_slow_work(300, 8, 256, 600, 8, 32, failed_);
}

/* A window that starts at its largest (a process pool's): once an item's
 * cost is known, the input is read about SF__READ_AHEAD_NS of the workers'
 * work ahead (1 ms items on 2 workers: about 200), not the window's 4096. */
TEST(map_adaptive_window_reads_only_a_time_s_worth_of_work_ahead)
{
    take_slow_work(1000, 4096, 4096, 300, 4, 400, failed_);
}

/* Results of 1000 bytes, a budget of 10 of them: while the consumer pauses
 * after its fifth, and all along, no more than the budget's worth is made
 * ahead of it. */
static void check_results_within_a_budget_of_ten(sf_map *m, feed *f, int *failed_)
{
    void *v;
    CHECK(took_in_order(m, 1, 5));
    usleep(50000);
    long made = atomic_load(&f->worked) - 5;
    CHECK(made >= 1 && made <= 11);
    for (long i = 6; i <= f->limit; i++) {
        CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
        CHECK_EQ((intptr_t)v, i * 10);
        CHECK(atomic_load(&f->worked) - i <= 11);
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
}

TEST(map_adaptive_window_keeps_held_results_within_the_byte_budget)
{
    feed f = {.limit = 2000, .fail_input_at = -1, .result_bytes = 1000};
    sf_pool *pool = make_pool(4);
    sf_map *m = start_adaptive(pool, &f, 64, 1024, 10000);
    check_results_within_a_budget_of_ten(m, &f, failed_);
    if (*failed_)
        return;
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.pulled, 2000);
    CHECK_EQ(f.worked, 2000);
    CHECK_EQ(f.destroyed, 1);
}

/* Take a result and every finished one behind it (up to max) at once:
 * how many, 0 at the end, -1 if one was not the item expected there (in
 * order from expected_first, or unseen when unordered) or not an error
 * exactly where the feed fails. */
static long take_many(sf_map *m, feed *f, int unordered, long expected_first, int max,
                      unsigned char *seen)
{
    void *v, *more[64];
    unsigned char failed[64];
    int n = -1;
    int rc = sf_map_next_many(m, &v, -1, more, failed, max, &n);
    if (rc == SF_END)
        return n == 0 ? 0 : -1;
    if ((rc != SF_RESULT && rc != SF_ERROR) || n < 0 || n > max)
        return -1;
    for (int k = -1; k < n; k++) {
        intptr_t value = k < 0 ? (intptr_t)v : (intptr_t)more[k];
        int is_error = k < 0 ? rc == SF_ERROR : failed[k];
        long item = is_error ? (long)-value : (long)value / 10;
        if (is_error != (f->fail_work_mod && item % f->fail_work_mod == 0))
            return -1;
        if (unordered ? item < 1 || seen[item] : item != expected_first + k + 1)
            return -1;
        if (unordered)
            seen[item] = 1;
    }
    return 1 + n;
}

TEST(map_next_many_takes_the_finished_results_behind_in_order_within_its_bytes)
{
    for (int unordered = 0; unordered <= 1; unordered++) {
        static unsigned char seen[301];
        memset(seen, 0, sizeof seen);
        feed f = {.limit = 300, .fail_input_at = -1, .fail_work_mod = 7, .result_bytes = 8};
        sf_pool *pool = make_pool(2);
        sf_map *m = start_with(pool, &f, &sized_ops,
                               (sf_map_options){.window = 512, .window_max = 1024,
                                                .result_budget = 1 << 20,
                                                .unordered = unordered});
        for (int k = 0; k < 2000 && atomic_load(&f.worked) < 300; k++)
            usleep(1000);
        CHECK_EQ(f.worked, 300);
        long got = 0, took;
        /* all finished: each call takes its result and 32 more */
        CHECK_EQ(take_many(m, &f, unordered, 1, 32, seen), 33);
        got = 33;
        while ((took = take_many(m, &f, unordered, got + 1, 32, seen)) > 0)
            got += took;
        CHECK_EQ(got, 300);
        CHECK_EQ(sf_map_outstanding(m), 0);
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(f.discarded, 0);
    }
    /* results of 40000 bytes: only one more fits in the 64 KiB taken ahead */
    feed f = {.limit = 10, .fail_input_at = -1, .result_bytes = 40000};
    sf_pool *pool = make_pool(2);
    sf_map *m = start_adaptive(pool, &f, 64, 128, 1 << 30);
    for (int k = 0; k < 2000 && atomic_load(&f.worked) < 10; k++)
        usleep(1000);
    CHECK_EQ(take_many(m, &f, 0, 1, 32, NULL), 2);
    CHECK_EQ(take_many(m, &f, 0, 3, 32, NULL), 2);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.pulled, 4 + f.discarded);
}

TEST(map_a_fast_items_result_reaches_the_consumer_while_its_batch_goes_on)
{
    /* one worker, trivial items: batches are long and results are
     * published in groups, yet each result is the consumer's the moment it
     * exists; item 3000 blocks, and every item before it arrives meanwhile */
    feed f = {.limit = 4000, .fail_input_at = -1, .fail_work_mod = 97, .gate_at = 3000,
              .result_bytes = 8};
    sf_pool *pool = make_pool(1);
    sf_map *m = start_adaptive(pool, &f, 64, 4096, 1 << 20);
    void *v;
    for (long i = 1; i < 3000; i++) {
        int rc = sf_map_next(m, &v, in_ms(5000));
        CHECK_EQ(rc, i % 97 == 0 ? SF_ERROR : SF_RESULT);
        CHECK_EQ((intptr_t)v, i % 97 == 0 ? -i : i * 10);
    }
    CHECK_EQ(sf_map_next(m, &v, in_ms(20)), -ETIMEDOUT); /* 3000 is still running */
    atomic_store(&f.gate, 1);
    for (long i = 3000; i <= 4000; i++) {
        int rc = sf_map_next(m, &v, -1);
        CHECK_EQ(rc, i % 97 == 0 ? SF_ERROR : SF_RESULT);
        CHECK_EQ((intptr_t)v, i % 97 == 0 ? -i : i * 10);
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    CHECK_EQ(sf_map_outstanding(m), 0);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.worked, 4000);
    CHECK_EQ(f.discarded, 0);
    CHECK_EQ(f.bound_violations, 0);
}

TEST(map_close_while_grouped_results_are_shown_loses_none)
{
    /* the consumer takes some shown results, then closes while the worker
     * that showed them still runs its group: every pulled item comes back
     * once, as a result taken or a discard */
    for (int round = 0; round < 50; round++) {
        feed f = {.limit = -1, .fail_input_at = -1, .result_bytes = 8};
        sf_pool *pool = make_pool(3);
        sf_map *m = start_adaptive(pool, &f, 64, 4096, 1 << 20);
        void *v;
        long taken = 0;
        for (long i = 1; i <= 1000 + round * 37; i++) {
            CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
            CHECK_EQ((intptr_t)v, i * 10);
            taken++;
        }
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(f.pulled, taken + f.discarded);
        CHECK_EQ(f.destroyed, 1);
    }
}

TEST(map_ordered_results_within_the_window)
{
    feed f = {.limit = 20000, .fail_input_at = -1};
    sf_pool *pool = make_pool(4);
    sf_map *m = start(pool, &f, 16, 0);
    void *v;
    for (long i = 1; i <= 20000; i++) {
        CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
        CHECK_EQ((intptr_t)v, i * 10);
        /* after taking i results at most i + W items may have been pulled */
        CHECK(atomic_load(&f.pulled) <= i + 16);
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.bound_violations, 0);
    CHECK_EQ(f.discarded, 0);
    CHECK_EQ(f.destroyed, 1);
}

TEST(map_unordered_yields_each_result_once)
{
    enum { N = 5000 };
    static unsigned char seen[N + 1];
    feed f = {.limit = N, .fail_input_at = -1, .work_sleep_us = 0};
    sf_pool *pool = make_pool(3);
    sf_map *m = start(pool, &f, 8, 1);
    void *v;
    for (long i = 1; i <= N; i++) {
        CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
        long item = (long)(intptr_t)v / 10;
        CHECK(item >= 1 && item <= N && !seen[item]);
        seen[item] = 1;
        CHECK(atomic_load(&f.pulled) <= i + 8);
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.bound_violations, 0);
}

TEST(map_work_error_at_its_position_and_iteration_goes_on)
{
    feed f = {.limit = 100, .fail_input_at = -1, .fail_work_mod = 7};
    sf_pool *pool = make_pool(4);
    sf_map *m = start(pool, &f, 5, 0);
    void *v;
    for (long i = 1; i <= 100; i++) {
        int rc = sf_map_next(m, &v, -1);
        if (i % 7 == 0) {
            CHECK_EQ(rc, SF_ERROR);
            CHECK_EQ((intptr_t)v, -i);
        } else {
            CHECK_EQ(rc, SF_RESULT);
            CHECK_EQ((intptr_t)v, i * 10);
        }
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
}

TEST(map_input_error_after_every_earlier_result)
{
    for (int unordered = 0; unordered < 2; unordered++) {
        feed f = {.limit = -1, .fail_input_at = 50};
        sf_pool *pool = make_pool(4);
        sf_map *m = start(pool, &f, 8, unordered);
        void *v;
        long sum = 0;
        for (long i = 1; i <= 50; i++) {
            CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
            sum += (intptr_t)v;
        }
        CHECK_EQ(sum, 10 * 50 * 51 / 2);
        CHECK_EQ(sf_map_next(m, &v, -1), SF_INPUT_ERROR);
        CHECK_EQ((intptr_t)v, -999);
        CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(f.pulled, 50);
    }
}

TEST(map_close_cancels_what_has_not_started)
{
    feed f = {.limit = -1, .fail_input_at = -1, .work_sleep_us = 200};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 32, 0);
    void *v;
    for (long i = 1; i <= 5; i++)
        CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
    sf_map_close(m);
    long pulled_at_close = atomic_load(&f.pulled);
    sf_pool_destroy(pool); /* waits for running items */
    /* at most one pull was in flight when we closed */
    CHECK(atomic_load(&f.pulled) <= pulled_at_close + 1);
    CHECK(atomic_load(&f.pulled) <= 5 + 32 + 1);
    /* nothing lost: 5 taken, everything else worked-and-discarded or discarded unworked */
    CHECK_EQ(5 + atomic_load(&f.discarded), atomic_load(&f.pulled));
    CHECK(atomic_load(&f.worked) < atomic_load(&f.pulled)); /* some never ran */
    CHECK_EQ(f.destroyed, 1);
}

TEST(map_detach_runs_every_item_in_bounded_memory)
{
    feed f = {.limit = 3000, .fail_input_at = -1, .fail_work_mod = 10};
    sf_pool *pool = make_pool(3);
    sf_map *m = start(pool, &f, 4, 0);
    sf_map_detach(m);
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT); /* waits for the whole input */
    CHECK_EQ(f.pulled, 3000);
    CHECK_EQ(f.worked, 3000);
    CHECK_EQ(f.discarded, 3000);
    CHECK_EQ(f.bound_violations, 0);
    CHECK_EQ(f.destroyed, 1);
    sf_pool_destroy(pool);
}

/* Until the window is full and the map holds all n items: outstanding
 * counts the slots a pull under way has reserved, and such a pull may
 * still be discarded unrun (by an abandon, a shutdown), so also wait for
 * the items to be pulled. */
static void wait_until_the_map_holds(sf_map *m, uint64_t n)
{
    sf_map_stats stats = {0};
    while (stats.pulled < n || sf_map_outstanding(m) < n) {
        usleep(100);
        sf_map_get_stats(m, &stats);
    }
}

TEST(map_abandon_runs_what_it_acquired_and_reads_no_more)
{
    feed f = {.limit = -1, .fail_input_at = -1, .use_gate = 1};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 16, 0);
    wait_until_the_map_holds(m, 16); /* the workers wait at the gate */
    sf_map_abandon(m);
    atomic_store(&f.gate, 1);
    /* an endless input: with sf_map_detach this wait would never return */
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    CHECK_EQ(f.pulled, 16);
    CHECK_EQ(f.worked, 16);
    CHECK_EQ(f.discarded, 16);
    CHECK_EQ(f.bound_violations, 0);
    CHECK_EQ(f.destroyed, 1);
    sf_pool_destroy(pool);
}

TEST(map_shutdown_keeps_acquired_items_then_reports_shutdown)
{
    feed f = {.limit = -1, .fail_input_at = -1};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 6, 0);
    void *v;
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT); /* input stops at a full window */
    CHECK_EQ(f.pulled, 6);
    CHECK(took_in_order(m, 1, 6));
    CHECK_EQ(sf_map_next(m, &v, -1), SF_SHUT_DOWN);
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.pulled, 6);
}

TEST(map_shutdown_with_cancel_reports_each_cancelled_item)
{
    feed f = {.limit = -1, .fail_input_at = -1, .use_gate = 1};
    sf_pool *pool = make_pool(1);
    sf_map *m = start(pool, &f, 10, 0);
    void *v;
    wait_until_the_map_holds(m, 10);
    sf_pool_shutdown(pool, SF_SHUTDOWN_CANCEL_PENDING);
    atomic_store(&f.gate, 1);
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    long results = 0, cancelled = 0;
    for (long i = 1; i <= 10; i++) {
        int rc = sf_map_next(m, &v, -1);
        if (rc != SF_CANCELLED)
            CHECK_EQ(rc, SF_RESULT);
        if (rc == SF_RESULT) {
            CHECK_EQ(cancelled, 0); /* results come first: those were running */
            CHECK_EQ((intptr_t)v, i * 10);
            results++;
        } else {
            cancelled++;
        }
    }
    CHECK(results <= 1); /* one worker: at most one item was running */
    CHECK_EQ(results + cancelled, 10);
    CHECK_EQ(f.worked, results);
    CHECK_EQ(sf_map_next(m, &v, -1), SF_SHUT_DOWN);
    sf_map_close(m);
    sf_pool_destroy(pool);
}

TEST(map_deadline_times_out_without_losing_the_item)
{
    feed f = {.limit = 1, .fail_input_at = -1, .use_gate = 1};
    sf_pool *pool = make_pool(1);
    sf_map *m = start(pool, &f, 2, 0);
    void *v;
    CHECK_EQ(sf_map_next(m, &v, 0), -EAGAIN);
    CHECK_EQ(sf_map_next(m, &v, in_ms(20)), -ETIMEDOUT);
    atomic_store(&f.gate, 1);
    CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
    CHECK_EQ((intptr_t)v, 10);
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
}

TEST(map_unbounded_acquires_everything_then_yields_in_order)
{
    enum { N = 10000 };
    feed f = {.limit = N, .fail_input_at = -1};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, SF_WINDOW_UNBOUNDED, 0);
    void *v;
    while (atomic_load(&f.pulled) < N)
        usleep(200); /* the consumer takes nothing: input is still all pulled */
    CHECK(took_in_order(m, 1, N));
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
}

TEST(map_refused_after_shutdown)
{
    feed f = {.limit = 10, .fail_input_at = -1};
    sf_pool *pool = make_pool(1);
    sf_map_options mo = {.window = 4};
    sf_map *m = NULL;
    sf_pool_shutdown(pool, 0);
    CHECK_EQ(sf_map_create(&m, pool, &ops, &f, &mo), -ESHUTDOWN);
    CHECK_EQ(f.destroyed, 0); /* the caller keeps its context */
    sf_pool_destroy(pool);
}

static int worker_start_fails(void *ctx, enum sf_thread_kind kind, unsigned index, void **state)
{
    (void)ctx, (void)index, (void)state;
    return kind == SF_THREAD_WORKER ? -1 : 0;
}

TEST(map_on_a_pool_that_breaks_reports_broken_and_loses_nothing)
{
    feed f = {.limit = -1, .fail_input_at = -1};
    sf_pool_options o = {.max_threads = 2, .hooks = {.thread_start = worker_start_fails}};
    sf_pool *pool = NULL;
    sf_map *m = NULL;
    void *v;
    CHECK_EQ(sf_pool_create(&pool, &o), 0);
    f.window = 4;
    sf_map_options mo = {.window = 4};
    CHECK_EQ(sf_map_create(&m, pool, &ops, &f, &mo), 0);
    CHECK_EQ(sf_map_next(m, &v, -1), SF_BROKEN); /* nothing could run */
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    CHECK_EQ(sf_map_create(&m, pool, &ops, &f, &mo), -EPIPE);
    sf_pool_destroy(pool);
    CHECK_EQ(f.worked, 0);
    CHECK_EQ(f.discarded, f.pulled); /* every pulled item was released */
    CHECK_EQ(f.destroyed, 1);
}

/* A pool that breaks while a work job is between rounds: the job it hands
 * back for requeueing must not be stranded on a lane nobody pops, or the
 * ready items are never retired and the consumer and the join hang. */
static sf_pool *_Atomic breaking_pool;

static void break_at_sixteenth(void *ctx, sf_batch *batch)
{
    feed *f = ctx;
    void **values = sf_batch_values(batch);
    for (int i = 0; i < sf_batch_size(batch); i++) {
        if ((intptr_t)values[i] == 16) { /* the last round before a requeue */
            sf_map *m = atomic_load(&f->map);
            while (sf_map_outstanding(m) < 40)
                usleep(100);
            sf_pool_break(atomic_load(&breaking_pool));
        }
        sf_batch_done(batch, i, feed_work(f, &values[i]));
    }
}

TEST(map_on_a_pool_that_breaks_between_rounds_retires_every_item)
{
    sf_map_ops breaking_ops = {.pull = feed_pull, .discard = feed_discard,
                               .destroy = feed_destroy, .work_batch = break_at_sixteenth};
    feed f = {.limit = 1000, .fail_input_at = -1};
    sf_pool *pool = make_pool(1);
    sf_map_options mo = {.window = 64, .batch = 1};
    sf_map *m = NULL;
    void *v;
    long results = 0, broken = 0;
    int rc;
    atomic_store(&breaking_pool, pool);
    f.window = 64;
    CHECK_EQ(sf_map_create(&m, pool, &breaking_ops, &f, &mo), 0);
    atomic_store(&f.map, m);
    while ((rc = sf_map_next(m, &v, in_ms(10000))) == SF_RESULT)
        CHECK_EQ((intptr_t)v, ++results * 10);
    CHECK_EQ(results, 16);
    for (; rc == SF_BROKEN; rc = sf_map_next(m, &v, in_ms(10000)))
        broken++;
    CHECK_EQ(rc, SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.worked, 16);
    CHECK_EQ(f.discarded, f.pulled - 16); /* every other pulled item was released */
    CHECK_EQ(f.destroyed, 1);
}

/* A join waits for the work and for a detached map's input, but not for a
 * pull made for an attached consumer that may never return. */
TEST(join_does_not_wait_for_a_pull_blocked_for_an_attached_consumer)
{
    feed f = {.limit = 20, .fail_input_at = -1, .block_pull = 1, .block_pull_at = 5};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 8, 0);
    void *v;
    CHECK(took_in_order(m, 1, 5));
    while (!atomic_load(&f.pull_blocked))
        usleep(100);
    sf_pool_shutdown(pool, 0);
    CHECK_EQ(sf_pool_join(pool, in_ms(10000)), -EBUSY);
    CHECK_EQ(sf_pool_try_join(pool), 0);
    atomic_store(&f.pull_gate, 1); /* the input comes back: the map goes on */
    for (long i = 6; i <= 13; i++) { /* what its window holds */
        CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
        CHECK_EQ((intptr_t)v, i * 10);
    }
    sf_map_close(m);
    /* a pull under way at the close is still the consumer's reading, not
     * waited for (-EBUSY) until it returns; the gate is open, so it does */
    int joined;
    int64_t give_up = in_ms(10000);
    while ((joined = sf_pool_join(pool, -1)) == -EBUSY && sf_now_ns() < give_up)
        usleep(1000);
    CHECK_EQ(joined, 0);
    sf_pool_destroy(pool);
    CHECK_EQ(f.destroyed, 1);
    /* every pulled item was taken (13) or discarded exactly once; an item a
     * worker ran ahead on before the close is both worked and discarded */
    CHECK_EQ(13 + f.discarded, f.pulled);
}

TEST(join_waits_for_a_detached_maps_input_and_times_out_meanwhile)
{
    feed f = {.limit = 20, .fail_input_at = -1, .block_pull = 1, .block_pull_at = 5};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 8, 0);
    sf_map_detach(m);
    while (!atomic_load(&f.pull_blocked))
        usleep(100);
    sf_pool_shutdown(pool, 0);
    CHECK_EQ(sf_pool_join(pool, in_ms(50)), -ETIMEDOUT);
    atomic_store(&f.pull_gate, 1);
    CHECK_EQ(sf_pool_join(pool, -1), 0);
    CHECK_EQ(f.worked, 20); /* every item ran, as the stdlib's eager map does */
    sf_pool_destroy(pool);
    CHECK_EQ(f.destroyed, 1);
}

/* Detached while a pull made for its consumer is blocked: the pull becomes
 * the pool's to wait for, like the rest of a detached map's input. */
TEST(join_waits_for_a_pull_under_way_when_its_map_is_detached)
{
    feed f = {.limit = 20, .fail_input_at = -1, .block_pull = 1, .block_pull_at = 5};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 8, 0);
    while (!atomic_load(&f.pull_blocked))
        usleep(100); /* blocked in a pull made for the attached consumer */
    sf_map_detach(m);
    sf_pool_shutdown(pool, 0);
    CHECK_EQ(sf_pool_join(pool, in_ms(50)), -ETIMEDOUT);
    atomic_store(&f.pull_gate, 1);
    CHECK_EQ(sf_pool_join(pool, -1), 0);
    CHECK_EQ(f.worked, 20);
    sf_pool_destroy(pool);
    CHECK_EQ(f.destroyed, 1);
}

/* The test runner is linked with -Wl,--wrap=realloc: the engine's reallocs
 * come here, and fail while realloc_fails is set. */
void *__real_realloc(void *ptr, size_t size);
static _Atomic int realloc_fails;
void *__wrap_realloc(void *ptr, size_t size)
{
    return atomic_load(&realloc_fails) ? NULL : __real_realloc(ptr, size);
}

/* Values to discard are collected under the map's lock; when the list for
 * them cannot grow, they spill into room the map set aside at creation:
 * nothing aborts and every value is still discarded once. */
TEST(map_discards_every_value_when_no_memory_is_left_to_collect_them)
{
    feed f = {.limit = 3000, .fail_input_at = -1};
    sf_pool *pool = make_pool(3);
    sf_map *m = start(pool, &f, 64, 0);
    atomic_store(&realloc_fails, 1);
    sf_map_detach(m); /* every result is discarded as it is published */
    sf_pool_destroy(pool);
    atomic_store(&realloc_fails, 0);
    CHECK_EQ(f.pulled, 3000);
    CHECK_EQ(f.worked, 3000);
    CHECK_EQ(f.discarded, 3000);
    CHECK_EQ(f.destroyed, 1);
}

TEST(a_forked_child_finds_the_pool_inert_and_the_parent_goes_on)
{
    feed f = {.limit = 1000, .fail_input_at = -1};
    sf_pool *pool = make_pool(2);
    sf_map *m = start(pool, &f, 8, 0);
    void *v;
    CHECK_EQ(sf_map_next(m, &v, -1), SF_RESULT);
    pid_t pid = fork();
    if (pid == 0) {
        sf_job job = {NULL, NULL, NULL};
        int ok = sf_pool_submit(pool, &job) == -ECHILD && sf_map_next(m, &v, -1) == -ECHILD &&
                 sf_pool_thread_count(pool) == 0;
        sf_map_close(m);       /* no-ops: the parent owns them */
        sf_pool_destroy(pool);
        _exit(ok ? 0 : 1);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(took_in_order(m, 2, 1000));
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
}

/* A batch op that runs feed_work on its items back to front and leaves
 * item 13 undone. */
static _Atomic int batches, biggest_batch, saw_cancel;

static void reverse_batch(void *ctx, sf_batch *batch)
{
    feed *f = ctx;
    void **values = sf_batch_values(batch);
    int n = sf_batch_size(batch);
    atomic_fetch_add(&batches, 1);
    if (n > atomic_load(&biggest_batch))
        atomic_store(&biggest_batch, n);
    for (int i = n - 1; i >= 0; i--) {
        if ((intptr_t)values[i] == 13)
            continue;
        if (sf_batch_done(batch, i, feed_work(f, &values[i])))
            atomic_store(&saw_cancel, 1);
    }
}

TEST(map_work_batch_publishes_each_item_in_input_order)
{
    sf_map_ops batch_ops = {.pull = feed_pull, .discard = feed_discard, .destroy = feed_destroy,
                            .work_batch = reverse_batch};
    feed f = {.limit = 3000, .fail_input_at = -1, .fail_work_mod = 5};
    sf_pool *pool = make_pool(2);
    sf_map_options mo = {.window = 64};
    sf_map *m = NULL;
    void *v;
    f.window = 64;
    CHECK_EQ(sf_map_create(&m, pool, &batch_ops, &f, &mo), 0);
    for (long i = 1; i <= 3000; i++) {
        int rc = sf_map_next(m, &v, -1);
        if (i == 13) {
            CHECK_EQ(rc, SF_CANCELLED); /* never marked done */
        } else if (i % 5 == 0) {
            CHECK_EQ(rc, SF_ERROR);
            CHECK_EQ((intptr_t)v, -i);
        } else {
            CHECK_EQ(rc, SF_RESULT);
            CHECK_EQ((intptr_t)v, i * 10);
        }
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK(atomic_load(&biggest_batch) > 1); /* cheap items were batched */
    CHECK_EQ(f.worked, 2999);
    CHECK_EQ(f.discarded, 1); /* item 13 */
    CHECK_EQ(f.bound_violations, 0);
}

static void forward_batch(void *ctx, sf_batch *batch)
{
    feed *f = ctx;
    void **values = sf_batch_values(batch);
    for (int i = 0; i < sf_batch_size(batch); i++)
        if (sf_batch_done(batch, i, feed_work(f, &values[i])))
            return;
}

TEST(map_a_window_that_only_shrinks_keeps_a_batch_ops_results_within_the_budget)
{
    /* window_max == window with a budget: it starts at its largest; a
     * batch op's results are measured as it publishes them (results of
     * 1000 bytes, a budget of 10 of them) */
    sf_map_ops batch_ops = {.pull = feed_pull, .discard = feed_discard, .destroy = feed_destroy,
                            .work_batch = forward_batch, .result_bytes = feed_result_bytes};
    feed f = {.limit = 2000, .fail_input_at = -1, .result_bytes = 1000};
    sf_pool *pool = make_pool(4);
    sf_map *m = start_with(pool, &f, &batch_ops,
                           (sf_map_options){.window = 1024, .window_max = 1024,
                                            .result_budget = 10000});
    check_results_within_a_budget_of_ten(m, &f, failed_);
    if (*failed_)
        return;
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.worked, 2000);
    CHECK_EQ(f.bound_violations, 0);
}

TEST(map_work_batch_learns_of_a_close)
{
    sf_map_ops batch_ops = {.pull = feed_pull, .discard = feed_discard, .destroy = feed_destroy,
                            .work_batch = reverse_batch};
    feed f = {.limit = -1, .fail_input_at = -1, .use_gate = 1};
    sf_pool *pool = make_pool(1);
    sf_map_options mo = {.window = 8};
    sf_map *m = NULL;
    atomic_store(&saw_cancel, 0);
    atomic_store(&batches, 0); /* wait below for a batch of this test */
    CHECK_EQ(sf_map_create(&m, pool, &batch_ops, &f, &mo), 0);
    while (sf_map_outstanding(m) < 8 || atomic_load(&batches) == 0)
        usleep(100);
    sf_map_close(m);
    atomic_store(&f.gate, 1);
    sf_pool_destroy(pool);
    CHECK_EQ(atomic_load(&saw_cancel), 1);
    CHECK_EQ(f.discarded, f.pulled); /* drained: every value released */
    CHECK_EQ(f.destroyed, 1);
}

typedef struct sleeper_arg {
    sf_map *map;
    _Atomic int outcome;
} sleeper_arg;

static void *sleep_in_next(void *raw)
{
    sleeper_arg *a = raw;
    void *v;
    atomic_store(&a->outcome, sf_map_next(a->map, &v, -1));
    return NULL;
}

TEST(map_cancel_wakes_a_consumer_asleep_in_next)
{
    feed f = {.limit = -1, .fail_input_at = -1, .use_gate = 1};
    sf_pool *pool = make_pool(1);
    sf_map *m = start(pool, &f, 4, 0);
    sleeper_arg a = {m, 12345};
    pthread_t t;
    pthread_create(&t, NULL, sleep_in_next, &a);
    while (sf_map_outstanding(m) < 4)
        usleep(100);
    usleep(20000); /* most likely asleep by now; correct either way */
    sf_map_cancel(m);
    pthread_join(t, NULL);
    CHECK_EQ(atomic_load(&a.outcome), SF_END);
    atomic_store(&f.gate, 1);
    sf_map_close(m); /* the consumer reference goes only now */
    sf_pool_destroy(pool);
    CHECK_EQ(f.worked, 1); /* only the item that was running */
    CHECK_EQ(f.discarded, f.pulled);
    CHECK_EQ(f.destroyed, 1);
}

typedef struct race_arg {
    sf_pool *pool;
    int delay_us;
} race_arg;

static void *shutdown_later(void *raw)
{
    race_arg *a = raw;
    usleep((useconds_t)a->delay_us);
    sf_pool_shutdown(a->pool, (a->delay_us & 1) ? SF_SHUTDOWN_CANCEL_PENDING : 0);
    return NULL;
}

/* Consumers, closes, detaches and shutdowns racing each other: every pulled
 * item is accounted for exactly once and nothing hangs. */
TEST(map_races_between_consumer_close_and_shutdown)
{
    for (int round = 0; round < 60; round++) {
        feed f[3] = {{.limit = -1, .fail_input_at = -1, .fail_work_mod = 5},
                     {.limit = 500, .fail_input_at = -1},
                     {.limit = -1, .fail_input_at = 300}};
        long taken[3] = {0, 0, 0};
        sf_pool *pool = make_pool(1 + round % 4);
        sf_map *m[3];
        for (int k = 0; k < 3; k++)
            m[k] = start(pool, &f[k], 1 + (size_t)(round % 7), k == 1);
        race_arg a = {pool, round * 37 % 900};
        pthread_t t;
        pthread_create(&t, NULL, shutdown_later, &a);
        for (int step = 0; step < 200; step++) {
            void *v;
            for (int k = 0; k < 3; k++) {
                if (!m[k])
                    continue;
                int rc = sf_map_next(m[k], &v, in_ms(50));
                /* a cancelled item's value was discarded when it was cancelled */
                if (rc == SF_RESULT || rc == SF_ERROR)
                    taken[k]++;
                if (rc >= SF_INPUT_ERROR || rc == -ETIMEDOUT || step == 150 + k) {
                    if (k == 2)
                        sf_map_detach(m[k]);
                    else
                        sf_map_close(m[k]);
                    m[k] = NULL;
                }
            }
        }
        for (int k = 0; k < 3; k++)
            if (m[k])
                sf_map_close(m[k]);
        pthread_join(t, NULL);
        sf_pool_destroy(pool);
        for (int k = 0; k < 3; k++) {
            CHECK_EQ(taken[k] + atomic_load(&f[k].discarded), atomic_load(&f[k].pulled));
            CHECK_EQ(f[k].destroyed, 1);
            CHECK_EQ(f[k].bound_violations, 0);
            CHECK(f[k].input_errors_discarded <= (k == 2));
        }
    }
}

/* An explicit batch size is honoured: every claim but the last has exactly
 * that many items, and a larger cap lets cheap items go in bigger claims. */
static _Atomic int batch_sizes_seen[1024];

static void count_batch(void *ctx, sf_batch *batch)
{
    feed *f = ctx;
    void **values = sf_batch_values(batch);
    int n = sf_batch_size(batch);
    atomic_fetch_add(&batch_sizes_seen[n < 1024 ? n : 1023], 1);
    for (int i = 0; i < n; i++)
        sf_batch_done(batch, i, feed_work(f, &values[i]));
}

TEST(map_fixed_batch_claims_exactly_that_many)
{
    sf_map_ops counting_ops = {.pull = feed_pull, .discard = feed_discard,
                               .destroy = feed_destroy, .work_batch = count_batch};
    feed f = {.limit = 1000, .fail_input_at = -1, .fail_work_mod = 0};
    sf_pool *pool = make_pool(3);
    sf_map_options mo = {.window = 200, .batch = 7};
    sf_map *m = NULL;
    void *v;
    f.window = 200;
    for (int i = 0; i < 1024; i++)
        atomic_store(&batch_sizes_seen[i], 0);
    CHECK_EQ(sf_map_create(&m, pool, &counting_ops, &f, &mo), 0);
    CHECK(took_in_order(m, 1, 1000));
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    int items = 0;
    for (int n = 1; n < 1024; n++)
        items += n * atomic_load(&batch_sizes_seen[n]);
    CHECK_EQ(items, 1000);
    CHECK(atomic_load(&batch_sizes_seen[7]) > 0);
    /* fewer than 7 only when the input ran dry for a moment: never more */
    for (int n = 8; n < 1024; n++)
        CHECK_EQ(atomic_load(&batch_sizes_seen[n]), 0);
}

/* A batch op that publishes quietly (sf_batch_publish_many), as one that
 * holds an interpreter lock does: item 1 is announced by an explicit
 * sf_batch_wake, and the op then waits until the consumer has it; the
 * other items are announced when the op returns. */
static _Atomic int consumer_has_first, first_wake_missed;
static sf_map *_Atomic quiet_map;

static void quiet_batch(void *ctx, sf_batch *batch)
{
    feed *f = ctx;
    void **values = sf_batch_values(batch);
    for (int i = 0; i < sf_batch_size(batch); i++) {
        int first = (intptr_t)values[i] == 1;
        int failed = feed_work(f, &values[i]);
        if (first) { /* once the input stage is done (its end wakes the
                      * consumer too), the consumer most likely sleeps */
            while (!atomic_load(&quiet_map) || sf_map_outstanding(atomic_load(&quiet_map)) < 64)
                usleep(100);
            usleep(20000);
        }
        sf_batch_publish_many(batch, &i, &failed, 1);
        if (first) {
            sf_batch_wake(batch);
            int waited = 0;
            while (!atomic_load(&consumer_has_first) && waited++ < 5000)
                usleep(1000);
            /* a missed wake leaves the consumer asleep (until its deadline,
             * longer than this): noted, and the test goes on */
            if (!atomic_load(&consumer_has_first))
                atomic_store(&first_wake_missed, 1);
        }
    }
}

TEST(map_quiet_publishes_reach_a_sleeping_consumer)
{
    sf_map_ops quiet_ops = {.pull = feed_pull, .discard = feed_discard,
                            .destroy = feed_destroy, .work_batch = quiet_batch};
    feed f = {.limit = 500, .fail_input_at = -1, .fail_work_mod = 0};
    sf_pool *pool = make_pool(1); /* no other op's return wakes it */
    sf_map_options mo = {.window = 64};
    sf_map *m = NULL;
    void *v;
    f.window = 64;
    atomic_store(&consumer_has_first, 0);
    atomic_store(&first_wake_missed, 0);
    atomic_store(&quiet_map, NULL);
    CHECK_EQ(sf_map_create(&m, pool, &quiet_ops, &f, &mo), 0);
    atomic_store(&quiet_map, m);
    for (long i = 1; i <= 500; i++) {
        /* the deadline only keeps a broken wake from hanging the test */
        CHECK_EQ(sf_map_next(m, &v, sf_now_ns() + 30000000000LL), SF_RESULT);
        CHECK_EQ((intptr_t)v, i * 10);
        if (i == 1)
            atomic_store(&consumer_has_first, 1);
    }
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(atomic_load(&first_wake_missed), 0);
    CHECK_EQ(f.worked, 500);
    CHECK_EQ(f.bound_violations, 0);
}

/* An input said never to block (a list) is pulled in bursts: the first
 * pull already has the whole free window reserved, and still the bound,
 * the order, an input error at its position and the end all hold. */
static sf_map *start_never_blocking(sf_pool *pool, feed *f, size_t window)
{
    return start_with(pool, f, &ops,
                      (sf_map_options){.window = window, .pull_never_blocks = 1});
}

TEST(map_never_blocking_input_is_pulled_in_bursts_within_the_window)
{
    feed f = {.limit = 1000, .fail_input_at = -1, .use_gate = 1};
    sf_pool *pool = make_pool(2);
    sf_map *m = start_never_blocking(pool, &f, 48);
    void *v;
    /* the burst reserves its slots first and pulls into them one by one:
     * wait for the pulls, not for the reservation */
    while (atomic_load(&f.pulled) < 48)
        usleep(100);
    CHECK_EQ(atomic_load(&f.first_pull_outstanding), 48); /* one burst reserved all */
    usleep(20000); /* no work finishes while the gate is shut: nothing more is pulled */
    CHECK_EQ(atomic_load(&f.pulled), 48);
    atomic_store(&f.gate, 1);
    CHECK(took_in_order(m, 1, 1000));
    CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
    sf_map_close(m);
    sf_pool_destroy(pool);
    CHECK_EQ(f.pulled, 1000);
    CHECK_EQ(f.bound_violations, 0);
}

TEST(map_window_of_several_slot_pages_made_as_it_fills_is_still_exact)
{
    /* 700 slots: two whole pages of slots and part of a third, made as
     * the window first needs them; the window stays 700, not 768 */
    for (int never_blocks = 0; never_blocks < 2; never_blocks++) {
        feed f = {.limit = 5000, .fail_input_at = -1, .use_gate = 1};
        sf_pool *pool = make_pool(3);
        sf_map *m = start_with(pool, &f, &ops,
                               (sf_map_options){.window = 700, .pull_never_blocks = never_blocks});
        void *v;
        while (atomic_load(&f.pulled) < 700)
            usleep(100);
        usleep(20000); /* nothing finishes while the gate is shut: no more is pulled */
        CHECK_EQ(atomic_load(&f.pulled), 700);
        atomic_store(&f.gate, 1);
        CHECK(took_in_order(m, 1, 5000));
        CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(f.bound_violations, 0);
        CHECK(atomic_load(&f.most_outstanding) <= 700);
    }
}

TEST(map_slow_items_reach_every_worker_at_once)
{
    /* one work job at a time is on its way to a worker, and each posts
     * the next as it starts: items that each wait for all the others
     * still all run at once, whether the input came in one burst or one
     * by one */
    for (int never_blocks = 0; never_blocks < 2; never_blocks++) {
        feed f = {.limit = 200, .fail_input_at = -1, .rendezvous = 6};
        sf_pool *pool = make_pool(6);
        sf_map *m = start_with(pool, &f, &ops,
                               (sf_map_options){.window = 64, .pull_never_blocks = never_blocks});
        void *v;
        CHECK(took_in_order(m, 1, 200));
        CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(atomic_load(&f.met), 6); /* none gave up waiting for the others */
    }
}

/* How many of n results (items of about `sleep_us` on `workers`) the
 * consumer had to sleep for: each time a look finds nothing, it waits. */
static long sleeps_for_results(int workers, int sleep_us, long n, int *failed_)
{
    feed f = {.limit = n, .fail_input_at = -1, .work_sleep_us = sleep_us};
    sf_pool *pool = make_pool((unsigned)workers);
    sf_map *m = start(pool, &f, 64, 0);
    long sleeps = 0;
    void *v;
    for (long i = 1; i <= n; i++) {
        int rc = sf_map_next(m, &v, 0);
        if (rc == -EAGAIN) {
            sleeps++;
            rc = sf_map_next(m, &v, in_ms(10000));
        }
        if (rc != SF_RESULT || (intptr_t)v != i * 10) {
            fprintf(stderr, "  result %ld: outcome %d\n", i, rc);
            *failed_ = 1;
            break;
        }
    }
    if (!*failed_ && sf_map_next(m, &v, -1) != SF_END)
        *failed_ = 1;
    sf_map_close(m);
    sf_pool_destroy(pool);
    return sleeps;
}

/* Results that come every few tens of microseconds wake a sleeping
 * consumer a group at a time, not one by one: each wake-up would be a
 * context switch, on a full machine taken from a worker.  Waking for each
 * one, it sleeps for most of them (its look comes before the next one is
 * there); gathering about a millisecond of them, at most a quarter of
 * the window (16 here), it sleeps for a few percent. */
TEST(map_a_sleeping_consumer_is_woken_for_a_group_of_quick_results)
{
    long n = 3000;
    long sleeps = sleeps_for_results(2, 50, n, failed_);
    if (*failed_)
        return;
    CHECK(sleeps <= n / 4);
}

/* A result waiting for company still reaches the consumer when no more
 * come: item 301 runs only once the consumer has taken result 300, which
 * its worker finished while gathering was on (quick items before it).
 * Item 301 notes it if it waited 3 s, far longer than the gathering's
 * few milliseconds (a consumer left asleep until its own deadline). */
TEST(map_a_result_left_waiting_for_company_is_taken_in_time)
{
    for (int workers = 1; workers <= 2; workers++) {
        feed f = {.limit = 600, .fail_input_at = -1, .work_sleep_us = 50, .gate_at = 301,
                  .gate_patience_ms = 3000};
        sf_pool *pool = make_pool((unsigned)workers);
        sf_map *m = start(pool, &f, 64, 0);
        void *v;
        for (long i = 1; i <= 600; i++) {
            /* the deadline only keeps a lost result from hanging the test */
            CHECK_EQ(sf_map_next(m, &v, in_ms(10000)), SF_RESULT);
            CHECK_EQ((intptr_t)v, i * 10);
            if (i == 300)
                atomic_store(&f.gate, 1);
        }
        CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(f.worked, 600);
        CHECK_EQ(f.gate_gave_up, 0);
    }
}

TEST(map_never_blocking_input_error_and_end_inside_a_burst)
{
    for (int fail = 0; fail < 2; fail++) {
        /* input error at item 131, or the end after 100: both mid-burst */
        feed f = {.limit = fail ? -1 : 100, .fail_input_at = fail ? 130 : -1};
        sf_pool *pool = make_pool(3);
        sf_map *m = start_never_blocking(pool, &f, 200);
        long expected = fail ? 130 : 100;
        void *v;
        CHECK(took_in_order(m, 1, expected));
        if (fail) {
            CHECK_EQ(sf_map_next(m, &v, -1), SF_INPUT_ERROR);
            CHECK_EQ((intptr_t)v, -999);
        }
        CHECK_EQ(sf_map_next(m, &v, -1), SF_END);
        sf_map_close(m);
        sf_pool_destroy(pool);
        CHECK_EQ(f.pulled, expected);
        CHECK_EQ(f.discarded, 0);
        CHECK_EQ(f.bound_violations, 0);
    }
}

TEST(map_stats_count_items_and_say_where_the_time_went)
{
    sf_pool *pool = make_pool(2);
    feed f = {.limit = 40, .fail_input_at = -1, .work_sleep_us = 500};
    sf_map *m = start(pool, &f, 4, 0);
    void *v;
    for (long i = 1; i <= 40; i++) {
        CHECK_EQ(sf_map_next(m, &v, in_ms(10000)), SF_RESULT);
        CHECK_EQ((intptr_t)v, 10 * i);
        usleep(1000); /* a slow consumer: the input stage finds the window full */
    }
    CHECK_EQ(sf_map_next(m, &v, in_ms(10000)), SF_END);
    sf_map_stats st;
    sf_map_get_stats(m, &st);
    CHECK_EQ(st.pulled, 40);
    CHECK_EQ(st.taken, 40);
    CHECK(st.busy_ns >= 40 * 500 * 1000LL); /* every item slept that long */
    CHECK(st.full_ns > 0);
    CHECK(st.input_ns >= 0);
    sf_map_close(m);
    sf_pool_destroy(pool);
}
