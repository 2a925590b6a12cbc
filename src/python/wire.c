/*
 * wire.c -- how a result or an exception crosses from a worker process.
 *
 * DESIGN.  A reply's kind says how its bytes are read.  The common small
 * results (None, bool, int that fits 64 bits, float, str, bytes of the
 * exact builtin types) are written directly: pickling one small int costs
 * more than running a trivial task.  So are lists and tuples (exact types)
 * whose elements are all such scalars (e.g. a list of factors): a count,
 * then per element its kind, length and bytes.  Everything else is pickled
 * with protocol 5.  An exception travels as the stdlib's _ExceptionWithTraceback
 * (pickled), so the parent gets it with __cause__ carrying the worker's
 * traceback text, exactly as concurrent.futures.ProcessPoolExecutor does.
 * Stateless but for the interpreter's pickle functions (module state);
 * the GIL is held throughout.
 */
#include <string.h>

#include "wire.h"
#include "compat.h"

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
    WIRE_LIST = 11,       /* u32 count, then per element: u8 kind, u32 len, bytes */
    WIRE_TUPLE = 12,
};

/* Or-ed into an exception's kind: the worker could not unpickle the task
 * (the exception is why). */
#define WIRE_TASK_UNPICKLING_FAILED 0x100u

#define ELEMENT_HEADER 5

PyObject *sfpy_pickle(const sfpy_state *st, PyObject *obj)
{
    PyObject *args[2] = {obj, st->pickle_protocol};
    PyObject *bytes = PyObject_Vectorcall(st->pickle_dumps, args, 2, NULL);
    /* a message's length is 32 bits on the pipe and in the ring: refuse
     * what would be cut, never send it cut */
    if (bytes && PyBytes_GET_SIZE(bytes) > (Py_ssize_t)SFPY_MAX_MESSAGE_BYTES) {
        PyErr_Format(PyExc_OverflowError,
                     "cannot send %zd pickled bytes to or from a worker process: "
                     "the limit is %zd bytes (4 GiB - 1)",
                     PyBytes_GET_SIZE(bytes), (Py_ssize_t)SFPY_MAX_MESSAGE_BYTES);
        Py_CLEAR(bytes);
    }
    return bytes;
}

PyObject *sfpy_unpickle(const sfpy_state *st, const void *data, uint32_t len)
{
    PyObject *view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)len, PyBUF_READ);
    PyObject *obj = view ? PyObject_CallOneArg(st->pickle_loads, view) : NULL;
    Py_XDECREF(view);
    return obj;
}

/* A scalar sent without pickle: 1 (out filled), 0 (not one), -1 (error). */
static int encode_scalar(PyObject *value, sfpy_wire_value *out)
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
            return 0;
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
            return 0;
        }
        if (size > (Py_ssize_t)UINT32_MAX / 2)
            return 0;
        out->kind = WIRE_STR;
        out->data = utf8;
        out->len = (uint32_t)size;
        out->owner = Py_NewRef(value);
    } else if (PyBytes_CheckExact(value)) {
        if (PyBytes_GET_SIZE(value) > (Py_ssize_t)UINT32_MAX / 2)
            return 0;
        out->kind = WIRE_BYTES;
        out->data = PyBytes_AS_STRING(value);
        out->len = (uint32_t)PyBytes_GET_SIZE(value);
        out->owner = Py_NewRef(value);
    } else {
        return 0;
    }
    return 1;
}

/* A list or tuple of scalars, as one buffer: 1, 0 (not all scalars, or
 * too large), -1 (error). */
static int encode_sequence(PyObject *seq, sfpy_wire_value *out)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    sfpy_wire_value element;
    size_t size = 4;
    for (Py_ssize_t i = 0; i < n; i++) {
        int rc = encode_scalar(items[i], &element);
        if (rc <= 0)
            return rc;
        size += ELEMENT_HEADER + element.len;
        sfpy_wire_release(&element);
        if (size > UINT32_MAX / 2)
            return 0;
    }
    PyObject *buffer = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (!buffer)
        return -1;
    char *p = PyBytes_AS_STRING(buffer);
    uint32_t count = (uint32_t)n;
    memcpy(p, &count, 4);
    p += 4;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* the elements cannot have changed: no Python code ran since */
        encode_scalar(items[i], &element);
        *p = (char)element.kind;
        memcpy(p + 1, &element.len, 4);
        memcpy(p + ELEMENT_HEADER, element.data, element.len);
        p += ELEMENT_HEADER + element.len;
        sfpy_wire_release(&element);
    }
    out->kind = PyList_CheckExact(seq) ? WIRE_LIST : WIRE_TUPLE;
    out->owner = buffer;
    out->data = PyBytes_AS_STRING(buffer);
    out->len = (uint32_t)size;
    return 1;
}

int sfpy_wire_encode(const sfpy_state *st, PyObject *value, sfpy_wire_value *out)
{
    int rc = encode_scalar(value, out);
    if (rc == 0 && (PyList_CheckExact(value) || PyTuple_CheckExact(value)))
        rc = encode_sequence(value, out);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return 0;
    out->owner = sfpy_pickle(st, value);
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
void sfpy_wire_encode_exception(const sfpy_state *st, PyObject *exc, sfpy_wire_value *out)
{
    PyObject *current = Py_NewRef(exc);
    out->data = out->inline_bytes;
    for (int attempt = 0; attempt < 2; attempt++) {
        PyObject *tb = PyException_GetTraceback(current);
        PyObject *wrapped = PyObject_CallFunctionObjArgs(st->exception_with_traceback, current,
                                                         tb ? tb : Py_None, NULL);
        Py_XDECREF(tb);
        out->owner = wrapped ? sfpy_pickle(st, wrapped) : NULL;
        Py_XDECREF(wrapped);
        Py_DECREF(current);
        if (out->owner) {
            out->kind = WIRE_EXCEPTION;
            out->data = PyBytes_AS_STRING(out->owner);
            out->len = (uint32_t)PyBytes_GET_SIZE(out->owner);
            return;
        }
        current = sfpy_fetch_exception();
    }
    Py_DECREF(current);
    static const char text[] = "the worker could not send this item's exception back";
    out->kind = WIRE_ERROR_TEXT;
    out->data = text;
    out->len = sizeof text - 1;
}

void sfpy_wire_release(sfpy_wire_value *v) { Py_CLEAR(v->owner); }

static PyObject *malformed(void)
{
    PyErr_SetString(PyExc_RuntimeError, "a worker's reply could not be read");
    return NULL;
}

static PyObject *decode_scalar(uint32_t kind, const void *data, uint32_t len)
{
    switch (kind) {
    case WIRE_NONE:
        Py_RETURN_NONE;
    case WIRE_FALSE:
        Py_RETURN_FALSE;
    case WIRE_TRUE:
        Py_RETURN_TRUE;
    case WIRE_INT: {
        long long v;
        if (len != 8)
            return malformed();
        memcpy(&v, data, 8);
        return PyLong_FromLongLong(v);
    }
    case WIRE_FLOAT: {
        double v;
        if (len != 8)
            return malformed();
        memcpy(&v, data, 8);
        return PyFloat_FromDouble(v);
    }
    case WIRE_STR:
        return PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "surrogatepass");
    case WIRE_BYTES:
        return PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    default:
        return malformed();
    }
}

static PyObject *decode_sequence(uint32_t kind, const char *p, uint32_t len)
{
    const char *end = p + len;
    uint32_t count;
    if (len < 4)
        return malformed();
    memcpy(&count, p, 4);
    p += 4;
    if (count > (len - 4) / ELEMENT_HEADER)
        return malformed();
    PyObject *seq = kind == WIRE_LIST ? PyList_New(count) : PyTuple_New(count);
    for (uint32_t i = 0; seq && i < count; i++) {
        uint32_t element_len;
        PyObject *element = NULL;
        if (end - p >= ELEMENT_HEADER) {
            memcpy(&element_len, p + 1, 4);
            if (element_len <= (size_t)(end - p) - ELEMENT_HEADER)
                element = decode_scalar((unsigned char)*p, p + ELEMENT_HEADER, element_len);
            else
                malformed();
        } else {
            malformed();
        }
        if (!element) {
            Py_CLEAR(seq);
            break;
        }
        if (kind == WIRE_LIST)
            PyList_SET_ITEM(seq, i, element);
        else
            PyTuple_SET_ITEM(seq, i, element);
        p += ELEMENT_HEADER + element_len;
    }
    return seq;
}

void sfpy_wire_mark_task_unpickling_failed(sfpy_wire_value *exception)
{
    exception->kind |= WIRE_TASK_UNPICKLING_FAILED;
}

/* What unpickling raised becomes the cause of the item's own error. */
static PyObject *unpickling_failed(const sfpy_state *st, int in_worker, PyObject *cause)
{
    PyObject *error = cause ? PyObject_CallFunction(st->unpickling_error, "iO", in_worker, cause)
                            : NULL;
    Py_XDECREF(cause);
    return error;
}

static PyObject *decode(const sfpy_state *st, uint32_t kind, const void *data, uint32_t len,
                        int *failed);

PyObject *sfpy_wire_decode(const sfpy_state *st, uint32_t kind, const void *data, uint32_t len,
                           int *failed)
{
    int task_failed = (kind & WIRE_TASK_UNPICKLING_FAILED) != 0;
    PyObject *value = decode(st, kind & ~WIRE_TASK_UNPICKLING_FAILED, data, len, failed);
    if (value && *failed && !PyExceptionInstance_Check(value)) {
        Py_DECREF(value); /* an "exception" that is none: the reply is corrupt */
        value = malformed();
    }
    if (!value) { /* anything unpickling raised, SystemExit included, stays this item's */
        *failed = 1;
        return unpickling_failed(st, 0, sfpy_fetch_exception());
    }
    if (task_failed && *failed)
        return unpickling_failed(st, 1, value);
    return value;
}

static PyObject *decode(const sfpy_state *st, uint32_t kind, const void *data, uint32_t len,
                        int *failed)
{
    *failed = 0;
    switch (kind) {
    case WIRE_ERROR_TEXT: {
        *failed = 1;
        PyObject *text = PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "replace");
        PyObject *exc = text ? PyObject_CallOneArg(PyExc_RuntimeError, text) : NULL;
        Py_XDECREF(text);
        return exc;
    }
    case WIRE_EXCEPTION:
        *failed = 1;
        return sfpy_unpickle(st, data, len); /* _rebuild_exc gives the exception itself */
    case WIRE_PICKLED:
        return sfpy_unpickle(st, data, len);
    case WIRE_LIST:
    case WIRE_TUPLE:
        return decode_sequence(kind, data, len);
    default:
        return decode_scalar(kind, data, len);
    }
}
