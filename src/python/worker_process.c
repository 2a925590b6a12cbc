/*
 * worker_process.c -- an engine worker thread's worker process.
 *
 * DESIGN.  A process pool's worker thread owns one sf_proc_worker, which
 * starts, supervises and replaces a process through the callables of
 * streamfutures.process (spawn, reap).  The engine calls those with the GIL
 * held and releases it (release/reacquire, below) around every wait, so the
 * thread's state is parked in a thread-local meanwhile: each worker thread
 * has its own.  No engine lock is held in any of these callbacks.
 */
#include "worker_process.h"

static _Thread_local PyThreadState *released_thread;

static void release(void *unused)
{
    (void)unused;
    released_thread = PyEval_SaveThread();
}

void sfpy_worker_process_forget_in_child(void) { released_thread = NULL; }

static void reacquire(void *unused)
{
    (void)unused;
    PyEval_RestoreThread(released_thread);
}

static int spawn(void *raw, sf_proc_spawned *out)
{
    sfpy_pool_ctx *ctx = raw;
    PyObject *r = PyObject_CallNoArgs(ctx->proc->spawn);
    PyObject *handle;
    if (!r) {
        PyErr_WriteUnraisable(ctx->proc->spawn);
        return -1;
    }
    if (r == Py_None) { /* refused: the pool is stopping */
        Py_DECREF(r);
        return -1;
    }
    if (!PyArg_ParseTuple(r, "Oiiiii", &handle, &out->pid, &out->task_fd, &out->result_fd,
                          &out->ring_fd, &out->pidfd)) {
        PyErr_WriteUnraisable(ctx->proc->spawn);
        Py_DECREF(r);
        return -1;
    }
    out->handle = Py_NewRef(handle);
    Py_DECREF(r);
    return 0;
}

static int reap(void *raw, void *handle)
{
    sfpy_pool_ctx *ctx = raw;
    PyObject *r = PyObject_CallOneArg(ctx->proc->reap, handle);
    long status = r ? PyLong_AsLong(r) : 0;
    if (!r || PyErr_Occurred())
        PyErr_WriteUnraisable(ctx->proc->reap);
    Py_XDECREF(r);
    Py_DECREF((PyObject *)handle);
    return (int)status;
}

sf_proc_worker *sfpy_worker_process_start(sfpy_pool_ctx *ctx)
{
    sf_proc_worker_ops ops = {ctx, spawn, reap, release, reacquire};
    sf_proc_worker *worker = NULL;
    if (sf_proc_worker_create(&worker, &ops, ctx->proc->max_tasks) != 0)
        return NULL;
    if (sf_proc_worker_start(worker) != 0) {
        sf_proc_worker_destroy(worker);
        return NULL;
    }
    return worker;
}
