/*
 * proc.c -- process workers: framed messages over pipes, one wait for
 * results / write progress / death / deadline, and the worker-side loop.
 *
 * DESIGN.  A message is a 16-byte header (u32 length, u32 kind, u64 id) and
 * its bytes.  Parent side, a channel owns the task pipe's write end (made
 * non-blocking), the result pipe's read end and a pidfd.  sf_proc_send only
 * appends to an output buffer; sf_proc_recv is the one place that moves
 * bytes: it polls the result pipe, the task pipe (only while output is
 * pending) and the pidfd together, so a parent writing a large batch never
 * deadlocks against a worker writing large results, and a worker's death
 * is seen in the same wait as its results.  When the pidfd fires, the
 * result pipe is drained first: every result written before the death is
 * still returned, then -EPIPE.  Worker side, sf_proc_serve reads tasks in
 * batches (one read() takes whatever the parent queued) and publishes each
 * reply the moment the handler gives it: a finished result never waits on a
 * slow successor and never dies with a crashing one.  With a result ring
 * (proc_ring.c) a reply is a copy into shared memory, not a write(); the
 * pipe then carries only doorbells and replies too large for the ring, and
 * recv takes the ring's records first.  While results stream in faster than
 * one per STREAM_POLL_NS (2 ms), recv polls the ring on a growing interval
 * instead of being rung for each result; the worker still rings at the end
 * of every task message it has no successor for.  The worker announces
 * itself with a READY message once its embedder has set it up (e.g. ran an
 * initializer).
 *
 * Invariants: in.start <= in.end <= in.cap; a message returned by recv
 * stays in `in` until the next recv (consume), so its bytes stay valid.
 * No locks: a channel belongs to one thread at a time (the embedder's).
 * Writers must ignore SIGPIPE (CPython does; streamfutures_proc.h says so
 * to C users): a dead reader is reported as -EPIPE, not a signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "proc_ring.h"

#define HEADER 16
/* A worker's "look at the ring" nudge through the pipe; recv swallows it. */
#define SF_PROC_KIND_DOORBELL 0xfffffffdu
#define READ_CHUNK 65536
/* While results arrive faster than one per STREAM_POLL_NS, the parent looks
 * at the ring on a timer instead of being woken for each: a stream of
 * short tasks then costs the parent one wake-up per many results, not one
 * each (the first result after a quiet spell, and the last of every task
 * message the worker has no successor for, ring at once).  As long as the
 * stream goes on, each look doubles the interval up to STREAM_POLL_MAX_NS,
 * unless the ring filled past RING_FILL_LIMIT meanwhile (then it halves: a
 * full ring would stall the worker until the next look).  A result waits
 * at most STREAM_POLL_MAX_NS.  Why: where workers fill every core, each
 * parent wake-up is CPU time taken from a worker; bench/bench_process.py
 * measures the effect on seed 004's factorization. */
#define STREAM_POLL_NS 2000000
#define STREAM_POLL_MAX_NS 32000000
#define RING_FILL_LIMIT 0.125

typedef struct buffer {
    char *data;
    size_t start, end, cap;
} buffer;

struct sf_proc_channel {
    int pid, task_fd, result_fd, pidfd;
    sf__ring *ring;   /* NULL: every reply comes through the pipe */
    buffer in, out;
    size_t consume;   /* bytes of the last returned pipe message */
    sf_proc_msg ring_msg; /* the last returned ring record, to consume */
    int ring_pending;
    int64_t poll_at;   /* > 0: streaming, look at the ring then (see recv) */
    int64_t poll_ns;   /* streaming: the interval between looks */
    int64_t last_rung; /* when the last doorbell woke us */
    int exited;       /* pidfd fired: drain, then report */
    int eof;          /* result pipe closed */
    int write_broken; /* task pipe's reader is gone */
};

/* ---- buffers ------------------------------------------------------------ */

static int reserve(buffer *b, size_t extra)
{
    if (b->start == b->end)
        b->start = b->end = 0;
    if (b->end + extra <= b->cap)
        return 0;
    if (b->start) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
        if (b->end + extra <= b->cap)
            return 0;
    }
    size_t cap = b->cap ? b->cap : READ_CHUNK;
    while (cap < b->end + extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return -ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int append_message(buffer *b, uint64_t id, uint32_t kind, const void *data, uint32_t len)
{
    if (reserve(b, HEADER + (size_t)len) != 0)
        return -ENOMEM;
    char *p = b->data + b->end;
    memcpy(p, &len, 4);
    memcpy(p + 4, &kind, 4);
    memcpy(p + 8, &id, 8);
    if (len)
        memcpy(p + HEADER, data, len);
    b->end += HEADER + (size_t)len;
    return 0;
}

/* A whole message at the front of b?  Then fill msg and return its size. */
static size_t parse(const buffer *b, sf_proc_msg *msg)
{
    size_t avail = b->end - b->start;
    uint32_t len;
    if (avail < HEADER)
        return 0;
    memcpy(&len, b->data + b->start, 4);
    if (avail < HEADER + (size_t)len)
        return 0;
    memcpy(&msg->kind, b->data + b->start + 4, 4);
    memcpy(&msg->id, b->data + b->start + 8, 8);
    msg->len = len;
    msg->data = b->data + b->start + HEADER;
    return HEADER + (size_t)len;
}

/* ---- parent side ---------------------------------------------------------- */

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

int sf_proc_channel_open(sf_proc_channel **out, int pid, int task_fd, int result_fd,
                         int ring_fd, int pidfd)
{
    sf_proc_channel *ch = calloc(1, sizeof *ch);
    int rc;
    if (!ch)
        return -ENOMEM;
    if ((rc = set_flags(task_fd)) != 0 || (rc = set_flags(result_fd)) != 0) {
        free(ch);
        return rc;
    }
    if (ring_fd >= 0) {
        ch->ring = sf__ring_map(ring_fd);
        if (!ch->ring) {
            free(ch);
            return -EINVAL;
        }
        close(ring_fd); /* the mapping keeps the memory */
    }
    ch->pid = pid;
    ch->task_fd = task_fd;
    ch->result_fd = result_fd;
    /* pidfd (Linux >= 5.3) sees a death even if another process holds a
     * copy of the result pipe's write end; without it, end-of-file does */
    if (pidfd == SF_PROC_OPEN_PIDFD)
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    ch->pidfd = pidfd >= 0 ? pidfd : -1;
    if (ch->pidfd >= 0)
        fcntl(ch->pidfd, F_SETFD, FD_CLOEXEC);
    *out = ch;
    return 0;
}

static void flush_some(sf_proc_channel *ch)
{
    while (ch->out.end > ch->out.start && !ch->write_broken) {
        ssize_t n = write(ch->task_fd, ch->out.data + ch->out.start, ch->out.end - ch->out.start);
        if (n > 0) {
            ch->out.start += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return;
        } else {
            ch->write_broken = 1; /* the worker is gone: recv will say so */
            ch->out.start = ch->out.end = 0;
        }
    }
}

int sf_proc_send(sf_proc_channel *ch, uint64_t id, uint32_t kind, const void *data, uint32_t len)
{
    if (append_message(&ch->out, id, kind, data, len) != 0)
        return -ENOMEM;
    flush_some(ch);
    return 0;
}

/* Read what the result pipe holds now (non-blocking). */
static int read_available(sf_proc_channel *ch)
{
    for (;;) {
        if (reserve(&ch->in, READ_CHUNK) != 0)
            return -ENOMEM;
        ssize_t n = read(ch->result_fd, ch->in.data + ch->in.end, ch->in.cap - ch->in.end);
        if (n > 0) {
            ch->in.end += (size_t)n;
            continue;
        }
        if (n == 0) {
            ch->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        ch->eof = 1;
        return 0;
    }
}

/* The message returned last is done with: let its bytes go. */
static void release_last(sf_proc_channel *ch)
{
    ch->in.start += ch->consume;
    ch->consume = 0;
    if (ch->ring_pending) {
        sf__ring_consume(ch->ring, &ch->ring_msg);
        ch->ring_pending = 0;
    }
}

/* A message that needs no I/O: a ring record first, else a whole message
 * already read from the pipe (doorbells only woke us and are dropped). */
static int take_buffered(sf_proc_channel *ch, sf_proc_msg *msg)
{
    int in_ring = ch->ring ? sf__ring_peek(ch->ring, msg) : 0;
    if (in_ring < 0)
        return in_ring;
    if (in_ring) {
        ch->ring_msg = *msg;
        ch->ring_pending = 1;
        return 1;
    }
    size_t size;
    while ((size = parse(&ch->in, msg)) && msg->kind == SF_PROC_KIND_DOORBELL)
        ch->in.start += size;
    ch->consume = size;
    return size != 0;
}

int sf_proc_recv_ready(sf_proc_channel *ch, sf_proc_msg *msg)
{
    release_last(ch);
    int taken = take_buffered(ch, msg);
    return taken < 0 ? taken : taken ? 0 : -EAGAIN;
}

int sf_proc_recv(sf_proc_channel *ch, sf_proc_msg *msg, int64_t deadline_ns)
{
    release_last(ch);
    for (;;) {
        int taken = take_buffered(ch, msg);
        if (taken)
            return taken < 0 ? taken : 0;
        if (ch->eof)
            return -EPIPE;
        if (ch->exited) {
            /* dead: everything it wrote is in the pipe; take it, then report */
            int rc = read_available(ch);
            if (rc != 0)
                return rc;
            if (!parse(&ch->in, msg))
                ch->eof = 1;
            continue;
        }

        struct pollfd fds[3];
        int nfds = 0, want_write = ch->out.end > ch->out.start && !ch->write_broken;
        fds[nfds++] = (struct pollfd){.fd = ch->result_fd, .events = POLLIN};
        if (want_write)
            fds[nfds++] = (struct pollfd){.fd = ch->task_fd, .events = POLLOUT};
        if (ch->pidfd >= 0)
            fds[nfds++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
        /* streaming: results come faster than one per STREAM_POLL_NS, so
         * look again then instead of being rung for each */
        int streaming = ch->ring && ch->poll_at > 0;
        if (ch->ring && !streaming && sf__ring_announce_sleep(ch->ring))
            continue; /* a record arrived while we got ready to sleep */
        int64_t until = deadline_ns;
        if (streaming && (until < 0 || ch->poll_at < until))
            until = ch->poll_at;
        struct timespec wait, *timeout = NULL;
        if (until >= 0) {
            int64_t left = until - sf_now_ns();
            if (left < 0)
                left = 0;
            wait.tv_sec = left / 1000000000;
            wait.tv_nsec = left % 1000000000;
            timeout = &wait;
        }
        int ready = ppoll(fds, (nfds_t)nfds, timeout, NULL);
        if (ch->ring && !streaming)
            sf__ring_woke(ch->ring);
        if (ready < 0)
            return errno == EINTR ? -EINTR : -errno;
        int64_t now = ch->ring ? sf_now_ns() : 0;
        if (ready == 0 && streaming && (deadline_ns < 0 || now < deadline_ns)) {
            /* the poll came due: go on polling while records keep coming */
            if (sf__ring_empty(ch->ring)) {
                ch->poll_at = 0;
                continue;
            }
            if (sf__ring_fill(ch->ring) > RING_FILL_LIMIT)
                ch->poll_ns = ch->poll_ns / 2 > STREAM_POLL_NS ? ch->poll_ns / 2 : STREAM_POLL_NS;
            else if (ch->poll_ns < STREAM_POLL_MAX_NS)
                ch->poll_ns *= 2;
            ch->poll_at = now + ch->poll_ns;
            continue;
        }
        if (ready == 0)
            return -ETIMEDOUT;
        for (int i = 0; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (fds[i].fd == ch->result_fd) {
                int rc = read_available(ch);
                if (rc != 0)
                    return rc;
                if (ch->ring && !streaming) { /* rung: twice within the gap starts streaming */
                    if (now - ch->last_rung < STREAM_POLL_NS) {
                        ch->poll_ns = STREAM_POLL_NS;
                        ch->poll_at = now + STREAM_POLL_NS;
                    }
                    ch->last_rung = now;
                }
            } else if (fds[i].fd == ch->task_fd) {
                flush_some(ch);
            } else {
                ch->exited = 1;
            }
        }
    }
}

int sf_proc_pid(const sf_proc_channel *ch) { return ch->pid; }

void sf_proc_cancel_below(sf_proc_channel *ch, uint64_t id)
{
    if (ch->ring)
        sf__ring_cancel_below(ch->ring, id);
}

int sf_proc_kill(sf_proc_channel *ch, int signo)
{
    /* through the pidfd there is no pid-reuse race; once it says the
     * process is gone (ESRCH), its pid may already be someone else's */
    if (ch->pidfd >= 0)
        return syscall(SYS_pidfd_send_signal, ch->pidfd, signo, NULL, 0) == 0 ? 0 : -errno;
    return kill(ch->pid, signo) == 0 ? 0 : -errno;
}

void sf_proc_channel_close(sf_proc_channel *ch)
{
    if (!ch)
        return;
    close(ch->task_fd);
    close(ch->result_fd);
    if (ch->pidfd >= 0)
        close(ch->pidfd);
    sf__ring_unmap(ch->ring);
    free(ch->in.data);
    free(ch->out.data);
    free(ch);
}

/* ---- worker side -------------------------------------------------------- */

/* Polling with no events still reports a hang-up: the parent is gone (or
 * closed the channel, by which time an orderly worker has exited). */
static void *watch_parent(void *raw)
{
    struct pollfd fd = {.fd = (int)(intptr_t)raw, .events = 0};
    for (;;) {
        if (poll(&fd, 1, -1) < 0 && errno != EINTR)
            return NULL;
        if (fd.revents & POLLNVAL)
            return NULL; /* the worker closed it: it is exiting anyway */
        if (fd.revents & (POLLHUP | POLLERR)) {
            /* its results have nowhere to go; what its tasks started goes too */
            if (getpgrp() == getpid())
                kill(0, SIGKILL);
            kill(getpid(), SIGKILL);
        }
    }
}

int sf_proc_lead_process_group(void) { return setpgid(0, 0) == 0 ? 0 : -errno; }

int sf_proc_die_with_parent(int task_fd)
{
    pthread_t watcher;
    pthread_attr_t attr;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return -errno;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* the watcher blocks every signal, so the process's signals reach the
     * serving thread (and its embedder's handlers) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&watcher, &attr, watch_parent, (void *)(intptr_t)task_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -rc;
}

static int write_all(int fd, buffer *b)
{
    while (b->end > b->start) {
        ssize_t n = write(fd, b->data + b->start, b->end - b->start);
        if (n > 0)
            b->start += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return n < 0 ? -errno : -EPIPE;
    }
    b->start = b->end = 0;
    return 0;
}

struct sf_proc_server {
    int task_fd, result_fd;
    sf__ring *ring;
    buffer out;
};

/* Write a message to the result pipe now (the worker's pipe blocks). */
static int send_now(sf_proc_server *s, uint64_t id, uint32_t kind, const void *data,
                    uint32_t len)
{
    int rc = append_message(&s->out, id, kind, data, len);
    return rc != 0 ? rc : write_all(s->result_fd, &s->out);
}

int sf_proc_reply(sf_proc_server *s, uint64_t id, uint32_t kind, const void *data, uint32_t len)
{
    if (s->ring && len <= sf__ring_max_payload(s->ring)) {
        int rc = sf__ring_put(s->ring, id, kind, data, len, s->task_fd);
        if (rc == 1) /* the parent is (about to be) asleep: wake it */
            return send_now(s, 0, SF_PROC_KIND_DOORBELL, NULL, 0);
        return rc;
    }
    return send_now(s, id, kind, data, len);
}

int sf_proc_skip(const sf_proc_server *s, uint64_t id)
{
    return s->ring && sf__ring_skip(s->ring, id);
}

int sf_proc_serve(int task_fd, int result_fd, int ring_fd, sf_proc_handler handler,
                  sf_proc_on_signal on_signal, void *ctx)
{
    sf_proc_server server = {task_fd, result_fd, NULL, {0}};
    buffer in = {0};
    int rc = 0;

    if (ring_fd >= 0 && !(server.ring = sf__ring_map(ring_fd)))
        return -EINVAL;
    if ((rc = send_now(&server, 0, SF_PROC_KIND_READY, NULL, 0)) != 0)
        goto out;
    for (;;) {
        sf_proc_msg task;
        size_t size = parse(&in, &task);
        if (size && task.kind == SF_PROC_KIND_EXIT)
            break;
        if (size) {
            rc = handler(ctx, &server, &task);
            in.start += size;
            /* the task is answered: unless the next one is already here,
             * wake the parent even if it only polls now and then: it has
             * the next task to send */
            sf_proc_msg next;
            if (rc == 0 && server.ring && !parse(&in, &next))
                rc = send_now(&server, 0, SF_PROC_KIND_DOORBELL, NULL, 0);
            if (rc != 0)
                break;
            continue;
        }
        if ((rc = reserve(&in, READ_CHUNK)) != 0)
            break;
        ssize_t n = read(task_fd, in.data + in.end, in.cap - in.end);
        if (n > 0)
            in.end += (size_t)n;
        else if (n == 0)
            break; /* the parent closed the channel: done */
        else if (errno != EINTR) {
            rc = -errno;
            break;
        } else if (on_signal && (rc = on_signal(ctx)) != 0) {
            break;
        }
    }
out:
    sf__ring_unmap(server.ring);
    free(in.data);
    free(server.out.data);
    return rc;
}
