/*
 * pool_object.c -- _engine.Pool: an sf_pool seen from Python.
 *
 * DESIGN.  The Python executor owns one Pool; every map iterator holds a
 * strong reference to it, so dropping the executor never truncates a map.
 * submit() wraps (future, fn, args, kwargs) in a heap job the engine runs
 * on a worker; the worker completes a real concurrent.futures.Future
 * (future.c), so wait(), as_completed() and asyncio.wrap_future work
 * unchanged.  Shutdown runs in two steps: the engine's cancel/drop
 * callbacks run with the GIL held, then the join runs with the GIL
 * released (workers need the GIL to finish).  A Pool collected while its
 * threads still work (fire-and-forget maps) hands its engine pool and
 * context to the zombie registry (zombies.c).  A Pool made with
 * spawn/reap/lost_error is a process pool: its worker threads each own a
 * worker process (thread_hooks.c) and its jobs run there (process_pool.c).
 * No engine lock is held across any Python call here.  `pool` and `ctx`
 * are set once, in __init__ (under the object's critical section), and
 * never change until dealloc; `shut_down` is atomic.
 */
#include <errno.h>

#include "pool_object.h"
#include "compat.h"
#include "future.h"
#include "map_object.h"
#include "pool_ctx.h"
#include "process_pool.h"
#include "thread_hooks.h"
#include "zombies.h"

typedef struct SfPoolObject {
    PyObject_HEAD
    sf_pool *pool;
    sfpy_pool_ctx *ctx;
    _Atomic int shut_down;
    PyObject *weakreflist;
} SfPoolObject;

/* ---- submit ---------------------------------------------------------- */

typedef struct submit_job {
    sf_job job;
    PyObject *future, *fn, *args, *kwargs;
    sfpy_pool_ctx *ctx; /* the pool's: outlives every job */
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

static int submit_run(sf_job *job)
{
    submit_job *j = (submit_job *)job;
    const sfpy_state *st = j->ctx->state;
    if (sfpy_future_start(st, j->future) <= 0) {
        /* cancelled before it started, or the future is unusable */
    } else if (j->ctx->proc) {
        sfpy_process_run_submitted(j->ctx, j->pool, j->future, j->fn, j->args, j->kwargs,
                                   j->task_timeout);
    } else {
        PyObject *result = PyObject_Call(j->fn, j->args, j->kwargs);
        if (result) {
            sfpy_future_finish(st, j->future, result, NULL);
            Py_DECREF(result);
        } else {
            PyObject *exc = sfpy_fetch_exception();
            sfpy_future_finish(st, j->future, NULL, exc);
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
        PyObject *exc = sfpy_broken_error(j->ctx, 1);
        sfpy_future_drop(j->ctx->state, j->future, exc);
        Py_DECREF(exc);
    } else {
        sfpy_future_drop(j->ctx->state, j->future, NULL);
    }
    submit_job_free(j);
}

static int refuse_new_work(SfPoolObject *self)
{
    if (!self->pool) {
        PyErr_SetString(PyExc_RuntimeError, "Pool.__init__ was not called");
        return -1;
    }
    if (sf_pool_broken(self->pool))
        return sfpy_raise_for_pool_error(self->ctx, -EPIPE);
    /* the exit hook shuts every pool down; say why, as the stdlib does */
    if (atomic_load(&self->ctx->state->interpreter_exiting)) {
        PyErr_SetString(PyExc_RuntimeError, SFPY_EXIT_MESSAGE);
        return -1;
    }
    if (atomic_load(&self->shut_down))
        return sfpy_raise_for_pool_error(self->ctx, -ESHUTDOWN);
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
    PyObject *future = PyObject_CallNoArgs(self->ctx->state->future_type);
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
    j->ctx = self->ctx;
    j->pool = self->pool;
    j->task_timeout = task_timeout;
    int rc = sf_pool_submit(self->pool, &j->job);
    if (rc != 0) {
        submit_job_free(j);
        Py_DECREF(future);
        sfpy_raise_for_pool_error(self->ctx, rc);
        return NULL;
    }
    return future;
}

/* map(fn, iterator, star, window, unordered, timeout, stop_when_dropped[, chunksize,
 *     task_timeout, window_max, result_budget]) */
static PyObject *pool_map(SfPoolObject *self, PyObject *args)
{
    PyObject *timeout, *task_timeout = Py_None;
    sfpy_map_request request = {0};
    if (!PyArg_ParseTuple(args, "OOpnpOp|iOnn", &request.fn, &request.iterator, &request.star,
                          &request.window, &request.unordered, &timeout,
                          &request.stop_when_dropped, &request.chunksize, &task_timeout,
                          &request.window_max, &request.result_budget))
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
    return sfpy_map_iter_new((PyObject *)self, self->ctx, self->pool, &request);
}

/* shutdown(wait, cancel_futures, cancel_maps) */
static PyObject *pool_shutdown(SfPoolObject *self, PyObject *args)
{
    int wait, cancel_futures, cancel_maps;
    if (!PyArg_ParseTuple(args, "ppp", &wait, &cancel_futures, &cancel_maps))
        return NULL;
    if (!self->pool)
        Py_RETURN_NONE;
    atomic_store(&self->shut_down, 1);
    /* step 1, GIL held: cancel callbacks touch futures and Python values */
    sf_pool_shutdown(self->pool, (cancel_futures ? SF_SHUTDOWN_CANCEL_PENDING : 0) |
                                     (cancel_maps ? SF_SHUTDOWN_CANCEL_MAPS : 0));
    /* step 2, GIL released: join; a worker shutting its own pool down
     * cannot join itself, so it only asks (as the stdlib cannot join the
     * current thread either) */
    if (wait && !sf_pool_owns_current_thread(self->pool) && sfpy_pool_join(self->pool) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *pool_get_broken(SfPoolObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->pool && sf_pool_broken(self->pool));
}

static PyObject *pool_get_threads(SfPoolObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(self->pool ? sf_pool_thread_count(self->pool) : 0);
}

static int pool_init_locked(SfPoolObject *self, PyObject *args, PyObject *kwargs)
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
    PyObject *module = PyType_GetModule(Py_TYPE(self));
    if (!module)
        return -1;
    sfpy_zombies_reap(sfpy_state_of(module), 0);
    sfpy_pool_ctx *ctx = sfpy_pool_ctx_new(module, initializer, initargs, prefix, spawn, reap,
                                           lost_error, max_tasks);
    if (!ctx)
        return -1;
    sf_pool_options options = {.max_threads = (unsigned)max_workers,
                               .thread_name_prefix = prefix,
                               .hooks = sfpy_thread_hooks(ctx)};
    int rc = sf_pool_create(&self->pool, &options);
    if (rc != 0) {
        sfpy_pool_ctx_free(ctx);
        errno = -rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->ctx = ctx;
    return 0;
}

/* Once per Pool, even when two threads call __init__ on it at once. */
static int pool_init(SfPoolObject *self, PyObject *args, PyObject *kwargs)
{
    int rc;
    Py_BEGIN_CRITICAL_SECTION(self);
    rc = pool_init_locked(self, args, kwargs);
    Py_END_CRITICAL_SECTION();
    return rc;
}

static void pool_dealloc(SfPoolObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->pool) {
        /* no consumer is left (iterators hold us): what still runs is
         * fire-and-forget work, which finishes; reap() joins it at exit */
        sf_pool_shutdown(self->pool, 0);
        if (!sf_pool_owns_current_thread(self->pool) && sf_pool_try_join(self->pool)) {
            sf_pool_destroy(self->pool);
            sfpy_pool_ctx_free(self->ctx);
        } else {
            sfpy_zombie_add(self->ctx->state, self->pool, self->ctx);
        }
    }
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type: each instance holds it */
}

/* No tp_clear: the context's objects (initializer, spawn, ...) are used by
 * the engine's threads until they are joined, which may be after this
 * object is gone (zombies.c), so they are never cleared here.  A cycle
 * through them (initializer=self.setup) is broken by the collector at the
 * other objects in it. */
static int pool_traverse(SfPoolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return sfpy_pool_ctx_traverse(self->ctx, visit, arg);
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

static PyMemberDef pool_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(SfPoolObject, weakreflist), Py_READONLY,
     NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot pool_slots[] = {
    {Py_tp_doc, "Worker threads of the streamfutures engine."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, pool_init},
    {Py_tp_dealloc, pool_dealloc},
    {Py_tp_traverse, pool_traverse},
    {Py_tp_methods, pool_methods},
    {Py_tp_getset, pool_getset},
    {Py_tp_members, pool_members},
    {0, NULL},
};

PyType_Spec sfpy_pool_spec = {
    .name = "streamfutures._engine.Pool",
    .basicsize = sizeof(SfPoolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = pool_slots,
};
