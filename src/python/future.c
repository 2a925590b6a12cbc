/*
 * future.c -- finishing the concurrent.futures.Future of a submitted call.
 *
 * DESIGN.  Every way a submitted call's future ends is here: started,
 * finished, or dropped unrun (cancelled, or failed when the pool broke).
 * A future nobody can be waiting on has no Condition yet (see
 * streamfutures/_future.py): then a worker, holding the GIL, sets its state
 * directly and wakes nobody.  Once anyone waits on it or adds a callback
 * (which makes the Condition), the stdlib's notifying methods are used.
 * The callers hold the GIL and call no Python code between the check and
 * their writes, so no thread can start watching meanwhile.  No locks.
 */
#include "future.h"

static void report(PyObject *done, PyObject *future)
{
    if (!done)
        PyErr_WriteUnraisable(future);
    Py_XDECREF(done);
}

/* The future's __dict__ (new reference) if it has no Condition, else NULL. */
static PyObject *unwatched_dict(const sfpy_state *st, PyObject *future)
{
    PyObject *dict = PyObject_GenericGetDict(future, NULL);
    if (dict && !PyDict_GetItemWithError(dict, st->str_condition) && !PyErr_Occurred())
        return dict;
    PyErr_Clear();
    Py_XDECREF(dict);
    return NULL;
}

/* Finish an unwatched future by setting its state directly; 1 if done, 0 if
 * the caller must take the ordinary, notifying path. */
static int complete_quietly(const sfpy_state *st, PyObject *future, PyObject *result,
                            PyObject *exc)
{
    PyObject *dict = unwatched_dict(st, future);
    if (!dict)
        return 0;
    int quiet = (result ? PyDict_SetItem(dict, st->str_result, result)
                        : PyDict_SetItem(dict, st->str_exception, exc)) == 0 &&
                PyDict_SetItem(dict, st->str_state, st->state_finished) == 0;
    PyErr_Clear();
    Py_DECREF(dict);
    return quiet;
}

/* Mark an unwatched pending future running; 1 if done, 0 if the caller must
 * call set_running_or_notify_cancel(). */
static int start_quietly(const sfpy_state *st, PyObject *future)
{
    PyObject *dict = unwatched_dict(st, future);
    if (!dict)
        return 0;
    int quiet = PyDict_GetItemWithError(dict, st->str_state) == st->state_pending &&
                PyDict_SetItem(dict, st->str_state, st->state_running) == 0;
    PyErr_Clear();
    Py_DECREF(dict);
    return quiet;
}

int sfpy_future_start(const sfpy_state *st, PyObject *future)
{
    if (start_quietly(st, future))
        return 1;
    PyObject *running = PyObject_CallMethodNoArgs(future, st->str_set_running);
    int run = running ? PyObject_IsTrue(running) : -1;
    Py_XDECREF(running);
    if (run < 0)
        PyErr_WriteUnraisable(future);
    return run;
}

void sfpy_future_finish(const sfpy_state *st, PyObject *future, PyObject *result,
                        PyObject *exc)
{
    if (complete_quietly(st, future, result, exc))
        return;
    if (result)
        report(PyObject_CallMethodOneArg(future, st->str_set_result, result), future);
    else
        report(PyObject_CallMethodOneArg(future, st->str_set_exception, exc), future);
}

void sfpy_future_drop(const sfpy_state *st, PyObject *future, PyObject *exc)
{
    if (exc)
        report(PyObject_CallMethodOneArg(future, st->str_set_exception, exc), future);
    else
        report(PyObject_CallMethodNoArgs(future, st->str_cancel), future);
}
