/*
 * pool_ctx.c -- the Python side of one engine pool.
 *
 * DESIGN.  A context is made with the Pool object and freed after the
 * engine pool's threads are joined, because those threads read it until
 * then (thread start runs the initializer, a process pool's workers call
 * spawn/reap).  It holds a strong reference to the module so the module
 * state it points to outlives every engine thread that uses it, and it
 * remembers the interpreter that made it: engine threads attach there.
 * Everything in it is immutable after creation; the GIL is held to use it.
 */
#include <errno.h>

#include "pool_ctx.h"
#include "compat.h"
#include "streamfutures_proc.h"

sfpy_pool_ctx *sfpy_pool_ctx_new(PyObject *module, PyObject *initializer, PyObject *initargs,
                                 const char *name_prefix, PyObject *spawn, PyObject *reap,
                                 PyObject *lost_error, unsigned max_tasks)
{
    sfpy_state *st = sfpy_state_of(module);
    sfpy_pool_ctx *ctx = PyMem_RawCalloc(1, sizeof *ctx);
    if (!ctx) {
        PyErr_NoMemory();
        return NULL;
    }
    ctx->module = Py_NewRef(module);
    ctx->state = st;
    ctx->interp = PyInterpreterState_Get();
    ctx->initializer = initializer == Py_None ? NULL : Py_NewRef(initializer);
    ctx->initargs = Py_NewRef(initargs);
    ctx->name_prefix = PyUnicode_FromString(name_prefix);
    if (!ctx->name_prefix)
        goto fail;
    if (spawn) {
        ctx->proc = PyMem_RawCalloc(1, sizeof *ctx->proc);
        if (!ctx->proc) {
            PyErr_NoMemory();
            goto fail;
        }
        ctx->proc->spawn = Py_NewRef(spawn);
        ctx->proc->reap = Py_NewRef(reap);
        ctx->proc->lost_error = Py_NewRef(lost_error);
        ctx->proc->max_tasks = max_tasks;
    }
    return ctx;
fail:
    sfpy_pool_ctx_free(ctx);
    return NULL;
}

void sfpy_pool_ctx_free(sfpy_pool_ctx *ctx)
{
    if (!ctx)
        return;
    Py_XDECREF(ctx->initializer);
    Py_XDECREF(ctx->initargs);
    Py_XDECREF(ctx->name_prefix);
    if (ctx->proc) {
        Py_XDECREF(ctx->proc->spawn);
        Py_XDECREF(ctx->proc->reap);
        Py_XDECREF(ctx->proc->lost_error);
        PyMem_RawFree(ctx->proc);
    }
    Py_XDECREF(ctx->module);
    PyMem_RawFree(ctx);
}

int sfpy_pool_ctx_traverse(const sfpy_pool_ctx *ctx, visitproc visit, void *arg)
{
    if (!ctx)
        return 0;
    Py_VISIT(ctx->initializer);
    Py_VISIT(ctx->initargs);
    if (ctx->proc) {
        Py_VISIT(ctx->proc->spawn);
        Py_VISIT(ctx->proc->reap);
        Py_VISIT(ctx->proc->lost_error);
    }
    return 0;
}

PyObject *sfpy_broken_error(const sfpy_pool_ctx *ctx, int pending)
{
    PyObject *exc;
    if (ctx->proc)
        exc = PyObject_CallFunction(ctx->proc->lost_error, "iid",
                                    pending ? (int)SF_PROC_UNAVAILABLE : SFPY_LOST_POOL_BROKEN,
                                    0, 0.0);
    else
        exc = PyObject_CallFunction(ctx->state->broken_thread_pool, "s",
                                    SFPY_THREAD_BROKEN_MESSAGE);
    return exc ? exc : sfpy_fetch_exception();
}

int sfpy_raise_for_pool_error(const sfpy_pool_ctx *ctx, int rc)
{
    if (rc == -EPIPE) {
        PyObject *exc = sfpy_broken_error(ctx, 0);
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    } else if (rc == -ESHUTDOWN)
        PyErr_SetString(PyExc_RuntimeError, SFPY_SHUTDOWN_MESSAGE);
    else if (rc == -ENOMEM)
        PyErr_NoMemory();
    else if (rc == -ECHILD)
        PyErr_SetString(PyExc_RuntimeError, SFPY_FORKED_MESSAGE);
    else if (rc == -EINVAL)
        PyErr_SetString(PyExc_ValueError, "the engine refused these map options");
    else
        PyErr_SetString(PyExc_RuntimeError, "can't start new thread");
    return -1;
}
