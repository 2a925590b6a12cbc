/* binding.h -- declarations shared by the files of the CPython binding. */
#ifndef SF_BINDING_H
#define SF_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "streamfutures.h"

/* Objects imported from concurrent.futures at module init. */
typedef struct sf_py_refs {
    PyObject *future_type;       /* streamfutures._future.EngineFuture */
    PyObject *cancelled_error;   /* concurrent.futures.CancelledError */
    PyObject *timeout_error;     /* concurrent.futures.TimeoutError */
    PyObject *broken_thread_pool;/* concurrent.futures.thread.BrokenThreadPool */
    PyObject *logger;            /* concurrent.futures._base.LOGGER */
    PyObject *thread_enter, *thread_leave; /* streamfutures._threads */
    PyObject *str_set_running, *str_set_result, *str_set_exception, *str_cancel;
    PyObject *str_condition, *str_state, *str_result, *str_exception;
    PyObject *state_pending, *state_running, *state_finished; /* _base constants */
} sf_py_refs;

extern sf_py_refs sf_py;
extern PyTypeObject SfPool_Type;
extern PyTypeObject SfMapIter_Type;

#define SF_BROKEN_MESSAGE \
    "A thread initializer failed, the thread pool is not usable anymore"
#define SF_SHUTDOWN_MESSAGE "cannot schedule new futures after shutdown"
#define SF_EXIT_MESSAGE "cannot schedule new futures after interpreter shutdown"
#define SF_FORKED_MESSAGE \
    "cannot use an executor in a forked child: its threads belong to the parent process"

/* Set by the package's exit hook: refuse new work from then on. */
extern int sf_interpreter_exiting;

/* compat.c: one exception object in, one out, on every supported Python. */
PyObject *sf_fetch_exception(void);        /* new reference, error cleared */
void sf_raise_exception(PyObject *exc);    /* steals exc */

/* threads.c: sf_thread_hooks that give each engine thread a PyThreadState
 * once and run the executor's initializer on workers. */
typedef struct sf_hook_ctx {
    PyObject *initializer; /* or NULL */
    PyObject *initargs;    /* tuple */
    PyObject *name_prefix; /* str: threads are named "<prefix>_<n>" */
} sf_hook_ctx;
sf_thread_hooks sf_python_thread_hooks(sf_hook_ctx *ctx);

/* pool_object.c */
typedef struct SfPoolObject {
    PyObject_HEAD
    sf_pool *pool;
    sf_hook_ctx *hooks;
    int shut_down;
    PyObject *weakreflist;
} SfPoolObject;

int sf_raise_for_pool_error(int rc);

/* map_object.c */
PyObject *sf_map_iter_new(SfPoolObject *pool, PyObject *fn, PyObject *iterator, int star,
                          Py_ssize_t window, int unordered, double timeout);

/* zombies: engine pools whose Python object is gone but whose threads may
 * still be finishing (fire-and-forget work).  Joined by reap(). */
void sf_zombie_add(sf_pool *pool, sf_hook_ctx *hooks);
void sf_zombies_reap(int block);

#endif
