/*
 * module.c -- streamfutures._engine: module set-up (PEP 489 multi-phase
 * init).
 *
 * DESIGN.  Each interpreter that imports the module gets its own module
 * state (state.h): the stdlib objects our objects must interoperate with
 * (Future, CancelledError, TimeoutError, BrokenThreadPool, the
 * concurrent.futures logger, pickle), the heap types (Pool, MapIterator,
 * Broadcast, BroadcastReader),
 * the exit flag and the zombie registry.  Nothing is global, and engine
 * threads attach to the interpreter that made their pool, so the module
 * declares per-interpreter GIL support.  It also declares that it needs
 * no GIL (Py_mod_gil, 3.13+): on a free-threaded build the objects guard
 * their fields with critical sections, the zombie list has a mutex and
 * the flags are atomic.
 */
#include <errno.h>
#include <pthread.h>

#include "state.h"
#include "broadcast.h"
#include "chunk_cursor.h"
#include "map_object.h"
#include "pool_object.h"
#include "process_serve.h"
#include "streamfutures_proc.h"
#include "thread_hooks.h"
#include "wire.h"
#include "worker_process.h"
#include "zombies.h"

static PyObject *module_reap(PyObject *module, PyObject *args)
{
    int block = 1;
    if (!PyArg_ParseTuple(args, "|p", &block))
        return NULL;
    if (sfpy_zombies_reap(sfpy_state_of(module), block) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* wire_encode(value) -> (kind, bytes): a result as a worker sends it. */
static PyObject *module_wire_encode(PyObject *module, PyObject *value)
{
    sfpy_wire_value w;
    if (sfpy_wire_encode(sfpy_state_of(module), value, &w) != 0)
        return NULL;
    PyObject *r = Py_BuildValue("(Iy#)", w.kind, (const char *)w.data, (Py_ssize_t)w.len);
    sfpy_wire_release(&w);
    return r;
}

/* wire_decode(kind, bytes) -> (value, failed): what the parent makes of a
 * reply; for tests and the fuzz harness (tests/fuzz/fuzz_wire.py). */
static PyObject *module_wire_decode(PyObject *module, PyObject *args)
{
    unsigned int kind;
    Py_buffer data;
    int failed;
    if (!PyArg_ParseTuple(args, "Iy*", &kind, &data))
        return NULL;
    if (data.len > (Py_ssize_t)SFPY_MAX_MESSAGE_BYTES) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_OverflowError, "a reply is at most 4 GiB - 1 bytes");
        return NULL;
    }
    PyObject *value =
        sfpy_wire_decode(sfpy_state_of(module), kind, data.buf, (uint32_t)data.len, &failed);
    PyBuffer_Release(&data);
    if (!value)
        return NULL;
    return Py_BuildValue("(Ni)", value, failed);
}

static PyObject *module_version(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    return PyUnicode_FromString(sf_version());
}

static PyObject *module_set_exiting(PyObject *module, PyObject *unused)
{
    (void)unused;
    atomic_store(&sfpy_state_of(module)->interpreter_exiting, 1);
    Py_RETURN_NONE;
}

static PyObject *module_ring_create(PyObject *module, PyObject *args)
{
    Py_ssize_t bytes;
    (void)module;
    if (!PyArg_ParseTuple(args, "n", &bytes))
        return NULL;
    if (bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "bytes must be >= 0");
        return NULL;
    }
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
    {"serve", sfpy_serve, METH_VARARGS,
     "serve(task_fd, result_fd, ring_fd): a worker process's loop (returns when told to stop)."},
    {"version", module_version, METH_NOARGS, "version(): the engine's version (sf_version())."},
    {"wire_encode", module_wire_encode, METH_O,
     "wire_encode(value) -> (kind, bytes): a result as a worker sends it."},
    {"wire_decode", module_wire_decode, METH_VARARGS,
     "wire_decode(kind, bytes) -> (value, failed): a reply as the parent reads it."},
    {"die_with_parent", sfpy_die_with_parent, METH_O,
     "die_with_parent(task_fd): this worker process never outlives its parent."},
    {"lead_process_group", sfpy_lead_process_group, METH_NOARGS,
     "lead_process_group(): what this worker's tasks start ends with it."},
    {"broadcast", sfpy_broadcast, METH_VARARGS,
     "broadcast(iterable, n, buffersize, read_ahead=1) -> (Broadcast, readers): one input "
     "read once by n readers, at most buffersize items (0: no bound) ahead of the slowest "
     "open one; a reader that pulls takes up to read_ahead items while the input is quick."},
    {"reap", module_reap, METH_VARARGS,
     "reap(block=True): join engine pools whose executor is gone."},
    {"set_exiting", module_set_exiting, METH_NOARGS,
     "Refuse new work: the interpreter is shutting down."},
    {NULL, NULL, 0, NULL},
};

/* Every PyObject field of the state, for traverse and clear. */
#define STATE_OBJECTS(X)                                                                  \
    X(pool_type) X(map_iter_type) X(broadcast_type) X(broadcast_reader_type) X(chunk_cursor_type) X(future_type) X(cancelled_error) X(timeout_error)      \
    X(broken_thread_pool) X(logger) X(thread_enter) X(run_pending)                \
    X(thread_leave) X(str_set_running) X(str_set_result) X(str_set_exception)             \
    X(str_cancel) X(str_watch) X(str_condition) X(str_state) X(str_result) X(str_exception)            \
    X(state_pending) X(state_running) X(state_finished) X(pickle_dumps) X(pickle_loads)   \
    X(pickle_protocol) X(exception_with_traceback) X(pickling_error) X(unpickling_error) X(async_results)

static PyObject *import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    PyObject *attr = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    return attr;
}

/* Set *slot from a call that returned a new reference; -1 on error. */
static int keep(PyObject **slot, PyObject *value)
{
    *slot = value;
    return value ? 0 : -1;
}

static int add_type(PyObject *module, PyTypeObject **slot, PyType_Spec *spec)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (!type)
        return -1;
    *slot = (PyTypeObject *)type;
    return PyModule_AddType(module, *slot);
}

/* Process pools fork their workers from engine threads (with the fork
 * start method): in the child, that thread's thread-locals point at the
 * parent's objects, so they are cleared (once per process, whatever the
 * number of interpreters). */
static void forget_engine_thread_in_child(void)
{
    sfpy_thread_hooks_forget_in_child();
    sfpy_worker_process_forget_in_child();
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

static void install_fork_handler(void) { pthread_atfork(NULL, NULL, forget_engine_thread_in_child); }

static int module_exec(PyObject *module)
{
    sfpy_state *st = sfpy_state_of(module);
    pthread_once(&fork_handler_once, install_fork_handler);
    if (add_type(module, &st->pool_type, &sfpy_pool_spec) < 0 ||
        add_type(module, &st->map_iter_type, &sfpy_map_iter_spec) < 0 ||
        add_type(module, &st->broadcast_type, &sfpy_broadcast_spec) < 0 ||
        add_type(module, &st->broadcast_reader_type, &sfpy_broadcast_reader_spec) < 0 ||
        add_type(module, &st->chunk_cursor_type, &sfpy_chunk_cursor_spec) < 0 ||
        PyModule_AddIntConstant(module, "MAP_TAKE_AHEAD", SFPY_TAKE_AHEAD) < 0)
        return -1;
    if (keep(&st->future_type, import_attr("streamfutures._future", "EngineFuture")) < 0 ||
        keep(&st->cancelled_error, import_attr("concurrent.futures", "CancelledError")) < 0 ||
        keep(&st->timeout_error, import_attr("concurrent.futures", "TimeoutError")) < 0 ||
        keep(&st->broken_thread_pool,
             import_attr("concurrent.futures.thread", "BrokenThreadPool")) < 0 ||
        keep(&st->exception_with_traceback,
             import_attr("concurrent.futures.process", "_ExceptionWithTraceback")) < 0 ||
        keep(&st->pickle_dumps, import_attr("pickle", "dumps")) < 0 ||
        keep(&st->pickle_loads, import_attr("pickle", "loads")) < 0 ||
        keep(&st->pickle_protocol, PyLong_FromLong(5)) < 0 ||
        keep(&st->pickling_error, import_attr("streamfutures._remote", "pickling_error")) < 0 ||
        keep(&st->unpickling_error, import_attr("streamfutures._remote", "unpickling_error")) < 0 ||
        keep(&st->async_results, import_attr("streamfutures._aio", "AsyncResults")) < 0 ||
        keep(&st->logger, import_attr("concurrent.futures._base", "LOGGER")) < 0 ||
        keep(&st->thread_enter, import_attr("streamfutures._threads", "enter")) < 0 ||
        keep(&st->thread_leave, import_attr("streamfutures._threads", "leave")) < 0 ||
        keep(&st->run_pending, import_attr("streamfutures._threads", "run_pending")) < 0 ||
        keep(&st->str_set_running, PyUnicode_InternFromString("set_running_or_notify_cancel")) <
            0 ||
        keep(&st->str_set_result, PyUnicode_InternFromString("set_result")) < 0 ||
        keep(&st->str_set_exception, PyUnicode_InternFromString("set_exception")) < 0 ||
        keep(&st->str_cancel, PyUnicode_InternFromString("cancel")) < 0 ||
        keep(&st->str_watch, PyUnicode_InternFromString("_watch")) < 0 ||
        keep(&st->str_condition, PyUnicode_InternFromString("condition")) < 0 ||
        keep(&st->str_state, PyUnicode_InternFromString("_state")) < 0 ||
        keep(&st->str_result, PyUnicode_InternFromString("_result")) < 0 ||
        keep(&st->str_exception, PyUnicode_InternFromString("_exception")) < 0 ||
        keep(&st->state_pending, import_attr("concurrent.futures._base", "PENDING")) < 0 ||
        keep(&st->state_running, import_attr("concurrent.futures._base", "RUNNING")) < 0 ||
        keep(&st->state_finished, import_attr("concurrent.futures._base", "FINISHED")) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    sfpy_state *st = sfpy_state_of(module);
#define VISIT(field) Py_VISIT(st->field);
    STATE_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int module_clear(PyObject *module)
{
    sfpy_state *st = sfpy_state_of(module);
#define CLEAR(field) Py_CLEAR(st->field);
    STATE_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

static void module_free(void *module) { module_clear((PyObject *)module); }

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* every field the binding shares between threads has its own lock or
     * is atomic (see each file's DESIGN), so importing it keeps the GIL off */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_engine",
    .m_doc = "The C engine of streamfutures.",
    .m_size = sizeof(sfpy_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__engine(void) { return PyModuleDef_Init(&engine_module); }
