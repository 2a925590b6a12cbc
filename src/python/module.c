/*
 * module.c -- streamfutures._engine: module set-up.
 *
 * DESIGN.  Imports the stdlib types our objects must interoperate with
 * (Future, CancelledError, TimeoutError, BrokenThreadPool, the
 * concurrent.futures logger) once, and exposes Pool, MapIterator, the
 * exit hook's reap() and the interpreter-exit flag.  The module keeps the
 * GIL (no Py_mod_gil declaration): the binding relies on it to guard the
 * zombie list and the shutdown flags.  No locks of its own.
 */
#include <errno.h>

#include "binding.h"

sf_py_refs sf_py;

static PyObject *import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    PyObject *attr = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    return attr;
}

static PyObject *module_reap(PyObject *self, PyObject *args)
{
    int block = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "|p", &block))
        return NULL;
    sf_zombies_reap(block);
    Py_RETURN_NONE;
}

static PyObject *module_set_exiting(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    sf_interpreter_exiting = 1;
    Py_RETURN_NONE;
}

static PyObject *module_ring_create(PyObject *self, PyObject *args)
{
    Py_ssize_t bytes;
    (void)self;
    if (!PyArg_ParseTuple(args, "n", &bytes))
        return NULL;
    int fd = sf_proc_ring_create((size_t)bytes);
    if (fd < 0) {
        errno = -fd;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(fd);
}

static PyMethodDef module_methods[] = {
    {"ring_create", module_ring_create, METH_VARARGS,
     "ring_create(bytes) -> fd of a shared-memory result ring for one worker process."},
    {"serve", sf_module_serve, METH_VARARGS,
     "serve(task_fd, result_fd, ring_fd): a worker process's loop (returns when told to stop)."},
    {"reap", module_reap, METH_VARARGS,
     "reap(block=True): join engine pools whose executor is gone."},
    {"set_exiting", module_set_exiting, METH_NOARGS,
     "Refuse new work: the interpreter is shutting down."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT, "_engine", "The C engine of streamfutures.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__engine(void)
{
    PyObject *m;
    if (PyType_Ready(&SfPool_Type) < 0 || PyType_Ready(&SfMapIter_Type) < 0)
        return NULL;
    sf_py.future_type = import_attr("streamfutures._future", "EngineFuture");
    sf_py.cancelled_error = import_attr("concurrent.futures", "CancelledError");
    sf_py.timeout_error = import_attr("concurrent.futures", "TimeoutError");
    sf_py.broken_thread_pool = import_attr("concurrent.futures.thread", "BrokenThreadPool");
    sf_py.broken_process_pool = import_attr("concurrent.futures.process", "BrokenProcessPool");
    sf_py.exception_with_traceback =
        import_attr("concurrent.futures.process", "_ExceptionWithTraceback");
    sf_py.pickle_dumps = import_attr("pickle", "dumps");
    sf_py.pickle_loads = import_attr("pickle", "loads");
    sf_py.pickle_protocol = PyLong_FromLong(5);
    sf_py.pickling_error = import_attr("streamfutures._remote", "pickling_error");
    sf_py.logger = import_attr("concurrent.futures._base", "LOGGER");
    sf_py.thread_enter = import_attr("streamfutures._threads", "enter");
    sf_py.thread_leave = import_attr("streamfutures._threads", "leave");
    sf_py.str_set_running = PyUnicode_InternFromString("set_running_or_notify_cancel");
    sf_py.str_set_result = PyUnicode_InternFromString("set_result");
    sf_py.str_set_exception = PyUnicode_InternFromString("set_exception");
    sf_py.str_cancel = PyUnicode_InternFromString("cancel");
    sf_py.str_condition = PyUnicode_InternFromString("_condition");
    sf_py.str_state = PyUnicode_InternFromString("_state");
    sf_py.str_result = PyUnicode_InternFromString("_result");
    sf_py.str_exception = PyUnicode_InternFromString("_exception");
    sf_py.state_pending = import_attr("concurrent.futures._base", "PENDING");
    sf_py.state_running = import_attr("concurrent.futures._base", "RUNNING");
    sf_py.state_finished = import_attr("concurrent.futures._base", "FINISHED");
    if (PyErr_Occurred())
        return NULL;
    m = PyModule_Create(&engine_module);
    if (!m)
        return NULL;
    Py_INCREF(&SfPool_Type);
    Py_INCREF(&SfMapIter_Type);
    if (PyModule_AddObject(m, "Pool", (PyObject *)&SfPool_Type) < 0 ||
        PyModule_AddObject(m, "MapIterator", (PyObject *)&SfMapIter_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
