/*
 * result_size.c -- what a map's result costs to hold, for the thread map's
 * adaptive window (sf_map_ops.result_bytes): sys.getsizeof's answer,
 * shallow, without a Python call for the builtin types.
 *
 * DESIGN.  Called on the worker right after the result was made, attached
 * to the interpreter, with no engine lock held.  The exact builtin types
 * are measured from their headers (the sizes sys.getsizeof reports, give
 * or take a GC header); anything else is asked for its __sizeof__ (numpy
 * arrays, user objects), and a __sizeof__ that raises or returns nonsense
 * counts as the object's basic size: a broken __sizeof__ must not fail the
 * item, whose result is fine.  The error is cleared, not reported: the
 * map's outcome for the item is its result.
 */
#include "result_size.h"
#include "compat.h"

static size_t basic_size(PyObject *o) { return (size_t)Py_TYPE(o)->tp_basicsize; }

size_t sfpy_result_bytes(PyObject *o)
{
    PyTypeObject *type = Py_TYPE(o);
    if (type == &PyLong_Type || type == &PyFloat_Type || type == &PyBool_Type ||
        o == Py_None || type == &PyComplex_Type)
        return basic_size(o);
    if (type == &PyBytes_Type)
        return basic_size(o) + (size_t)PyBytes_GET_SIZE(o);
    if (type == &PyByteArray_Type || type == &PyList_Type) {
        /* mutable: another thread holding it may resize it meanwhile */
        Py_ssize_t items;
        Py_BEGIN_CRITICAL_SECTION(o);
        items = Py_SIZE(o);
        Py_END_CRITICAL_SECTION();
        return basic_size(o) +
               (size_t)items * (type == &PyList_Type ? sizeof(PyObject *) : 1);
    }
    if (type == &PyUnicode_Type)
        return basic_size(o) + (size_t)PyUnicode_GET_LENGTH(o) * PyUnicode_KIND(o);
    if (type == &PyTuple_Type)
        return basic_size(o) + (size_t)PyTuple_GET_SIZE(o) * sizeof(PyObject *);
    PyObject *answer = PyObject_CallMethod(o, "__sizeof__", NULL);
    Py_ssize_t size = answer ? PyLong_AsSsize_t(answer) : -1;
    Py_XDECREF(answer);
    if (size < 0) {
        PyErr_Clear();
        return basic_size(o);
    }
    return (size_t)size;
}
