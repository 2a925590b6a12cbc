/*
 * proc_worker.c -- one worker process, supervised by the engine thread that
 * owns it: start, run batches, attribute a death, replace, recycle.
 *
 * DESIGN.  Each engine worker thread owns at most one process, so a process
 * runs one batch at a time and its items run in id order.  A batch goes out
 * as one task message (ids base .. base+m-1); the worker publishes each
 * reply before it starts the next item.  Hence, when the channel reports
 * the death, every item that finished has been answered, and the *first*
 * unanswered item is the one that was running: only it is lost (crashed,
 * or timed out if we killed the worker for overrunning), and the items
 * after it never started: they are sent again to a replacement.  A per-item
 * timeout runs from the previous reply (when the item started).  When the
 * embedder says the work was cancelled, the rest of the message is skipped
 * by the worker (sf_proc_cancel_below), not run.  After max_tasks items a
 * worker is asked to exit and a new one starts on the next batch.
 *
 * Every wait runs between ops.release and ops.reacquire (the embedder drops
 * its runtime lock there); every codec and spawn/reap call runs outside
 * them, except codec.wake, which runs first thing inside: a consumer woken
 * there does not at once block on the lock we held.  No locks: a worker
 * belongs to one thread at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streamfutures_proc.h"

struct sf_proc_worker {
    sf_proc_worker_ops ops;
    unsigned max_tasks; /* 0: no limit */
    sf_proc_channel *ch; /* NULL: no process now */
    void *handle;
    unsigned tasks_done;
    uint64_t next_id;
    const sf_proc_codec *codec; /* of the run under way, else NULL */
};

int sf_proc_worker_create(sf_proc_worker **out, const sf_proc_worker_ops *ops, unsigned max_tasks)
{
    sf_proc_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->ops = *ops;
    w->max_tasks = max_tasks;
    w->next_id = 1;
    *out = w;
    return 0;
}

static int recv_unlocked(sf_proc_worker *w, sf_proc_msg *msg, int64_t deadline_ns)
{
    if (w->ops.release)
        w->ops.release(w->ops.ctx);
    /* woken only now, the consumer does not block on the lock we held */
    if (w->codec && w->codec->wake)
        w->codec->wake(w->codec->ctx);
    int rc = sf_proc_recv(w->ch, msg, deadline_ns);
    if (w->ops.reacquire)
        w->ops.reacquire(w->ops.ctx);
    return rc;
}

/* Close the channel, reap the process, and kill what is left of the process
 * group it led: a task's subprocesses end with their worker, whether it
 * crashed, was killed for a timeout or by the embedder, or exited in order.
 * Killed after the reap, so an orderly exit is never cut short.  Safe by
 * pid: a group whose id is the worker's pid exists only if the worker made
 * it, and while any member lives that number is not given to a new process;
 * with no member left the kill finds no group (ESRCH), unless in the
 * moment since the reap the kernel gave the number to a new process that
 * at once made itself a group leader, which needs the pid space to wrap. */
static int bury(sf_proc_worker *w)
{
    int pid = sf_proc_pid(w->ch);
    sf_proc_channel_close(w->ch);
    w->ch = NULL;
    int status = w->ops.reap(w->ops.ctx, w->handle);
    if (pid > 0)
        kill(-pid, SIGKILL);
    return status;
}

/* Ask an idle worker to exit, wait until it has, and reap it. */
static void stop_idle_process(sf_proc_worker *w)
{
    sf_proc_msg msg;
    int rc = sf_proc_send(w->ch, 0, SF_PROC_KIND_EXIT, NULL, 0);
    while (rc == 0 || rc == -EINTR)
        rc = recv_unlocked(w, &msg, -1);
    bury(w);
}

int sf_proc_worker_start(sf_proc_worker *w)
{
    sf_proc_spawned s = {-1, -1, -1, -1, SF_PROC_OPEN_PIDFD, NULL};
    sf_proc_msg msg;
    int rc;
    if (w->ch)
        return 0;
    if (w->ops.spawn(w->ops.ctx, &s) != 0)
        return -EAGAIN;
    w->handle = s.handle;
    rc = sf_proc_channel_open(&w->ch, s.pid, s.task_fd, s.result_fd, s.ring_fd, s.pidfd);
    if (rc != 0) {
        close(s.task_fd);
        close(s.result_fd);
        if (s.ring_fd >= 0)
            close(s.ring_fd);
        /* not reaped yet, so the pid is still this process's */
        kill(s.pid, SIGKILL);
        if (s.pidfd >= 0)
            close(s.pidfd);
        w->ops.reap(w->ops.ctx, s.handle);
        kill(-s.pid, SIGKILL); /* see bury */
        return rc;
    }
    /* READY comes once the worker's set-up (an initializer) succeeded */
    do
        rc = recv_unlocked(w, &msg, -1);
    while (rc == -EINTR);
    if (rc != 0 || msg.kind != SF_PROC_KIND_READY) {
        bury(w);
        return -EPIPE;
    }
    w->tasks_done = 0;
    return 0;
}

int sf_proc_worker_pid(const sf_proc_worker *w) { return w->ch ? sf_proc_pid(w->ch) : -1; }

/* The state of one run: items not yet sent (pending, in order) and items
 * sent and in flight (ids flight_base + k, in the order the worker runs
 * them).  Capacity: every position the codec may ever hand us. */
typedef struct run_state {
    const sf_proc_codec *codec;
    int *pending, npending;
    int *flight; /* positions by id - flight_base */
    unsigned char *answered;
    unsigned char *alone; /* by position: to be sent in a message of its own */
    int nflight, unanswered;
    int first_unanswered; /* index of the oldest item in flight not answered */
    uint64_t flight_base;
    int last_message; /* items in the last message sent */
    int cancelled, timed_out;
    int64_t progress; /* when the first unanswered item started (timeouts) */
} run_state;

static void note_cancel(sf_proc_worker *w, run_state *r)
{
    if (!r->cancelled) {
        r->cancelled = 1;
        sf_proc_cancel_below(w->ch, w->next_id); /* what was sent is skipped */
    }
}

/* Send pending items as one message (at most the worker's quota). */
static void send_some(sf_proc_worker *w, run_state *r, int64_t timeout_ns)
{
    const sf_proc_codec *codec = r->codec;
    int m = 0;
    if (r->alone[r->pending[0]])
        m = 1; /* an item its worker could not read with others */
    else
        while (m < r->npending && !r->alone[r->pending[m]])
            m++;
    if (w->max_tasks && (unsigned)m > w->max_tasks - w->tasks_done)
        m = (int)(w->max_tasks - w->tasks_done);
    if (r->nflight == 0) {
        r->flight_base = w->next_id;
        r->first_unanswered = 0;
    }
    int *sent = r->flight + r->nflight;
    memcpy(sent, r->pending, (size_t)m * sizeof *sent);
    r->npending -= m;
    memmove(r->pending, r->pending + m, (size_t)r->npending * sizeof *r->pending);
    const void *data = NULL;
    uint32_t len = 0;
    /* encode may finish items itself (e.g. an argument that cannot be
     * serialized) and drop them from sent */
    if (codec->encode(codec->ctx, sent, &m, &data, &len) != 0)
        r->cancelled = 1;
    if (m == 0)
        return;
    memset(r->answered + r->nflight, 0, (size_t)m);
    if (r->unanswered == 0 && timeout_ns > 0)
        r->progress = sf_now_ns(); /* the worker was idle: the first starts now */
    sf_proc_send(w->ch, w->next_id, (uint32_t)m, data, len); /* kind: item count */
    w->next_id += (uint64_t)m;
    w->tasks_done += (unsigned)m;
    r->nflight += m;
    r->unanswered += m;
    r->last_message = m;
}

/* The worker died (or was killed for a timeout): the first unanswered item
 * was running and is lost; the ones after it never started and go back to
 * the front of pending. */
static void worker_died(sf_proc_worker *w, run_state *r)
{
    const sf_proc_codec *codec = r->codec;
    if (codec->flush && codec->flush(codec->ctx))
        r->cancelled = 1;
    int status = bury(w);
    int k = r->first_unanswered; /* kept pointing at an unanswered item */
    if (codec->lost(codec->ctx, r->flight[k], k == r->timed_out ? SF_PROC_TIMED_OUT
                                                                : SF_PROC_CRASHED,
                    status))
        r->cancelled = 1;
    if (codec->flush && codec->flush(codec->ctx))
        r->cancelled = 1;
    if (codec->wake) /* now, not after a replacement has started (spawn can be slow) */
        codec->wake(codec->ctx);
    if (!r->cancelled) { /* else the rest stays unanswered: the embedder's to cancel */
        int back = 0;
        for (int j = k + 1; j < r->nflight; j++)
            back += !r->answered[j];
        memmove(r->pending + back, r->pending, (size_t)r->npending * sizeof *r->pending);
        for (int j = k + 1, i = 0; j < r->nflight; j++)
            if (!r->answered[j])
                r->pending[i++] = r->flight[j];
        r->npending += back;
    }
    r->nflight = r->unanswered = 0;
    r->timed_out = -1;
}

/* Wait for one reply (or the death) and account for it. */
static void take_reply(sf_proc_worker *w, run_state *r, int64_t timeout_ns)
{
    const sf_proc_codec *codec = r->codec;
    sf_proc_msg msg;
    int64_t deadline = timeout_ns > 0 && r->timed_out < 0 ? r->progress + timeout_ns : -1;
    /* a reply already here costs no lock hand-off; before waiting, what was
     * taken so far is published in one go */
    int rc = sf_proc_recv_ready(w->ch, &msg);
    if (rc == -EAGAIN) {
        if (codec->flush && codec->flush(codec->ctx))
            note_cancel(w, r);
        rc = recv_unlocked(w, &msg, deadline);
    }
    if (rc == -EINTR)
        return;
    if (rc == -ETIMEDOUT) {
        /* the first unanswered item has run for timeout_ns: stop it */
        r->timed_out = r->first_unanswered;
        sf_proc_kill(w->ch, SIGKILL);
        return;
    }
    if (rc == -EPROTO) /* it corrupted its result ring: it cannot be trusted to exit */
        sf_proc_kill(w->ch, SIGKILL);
    if (rc != 0) {
        worker_died(w, r);
        return;
    }
    if (msg.id < r->flight_base || msg.id >= r->flight_base + (uint64_t)r->nflight ||
        r->answered[msg.id - r->flight_base])
        return; /* not ours (a READY, a stale reply) */
    int k = (int)(msg.id - r->flight_base);
    r->answered[k] = 1;
    r->unanswered--;
    while (r->first_unanswered < r->nflight && r->answered[r->first_unanswered])
        r->first_unanswered++;
    if (timeout_ns > 0) /* the clock costs more than a trivial item */
        r->progress = sf_now_ns();
    if (msg.kind == SF_PROC_KIND_RESEND_ALONE) {
        if (!r->cancelled && !r->alone[r->flight[k]]) { /* once: alone, its reply is final */
            r->alone[r->flight[k]] = 1;
            r->pending[r->npending++] = r->flight[k];
        }
    } else if (msg.kind != SF_PROC_KIND_SKIPPED && codec->reply(codec->ctx, r->flight[k], &msg)) {
        note_cancel(w, r);
    }
    if (r->unanswered == 0)
        r->nflight = 0;
}

int sf_proc_worker_run(sf_proc_worker *w, const sf_proc_codec *codec, int64_t timeout_ns)
{
    int cap = codec->capacity > codec->count ? codec->capacity : codec->count, rc = 0;
    run_state r = {.codec = codec, .npending = codec->count, .timed_out = -1};
    r.pending = malloc((size_t)cap * sizeof *r.pending);
    r.flight = malloc((size_t)cap * sizeof *r.flight);
    r.answered = malloc((size_t)cap);
    r.alone = calloc((size_t)cap, 1);
    if (!r.pending || !r.flight || !r.answered || !r.alone) {
        free(r.pending);
        free(r.flight);
        free(r.answered);
        free(r.alone);
        return -ENOMEM;
    }
    for (int i = 0; i < codec->count; i++)
        r.pending[i] = i;
    w->codec = codec;

    int ask_below = INT_MAX; /* ask codec->more only while unanswered is below */
    for (;;) {
        /* keep the worker's queue from running dry: the next message goes
         * out while half of the last one is still unanswered */
        int low_water = r.unanswered <= r.last_message / 2;
        if (!r.cancelled && r.npending == 0 && low_water && codec->more &&
            r.unanswered < ask_below) {
            int first = 0, added = codec->more(codec->ctx, &first);
            for (int i = 0; i < added; i++)
                r.pending[r.npending++] = first + i;
            /* none ready: ask again only once half of what runs is done
             * (asking costs the embedder a lock), never once idle */
            ask_below = added ? INT_MAX : r.unanswered / 2;
        }
        if (!r.cancelled && r.npending > 0 && low_water) {
            if (w->ch && w->max_tasks && w->tasks_done >= w->max_tasks) {
                if (r.unanswered == 0)
                    stop_idle_process(w); /* recycled: the next message starts another */
                else
                    take_reply(w, &r, timeout_ns);
                continue;
            }
            if (!w->ch && sf_proc_worker_start(w) != 0) {
                /* no process can be had: nothing pending will run */
                for (int i = 0; i < r.npending; i++)
                    codec->lost(codec->ctx, r.pending[i], SF_PROC_UNAVAILABLE, 0);
                r.npending = 0;
                rc = -EPIPE;
                break;
            }
            send_some(w, &r, timeout_ns);
            continue;
        }
        if (r.unanswered == 0 && (r.npending == 0 || r.cancelled))
            break;
        take_reply(w, &r, timeout_ns);
    }
    if (codec->flush)
        codec->flush(codec->ctx);
    if (w->ch && w->max_tasks && w->tasks_done >= w->max_tasks)
        stop_idle_process(w);
    if (codec->wake)
        codec->wake(codec->ctx);
    w->codec = NULL;
    free(r.pending);
    free(r.flight);
    free(r.answered);
    free(r.alone);
    return rc;
}

void sf_proc_worker_stop(sf_proc_worker *w)
{
    if (w->ch)
        stop_idle_process(w);
}

void sf_proc_worker_destroy(sf_proc_worker *w)
{
    if (!w)
        return;
    sf_proc_worker_stop(w);
    free(w);
}
