/*
 * chunk_cursor.c -- _engine.ChunkCursor, the base class of sf.map's
 * iterator on executors that are not ours (streamfutures/foreign.py): it
 * hands out the items of the chunk it holds, one per next(), each its
 * value or its own exception at its position.
 *
 * DESIGN.  Items come back from such an executor a chunk at a time (the
 * chunk's values and its failed positions), so handing them out is the
 * consumer's whole per-item cost: it is a C iterator, and a next() that
 * finds an item in the chunk it holds runs no Python code.  Once the chunk
 * is used up, next() calls the subclass's _next_chunk() (Python: it waits
 * for the next chunk's future, gives the window its room back, sees the
 * end), which loads the next chunk with _load() or raises (StopIteration
 * at the end).  A chunk's errors are NULL (none failed), a dict from
 * position to exception, or one exception for every position (a chunk
 * lost whole).  The fields are guarded by the object's critical section
 * (the GIL where there is one), which is never held across a call into
 * Python, so several threads may read one iterator and each item is
 * handed out once; _next_chunk() serializes the loads itself.
 */
#include "chunk_cursor.h"
#include "compat.h"

typedef struct SfChunkCursorObject {
    PyObject_HEAD
    PyObject *values;    /* the chunk's values (a list), or NULL when every item failed */
    PyObject *errors;    /* NULL, a dict {position: exception}, or one exception for all */
    Py_ssize_t position; /* the next item's position in the chunk */
    Py_ssize_t size;     /* the chunk's items; 0 once stopped */
    Py_ssize_t before;   /* items handed out from the chunks before this one */
} SfChunkCursorObject;

/* Whether the item at `at` failed: 1 with its exception in *error (a new
 * reference), 0 if it did not, -1 if looking it up failed (an exception is
 * set). */
static int failure_at(SfChunkCursorObject *c, Py_ssize_t at, PyObject **error)
{
    *error = NULL;
    if (!c->errors)
        return 0;
    if (!PyDict_Check(c->errors)) {
        *error = Py_NewRef(c->errors); /* lost whole: every item has its error */
        return 1;
    }
    PyObject *key = PyLong_FromSsize_t(at);
    if (!key)
        return -1;
    /* the dict is the cursor's own and never changes once loaded */
    *error = Py_XNewRef(PyDict_GetItemWithError(c->errors, key));
    Py_DECREF(key);
    return *error ? 1 : PyErr_Occurred() ? -1 : 0;
}

static PyObject *cursor_next(SfChunkCursorObject *c)
{
    for (;;) {
        PyObject *value = NULL, *error = NULL;
        int in_chunk = 0, failed = 0;
        Py_BEGIN_CRITICAL_SECTION(c);
        if (c->position < c->size) {
            Py_ssize_t at = c->position++;
            in_chunk = 1;
            failed = failure_at(c, at, &error);
            if (!failed)
                value = Py_NewRef(PyList_GET_ITEM(c->values, at));
        }
        Py_END_CRITICAL_SECTION();
        if (in_chunk) {
            if (failed > 0)
                sfpy_raise_exception(error); /* at its own position; the next call goes on */
            return value; /* NULL when it failed */
        }
        PyObject *loaded = PyObject_CallMethod((PyObject *)c, "_next_chunk", NULL);
        if (!loaded) {
            if (PyErr_ExceptionMatches(PyExc_StopIteration))
                PyErr_Clear(); /* the end: NULL with no exception set */
            return NULL;
        }
        Py_DECREF(loaded);
    }
}

PyDoc_STRVAR(load_doc, "_load(values, errors, size): hold the next chunk.\n\n"
                       "values: a list of at least size values, or None when every item failed;\n"
                       "errors: None, a dict {position: exception}, or one exception for every item.");

static PyObject *cursor_load(SfChunkCursorObject *c, PyObject *args)
{
    PyObject *values, *errors, *old_values, *old_errors;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "OOn:_load", &values, &errors, &size))
        return NULL;
    values = values == Py_None ? NULL : values;
    errors = errors == Py_None ? NULL : errors;
    if (size < 0 || (values && (!PyList_Check(values) || PyList_GET_SIZE(values) < size)) ||
        (errors && !PyDict_Check(errors) && !PyExceptionInstance_Check(errors)) ||
        (!values && size > 0 && (!errors || PyDict_Check(errors)))) {
        PyErr_SetString(PyExc_TypeError, "_load: values must be a list of at least size values, "
                                         "or None when one exception fails every item");
        return NULL;
    }
    Py_BEGIN_CRITICAL_SECTION(c);
    old_values = c->values;
    old_errors = c->errors;
    c->values = Py_XNewRef(values);
    c->errors = Py_XNewRef(errors);
    c->before += c->position;
    c->position = 0;
    c->size = size;
    Py_END_CRITICAL_SECTION();
    /* released outside the critical section: freeing them may run any code */
    Py_XDECREF(old_values);
    Py_XDECREF(old_errors);
    Py_RETURN_NONE;
}

static PyObject *cursor_stop(SfChunkCursorObject *c, PyObject *Py_UNUSED(ignored))
{
    Py_BEGIN_CRITICAL_SECTION(c);
    c->size = 0;
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static PyObject *cursor_has_items(SfChunkCursorObject *c, PyObject *Py_UNUSED(ignored))
{
    int has;
    Py_BEGIN_CRITICAL_SECTION(c);
    has = c->position < c->size;
    Py_END_CRITICAL_SECTION();
    return PyBool_FromLong(has);
}

static PyObject *cursor_items_out(SfChunkCursorObject *c, void *Py_UNUSED(closure))
{
    Py_ssize_t out;
    Py_BEGIN_CRITICAL_SECTION(c);
    out = c->before + c->position;
    Py_END_CRITICAL_SECTION();
    return PyLong_FromSsize_t(out);
}

static int cursor_traverse(SfChunkCursorObject *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c));
    Py_VISIT(c->values);
    Py_VISIT(c->errors);
    return 0;
}

static int cursor_clear(SfChunkCursorObject *c)
{
    Py_CLEAR(c->values);
    Py_CLEAR(c->errors);
    return 0;
}

static void cursor_dealloc(SfChunkCursorObject *c)
{
    PyTypeObject *type = Py_TYPE(c);
    PyObject_GC_UnTrack(c);
    cursor_clear(c);
    type->tp_free((PyObject *)c);
    Py_DECREF(type);
}

static PyMethodDef cursor_methods[] = {
    {"_load", (PyCFunction)cursor_load, METH_VARARGS, load_doc},
    {"_stop", (PyCFunction)cursor_stop, METH_NOARGS,
     "_stop(): hand out no more items of the chunk held."},
    {"_has_items", (PyCFunction)cursor_has_items, METH_NOARGS,
     "_has_items(): whether the chunk held has items not handed out."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cursor_getset[] = {
    {"_items_out", (getter)cursor_items_out, NULL, "items handed out so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot cursor_slots[] = {
    {Py_tp_doc, "Hands out a chunk's items; subclasses load chunks in _next_chunk()."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, cursor_dealloc},
    {Py_tp_traverse, cursor_traverse},
    {Py_tp_clear, cursor_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, cursor_next},
    {Py_tp_methods, cursor_methods},
    {Py_tp_getset, cursor_getset},
    {0, NULL},
};

PyType_Spec sfpy_chunk_cursor_spec = {
    .name = "streamfutures._engine.ChunkCursor",
    .basicsize = sizeof(SfChunkCursorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = cursor_slots,
};
