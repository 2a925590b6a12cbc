/* test_pool.c -- the worker pool: every job runs once, shutdown drops or
 * runs what is queued, a failing thread start breaks the pool. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "streamfutures.h"
#include "test.h"

typedef struct counted_job {
    sf_job job;
    _Atomic int *ran, *dropped, *gate;
    int last_reason;
} counted_job;

static int counted_run(sf_job *job)
{
    counted_job *c = (counted_job *)job;
    while (c->gate && atomic_load(c->gate) == 0)
        usleep(100);
    atomic_fetch_add(c->ran, 1);
    return SF_JOB_DONE;
}

static void counted_drop(sf_job *job, int reason)
{
    counted_job *c = (counted_job *)job;
    c->last_reason = reason;
    atomic_fetch_add(c->dropped, 1);
}

static sf_pool *make_pool(unsigned threads)
{
    sf_pool_options o = {.max_threads = threads};
    sf_pool *pool = NULL;
    if (sf_pool_create(&pool, &o) != 0)
        abort();
    return pool;
}

TEST(pool_runs_every_job_once)
{
    enum { N = 20000 };
    static counted_job jobs[N];
    _Atomic int ran = 0, dropped = 0;
    sf_pool *pool = make_pool(4);
    for (int i = 0; i < N; i++) {
        jobs[i] = (counted_job){{NULL, counted_run, counted_drop}, &ran, &dropped, NULL, 0};
        CHECK_EQ(sf_pool_submit(pool, &jobs[i].job), 0);
    }
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    CHECK_EQ(atomic_load(&ran), N);
    CHECK_EQ(atomic_load(&dropped), 0);
    CHECK_EQ(sf_pool_thread_count(pool), 0);
    sf_pool_destroy(pool);
}

TEST(pool_refuses_jobs_after_shutdown)
{
    _Atomic int ran = 0, dropped = 0;
    counted_job job = {{NULL, counted_run, counted_drop}, &ran, &dropped, NULL, 0};
    sf_pool *pool = make_pool(2);
    sf_pool_shutdown(pool, 0);
    CHECK_EQ(sf_pool_submit(pool, &job.job), -ESHUTDOWN);
    sf_pool_destroy(pool);
    CHECK_EQ(atomic_load(&ran), 0);
}

TEST(pool_shutdown_cancel_drops_queued_jobs_only)
{
    enum { N = 100 };
    static counted_job jobs[N + 1];
    _Atomic int ran = 0, dropped = 0, gate = 0;
    sf_pool *pool = make_pool(1);
    jobs[0] = (counted_job){{NULL, counted_run, counted_drop}, &ran, &dropped, &gate, 0};
    CHECK_EQ(sf_pool_submit(pool, &jobs[0].job), 0);
    for (int i = 1; i <= N; i++) {
        jobs[i] = (counted_job){{NULL, counted_run, counted_drop}, &ran, &dropped, NULL, 0};
        CHECK_EQ(sf_pool_submit(pool, &jobs[i].job), 0);
    }
    /* job 0 may or may not have started; the single worker cannot have
     * passed it, so jobs 1..N are all still queued */
    sf_pool_shutdown(pool, SF_SHUTDOWN_CANCEL_PENDING);
    atomic_store(&gate, 1);
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    CHECK_EQ(atomic_load(&ran) + atomic_load(&dropped), N + 1);
    CHECK(atomic_load(&dropped) >= N);
    CHECK_EQ(jobs[N].last_reason, -ECANCELED);
    sf_pool_destroy(pool);
}

static int failing_start(void *ctx, enum sf_thread_kind kind, unsigned index, void **state)
{
    (void)ctx, (void)index, (void)state;
    return kind == SF_THREAD_WORKER ? -1 : 0;
}

TEST(pool_breaks_when_a_worker_cannot_start)
{
    enum { N = 10 };
    static counted_job jobs[N];
    _Atomic int ran = 0, dropped = 0;
    sf_pool_options o = {.max_threads = 2, .hooks = {.thread_start = failing_start}};
    sf_pool *pool = NULL;
    CHECK_EQ(sf_pool_create(&pool, &o), 0);
    int accepted = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (counted_job){{NULL, counted_run, counted_drop}, &ran, &dropped, NULL, 0};
        int rc = sf_pool_submit(pool, &jobs[i].job);
        CHECK(rc == 0 || rc == -EPIPE);
        accepted += rc == 0;
    }
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    CHECK(sf_pool_broken(pool));
    CHECK_EQ(atomic_load(&ran), 0);
    CHECK_EQ(atomic_load(&dropped), accepted);
    CHECK(accepted >= 1);
    CHECK_EQ(jobs[0].last_reason, -EPIPE);
    sf_pool_destroy(pool);
}

static _Atomic int hook_attached, hook_max_attached, hook_started, hook_stopped;

static int count_start(void *ctx, enum sf_thread_kind kind, unsigned index, void **state)
{
    (void)ctx, (void)kind, (void)index;
    *state = (void *)&hook_started;
    atomic_fetch_add(&hook_started, 1);
    return 0;
}
static void count_stop(void *ctx, void *state)
{
    (void)ctx;
    if (state == (void *)&hook_started)
        atomic_fetch_add(&hook_stopped, 1);
}
static void count_attach(void *ctx, void *state)
{
    (void)ctx, (void)state;
    int now = atomic_fetch_add(&hook_attached, 1) + 1, max = atomic_load(&hook_max_attached);
    while (now > max && !atomic_compare_exchange_weak(&hook_max_attached, &max, now))
        ;
}
static void count_detach(void *ctx, void *state)
{
    (void)ctx, (void)state;
    atomic_fetch_sub(&hook_attached, 1);
}

TEST(pool_hooks_bracket_every_thread)
{
    enum { N = 1000 };
    static counted_job jobs[N];
    _Atomic int ran = 0, dropped = 0;
    sf_pool_options o = {.max_threads = 3,
                         .jobs_per_attach = 7,
                         .hooks = {NULL, count_start, count_stop, count_attach, count_detach}};
    sf_pool *pool = NULL;
    CHECK_EQ(sf_pool_create(&pool, &o), 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (counted_job){{NULL, counted_run, counted_drop}, &ran, &dropped, NULL, 0};
        CHECK_EQ(sf_pool_submit(pool, &jobs[i].job), 0);
    }
    sf_pool_destroy(pool);
    CHECK_EQ(atomic_load(&ran), N);
    CHECK(atomic_load(&hook_started) >= 1 && atomic_load(&hook_started) <= 3);
    CHECK_EQ(atomic_load(&hook_stopped), atomic_load(&hook_started));
    CHECK_EQ(atomic_load(&hook_attached), 0); /* every attach was undone */
    CHECK(atomic_load(&hook_max_attached) <= 3);
}

TEST(pool_cancel_pending_runs_the_jobs_workers_were_already_given)
{
    /* 3 workers, 10 jobs, shut down with cancel at once: the 3 jobs that
     * started or woke a worker count as started (the stdlib's rule: an
     * item in a worker's hands runs), the 7 behind them are dropped */
    enum { N = 10 };
    static counted_job jobs[N];
    _Atomic int ran = 0, dropped = 0, gate = 0;
    sf_pool *pool = make_pool(3);
    for (int i = 0; i < N; i++) {
        jobs[i] = (counted_job){{NULL, counted_run, counted_drop}, &ran, &dropped, &gate, 0};
        CHECK_EQ(sf_pool_submit(pool, &jobs[i].job), 0);
    }
    sf_pool_shutdown(pool, SF_SHUTDOWN_CANCEL_PENDING);
    CHECK_EQ(atomic_load(&dropped), N - 3);
    for (int i = 3; i < N; i++)
        CHECK_EQ(jobs[i].last_reason, -ECANCELED);
    atomic_store(&gate, 1);
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    CHECK_EQ(atomic_load(&ran), 3);
    sf_pool_destroy(pool);
}

TEST(version_is_the_headers)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", SF_VERSION_MAJOR, SF_VERSION_MINOR,
             SF_VERSION_PATCH);
    CHECK(strcmp(sf_version(), SF_VERSION_STRING) == 0);
    CHECK(strcmp(sf_version(), expected) == 0);
}
