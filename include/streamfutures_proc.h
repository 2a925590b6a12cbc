/*
 * streamfutures_proc.h -- worker processes for the streamfutures engine:
 * framed channels to a process, the worker-side serving loop, and a
 * supervised worker that survives crashes and timeouts.
 *
 * Linux only (pidfd, memfd, futexes in shared memory; kernel 5.3 or newer).
 *
 * Requirements on the embedding program:
 *   - SIGPIPE must be ignored (or handled) in the parent and in the
 *     workers: a peer that died is reported as -EPIPE from a write, which
 *     only happens when SIGPIPE does not kill the writer first.  CPython
 *     ignores SIGPIPE at start-up; a plain C program calls
 *     signal(SIGPIPE, SIG_IGN).
 *   - The embedder makes the worker processes (fork, or its own launcher)
 *     and reaps them (sf_proc_worker_ops.spawn / reap); the engine never
 *     calls fork() or waitpid() itself.
 *   - A worker process runs sf_proc_serve on the descriptors it was given
 *     and holds no other end of its parent's pipes, or a death could go
 *     unseen until that other holder exits.
 */
#ifndef STREAMFUTURES_PROC_H
#define STREAMFUTURES_PROC_H

#ifndef __linux__
#error "streamfutures_proc.h: worker processes need Linux (pidfd, memfd, futex)"
#endif

#include <stdint.h>

#include "streamfutures.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- process workers ----------------------------------------------------
 *
 * A channel is the parent's end of one worker process: a pipe the parent
 * writes tasks to, a pipe it reads results from, a pidfd, and optionally a
 * shared-memory result ring.  Messages are framed (id, kind, bytes).
 * sf_proc_send only queues; every I/O step happens in sf_proc_recv, which
 * takes ring records without a system call and otherwise waits on the
 * result pipe, the task pipe's write readiness and the pidfd at once, so
 * neither side can block the other and a dead worker is seen in that same
 * wait.  The worker side is sf_proc_serve, a C loop around a handler. */
typedef struct sf_proc_channel sf_proc_channel;
typedef struct sf_proc_msg {
    uint64_t id;
    uint32_t kind;      /* the embedder's, below the reserved ones */
    uint32_t len;
    const void *data;   /* valid until the next recv (or handler call) */
} sf_proc_msg;
/* Kinds from 0xfffffff0 up are the engine's; recv returns only these two. */
#define SF_PROC_KIND_EXIT 0xffffffffu     /* task: stop serving */
#define SF_PROC_KIND_READY 0xfffffffeu    /* reply: the worker is serving */
#define SF_PROC_KIND_SKIPPED 0xfffffffcu  /* reply: the item was cancelled unstarted */
/* reply: the worker could not read this item's message, which held more
 * than one item; the engine sends it again in a message of its own, so
 * an unreadable item fails alone (its reply to that one is final) */
#define SF_PROC_KIND_RESEND_ALONE 0xfffffffbu
/* A memfd holding an empty result ring of at least `bytes`, or -errno
 * (-EINVAL above SF_PROC_RING_MAX_BYTES).  Give it to both
 * sf_proc_channel_open (parent) and sf_proc_serve (worker). */
#define SF_PROC_RING_MAX_BYTES ((size_t)1 << 40)
SF_API int sf_proc_ring_create(size_t bytes);
/* pidfd argument: the channel opens one itself (when the kernel has them). */
#define SF_PROC_OPEN_PIDFD (-1)
/* pidfd argument: use none; a death is seen as end of file on the result
 * pipe (so only the parent may hold its write end besides the worker). */
#define SF_PROC_NO_PIDFD (-2)
/* Own task_fd (write end), result_fd (read end), ring_fd (or -1) and
 * pidfd, a pidfd for pid (or SF_PROC_OPEN_PIDFD, SF_PROC_NO_PIDFD).  Once a
 * channel has a pidfd it never signals pid by number: a reaped pid may be
 * reused. */
SF_API int sf_proc_channel_open(sf_proc_channel **out, int pid, int task_fd, int result_fd,
                         int ring_fd, int pidfd);
SF_API int sf_proc_send(sf_proc_channel *ch, uint64_t id, uint32_t kind, const void *data,
                 uint32_t len);
/* 0 with *msg, -ETIMEDOUT at deadline_ns (-1: none), -EPIPE once the worker
 * is gone (its results up to then have all been returned), -EINTR. */
SF_API int sf_proc_recv(sf_proc_channel *ch, sf_proc_msg *msg, int64_t deadline_ns);
/* A message that needs no I/O to take (a ring record, or one already
 * read): 0 with *msg, else -EAGAIN.  Cheap enough to try before sleeping. */
SF_API int sf_proc_recv_ready(sf_proc_channel *ch, sf_proc_msg *msg);
/* Ask the worker to skip (answer SF_PROC_KIND_SKIPPED) every item with an
 * id below `id` that it has not started (needs a ring). */
SF_API void sf_proc_cancel_below(sf_proc_channel *ch, uint64_t id);
SF_API int sf_proc_pid(const sf_proc_channel *ch);
SF_API int sf_proc_kill(sf_proc_channel *ch, int signo);
/* Close the pipes (the worker sees end of input and exits) and free.  The
 * process is not reaped here: its starter does that. */
SF_API void sf_proc_channel_close(sf_proc_channel *ch);
/* Worker side: send READY, then hand every task to handler until end of
 * input, an EXIT message or a nonzero return.  The handler answers with
 * sf_proc_reply, any number of times (e.g. once per item of a batch); each
 * reply is published before it returns, so a crash never loses it. */
typedef struct sf_proc_server sf_proc_server;
typedef int (*sf_proc_handler)(void *ctx, sf_proc_server *server, const sf_proc_msg *task);
/* Optional: a signal interrupted the wait for a task (e.g. to run the
 * embedder's signal handlers); nonzero stops serving, and sf_proc_serve
 * returns it. */
typedef int (*sf_proc_on_signal)(void *ctx);
SF_API int sf_proc_serve(int task_fd, int result_fd, int ring_fd, sf_proc_handler handler,
                  sf_proc_on_signal on_signal, void *ctx);
/* Worker side, first thing: never outlive the parent, even busy in a task.
 * The process is killed (SIGKILL) when the thread that started it ends
 * (PR_SET_PDEATHSIG), and when the task pipe's write end, which only the
 * parent holds, is closed (a thread watches for it): that covers a worker
 * started through a fork server, whose starter is not the parent. */
SF_API int sf_proc_die_with_parent(int task_fd);
/* Worker side, before any task runs: lead a process group of one's own, so
 * that what the tasks start (subprocesses and theirs) ends with the worker:
 * a supervised worker's group is killed when it is buried (sf_proc_worker),
 * and the parent-death watcher of sf_proc_die_with_parent kills the group.
 * A descendant that leaves the group (setsid, setpgid) escapes. */
SF_API int sf_proc_lead_process_group(void);
SF_API int sf_proc_reply(sf_proc_server *server, uint64_t id, uint32_t kind, const void *data,
                  uint32_t len);
/* Nonzero when the parent cancelled item `id` (see sf_proc_cancel_below). */
SF_API int sf_proc_skip(const sf_proc_server *server, uint64_t id);

/* ---- supervised worker processes ---------------------------------------
 *
 * An sf_proc_worker is one worker process owned by one thread: it is
 * started through the embedder (which knows how to make a process), runs
 * batches of items, and when it dies or overruns a timeout, fails only the
 * item that was running, is replaced, and runs the rest of the batch. */
typedef struct sf_proc_worker sf_proc_worker;
typedef struct sf_proc_spawned {
    int pid, task_fd, result_fd, ring_fd; /* ring_fd may be -1 */
    int pidfd;    /* or SF_PROC_OPEN_PIDFD, SF_PROC_NO_PIDFD (sf_proc_channel_open) */
    void *handle; /* the embedder's, given back to reap */
} sf_proc_spawned;
typedef struct sf_proc_worker_ops {
    void *ctx;
    /* Start a process running sf_proc_serve; 0, or nonzero if none can start. */
    int (*spawn)(void *ctx, sf_proc_spawned *out);
    /* The process has exited (or is exiting): reap it and return its exit
     * code (>= 0) or minus the signal that killed it.  Then the engine
     * kills the process group the worker led (sf_proc_lead_process_group),
     * if it led one. */
    int (*reap)(void *ctx, void *handle);
    /* Optional: called around every wait (e.g. release a runtime lock). */
    void (*release)(void *ctx);
    void (*reacquire)(void *ctx);
} sf_proc_worker_ops;
enum sf_proc_lost {
    SF_PROC_CRASHED = 1,     /* the worker died while the item ran; status says how */
    SF_PROC_TIMED_OUT = 2,   /* the item overran the timeout; its worker was killed */
    SF_PROC_UNAVAILABLE = 3, /* no worker could be started for it */
};
/* The items of one run, numbered 0 .. count-1 (the embedder's positions). */
typedef struct sf_proc_codec {
    void *ctx;
    int count;
    /* Serialize positions pos[0..*n) as one task message whose items get
     * consecutive ids in that order (its id is the first, its kind the
     * number of items).  Items that cannot be serialized are
     * finished here by the embedder and removed from pos (*n shrinks).
     * Return nonzero if the work was cancelled meanwhile. */
    int (*encode)(void *ctx, int *pos, int *n, const void **data, uint32_t *len);
    /* The reply for item pos: finish it.  Nonzero: the work was cancelled,
     * items not started must not start. */
    int (*reply)(void *ctx, int pos, const sf_proc_msg *msg);
    /* Item pos gets no reply (status: as from ops.reap).  Same return. */
    int (*lost)(void *ctx, int pos, enum sf_proc_lost why, int status);
    /* Optional: reply/lost may defer finishing items until flush, which
     * the engine calls before it waits and before it returns.  Same
     * return. */
    int (*flush)(void *ctx);
    /* Optional: called with the embedder's lock dropped (after
     * ops.release) before every wait, and before the run returns: tell
     * the consumer about what flush published (sf_batch_wake). */
    void (*wake)(void *ctx);
    /* Optional: more items to run, asked for while the worker still has
     * some queued (so it never waits for its next message): return how
     * many, numbered *first .. *first + n - 1; 0 when there are none. */
    int (*more)(void *ctx, int *first);
    int capacity; /* positions more() may reach (>= count) */
} sf_proc_codec;
/* max_tasks: items a process runs before it is replaced (0: no limit). */
SF_API int sf_proc_worker_create(sf_proc_worker **out, const sf_proc_worker_ops *ops,
                          unsigned max_tasks);
/* Start the process now if there is none and wait until it is READY.
 * -EAGAIN: spawn refused; -EPIPE: it died before it was ready. */
SF_API int sf_proc_worker_start(sf_proc_worker *w);
/* Run every item of codec to an answer (reply or lost), or until the work
 * is cancelled (items not answered then are the embedder's to cancel).
 * -EPIPE when no worker could be started (those items were lost). */
SF_API int sf_proc_worker_run(sf_proc_worker *w, const sf_proc_codec *codec, int64_t timeout_ns);
/* The worker's pid, or -1 when it has no process now. */
SF_API int sf_proc_worker_pid(const sf_proc_worker *w);
/* Ask an idle process to exit and reap it (a later run starts another). */
SF_API void sf_proc_worker_stop(sf_proc_worker *w);
SF_API void sf_proc_worker_destroy(sf_proc_worker *w);

#ifdef __cplusplus
}
#endif
#endif /* STREAMFUTURES_PROC_H */
