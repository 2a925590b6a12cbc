/*
 * threads.c -- engine threads as Python threads.
 *
 * DESIGN.  Each engine thread makes its PyThreadState once, in
 * thread_start (PyGILState_Ensure, so C extensions that call
 * PyGILState_Ensure from inside a task find this thread's state), runs the
 * initializer there on workers, and then detaches.  The engine calls
 * attach/detach around runs of jobs (not per job) and detaches before it
 * parks, so the GIL is held for a batch of work and never while sleeping.
 * No engine lock is held in any of these hooks.  Threads are joined by the
 * executor's shutdown or the exit hook before finalization, so no thread
 * ever attaches during interpreter teardown.
 *
 * In a process pool a worker thread starts its worker process in
 * thread_start (waiting, without the GIL, until the process is ready, so a
 * failing initializer breaks the pool as in the stdlib) and stops it in
 * thread_stop.  The process is found through the thread-local box.
 */
#include "binding.h"

typedef struct thread_box {
    PyThreadState *tstate;
    PyGILState_STATE gilstate;
    sf_proc_worker *worker; /* process pools: this thread's worker process */
} thread_box;

static _Thread_local thread_box *current_box;

sf_proc_worker *sf_current_proc_worker(void) { return current_box ? current_box->worker : NULL; }

void sf_current_thread_release(void *unused)
{
    (void)unused;
    current_box->tstate = PyEval_SaveThread();
}

void sf_current_thread_reacquire(void *unused)
{
    (void)unused;
    PyEval_RestoreThread(current_box->tstate);
}

/* Start this worker thread's process; 0 or -1 (the pool is broken). */
static int start_worker_process(sf_hook_ctx *hc, thread_box *box)
{
    sf_proc_worker_ops ops = {hc, sf_proc_worker_spawn, sf_proc_worker_reap,
                              sf_current_thread_release, sf_current_thread_reacquire};
    if (sf_proc_worker_create(&box->worker, &ops, hc->proc->max_tasks) != 0)
        return -1;
    return sf_proc_worker_start(box->worker) == 0 ? 0 : -1;
}

static void log_initializer_failure(void)
{
    /* the stdlib logs with exc_info=True inside an except block; from C
     * the exception is not "being handled", so pass it explicitly */
    PyObject *exc = sf_fetch_exception();
    PyObject *critical = PyObject_GetAttrString(sf_py.logger, "critical");
    PyObject *args = Py_BuildValue("(s)", "Exception in initializer:");
    PyObject *kwargs = Py_BuildValue("{s:O}", "exc_info", exc ? exc : Py_True);
    PyObject *r = critical && args && kwargs ? PyObject_Call(critical, args, kwargs) : NULL;
    if (!r)
        PyErr_WriteUnraisable(sf_py.logger);
    Py_XDECREF(r);
    Py_XDECREF(kwargs);
    Py_XDECREF(args);
    Py_XDECREF(critical);
    Py_XDECREF(exc);
}

static int start(void *ctx, enum sf_thread_kind kind, unsigned index, void **state)
{
    sf_hook_ctx *hc = ctx;
    thread_box *box = malloc(sizeof *box);
    int rc = 0;
    if (!box)
        return -1;
    box->worker = NULL;
    current_box = box;
    box->gilstate = PyGILState_Ensure();
    /* the stdlib's worker names, for threading.current_thread().name */
    PyObject *name = PyUnicode_FromFormat(kind == SF_THREAD_WORKER ? "%U_%u" : "%U_input_%u",
                                          hc->name_prefix, index);
    PyObject *named = name ? PyObject_CallOneArg(sf_py.thread_enter, name) : NULL;
    if (!named)
        PyErr_WriteUnraisable(sf_py.thread_enter);
    Py_XDECREF(named);
    Py_XDECREF(name);
    if (kind == SF_THREAD_WORKER && hc->proc) {
        if (start_worker_process(hc, box) != 0)
            rc = -1;
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(hc->proc->spawn);
    } else if (kind == SF_THREAD_WORKER && hc->initializer) {
        PyObject *r = PyObject_Call(hc->initializer, hc->initargs, NULL);
        if (!r) {
            log_initializer_failure();
            rc = -1;
        }
        Py_XDECREF(r);
    }
    box->tstate = PyEval_SaveThread();
    *state = box;
    return rc;
}

static void stop(void *ctx, void *state)
{
    thread_box *box = state;
    (void)ctx;
    if (!box)
        return;
    PyEval_RestoreThread(box->tstate);
    sf_proc_worker_destroy(box->worker); /* asks it to exit and reaps it */
    PyObject *left = PyObject_CallNoArgs(sf_py.thread_leave);
    if (!left)
        PyErr_WriteUnraisable(sf_py.thread_leave);
    Py_XDECREF(left);
    PyGILState_Release(box->gilstate);
    current_box = NULL;
    free(box);
}

static void attach(void *ctx, void *state)
{
    (void)ctx;
    PyEval_RestoreThread(((thread_box *)state)->tstate);
}

static void detach(void *ctx, void *state)
{
    (void)ctx;
    ((thread_box *)state)->tstate = PyEval_SaveThread();
}

sf_thread_hooks sf_python_thread_hooks(sf_hook_ctx *ctx)
{
    sf_thread_hooks hooks = {ctx, start, stop, attach, detach};
    return hooks;
}
