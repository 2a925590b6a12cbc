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
 * them.  No locks: a worker belongs to one thread at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct sf_proc_worker {
    sf_proc_worker_ops ops;
    unsigned max_tasks; /* 0: no limit */
    sf_proc_channel *ch; /* NULL: no process now */
    void *handle;
    unsigned tasks_done;
    uint64_t next_id;
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
    int rc = sf_proc_recv(w->ch, msg, deadline_ns);
    if (w->ops.reacquire)
        w->ops.reacquire(w->ops.ctx);
    return rc;
}

/* Close the channel and reap the process; its exit status. */
static int bury(sf_proc_worker *w)
{
    sf_proc_channel_close(w->ch);
    w->ch = NULL;
    return w->ops.reap(w->ops.ctx, w->handle);
}

/* Ask an idle worker to exit, wait until it has, and reap it. */
static void retire(sf_proc_worker *w)
{
    sf_proc_msg msg;
    int rc = sf_proc_send(w->ch, 0, SF_PROC_KIND_EXIT, NULL, 0);
    while (rc == 0 || rc == -EINTR)
        rc = recv_unlocked(w, &msg, -1);
    bury(w);
}

int sf_proc_worker_start(sf_proc_worker *w)
{
    sf_proc_spawned s = {-1, -1, -1, -1, NULL};
    sf_proc_msg msg;
    int rc;
    if (w->ch)
        return 0;
    if (w->ops.spawn(w->ops.ctx, &s) != 0)
        return -EAGAIN;
    w->handle = s.handle;
    rc = sf_proc_channel_open(&w->ch, s.pid, s.task_fd, s.result_fd, s.ring_fd);
    if (rc != 0) {
        close(s.task_fd);
        close(s.result_fd);
        if (s.ring_fd >= 0)
            close(s.ring_fd);
        kill(s.pid, SIGKILL);
        w->ops.reap(w->ops.ctx, s.handle);
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

/* Send positions sent[0..m) as one message and collect their replies.  On a
 * death, the unstarted ones go back to the front of pending.  Returns 1 once
 * the work was cancelled. */
static int run_message(sf_proc_worker *w, const sf_proc_codec *codec, const int *sent, int m,
                       const void *data, uint32_t len, int64_t timeout_ns, int *pending,
                       int *npending, unsigned char *answered)
{
    uint64_t base = w->next_id;
    int got = 0, timed_out = -1, cancelled = 0;
    int64_t progress = timeout_ns > 0 ? sf_now_ns() : 0;
    sf_proc_msg msg;

    w->next_id += (uint64_t)m;
    w->tasks_done += (unsigned)m;
    memset(answered, 0, (size_t)m);
    int rc = sf_proc_send(w->ch, base, (uint32_t)m, data, len); /* kind: item count */
    while (rc == 0 && got < m) {
        int64_t deadline = timeout_ns > 0 && timed_out < 0 ? progress + timeout_ns : -1;
        /* a reply already here costs no lock hand-off; before waiting,
         * what was taken so far is published in one go */
        rc = sf_proc_recv_ready(w->ch, &msg);
        if (rc == -EAGAIN) {
            if (codec->flush && codec->flush(codec->ctx) && !cancelled) {
                cancelled = 1;
                sf_proc_cancel_below(w->ch, base + (uint64_t)m);
            }
            rc = recv_unlocked(w, &msg, deadline);
        }
        if (rc == -EINTR) {
            rc = 0;
        } else if (rc == -ETIMEDOUT) {
            /* the first unanswered item has run for timeout_ns: stop it */
            for (timed_out = 0; answered[timed_out]; timed_out++)
                ;
            sf_proc_kill(w->ch, SIGKILL);
            rc = 0;
        } else if (rc == 0 && msg.id >= base && msg.id < base + (uint64_t)m &&
                   !answered[msg.id - base]) {
            int k = (int)(msg.id - base);
            answered[k] = 1;
            got++;
            if (timeout_ns > 0) /* the clock costs more than a trivial item */
                progress = sf_now_ns();
            if (msg.kind != SF_PROC_KIND_SKIPPED && codec->reply(codec->ctx, sent[k], &msg) &&
                !cancelled) {
                cancelled = 1;
                sf_proc_cancel_below(w->ch, base + (uint64_t)m);
            }
        }
    }
    if (codec->flush && codec->flush(codec->ctx))
        cancelled = 1;
    if (got == m)
        return cancelled;

    /* the worker is gone: the first unanswered item was running */
    int status = bury(w);
    int k = 0;
    while (answered[k])
        k++;
    if (codec->lost(codec->ctx, sent[k], k == timed_out ? SF_PROC_TIMED_OUT : SF_PROC_CRASHED,
                    status))
        cancelled = 1;
    if (codec->flush && codec->flush(codec->ctx))
        cancelled = 1;
    if (cancelled)
        return 1; /* the rest stays unanswered: the embedder counts it cancelled */
    int back = 0;
    for (int j = k + 1; j < m; j++)
        back += !answered[j];
    memmove(pending + back, pending, (size_t)*npending * sizeof *pending);
    for (int j = k + 1, i = 0; j < m; j++)
        if (!answered[j])
            pending[i++] = sent[j];
    *npending += back;
    return 0;
}

int sf_proc_worker_run(sf_proc_worker *w, const sf_proc_codec *codec, int64_t timeout_ns)
{
    int count = codec->count, npending = count, rc = 0, cancelled = 0;
    int *pending = malloc((size_t)count * sizeof *pending);
    int *sent = malloc((size_t)count * sizeof *sent);
    unsigned char *answered = malloc((size_t)count);
    if (!pending || !sent || !answered) {
        free(pending);
        free(sent);
        free(answered);
        return -ENOMEM;
    }
    for (int i = 0; i < count; i++)
        pending[i] = i;

    while (npending > 0 && !cancelled) {
        if (!w->ch && sf_proc_worker_start(w) != 0) {
            /* no process can be had: nothing pending will run */
            for (int i = 0; i < npending; i++)
                codec->lost(codec->ctx, pending[i], SF_PROC_UNAVAILABLE, 0);
            if (codec->flush)
                codec->flush(codec->ctx);
            rc = -EPIPE;
            break;
        }
        int m = npending;
        if (w->max_tasks && (unsigned)m > w->max_tasks - w->tasks_done)
            m = (int)(w->max_tasks - w->tasks_done);
        memcpy(sent, pending, (size_t)m * sizeof *sent);
        npending -= m;
        memmove(pending, pending + m, (size_t)npending * sizeof *pending);
        const void *data = NULL;
        uint32_t len = 0;
        /* encode may finish items itself (e.g. an argument that cannot be
         * serialized) and drop them from sent */
        if (codec->encode(codec->ctx, sent, &m, &data, &len) != 0) {
            cancelled = 1;
            break;
        }
        if (m > 0)
            cancelled = run_message(w, codec, sent, m, data, len, timeout_ns, pending, &npending,
                                    answered);
        if (w->ch && w->max_tasks && w->tasks_done >= w->max_tasks)
            retire(w);
    }
    free(pending);
    free(sent);
    free(answered);
    return rc;
}

void sf_proc_worker_stop(sf_proc_worker *w)
{
    if (w->ch)
        retire(w);
}

void sf_proc_worker_destroy(sf_proc_worker *w)
{
    if (!w)
        return;
    sf_proc_worker_stop(w);
    free(w);
}
