/*
 * exception_copy.c -- a copy of an exception for each thread that raises it.
 *
 * DESIGN.  An exception object is written to while it propagates: CPython
 * sets its __traceback__ at every frame it leaves and its __context__ when
 * it is raised inside a handler, with no lock (3.13t).  So one input's
 * exception, raised by every reader of a tee or a fanout, is raised by each
 * as its own copy, made from the original, which no reader raises: the
 * original is only read, from any number of threads at once.  The copy is
 * made so that it cannot go wrong the way unpickling does for a class
 * whose __init__ takes other arguments than its args: a builtin type (or a
 * subclass that keeps its __init__) is made again from its __reduce__,
 * which carries its C fields (OSError.filename, SystemExit.code); a class
 * with an __init__ in Python from its __new__ with the original's args,
 * without running that __init__.  Then the original's __dict__ is copied
 * in (made when the original was caught, before any reader copies it:
 * CPython makes it on first use), and the writable C fields of its builtin
 * ancestors below BaseException (AttributeError.obj, which only a keyword
 * sets and its __reduce__ leaves out; OSError.filename under a class in
 * Python).  A type that cannot be made again (a __new__ that refuses its
 * own args) gets no copy.
 */
#include "exception_copy.h"

/* Whether the type's __init__ is the one its first builtin ancestor has,
 * i.e. no class in Python overrode it. */
static int init_is_builtin(PyTypeObject *type)
{
    PyTypeObject *builtin = type;
    while (builtin && (builtin->tp_flags & Py_TPFLAGS_HEAPTYPE))
        builtin = builtin->tp_base;
    return builtin && type->tp_init == builtin->tp_init;
}

static int copy_chain(PyObject *copy, PyObject *exc, PyObject *traceback)
{
    PyObject *suppress = PyObject_GetAttrString(exc, "__suppress_context__");
    if (!suppress)
        return -1;
    PyObject *cause = PyException_GetCause(exc);
    if (cause)
        PyException_SetCause(copy, cause); /* steals; sets __suppress_context__ */
    PyObject *context = PyException_GetContext(exc);
    if (context)
        PyException_SetContext(copy, context); /* steals */
    int rc = PyObject_SetAttrString(copy, "__suppress_context__", suppress);
    Py_DECREF(suppress);
    if (rc < 0)
        return -1;
    return PyException_SetTraceback(copy, traceback ? traceback : Py_None);
}

/* The copy gets a dict and a __notes__ list of its own: a handler's
 * add_note() on one thread must not write to another thread's exception. */
static int copy_attributes(PyObject *copy, PyObject *exc)
{
    PyObject *dict = PyObject_GetAttrString(exc, "__dict__");
    if (!dict)
        return -1;
    int rc = 0;
    if (PyDict_Check(dict) && PyDict_GET_SIZE(dict)) {
        PyObject *own = PyDict_Copy(dict);
        PyObject *notes = own ? PyDict_GetItemString(own, "__notes__") : NULL; /* borrowed */
        if (notes && PyList_Check(notes)) {
            PyObject *own_notes = PySequence_List(notes);
            if (!own_notes || PyDict_SetItemString(own, "__notes__", own_notes) < 0)
                Py_CLEAR(own);
            Py_XDECREF(own_notes);
        }
        rc = own ? PyObject_SetAttrString(copy, "__dict__", own) : -1;
        Py_XDECREF(own);
    }
    Py_DECREF(dict);
    return rc;
}

/* The fields a builtin exception type keeps in C (its tp_members), for
 * each builtin ancestor below BaseException, whose own fields (the
 * chain) copy_chain sets. */
static int copy_builtin_fields(PyObject *copy, PyObject *exc)
{
    for (PyTypeObject *type = Py_TYPE(exc); type && type != (PyTypeObject *)PyExc_BaseException;
         type = type->tp_base) {
        if (type->tp_flags & Py_TPFLAGS_HEAPTYPE || !type->tp_members)
            continue;
        for (const PyMemberDef *m = type->tp_members; m->name; m++) {
            if (m->flags & Py_READONLY)
                continue;
            PyObject *value = PyObject_GetAttrString(exc, m->name);
            int rc = value ? PyObject_SetAttrString(copy, m->name, value) : -1;
            Py_XDECREF(value);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

void sfpy_exception_prepare_copies(PyObject *exc)
{
    PyObject *dict = PyObject_GetAttrString(exc, "__dict__");
    if (dict)
        Py_DECREF(dict);
    else
        PyErr_Clear();
}

/* A builtin's __reduce__ gives back the arguments its __init__ takes and
 * the fields only a keyword sets (OSError.filename is not in its args,
 * ImportError.name is in its state). */
static PyObject *remake_builtin(PyObject *exc)
{
    PyObject *reduced = PyObject_CallMethod(exc, "__reduce__", NULL);
    if (!reduced)
        return NULL;
    PyObject *copy = NULL;
    if (PyTuple_Check(reduced) && PyTuple_GET_SIZE(reduced) >= 2 &&
        PyTuple_Check(PyTuple_GET_ITEM(reduced, 1))) {
        copy = PyObject_Call(PyTuple_GET_ITEM(reduced, 0), PyTuple_GET_ITEM(reduced, 1), NULL);
        PyObject *state = PyTuple_GET_SIZE(reduced) > 2 ? PyTuple_GET_ITEM(reduced, 2) : Py_None;
        if (copy && state != Py_None) {
            PyObject *done = PyObject_CallMethod(copy, "__setstate__", "O", state);
            if (!done)
                Py_CLEAR(copy);
            Py_XDECREF(done);
        }
    }
    Py_DECREF(reduced);
    return copy;
}

/* A class in Python: its __new__ with the original's args, not its
 * __init__, whose arguments may be other than its args. */
static PyObject *remake_python_class(PyObject *exc)
{
    PyTypeObject *type = Py_TYPE(exc);
    PyObject *args = PyObject_GetAttrString(exc, "args");
    if (!args)
        return NULL;
    PyObject *copy = PyTuple_Check(args) ? type->tp_new(type, args, NULL) : NULL;
    Py_DECREF(args);
    return copy;
}

PyObject *sfpy_exception_copy(PyObject *exc, PyObject *traceback)
{
    PyTypeObject *type = Py_TYPE(exc);
    PyObject *copy = init_is_builtin(type) ? remake_builtin(exc) : remake_python_class(exc);
    if (copy && (!PyObject_TypeCheck(copy, type) || copy_builtin_fields(copy, exc) < 0 ||
                 copy_attributes(copy, exc) < 0 || copy_chain(copy, exc, traceback) < 0))
        Py_CLEAR(copy);
    if (!copy)
        PyErr_Clear();
    return copy;
}
