/*
 * wire.c -- how a result or an exception crosses from a worker process.
 *
 * DESIGN.  A reply's kind says how its bytes are read.  The common small
 * results (None, bool, int that fits 64 bits, float, str, bytes of the
 * exact builtin types) are written directly: pickling one small int costs
 * more than running a trivial task.  Everything else is pickled with
 * protocol 5.  An exception travels as the stdlib's _ExceptionWithTraceback
 * (pickled), so the parent gets it with __cause__ carrying the worker's
 * traceback text, exactly as concurrent.futures.ProcessPoolExecutor does.
 * Stateless; the GIL is held throughout.
 */
#include <string.h>

#include "binding.h"

enum wire_kind {
    WIRE_PICKLED = 1,
    WIRE_EXCEPTION = 2, /* a pickled _ExceptionWithTraceback */
    WIRE_NONE = 3,
    WIRE_FALSE = 4,
    WIRE_TRUE = 5,
    WIRE_INT = 6,
    WIRE_FLOAT = 7,
    WIRE_STR = 8,
    WIRE_BYTES = 9,
    WIRE_ERROR_TEXT = 10, /* utf-8: becomes a RuntimeError */
};

PyObject *sf_pickle(PyObject *obj)
{
    PyObject *args[2] = {obj, sf_py.pickle_protocol};
    return PyObject_Vectorcall(sf_py.pickle_dumps, args, 2, NULL);
}

PyObject *sf_unpickle(const void *data, uint32_t len)
{
    PyObject *view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)len, PyBUF_READ);
    PyObject *obj = view ? PyObject_CallOneArg(sf_py.pickle_loads, view) : NULL;
    Py_XDECREF(view);
    return obj;
}

int sf_wire_encode(PyObject *value, sf_wire_value *out)
{
    out->owner = NULL;
    out->data = out->inline_bytes;
    out->len = 0;
    if (value == Py_None) {
        out->kind = WIRE_NONE;
    } else if (value == Py_False || value == Py_True) {
        out->kind = value == Py_True ? WIRE_TRUE : WIRE_FALSE;
    } else if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow)
            goto pickled;
        if (v == -1 && PyErr_Occurred())
            return -1;
        memcpy(out->inline_bytes, &v, 8);
        out->kind = WIRE_INT;
        out->len = 8;
    } else if (PyFloat_CheckExact(value)) {
        double v = PyFloat_AS_DOUBLE(value);
        memcpy(out->inline_bytes, &v, 8);
        out->kind = WIRE_FLOAT;
        out->len = 8;
    } else if (PyUnicode_CheckExact(value)) {
        Py_ssize_t size;
        const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
        if (!utf8) { /* lone surrogates: pickle keeps them */
            PyErr_Clear();
            goto pickled;
        }
        out->kind = WIRE_STR;
        out->data = utf8;
        out->len = (uint32_t)size;
        out->owner = Py_NewRef(value);
    } else if (PyBytes_CheckExact(value)) {
        out->kind = WIRE_BYTES;
        out->data = PyBytes_AS_STRING(value);
        out->len = (uint32_t)PyBytes_GET_SIZE(value);
        out->owner = Py_NewRef(value);
    } else {
        goto pickled;
    }
    return 0;
pickled:
    out->owner = sf_pickle(value);
    if (!out->owner)
        return -1;
    out->kind = WIRE_PICKLED;
    out->data = PyBytes_AS_STRING(out->owner);
    out->len = (uint32_t)PyBytes_GET_SIZE(out->owner);
    return 0;
}

/* The worker's exception (borrowed) as the stdlib ships it.  If that
 * cannot be pickled, the pickling error is shipped instead (as the stdlib
 * does), and if not even that, a RuntimeError with a fixed text. */
void sf_wire_encode_exception(PyObject *exc, sf_wire_value *out)
{
    PyObject *current = Py_NewRef(exc);
    out->data = out->inline_bytes;
    for (int attempt = 0; attempt < 2; attempt++) {
        PyObject *tb = PyException_GetTraceback(current);
        PyObject *wrapped = PyObject_CallFunctionObjArgs(sf_py.exception_with_traceback, current,
                                                         tb ? tb : Py_None, NULL);
        Py_XDECREF(tb);
        out->owner = wrapped ? sf_pickle(wrapped) : NULL;
        Py_XDECREF(wrapped);
        Py_DECREF(current);
        if (out->owner) {
            out->kind = WIRE_EXCEPTION;
            out->data = PyBytes_AS_STRING(out->owner);
            out->len = (uint32_t)PyBytes_GET_SIZE(out->owner);
            return;
        }
        current = sf_fetch_exception();
    }
    Py_DECREF(current);
    static const char text[] = "the worker could not send this item's exception back";
    out->kind = WIRE_ERROR_TEXT;
    out->data = text;
    out->len = sizeof text - 1;
}

void sf_wire_release(sf_wire_value *v) { Py_CLEAR(v->owner); }

PyObject *sf_wire_decode(uint32_t kind, const void *data, uint32_t len, int *failed)
{
    *failed = 0;
    switch (kind) {
    case WIRE_NONE:
        Py_RETURN_NONE;
    case WIRE_FALSE:
        Py_RETURN_FALSE;
    case WIRE_TRUE:
        Py_RETURN_TRUE;
    case WIRE_INT: {
        long long v;
        memcpy(&v, data, 8);
        return PyLong_FromLongLong(v);
    }
    case WIRE_FLOAT: {
        double v;
        memcpy(&v, data, 8);
        return PyFloat_FromDouble(v);
    }
    case WIRE_STR:
        return PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "surrogatepass");
    case WIRE_BYTES:
        return PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    case WIRE_ERROR_TEXT: {
        *failed = 1;
        PyObject *text = PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "replace");
        PyObject *exc = text ? PyObject_CallOneArg(PyExc_RuntimeError, text) : NULL;
        Py_XDECREF(text);
        return exc;
    }
    case WIRE_EXCEPTION:
        *failed = 1;
        return sf_unpickle(data, len); /* _rebuild_exc gives the exception itself */
    default:
        return sf_unpickle(data, len);
    }
}
