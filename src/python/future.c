/*
 * future.c -- finishing the concurrent.futures.Future of a submitted call.
 *
 * DESIGN.  Every way a submitted call's future ends is here: started,
 * finished, or dropped unrun (cancelled, or failed when the pool broke).
 * A future nobody can be waiting on has no Condition yet (see
 * streamfutures/_future.py): then a worker sets its state directly and
 * wakes nobody.  Once anyone waits on it or adds a callback (which makes
 * the Condition), the stdlib's notifying methods are used.
 * The check and the writes hold the critical section of the dict the
 * Condition is created in (a no-op where there is a GIL, which then does
 * the same), and so does its creation, so no thread can start watching in
 * between.
 */
#include "future.h"

static void report(PyObject *done, PyObject *future)
{
    if (!done)
        PyErr_WriteUnraisable(future);
    Py_XDECREF(done);
}

/* Without a Condition nobody is watching the future: set its state
 * directly.  The Condition lives in the future's own small dict `_watch`,
 * made by dict.setdefault (_future.py), which holds that dict's critical
 * section; the check and the writes here hold it too, so a watcher either
 * comes first (0: take the notifying path) or finds the state already
 * written.  (Not a key of the instance __dict__: on 3.13t a key inserted
 * there by setdefault was seen missing by PyDict_Contains under that same
 * dict's critical section, and waiters slept through a quiet finish.)
 * `running`: mark a pending future running, else finish it with result
 * or exc.  1 if done quietly. */
static int set_state_quietly(const sfpy_state *st, PyObject *future, int running,
                             PyObject *result, PyObject *exc)
{
    PyObject *dict = PyObject_GenericGetDict(future, NULL);
    PyObject *watch = dict ? PyDict_GetItemWithError(dict, st->str_watch) : NULL;
    if (!watch || !PyDict_CheckExact(watch)) { /* not an EngineFuture: the stdlib's way */
        PyErr_Clear();
        Py_XDECREF(dict);
        return 0;
    }
    Py_INCREF(watch);
    int quiet;
    Py_BEGIN_CRITICAL_SECTION(watch);
    quiet = PyDict_Contains(watch, st->str_condition) == 0;
    if (quiet && running) {
        PyObject *state = PyDict_GetItemWithError(dict, st->str_state); /* only compared */
        quiet = state == st->state_pending &&
                PyDict_SetItem(dict, st->str_state, st->state_running) == 0;
    } else if (quiet) {
        quiet = (result ? PyDict_SetItem(dict, st->str_result, result)
                        : PyDict_SetItem(dict, st->str_exception, exc)) == 0 &&
                PyDict_SetItem(dict, st->str_state, st->state_finished) == 0;
    }
    Py_END_CRITICAL_SECTION();
    PyErr_Clear();
    Py_DECREF(watch);
    Py_DECREF(dict);
    return quiet;
}

int sfpy_future_start(const sfpy_state *st, PyObject *future)
{
    if (set_state_quietly(st, future, 1, NULL, NULL))
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
    if (set_state_quietly(st, future, 0, result, exc))
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
