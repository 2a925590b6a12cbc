/*
 * thread_hooks.c -- engine threads as Python threads of the pool's
 * interpreter.
 *
 * DESIGN.  Each engine thread makes its PyThreadState once, in start, for
 * the interpreter that made the pool (PyGILState_Ensure would always pick
 * the main interpreter, which is wrong for a pool made in a
 * subinterpreter).  PyThreadState_New also binds the state for
 * PyGILState_Ensure on this thread, so a C extension called from a task
 * finds it.  start runs the initializer there on workers and then
 * detaches.  The engine calls attach/detach around runs of jobs (not per
 * job) and detaches before it parks, so the GIL is held for a batch of
 * work and never while sleeping.  No engine lock is held in any of these
 * hooks.  Threads are joined by the executor's shutdown or the exit hook
 * before finalization, so no thread ever attaches during interpreter
 * teardown.
 *
 * From 3.13 on, the work CPython leaves for a thread to do (eval-breaker
 * bits: on 3.13t, freeing the objects it made that other threads have
 * dropped, which biased reference counting hands back to their maker; a
 * collection the thread scheduled) is done only where that thread starts
 * a Python function.  An engine thread may run none for as long as it
 * runs (a range as input, float as the task, unpickling results), and the
 * objects dropped meanwhile would pile up, one per item, with the window
 * bounding nothing.  So the per-item callbacks count items
 * (sfpy_thread_tick), and every SFPY_RUN_PENDING_EVERY the thread calls
 * streamfutures._threads.run_pending, a function that does nothing.
 *
 * In a process pool a worker thread starts its worker process in start
 * (waiting, without the GIL, until the process is ready, so a failing
 * initializer breaks the pool as in the stdlib) and stops it in stop.
 * The process is found through the thread-local box.
 */
#include "thread_hooks.h"
#include "compat.h"
#include "worker_process.h"

typedef struct thread_box {
    PyThreadState *tstate;
    sf_proc_worker *worker; /* process pools: this thread's worker process */
} thread_box;

static _Thread_local thread_box *current_box;

sf_proc_worker *sfpy_current_worker_process(void)
{
    return current_box ? current_box->worker : NULL;
}

void sfpy_thread_hooks_forget_in_child(void) { current_box = NULL; }

static void log_initializer_failure(const sfpy_state *st)
{
    /* the stdlib logs with exc_info=True inside an except block; from C
     * the exception is not "being handled", so pass it explicitly */
    PyObject *exc = sfpy_fetch_exception();
    PyObject *critical = PyObject_GetAttrString(st->logger, "critical");
    PyObject *args = Py_BuildValue("(s)", "Exception in initializer:");
    PyObject *kwargs = Py_BuildValue("{s:O}", "exc_info", exc ? exc : Py_True);
    PyObject *r = critical && args && kwargs ? PyObject_Call(critical, args, kwargs) : NULL;
    if (!r)
        PyErr_WriteUnraisable(st->logger);
    Py_XDECREF(r);
    Py_XDECREF(kwargs);
    Py_XDECREF(args);
    Py_XDECREF(critical);
    Py_XDECREF(exc);
}

static int start(void *raw, enum sf_thread_kind kind, unsigned index, void **state)
{
    sfpy_pool_ctx *ctx = raw;
    const sfpy_state *st = ctx->state;
    thread_box *box = malloc(sizeof *box);
    int rc = 0;
    if (!box)
        return -1;
    box->worker = NULL;
    box->tstate = PyThreadState_New(ctx->interp);
    if (!box->tstate) {
        free(box);
        return -1;
    }
    current_box = box;
    PyEval_RestoreThread(box->tstate);
    /* the stdlib's worker names, for threading.current_thread().name */
    PyObject *name = PyUnicode_FromFormat(kind == SF_THREAD_WORKER ? "%U_%u" : "%U_input_%u",
                                          ctx->name_prefix, index);
    PyObject *named = name ? PyObject_CallOneArg(st->thread_enter, name) : NULL;
    if (!named)
        PyErr_WriteUnraisable(st->thread_enter);
    Py_XDECREF(named);
    Py_XDECREF(name);
    if (kind == SF_THREAD_WORKER && ctx->proc) {
        box->worker = sfpy_worker_process_start(ctx);
        if (!box->worker)
            rc = -1;
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(ctx->proc->spawn);
    } else if (kind == SF_THREAD_WORKER && ctx->initializer) {
        PyObject *r = PyObject_Call(ctx->initializer, ctx->initargs, NULL);
        if (!r) {
            log_initializer_failure(st);
            rc = -1;
        }
        Py_XDECREF(r);
    }
    box->tstate = PyEval_SaveThread();
    *state = box;
    return rc;
}

static void stop(void *raw, void *state)
{
    sfpy_pool_ctx *ctx = raw;
    thread_box *box = state;
    if (!box)
        return;
    PyEval_RestoreThread(box->tstate);
    sf_proc_worker_destroy(box->worker); /* asks it to exit and reaps it */
    PyObject *left = PyObject_CallNoArgs(ctx->state->thread_leave);
    if (!left)
        PyErr_WriteUnraisable(ctx->state->thread_leave);
    Py_XDECREF(left);
    PyThreadState_Clear(box->tstate);
    PyThreadState_DeleteCurrent(); /* and releases the GIL */
    current_box = NULL;
    free(box);
}

/* A thread whose start failed before it had a thread state (no memory)
 * is still attached once, to break the pool (whose drops touch Python):
 * it borrows one through PyGILState for that. */
static _Thread_local PyGILState_STATE borrowed_gil;

static void attach(void *ctx, void *state)
{
    (void)ctx;
    if (!state)
        borrowed_gil = PyGILState_Ensure();
    else
        PyEval_RestoreThread(((thread_box *)state)->tstate);
}

static void detach(void *ctx, void *state)
{
    (void)ctx;
    if (!state)
        PyGILState_Release(borrowed_gil);
    else
        ((thread_box *)state)->tstate = PyEval_SaveThread();
}

_Thread_local unsigned sfpy_items_since_pending;

void sfpy_run_pending(const sfpy_state *st)
{
    sfpy_items_since_pending = 0;
    PyObject *none = PyObject_CallNoArgs(st->run_pending);
    if (!none) /* an exception another thread set on this one (SetAsyncExc) */
        PyErr_WriteUnraisable(st->run_pending);
    Py_XDECREF(none);
}

sf_thread_hooks sfpy_thread_hooks(sfpy_pool_ctx *ctx)
{
    sf_thread_hooks hooks = {ctx, start, stop, attach, detach};
    return hooks;
}
