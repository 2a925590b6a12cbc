/* state.h -- the module state of streamfutures._engine: what the binding
 * imports once per interpreter, its heap types, and the registry of
 * pools still finishing after their executor went away.  Every object of
 * the binding reaches it through its pool context (pool_ctx.h) or its
 * module, never through a global, so each interpreter has its own. */
#ifndef SFPY_STATE_H
#define SFPY_STATE_H

#include <stdatomic.h>

#include "compat.h"

struct sfpy_pool_ctx;

typedef struct sfpy_state {
    PyTypeObject *pool_type;     /* _engine.Pool */
    PyTypeObject *map_iter_type; /* _engine.MapIterator */
    PyTypeObject *broadcast_type;        /* _engine.Broadcast */
    PyTypeObject *broadcast_reader_type; /* _engine.BroadcastReader */
    PyTypeObject *chunk_cursor_type;     /* _engine.ChunkCursor */
    PyObject *future_type;       /* streamfutures._future.EngineFuture */
    PyObject *cancelled_error;   /* concurrent.futures.CancelledError */
    PyObject *timeout_error;     /* concurrent.futures.TimeoutError */
    PyObject *broken_thread_pool;  /* concurrent.futures.thread.BrokenThreadPool */
    PyObject *logger;            /* concurrent.futures._base.LOGGER */
    PyObject *thread_enter, *thread_leave, *run_pending; /* streamfutures._threads */
    PyObject *str_set_running, *str_set_result, *str_set_exception, *str_cancel;
    PyObject *str_watch, *str_condition, *str_state, *str_result, *str_exception;
    PyObject *state_pending, *state_running, *state_finished; /* _base constants */
    PyObject *pickle_dumps, *pickle_loads, *pickle_protocol;   /* pickle.dumps/loads, 5 */
    PyObject *exception_with_traceback; /* concurrent.futures.process._ExceptionWithTraceback */
    PyObject *pickling_error;           /* streamfutures._remote.pickling_error */
    PyObject *unpickling_error;         /* streamfutures._remote.unpickling_error */
    PyObject *async_results;            /* streamfutures._aio.AsyncResults */
    /* set by the package's exit hook: refuse new work from then on */
    _Atomic int interpreter_exiting;
    /* engine pools whose Pool object is gone but whose threads may still
     * be finishing (fire-and-forget work); joined by reap() */
    sfpy_mutex zombies_lock; /* guards the list; never held across a wait */
    struct sfpy_pool_ctx *zombies;
} sfpy_state;

static inline sfpy_state *sfpy_state_of(PyObject *module)
{
    return (sfpy_state *)PyModule_GetState(module);
}

#endif
