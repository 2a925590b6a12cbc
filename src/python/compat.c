/*
 * compat.c -- exception objects across CPython 3.10-3.13.
 *
 * DESIGN.  The engine stores a failed item's error as one opaque value; in
 * the binding that value is the normalized exception instance with its
 * __traceback__ set, so it can cross threads and be raised later at the
 * item's position exactly as Future.result() would raise it.  3.12 has
 * PyErr_GetRaisedException for this; older versions need fetch+normalize.
 * No locks; callers hold the GIL.  The leaf lock's wait (free-threaded
 * build only) spins a little on a plain load, then gives the CPU away, so
 * a holder preempted on a busy machine gets to run and let go.
 */
#include <math.h>
#include <sched.h>

#include "compat.h"

PyObject *sfpy_fetch_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) {
        PyException_SetTraceback(value, tb);
        Py_DECREF(tb);
    }
    Py_DECREF(type);
    return value;
#endif
}

void sfpy_raise_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyObject *type = (PyObject *)Py_TYPE(exc);
    Py_INCREF(type);
    PyErr_Restore(type, exc, PyException_GetTraceback(exc));
#endif
}

int64_t sfpy_timeout_ns(double seconds)
{
    if (isnan(seconds) || seconds <= 0)
        return 0;
    if (seconds >= (double)(INT64_MAX / 4) / 1e9)
        return -1;
    return (int64_t)(seconds * 1e9);
}

#ifdef Py_GIL_DISABLED
#define LEAF_LOCK_SPINS 64

void sfpy_leaf_lock_wait(sfpy_leaf_lock *m)
{
    for (int spin = 0; atomic_load_explicit(&m->held, memory_order_relaxed); spin++)
        if (spin >= LEAF_LOCK_SPINS)
            sched_yield();
}
#endif
