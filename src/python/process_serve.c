/*
 * process_serve.c -- _engine.serve(): the worker process's loop, in C.
 *
 * DESIGN.  sf_proc_serve reads task messages; each is one pickled
 * (fn, mode, items) batch whose items have consecutive ids.  For every item,
 * in order: skip it if the parent cancelled it, else call fn, and publish
 * the result (wire.c) before the next item starts, so a crash loses only
 * the running item.  Every exception an item raises, BaseException
 * included, is that item's answer, as in the stdlib's worker.  The GIL is
 * held throughout except inside the engine's blocking reads.
 */
#include <errno.h>

#include "process_serve.h"
#include "compat.h"
#include "wire.h"
#include "streamfutures_proc.h"

/* What the handler needs: the module state, and the serving thread's state
 * while the engine reads without the GIL. */
typedef struct serving {
    const sfpy_state *st;
    PyThreadState *thread;
} serving;

static PyObject *call_item(PyObject *fn, long mode, PyObject *item)
{
    if (mode == SFPY_CALL_ONE)
        return PyObject_CallOneArg(fn, item);
    if (mode == SFPY_CALL_STAR)
        return PyObject_Call(fn, item, NULL);
    PyObject *args = PyTuple_GetItem(item, 0), *kwargs = PyTuple_GetItem(item, 1);
    if (!args || !kwargs)
        return NULL;
    return PyObject_Call(fn, args, kwargs == Py_None ? NULL : kwargs);
}

static int reply_exception(const sfpy_state *st, sf_proc_server *server, uint64_t id)
{
    PyObject *exc = sfpy_fetch_exception();
    sfpy_wire_value w;
    sfpy_wire_encode_exception(st, exc, &w);
    Py_DECREF(exc);
    int rc = sf_proc_reply(server, id, w.kind, w.data, w.len);
    sfpy_wire_release(&w);
    return rc;
}

static int serve_locked(const sfpy_state *st, sf_proc_server *server, const sf_proc_msg *task)
{
    PyObject *batch = sfpy_unpickle(st, task->data, task->len);
    PyObject *fn, *items;
    long mode;
    int readable = batch && PyArg_ParseTuple(batch, "OlO!", &fn, &mode, &PyList_Type, &items);
    if (!readable && task->kind > 1) {
        /* one unreadable item spoils its message: have each sent alone */
        int rc = 0;
        Py_XDECREF(batch);
        PyErr_Clear();
        for (uint64_t id = task->id; rc == 0 && id < task->id + task->kind; id++)
            rc = sf_proc_reply(server, id, SF_PROC_KIND_RESEND_ALONE, NULL, 0);
        return rc;
    }
    if (!readable) {
        /* this item alone cannot be read: that is its error */
        Py_XDECREF(batch);
        PyObject *exc = sfpy_fetch_exception();
        sfpy_wire_value w;
        sfpy_wire_encode_exception(st, exc, &w);
        sfpy_wire_mark_task_unpickling_failed(&w);
        Py_DECREF(exc);
        int rc = sf_proc_reply(server, task->id, w.kind, w.data, w.len);
        sfpy_wire_release(&w);
        return rc;
    }
    int rc = 0;
    Py_ssize_t n = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        uint64_t id = task->id + (uint64_t)i;
        if (sf_proc_skip(server, id)) {
            rc = sf_proc_reply(server, id, SF_PROC_KIND_SKIPPED, NULL, 0);
            continue;
        }
        PyObject *result = call_item(fn, mode, PyList_GET_ITEM(items, i));
        sfpy_wire_value w;
        if (!result || sfpy_wire_encode(st, result, &w) != 0) {
            rc = reply_exception(st, server, id);
        } else {
            rc = sf_proc_reply(server, id, w.kind, w.data, w.len);
            sfpy_wire_release(&w);
        }
        Py_XDECREF(result);
    }
    Py_DECREF(batch);
    return rc;
}

static int serve_batch(void *raw, sf_proc_server *server, const sf_proc_msg *task)
{
    serving *s = raw;
    PyEval_RestoreThread(s->thread);
    int rc = serve_locked(s->st, server, task);
    s->thread = PyEval_SaveThread();
    return rc;
}

/* serve(task_fd, result_fd, ring_fd): run until the parent says stop. */
/* A signal interrupted the wait for a task: run the Python handlers now,
 * as an idle stdlib worker would, not only when the next task comes. */
static int run_signal_handlers(void *raw)
{
    serving *s = raw;
    PyEval_RestoreThread(s->thread);
    int rc = PyErr_CheckSignals() < 0 ? -EINTR : 0;
    s->thread = PyEval_SaveThread();
    return rc;
}

PyObject *sfpy_serve(PyObject *module, PyObject *args)
{
    int task_fd, result_fd, ring_fd;
    if (!PyArg_ParseTuple(args, "iii", &task_fd, &result_fd, &ring_fd))
        return NULL;
    serving s = {sfpy_state_of(module), NULL};
    s.thread = PyEval_SaveThread(); /* other threads run while we read */
    int rc = sf_proc_serve(task_fd, result_fd, ring_fd, serve_batch, run_signal_handlers, &s);
    PyEval_RestoreThread(s.thread);
    if (rc == -EINTR && PyErr_Occurred())
        return NULL; /* a signal handler raised (e.g. SystemExit): the worker ends */
    if (rc != 0 && rc != -EPIPE) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

PyObject *sfpy_lead_process_group(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    int rc = sf_proc_lead_process_group();
    if (rc != 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

PyObject *sfpy_die_with_parent(PyObject *module, PyObject *arg)
{
    (void)module;
    int task_fd;
    if (!PyArg_Parse(arg, "i", &task_fd))
        return NULL;
    int rc = sf_proc_die_with_parent(task_fd);
    if (rc != 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}
