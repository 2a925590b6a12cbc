/* test_proc_worker.c -- the supervised worker without Python: batches of
 * items run by forked workers that echo, crash, exit, hang or wait at a
 * gate; which item is lost, which run again, which are skipped, and how
 * many processes were started.  Every process is reaped through ops.reap. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "streamfutures_proc.h"
#include "test.h"

#define MAX_ITEMS 64

typedef struct harness {
    int spawned, reaped, refuse_spawn, fail_setup;
    int gate_r, gate_w;      /* the workers wait at "gate" items for a byte */
    int started_r, started_w; /* ... after saying so with a byte here */
    int open_gate_on_wait;   /* write that byte the next time the runner waits */
    const char *items[MAX_ITEMS];
    int count;
    char encoded[4096];
    /* what the runner told us about each item */
    int replies[MAX_ITEMS], lost[MAX_ITEMS], lost_status[MAX_ITEMS];
    char answer[MAX_ITEMS][16];
    int cancel_at;           /* reply() says "cancelled" at this position */
    int flushes;
    int unlocked;            /* between ops.release and ops.reacquire */
    int wakes, wakes_unlocked;
    int extra, extra_given;  /* items more() hands out after the first count */
} harness;

/* Worker side: a task is NUL-separated items; item k has id task.id + k. */
static int gate_fd = -1, started_fd = -1;

static int serve_items(void *ctx, sf_proc_server *server, const sf_proc_msg *task)
{
    (void)ctx;
    const char *p = task->data, *end = p + task->len;
    for (uint64_t id = task->id; p < end; id++) {
        size_t len = strlen(p);
        int rc;
        if (sf_proc_skip(server, id)) {
            rc = sf_proc_reply(server, id, SF_PROC_KIND_SKIPPED, NULL, 0);
        } else {
            if (strcmp(p, "crash") == 0)
                abort();
            if (strcmp(p, "exit7") == 0)
                _exit(7);
            if (strcmp(p, "hang") == 0)
                for (;;)
                    pause();
            if (strcmp(p, "gate") == 0) {
                char byte;
                if (write(started_fd, "s", 1) != 1 || read(gate_fd, &byte, 1) != 1)
                    _exit(9);
            }
            rc = sf_proc_reply(server, id, 1, p, (uint32_t)len);
        }
        if (rc != 0)
            return rc;
        p += len + 1;
    }
    return 0;
}

static int spawn(void *ctx, sf_proc_spawned *out)
{
    harness *h = ctx;
    int tasks[2], results[2];
    if (h->refuse_spawn)
        return -1;
    int ring = sf_proc_ring_create(1 << 14);
    if (ring < 0 || pipe2(tasks, O_CLOEXEC) || pipe2(results, O_CLOEXEC))
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(tasks[1]);
        close(results[0]);
        close(h->gate_w);
        close(h->started_r);
        gate_fd = h->gate_r;
        started_fd = h->started_w;
        if (h->fail_setup) /* like an initializer that raised */
            _exit(0);
        _exit(sf_proc_serve(tasks[0], results[1], ring, serve_items, NULL, NULL) == 0 ? 0 : 3);
    }
    close(tasks[0]);
    close(results[1]);
    h->spawned++;
    *out = (sf_proc_spawned){pid, tasks[1], results[0], ring, SF_PROC_OPEN_PIDFD, (void *)(intptr_t)pid};
    return 0;
}

static int reap(void *ctx, void *handle)
{
    harness *h = ctx;
    int status = 0;
    while (waitpid((pid_t)(intptr_t)handle, &status, 0) < 0 && errno == EINTR)
        ;
    h->reaped++;
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

static void reacquire(void *ctx)
{
    harness *h = ctx;
    h->unlocked = 0;
}

static void release(void *ctx)
{
    harness *h = ctx;
    h->unlocked = 1;
    if (h->open_gate_on_wait) {
        h->open_gate_on_wait = 0;
        if (write(h->gate_w, "g", 1) != 1)
            abort();
    }
}

static int encode(void *ctx, int *pos, int *n, const void **data, uint32_t *len)
{
    harness *h = ctx;
    size_t used = 0;
    int kept = 0;
    for (int i = 0; i < *n; i++) {
        const char *item = h->items[pos[i]];
        if (strcmp(item, "unencodable") == 0) { /* finished here, never sent */
            h->lost[pos[i]] = -1;
            continue;
        }
        size_t len_i = strlen(item) + 1;
        memcpy(h->encoded + used, item, len_i);
        used += len_i;
        pos[kept++] = pos[i];
    }
    *n = kept;
    *data = h->encoded;
    *len = (uint32_t)used;
    return 0;
}

static int reply(void *ctx, int pos, const sf_proc_msg *msg)
{
    harness *h = ctx;
    h->replies[pos]++;
    memcpy(h->answer[pos], msg->data, msg->len < 15 ? msg->len : 15);
    if (pos == h->cancel_at) {
        char byte; /* cancel while the next item (a gate) surely runs */
        if (read(h->started_r, &byte, 1) != 1)
            abort();
        h->open_gate_on_wait = 1; /* only after the runner asked to skip */
        return 1;
    }
    return 0;
}

static int lost(void *ctx, int pos, enum sf_proc_lost why, int status)
{
    harness *h = ctx;
    h->lost[pos] = (int)why;
    h->lost_status[pos] = status;
    return 0;
}

/* Hand out the extra items, a few at a time, as the runner asks. */
static int more(void *ctx, int *first)
{
    harness *h = ctx;
    int n = h->extra - h->extra_given < 7 ? h->extra - h->extra_given : 7;
    *first = h->count + h->extra_given;
    h->extra_given += n;
    return n;
}

static int flush(void *ctx)
{
    harness *h = ctx;
    h->flushes++;
    return 0;
}

static void wake(void *ctx)
{
    harness *h = ctx;
    h->wakes++;
    h->wakes_unlocked += h->unlocked;
}

static harness *harness_new(void)
{
    harness *h = calloc(1, sizeof *h);
    int gate[2], started[2];
    if (!h || pipe2(gate, O_CLOEXEC) || pipe2(started, O_CLOEXEC))
        abort();
    h->started_r = started[0];
    h->started_w = started[1];
    h->gate_r = gate[0];
    h->gate_w = gate[1];
    h->cancel_at = -1;
    signal(SIGPIPE, SIG_IGN);
    return h;
}

static void harness_free(harness *h)
{
    close(h->gate_r);
    close(h->gate_w);
    close(h->started_r);
    close(h->started_w);
    free(h);
}

static sf_proc_worker *worker_for(harness *h, unsigned max_tasks)
{
    sf_proc_worker_ops ops = {h, spawn, reap, release, reacquire};
    sf_proc_worker *w = NULL;
    if (sf_proc_worker_create(&w, &ops, max_tasks) != 0)
        abort();
    return w;
}

static int run(sf_proc_worker *w, harness *h, int64_t timeout_ns)
{
    sf_proc_codec codec = {.ctx = h,
                           .count = h->count,
                           .encode = encode,
                           .reply = reply,
                           .lost = lost,
                           .flush = flush,
                           .wake = wake,
                           .more = more,
                           .capacity = h->count + h->extra};
    return sf_proc_worker_run(w, &codec, timeout_ns);
}

static void set_items(harness *h, int count, const char *normal)
{
    h->count = count;
    for (int i = 0; i < count; i++)
        h->items[i] = normal;
}

TEST(worker_runs_a_batch_and_each_item_is_answered_once)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 40, "ok");
    CHECK_EQ(run(w, h, 0), 0);
    CHECK_EQ(run(w, h, 0), 0); /* the same process serves the next batch */
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(h->replies[i], 2);
        CHECK_EQ(h->lost[i], 0);
    }
    CHECK_EQ(h->spawned, 1);
    CHECK(h->flushes >= 2); /* at least once per run, before it returned */
    CHECK(h->wakes >= 2);   /* likewise */
    CHECK(h->wakes_unlocked >= 1); /* before a wait: with the lock dropped */
    sf_proc_worker_destroy(w);
    CHECK_EQ(h->reaped, 1);
    harness_free(h);
}

static void crash_loses_only_the_running_item(int *failed_, const char *how, int status)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 30, "ok");
    h->items[11] = how;
    h->items[20] = how;
    CHECK_EQ(run(w, h, 0), 0);
    for (int i = 0; i < 30; i++) {
        int expect_lost = i == 11 || i == 20;
        CHECK_EQ(h->replies[i], expect_lost ? 0 : 1);
        CHECK_EQ(h->lost[i], expect_lost ? SF_PROC_CRASHED : 0);
        if (expect_lost)
            CHECK_EQ(h->lost_status[i], status);
    }
    CHECK_EQ(h->spawned, 3); /* the first worker and two replacements */
    sf_proc_worker_destroy(w);
    CHECK_EQ(h->reaped, 3);
    harness_free(h);
}

TEST(worker_abort_loses_only_the_running_item)
{
    crash_loses_only_the_running_item(failed_, "crash", -SIGABRT); }
TEST(worker_exit_code_loses_only_the_running_item)
{
    crash_loses_only_the_running_item(failed_, "exit7", 7); }

TEST(worker_timeout_kills_and_replaces_and_the_rest_runs)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 10, "ok");
    h->items[3] = "hang";
    CHECK_EQ(run(w, h, 50 * 1000000LL), 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(h->replies[i], i == 3 ? 0 : 1);
        CHECK_EQ(h->lost[i], i == 3 ? SF_PROC_TIMED_OUT : 0);
    }
    CHECK_EQ(h->lost_status[3], -SIGKILL);
    CHECK_EQ(h->spawned, 2);
    sf_proc_worker_destroy(w);
    CHECK_EQ(h->reaped, 2);
    harness_free(h);
}

TEST(worker_asks_for_more_and_runs_it_in_the_same_process)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 10, "ok");
    h->extra = 30;
    for (int i = 10; i < 40; i++)
        h->items[i] = "ok";
    h->items[25] = "crash"; /* in an extension: still only its own item */
    CHECK_EQ(run(w, h, 0), 0);
    CHECK_EQ(h->extra_given, 30);
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(h->replies[i], i == 25 ? 0 : 1);
        CHECK_EQ(h->lost[i], i == 25 ? SF_PROC_CRASHED : 0);
    }
    CHECK_EQ(h->spawned, 2);
    sf_proc_worker_destroy(w);
    CHECK_EQ(h->reaped, 2);
    harness_free(h);
}

TEST(worker_is_recycled_after_max_tasks)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 10);
    set_items(h, 35, "ok");
    CHECK_EQ(run(w, h, 0), 0);
    for (int i = 0; i < 35; i++)
        CHECK_EQ(h->replies[i], 1);
    CHECK_EQ(h->spawned, 4); /* 10 + 10 + 10 + 5 */
    CHECK_EQ(h->reaped, 3);  /* three retired at once; the fourth is alive */
    sf_proc_worker_destroy(w);
    CHECK_EQ(h->reaped, 4);
    harness_free(h);
}

TEST(worker_unencodable_items_are_left_to_the_encoder)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 5, "ok");
    h->items[2] = "unencodable";
    CHECK_EQ(run(w, h, 0), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(h->replies[i], i == 2 ? 0 : 1);
    CHECK_EQ(h->lost[2], -1);
    sf_proc_worker_destroy(w);
    harness_free(h);
}

TEST(worker_cancel_skips_items_not_started)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 10, "ok");
    h->items[4] = "gate"; /* running when the cancel comes; it finishes */
    h->cancel_at = 3;
    CHECK_EQ(run(w, h, 0), 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(h->replies[i], i <= 4 ? 1 : 0);
        CHECK_EQ(h->lost[i], 0);
    }
    CHECK_EQ(h->spawned, 1);
    sf_proc_worker_destroy(w);
    harness_free(h);
}

TEST(worker_that_cannot_start_loses_every_item)
{
    harness *h = harness_new();
    sf_proc_worker *w = worker_for(h, 0);
    set_items(h, 4, "ok");
    h->fail_setup = 1;
    CHECK_EQ(sf_proc_worker_start(w), -EPIPE);
    CHECK_EQ(h->reaped, 1);
    CHECK_EQ(run(w, h, 0), -EPIPE);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(h->lost[i], SF_PROC_UNAVAILABLE);
    h->fail_setup = 0;
    h->refuse_spawn = 1;
    CHECK_EQ(sf_proc_worker_start(w), -EAGAIN);
    CHECK_EQ(sf_proc_worker_pid(w), -1);
    sf_proc_worker_destroy(w);
    CHECK_EQ(h->reaped, h->spawned);
    harness_free(h);
}
