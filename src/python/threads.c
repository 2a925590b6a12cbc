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
 */
#include "binding.h"

typedef struct thread_box {
    PyThreadState *tstate;
    PyGILState_STATE gilstate;
} thread_box;

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
    box->gilstate = PyGILState_Ensure();
    /* the stdlib's worker names, for threading.current_thread().name */
    PyObject *name = PyUnicode_FromFormat(kind == SF_THREAD_WORKER ? "%U_%u" : "%U_input_%u",
                                          hc->name_prefix, index);
    PyObject *named = name ? PyObject_CallOneArg(sf_py.thread_enter, name) : NULL;
    if (!named)
        PyErr_WriteUnraisable(sf_py.thread_enter);
    Py_XDECREF(named);
    Py_XDECREF(name);
    if (kind == SF_THREAD_WORKER && hc->initializer) {
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
    PyObject *left = PyObject_CallNoArgs(sf_py.thread_leave);
    if (!left)
        PyErr_WriteUnraisable(sf_py.thread_leave);
    Py_XDECREF(left);
    PyGILState_Release(box->gilstate);
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
