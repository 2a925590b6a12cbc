/* binding.h -- declarations shared by the files of the CPython binding. */
#ifndef SF_BINDING_H
#define SF_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "streamfutures_proc.h"

/* Objects imported from concurrent.futures at module init. */
typedef struct sf_py_refs {
    PyObject *future_type;       /* streamfutures._future.EngineFuture */
    PyObject *cancelled_error;   /* concurrent.futures.CancelledError */
    PyObject *timeout_error;     /* concurrent.futures.TimeoutError */
    PyObject *broken_thread_pool;/* concurrent.futures.thread.BrokenThreadPool */
    PyObject *broken_process_pool; /* concurrent.futures.process.BrokenProcessPool */
    PyObject *logger;            /* concurrent.futures._base.LOGGER */
    PyObject *thread_enter, *thread_leave; /* streamfutures._threads */
    PyObject *str_set_running, *str_set_result, *str_set_exception, *str_cancel;
    PyObject *str_condition, *str_state, *str_result, *str_exception;
    PyObject *state_pending, *state_running, *state_finished; /* _base constants */
    PyObject *pickle_dumps, *pickle_loads, *pickle_protocol;   /* pickle.dumps/loads, 5 */
    PyObject *exception_with_traceback; /* concurrent.futures.process._ExceptionWithTraceback */
    PyObject *pickling_error;           /* streamfutures.process._pickling_error */
} sf_py_refs;

extern sf_py_refs sf_py;
extern PyTypeObject SfPool_Type;
extern PyTypeObject SfMapIter_Type;

#define SF_BROKEN_MESSAGE \
    "A thread initializer failed, the thread pool is not usable anymore"
/* the stdlib's texts for a process pool that broke, and for its pending work */
#define SF_PROCESS_BROKEN_MESSAGE \
    "A child process terminated abruptly, the process pool is not usable anymore"
#define SF_PENDING_LOST_MESSAGE                                                 \
    "A process in the process pool was terminated abruptly while the future was " \
    "running or pending."
#define SF_SHUTDOWN_MESSAGE "cannot schedule new futures after shutdown"
#define SF_EXIT_MESSAGE "cannot schedule new futures after interpreter shutdown"
#define SF_FORKED_MESSAGE \
    "cannot use an executor in a forked child: its threads belong to the parent process"

/* Set by the package's exit hook: refuse new work from then on. */
extern int sf_interpreter_exiting;

/* compat.c: one exception object in, one out, on every supported Python. */
PyObject *sf_fetch_exception(void);        /* new reference, error cleared */
void sf_raise_exception(PyObject *exc);    /* steals exc */

/* How a process pool makes and buries its worker processes (Python
 * callables of streamfutures.process) and reports lost items. */
typedef struct sf_proc_conf {
    PyObject *spawn;      /* spawn() -> (handle, pid, task_fd, result_fd, ring_fd) | None */
    PyObject *reap;       /* reap(handle) -> exit code, or -signal */
    PyObject *lost_error; /* lost_error(why, status, timeout) -> exception */
    unsigned max_tasks;   /* per process; 0: no limit */
} sf_proc_conf;

/* threads.c: sf_thread_hooks that give each engine thread a PyThreadState
 * once and run the executor's initializer on workers; in a process pool,
 * each worker thread starts and owns one worker process instead. */
typedef struct sf_hook_ctx {
    PyObject *initializer; /* or NULL */
    PyObject *initargs;    /* tuple */
    PyObject *name_prefix; /* str: threads are named "<prefix>_<n>" */
    PyObject *broken_type; /* BrokenThreadPool or BrokenProcessPool */
    const char *broken_message;
    sf_proc_conf *proc;    /* NULL: a thread pool */
} sf_hook_ctx;
sf_thread_hooks sf_python_thread_hooks(sf_hook_ctx *ctx);
/* The worker process of the calling engine thread (NULL if none). */
sf_proc_worker *sf_current_proc_worker(void);
/* Let other threads run while this engine thread waits; then take it back. */
void sf_current_thread_release(void *unused);
void sf_current_thread_reacquire(void *unused);
int sf_proc_worker_spawn(void *ctx, sf_proc_spawned *out);
int sf_proc_worker_reap(void *ctx, void *handle);

/* wire.c: results and exceptions from a worker process. */
typedef struct sf_wire_value {
    uint32_t kind;
    uint32_t len;
    const void *data;
    PyObject *owner;        /* keeps data alive, or NULL */
    char inline_bytes[8];
} sf_wire_value;
PyObject *sf_pickle(PyObject *obj);
PyObject *sf_unpickle(const void *data, uint32_t len);
int sf_wire_encode(PyObject *value, sf_wire_value *out);
void sf_wire_encode_exception(PyObject *exc, sf_wire_value *out);
void sf_wire_release(sf_wire_value *value);
/* A new reference; *failed says it is the item's exception.  NULL with an
 * error set when the bytes could not be read. */
PyObject *sf_wire_decode(uint32_t kind, const void *data, uint32_t len, int *failed);

/* How a task message's items are called: fn(item), fn(*item), or
 * fn(*item[0], **item[1]) (submit).  The mode travels in the message. */
enum call_mode { CALL_ONE = 0, CALL_STAR = 1, CALL_ARGS_KWARGS = 2 };

/* process_serve.c: _engine.serve() */
PyObject *sf_module_serve(PyObject *self, PyObject *args);

/* pool_object.c */
typedef struct SfPoolObject {
    PyObject_HEAD
    sf_pool *pool;
    sf_hook_ctx *hooks;
    int shut_down;
    PyObject *weakreflist;
} SfPoolObject;

int sf_raise_for_pool_error(const sf_hook_ctx *hooks, int rc);

/* map_object.c */
typedef struct sf_map_request {
    PyObject *fn, *iterator;
    int star;             /* fn(*item): several iterables were zipped */
    Py_ssize_t window;    /* 0: unbounded */
    int unordered;
    int stop_when_dropped; /* dropped unstarted: read no more input (3.14's rule) */
    double timeout;       /* whole map, seconds; < 0: none */
    int chunksize;        /* process pools: 0 = adaptive */
    double task_timeout;  /* process pools: per item, seconds; <= 0: none */
} sf_map_request;
PyObject *sf_map_iter_new(SfPoolObject *pool, const sf_map_request *request);

/* process_pool.c: what a process pool's map and submit run on a worker */
typedef struct map_ctx {
    PyObject *fn;
    PyObject *iterator;
    int star;
    int64_t task_timeout_ns; /* 0: none */
    double task_timeout;
    sf_hook_ctx *hooks;
    sf_pool *pool;
} map_ctx;
void sf_proc_map_work_batch(void *ctx, sf_batch *batch);
/* Run fn(*args, **kwargs) for future on this thread's worker process. */
void sf_proc_run_submitted(sf_hook_ctx *hooks, sf_pool *pool, PyObject *future, PyObject *fn,
                           PyObject *args, PyObject *kwargs, double task_timeout);
/* pool_object.c: finish a future without waking anybody if nobody watches */
void sf_future_finish(PyObject *future, PyObject *result, PyObject *exc);
int sf_future_start(PyObject *future); /* 1 run it, 0 cancelled, -1 error */

/* zombies: engine pools whose Python object is gone but whose threads may
 * still be finishing (fire-and-forget work).  Joined by reap(). */
void sf_zombie_add(sf_pool *pool, sf_hook_ctx *hooks);
void sf_zombies_reap(int block);

#endif
