/*
 * pool_object.c -- _engine.Pool: an sf_pool seen from Python.
 *
 * DESIGN.  The Python executor owns one Pool; every map iterator holds a
 * strong reference to it, so dropping the executor never truncates a map.
 * submit() wraps (future, fn, args, kwargs) in a heap job the engine runs
 * on a worker; the worker completes a real concurrent.futures.Future, so
 * wait(), as_completed() and asyncio.wrap_future work unchanged.  Shutdown
 * runs in two steps: the engine's cancel/drop callbacks run with the GIL
 * held, then the join runs with the GIL released (workers need the GIL to
 * finish).  A Pool collected while its threads still work (fire-and-forget
 * maps) becomes a zombie that reap() joins at exit.  A Pool made with
 * spawn/reap/lost_error is a process pool: its worker threads each own a
 * worker process (threads.c) and its jobs run there (process_pool.c); its
 * broken pool raises BrokenProcessPool with the stdlib's texts.  No engine
 * lock is held across any Python call here; all state is guarded by the GIL.
 */
#include <errno.h>

#include "binding.h"

int sf_interpreter_exiting;

/* ---- submit ---------------------------------------------------------- */

typedef struct submit_job {
    sf_job job;
    PyObject *future, *fn, *args, *kwargs;
    sf_hook_ctx *hooks; /* the pool's: outlives every job */
    sf_pool *pool;
    double task_timeout; /* process pools; <= 0: none */
} submit_job;

static void submit_job_free(submit_job *j)
{
    Py_DECREF(j->future);
    Py_DECREF(j->fn);
    Py_DECREF(j->args);
    Py_XDECREF(j->kwargs);
    PyMem_RawFree(j);
}

static void report(PyObject *done, PyObject *future)
{
    if (!done)
        PyErr_WriteUnraisable(future);
    Py_XDECREF(done);
}

/* A future nobody can be waiting on has no Condition yet (see
 * streamfutures/_future.py): its __dict__ (new reference) if so, else NULL.
 * The callers run with the GIL held and call no Python code between this
 * check and their writes, so no other thread can start watching meanwhile. */
static PyObject *unwatched_dict(PyObject *future)
{
    PyObject *dict = PyObject_GenericGetDict(future, NULL);
    if (dict && !PyDict_GetItemWithError(dict, sf_py.str_condition) && !PyErr_Occurred())
        return dict;
    PyErr_Clear();
    Py_XDECREF(dict);
    return NULL;
}

/* Finish an unwatched future by setting its state directly; 1 if done, 0 if
 * the caller must take the ordinary, notifying path. */
static int complete_quietly(PyObject *future, PyObject *result, PyObject *exc)
{
    PyObject *dict = unwatched_dict(future);
    if (!dict)
        return 0;
    int quiet = (result ? PyDict_SetItem(dict, sf_py.str_result, result)
                        : PyDict_SetItem(dict, sf_py.str_exception, exc)) == 0 &&
                PyDict_SetItem(dict, sf_py.str_state, sf_py.state_finished) == 0;
    PyErr_Clear();
    Py_DECREF(dict);
    return quiet;
}

/* Mark an unwatched pending future running; 1 if done, 0 if the caller must
 * call set_running_or_notify_cancel(). */
static int start_quietly(PyObject *future)
{
    PyObject *dict = unwatched_dict(future);
    if (!dict)
        return 0;
    int quiet = PyDict_GetItemWithError(dict, sf_py.str_state) == sf_py.state_pending &&
                PyDict_SetItem(dict, sf_py.str_state, sf_py.state_running) == 0;
    PyErr_Clear();
    Py_DECREF(dict);
    return quiet;
}

int sf_future_start(PyObject *future)
{
    if (start_quietly(future))
        return 1;
    PyObject *running = PyObject_CallMethodNoArgs(future, sf_py.str_set_running);
    int run = running ? PyObject_IsTrue(running) : -1;
    Py_XDECREF(running);
    if (run < 0)
        PyErr_WriteUnraisable(future);
    return run;
}

void sf_future_finish(PyObject *future, PyObject *result, PyObject *exc)
{
    if (complete_quietly(future, result, exc))
        return;
    if (result)
        report(PyObject_CallMethodOneArg(future, sf_py.str_set_result, result), future);
    else
        report(PyObject_CallMethodOneArg(future, sf_py.str_set_exception, exc), future);
}

static int submit_run(sf_job *job)
{
    submit_job *j = (submit_job *)job;
    if (sf_future_start(j->future) <= 0) {
        /* cancelled before it started, or the future is unusable */
    } else if (j->hooks->proc) {
        sf_proc_run_submitted(j->hooks, j->pool, j->future, j->fn, j->args, j->kwargs,
                              j->task_timeout);
    } else {
        PyObject *result = PyObject_Call(j->fn, j->args, j->kwargs);
        if (result) {
            sf_future_finish(j->future, result, NULL);
            Py_DECREF(result);
        } else {
            PyObject *exc = sf_fetch_exception();
            sf_future_finish(j->future, NULL, exc);
            Py_DECREF(exc);
        }
    }
    submit_job_free(j);
    return SF_JOB_DONE;
}

static void submit_drop(sf_job *job, int reason)
{
    submit_job *j = (submit_job *)job;
    if (reason == -EPIPE) {
        PyObject *exc = PyObject_CallFunction(j->hooks->broken_type, "s",
                                              j->hooks->proc ? SF_PENDING_LOST_MESSAGE
                                                             : j->hooks->broken_message);
        report(exc ? PyObject_CallMethodOneArg(j->future, sf_py.str_set_exception, exc) : NULL,
               j->future);
        Py_XDECREF(exc);
    } else {
        report(PyObject_CallMethodNoArgs(j->future, sf_py.str_cancel), j->future);
    }
    submit_job_free(j);
}

int sf_raise_for_pool_error(const sf_hook_ctx *hooks, int rc)
{
    if (rc == -EPIPE)
        PyErr_SetString(hooks->broken_type, hooks->broken_message);
    else if (rc == -ESHUTDOWN)
        PyErr_SetString(PyExc_RuntimeError, SF_SHUTDOWN_MESSAGE);
    else if (rc == -ENOMEM)
        PyErr_NoMemory();
    else if (rc == -ECHILD)
        PyErr_SetString(PyExc_RuntimeError, SF_FORKED_MESSAGE);
    else
        PyErr_SetString(PyExc_RuntimeError, "can't start new thread");
    return -1;
}

static int refuse_new_work(SfPoolObject *self)
{
    if (sf_pool_broken(self->pool))
        return sf_raise_for_pool_error(self->hooks, -EPIPE);
    /* the exit hook shuts every pool down; say why, as the stdlib does */
    if (sf_interpreter_exiting) {
        PyErr_SetString(PyExc_RuntimeError, SF_EXIT_MESSAGE);
        return -1;
    }
    if (self->shut_down)
        return sf_raise_for_pool_error(self->hooks, -ESHUTDOWN);
    return 0;
}

/* submit(fn, args, kwargs[, task_timeout]) -> Future */
static PyObject *pool_submit(SfPoolObject *self, PyObject *const *argv, Py_ssize_t argc)
{
    double task_timeout = 0;
    if (argc < 3 || argc > 4 || !PyTuple_Check(argv[1]) ||
        (argv[2] != Py_None && !PyDict_Check(argv[2]))) {
        PyErr_SetString(PyExc_TypeError,
                        "submit(fn, args: tuple, kwargs: dict | None[, task_timeout])");
        return NULL;
    }
    if (argc == 4 && argv[3] != Py_None) {
        task_timeout = PyFloat_AsDouble(argv[3]);
        if (task_timeout == -1 && PyErr_Occurred())
            return NULL;
    }
    if (refuse_new_work(self) < 0)
        return NULL;
    PyObject *future = PyObject_CallNoArgs(sf_py.future_type);
    if (!future)
        return NULL;
    submit_job *j = PyMem_RawMalloc(sizeof *j);
    if (!j) {
        Py_DECREF(future);
        return PyErr_NoMemory();
    }
    j->job.run = submit_run;
    j->job.drop = submit_drop;
    j->future = Py_NewRef(future);
    j->fn = Py_NewRef(argv[0]);
    j->args = Py_NewRef(argv[1]);
    j->kwargs = argv[2] == Py_None || PyDict_GET_SIZE(argv[2]) == 0 ? NULL : Py_NewRef(argv[2]);
    j->hooks = self->hooks;
    j->pool = self->pool;
    j->task_timeout = task_timeout;
    int rc = sf_pool_submit(self->pool, &j->job);
    if (rc != 0) {
        submit_job_free(j);
        Py_DECREF(future);
        sf_raise_for_pool_error(self->hooks, rc);
        return NULL;
    }
    return future;
}

/* map(fn, iterator, star, window, unordered, timeout, stop_when_dropped[, chunksize,
 *     task_timeout]) */
static PyObject *pool_map(SfPoolObject *self, PyObject *args)
{
    PyObject *timeout, *task_timeout = Py_None;
    sf_map_request request = {0};
    if (!PyArg_ParseTuple(args, "OOpnpOp|iO", &request.fn, &request.iterator, &request.star,
                          &request.window, &request.unordered, &timeout,
                          &request.stop_when_dropped, &request.chunksize, &task_timeout))
        return NULL;
    if (refuse_new_work(self) < 0)
        return NULL;
    request.timeout = -1;
    if (timeout != Py_None) {
        request.timeout = PyFloat_AsDouble(timeout);
        if (request.timeout == -1 && PyErr_Occurred())
            return NULL;
        if (request.timeout < 0)
            request.timeout = 0;
    }
    if (task_timeout != Py_None) {
        request.task_timeout = PyFloat_AsDouble(task_timeout);
        if (request.task_timeout == -1 && PyErr_Occurred())
            return NULL;
    }
    return sf_map_iter_new(self, &request);
}

/* shutdown(wait, cancel_futures, cancel_maps) */
static PyObject *pool_shutdown(SfPoolObject *self, PyObject *args)
{
    int wait, cancel_futures, cancel_maps;
    if (!PyArg_ParseTuple(args, "ppp", &wait, &cancel_futures, &cancel_maps))
        return NULL;
    self->shut_down = 1;
    /* step 1, GIL held: cancel callbacks touch futures and Python values */
    sf_pool_shutdown(self->pool, (cancel_futures ? SF_SHUTDOWN_CANCEL_PENDING : 0) |
                                     (cancel_maps ? SF_SHUTDOWN_CANCEL_MAPS : 0));
    /* step 2, GIL released: join; a worker shutting its own pool down
     * cannot join itself, so it only asks (as the stdlib cannot join the
     * current thread either) */
    if (wait && !sf_pool_owns_current_thread(self->pool)) {
        Py_BEGIN_ALLOW_THREADS
        sf_pool_shutdown(self->pool, SF_SHUTDOWN_WAIT);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *pool_get_broken(SfPoolObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(sf_pool_broken(self->pool));
}

static PyObject *pool_get_threads(SfPoolObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(sf_pool_thread_count(self->pool));
}

static int pool_init(SfPoolObject *self, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t max_workers;
    const char *prefix;
    PyObject *initializer, *initargs, *spawn = NULL, *reap = NULL, *lost_error = NULL;
    unsigned max_tasks = 0;
    static char *names[] = {"max_workers", "thread_name_prefix", "initializer", "initargs",
                            "spawn", "reap", "lost_error", "max_tasks", NULL};
    if (self->pool) {
        PyErr_SetString(PyExc_RuntimeError, "Pool already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nsOO!|$OOOI", names, &max_workers, &prefix,
                                     &initializer, &PyTuple_Type, &initargs, &spawn, &reap,
                                     &lost_error, &max_tasks))
        return -1;
    if (spawn && (!reap || !lost_error)) {
        PyErr_SetString(PyExc_TypeError, "a process pool needs spawn, reap and lost_error");
        return -1;
    }
    if (max_workers <= 0 || max_workers > 100000) {
        PyErr_SetString(PyExc_ValueError, "max_workers must be greater than 0");
        return -1;
    }
    sf_zombies_reap(0);
    self->hooks = PyMem_RawCalloc(1, sizeof *self->hooks);
    if (!self->hooks) {
        PyErr_NoMemory();
        return -1;
    }
    self->hooks->initializer = initializer == Py_None ? NULL : Py_NewRef(initializer);
    self->hooks->initargs = Py_NewRef(initargs);
    self->hooks->name_prefix = PyUnicode_FromString(prefix);
    if (!self->hooks->name_prefix)
        return -1;
    self->hooks->broken_type = Py_NewRef(spawn ? sf_py.broken_process_pool
                                               : sf_py.broken_thread_pool);
    self->hooks->broken_message = spawn ? SF_PROCESS_BROKEN_MESSAGE : SF_BROKEN_MESSAGE;
    if (spawn) {
        self->hooks->proc = PyMem_RawCalloc(1, sizeof *self->hooks->proc);
        if (!self->hooks->proc) {
            PyErr_NoMemory();
            return -1;
        }
        self->hooks->proc->spawn = Py_NewRef(spawn);
        self->hooks->proc->reap = Py_NewRef(reap);
        self->hooks->proc->lost_error = Py_NewRef(lost_error);
        self->hooks->proc->max_tasks = max_tasks;
    }
    sf_pool_options options = {.max_threads = (unsigned)max_workers,
                               .thread_name_prefix = prefix,
                               .hooks = sf_python_thread_hooks(self->hooks)};
    int rc = sf_pool_create(&self->pool, &options);
    if (rc != 0) {
        errno = -rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static void hooks_free(sf_hook_ctx *hooks)
{
    if (!hooks)
        return;
    Py_XDECREF(hooks->initializer);
    Py_XDECREF(hooks->initargs);
    Py_XDECREF(hooks->name_prefix);
    Py_XDECREF(hooks->broken_type);
    if (hooks->proc) {
        Py_XDECREF(hooks->proc->spawn);
        Py_XDECREF(hooks->proc->reap);
        Py_XDECREF(hooks->proc->lost_error);
        PyMem_RawFree(hooks->proc);
    }
    PyMem_RawFree(hooks);
}

static void pool_dealloc(SfPoolObject *self)
{
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->pool) {
        /* no consumer is left (iterators hold us): what still runs is
         * fire-and-forget work, which finishes; reap() joins it at exit */
        sf_pool_shutdown(self->pool, 0);
        if (!sf_pool_owns_current_thread(self->pool) && sf_pool_try_join(self->pool)) {
            sf_pool_destroy(self->pool);
            hooks_free(self->hooks);
        } else {
            sf_zombie_add(self->pool, self->hooks);
        }
    } else {
        hooks_free(self->hooks);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- zombies --------------------------------------------------------- */

typedef struct zombie {
    sf_pool *pool;
    sf_hook_ctx *hooks;
    struct zombie *next;
} zombie;

static zombie *zombies; /* guarded by the GIL */

void sf_zombie_add(sf_pool *pool, sf_hook_ctx *hooks)
{
    zombie *z = PyMem_RawMalloc(sizeof *z);
    if (!z)
        abort(); /* losing track of live threads is worse than stopping */
    z->pool = pool;
    z->hooks = hooks;
    z->next = zombies;
    zombies = z;
}

void sf_zombies_reap(int block)
{
    zombie **link = &zombies;
    while (*link) {
        zombie *z = *link;
        if (sf_pool_owns_current_thread(z->pool)) {
            link = &z->next;
            continue;
        }
        if (block) {
            *link = z->next; /* unlink first: others may reap while we wait */
            Py_BEGIN_ALLOW_THREADS
            sf_pool_shutdown(z->pool, SF_SHUTDOWN_WAIT);
            Py_END_ALLOW_THREADS
        } else if (sf_pool_try_join(z->pool)) {
            *link = z->next;
        } else {
            link = &z->next;
            continue;
        }
        sf_pool_destroy(z->pool);
        hooks_free(z->hooks);
        PyMem_RawFree(z);
        link = &zombies; /* the list may have changed while unlocked */
    }
}

static PyMethodDef pool_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))pool_submit, METH_FASTCALL,
     "submit(fn, args, kwargs[, task_timeout]) -> concurrent.futures.Future"},
    {"map", (PyCFunction)pool_map, METH_VARARGS,
     "map(fn, iterator, star, window, unordered, timeout, stop_when_dropped[, chunksize, "
     "task_timeout])"},
    {"shutdown", (PyCFunction)pool_shutdown, METH_VARARGS,
     "shutdown(wait, cancel_futures, cancel_maps)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef pool_getset[] = {
    {"broken", (getter)pool_get_broken, NULL, "an initializer failed", NULL},
    {"thread_count", (getter)pool_get_threads, NULL, "threads started and not joined", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject SfPool_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamfutures._engine.Pool",
    .tp_basicsize = sizeof(SfPoolObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Worker threads of the streamfutures engine.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pool_init,
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_methods = pool_methods,
    .tp_getset = pool_getset,
    .tp_weaklistoffset = offsetof(SfPoolObject, weakreflist),
};
