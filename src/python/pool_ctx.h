/* pool_ctx.h -- the Python side of one engine pool (pool_ctx.c): what its
 * threads run at start, how it reports itself broken, and for a process
 * pool how worker processes are made.  Owned by the Pool object, then by
 * the zombie registry if the pool's threads outlive it: engine threads use
 * it until they are joined. */
#ifndef SFPY_POOL_CTX_H
#define SFPY_POOL_CTX_H

#include "state.h"
#include "streamfutures.h"

/* the stdlib's text for a thread pool that broke (a process pool's are in
 * streamfutures/_remote.py: its lost_error makes them) */
#define SFPY_THREAD_BROKEN_MESSAGE \
    "A thread initializer failed, the thread pool is not usable anymore"
#define SFPY_SHUTDOWN_MESSAGE "cannot schedule new futures after shutdown"
#define SFPY_EXIT_MESSAGE "cannot schedule new futures after interpreter shutdown"
#define SFPY_FORKED_MESSAGE \
    "cannot use an executor in a forked child: its threads belong to the parent process"

/* lost_error's `why` for the pool itself being broken (the others are
 * enum sf_proc_lost's) */
#define SFPY_LOST_POOL_BROKEN 0

/* How a process pool makes and buries its worker processes (Python
 * callables of streamfutures.process) and reports lost items. */
typedef struct sfpy_proc_conf {
    PyObject *spawn;      /* spawn() -> (handle, pid, task_fd, result_fd, ring_fd) | None */
    PyObject *reap;       /* reap(handle) -> exit code, or -signal */
    PyObject *lost_error; /* lost_error(why, status, timeout) -> exception; why is an
                             sf_proc_lost or SFPY_LOST_POOL_BROKEN */
    unsigned max_tasks;   /* per process; 0: no limit */
} sfpy_proc_conf;

typedef struct sfpy_pool_ctx {
    PyObject *module;           /* strong: keeps `state` alive */
    sfpy_state *state;
    PyInterpreterState *interp; /* engine threads attach to this interpreter */
    PyObject *initializer;      /* or NULL */
    PyObject *initargs;         /* tuple */
    PyObject *name_prefix;      /* str: threads are named "<prefix>_<n>" */
    sfpy_proc_conf *proc;       /* NULL: a thread pool */
    /* the zombie registry's link (zombies.c): set when the Pool object is
     * gone before its threads, so registering can never fail */
    sf_pool *zombie_pool;
    struct sfpy_pool_ctx *zombie_next;
} sfpy_pool_ctx;

/* A new context for the calling interpreter; NULL with an error set.
 * spawn, reap and lost_error are all NULL (a thread pool) or all set. */
sfpy_pool_ctx *sfpy_pool_ctx_new(PyObject *module, PyObject *initializer, PyObject *initargs,
                                 const char *name_prefix, PyObject *spawn, PyObject *reap,
                                 PyObject *lost_error, unsigned max_tasks);
void sfpy_pool_ctx_free(sfpy_pool_ctx *ctx);
int sfpy_pool_ctx_traverse(const sfpy_pool_ctx *ctx, visitproc visit, void *arg);
/* The exception of a broken pool (a new reference; never NULL): for the
 * pool itself, or with `pending` for work it will never run.  A process
 * pool's comes from lost_error, which can name why its workers died. */
PyObject *sfpy_broken_error(const sfpy_pool_ctx *ctx, int pending);
/* Raise the exception for an engine error code (sf_pool_submit,
 * sf_map_create); always returns -1. */
int sfpy_raise_for_pool_error(const sfpy_pool_ctx *ctx, int rc);

#endif
