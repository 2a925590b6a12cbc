/*
 * map_object.c -- the iterator returned by Executor.map: an sf_map whose
 * items, results and errors are Python objects.
 *
 * DESIGN.  The engine calls pull/work/discard/destroy on threads attached
 * to the interpreter (or on this thread), never with an engine lock held,
 * so they are plain Python C-API calls.  next() first polls attached (a
 * ready result costs no GIL hand-off); only when nothing is ready does it
 * release the GIL and sleep, in slices so that signal handlers run (Ctrl-C
 * raises KeyboardInterrupt promptly).  The iterator's fields are guarded
 * by its critical section (the GIL where there is one).  With the adaptive
 * window, a poll that finds a result ready also takes the small finished
 * ones right behind it (sf_map_next_many, at most SFPY_TAKE_AHEAD, 64 KiB):
 * they are handed out from `ahead` before the map is asked again, count as
 * taken in stats() only once handed out, and are dropped by an early end.
 * `ahead` has a lock of its own (ahead_lock, a leaf: nothing else is taken
 * and no Python code runs while it is held; with a GIL, the GIL), so that
 * on a free-threaded build next() hands out a result taken ahead without
 * the critical section; what refills or empties it also holds that.
 * A thread inside
 * sf_map_next is counted in `inside`, and the map is closed only when
 * nobody is, so it is never freed under a thread using it.
 * The iterator owns the consumer reference: close() or collecting a started
 * iterator cancels what has not started; collecting one that was never
 * started detaches it, so fire-and-forget `ex.map(f, xs)` still runs every
 * item, unless the map was given an explicit buffersize: then, as in
 * Python 3.14, it abandons it (what was acquired runs, no more input is
 * read), so a dropped map over an endless input ends.  It holds the Pool, so dropping the executor never truncates it,
 * and it keeps no reference to a result it has yielded.  On a process pool
 * the work stage is process_pool.c's batch op, with larger, time-sized
 * batches (a message per batch) or the user's chunksize.
 */
#include <errno.h>
#include <string.h>

#include "map_object.h"
#include "compat.h"
#include "map_ctx.h"
#include "process_pool.h"
#include "result_size.h"
#include "thread_hooks.h"


/* process pools: adaptive batches aim at this much work per message.  Each
 * message costs the parent wake-ups, which on a machine with as many
 * workers as cores are taken from the workers, so messages are long; a
 * map's last items are claimed in smaller batches (a fair share of what is
 * ready), so the ends stay balanced.  bench/bench_process.py measures it. */
#define PROCESS_BATCH_NS 40000000
#define PROCESS_MAX_BATCH 4096

typedef struct SfMapIterObject {
    PyObject_HEAD
    sf_map *map;      /* NULL once finished or closed */
    PyObject *pool;   /* the Pool object: keeps the engine alive while we iterate */
    sfpy_pool_ctx *pool_ctx; /* the Pool's, alive as long as `pool` */
    int64_t deadline; /* -1: none */
    int started;
    int stop_when_dropped; /* dropped before it started: abandon, not detach */
    int inside;       /* threads inside sf_map_next on `map` */
    /* results taken ahead (sf_map_next_many), handed out before the map is
     * asked again; only with the adaptive window, whose bound is in bytes
     * (an explicit buffersize stays exact) */
    int take_ahead;   /* the most to take ahead: SFPY_TAKE_AHEAD or 0 */
    sfpy_leaf_lock ahead_lock; /* guards ahead_next, ahead_len, ahead[], ahead_dropped */
    int ahead_next, ahead_len;
    uint64_t ahead_dropped; /* taken ahead, then discarded by an early end */
    PyObject *ahead[SFPY_TAKE_AHEAD];
    unsigned char ahead_failed[SFPY_TAKE_AHEAD];
    sf_map_stats last_stats; /* kept when the map is let go, for stats() after the end */
    PyObject *on_finish; /* called once when the map ends or is let go (a progress bar) */
    PyObject *weakreflist;
} SfMapIterObject;

/* The map is over: tell whoever asked (once) how many results it gave,
 * keeping any exception that is being raised. */
static void run_on_finish(SfMapIterObject *it)
{
    PyObject *callback = it->on_finish;
    if (!callback)
        return;
    it->on_finish = NULL;
    PyObject *pending = PyErr_Occurred() ? sfpy_fetch_exception() : NULL;
    PyObject *r = PyObject_CallFunction(callback, "K", (unsigned long long)it->last_stats.taken);
    if (!r)
        PyErr_WriteUnraisable(callback);
    Py_XDECREF(r);
    Py_DECREF(callback);
    if (pending)
        sfpy_raise_exception(pending);
}

static int take_or_not(SfMapIterObject *it, PyObject **value, int wait);
#define take(it, value) take_or_not((it), (value), 1)
#define NOTHING_READY 2

static enum sf_pull ctx_pull(void *raw, void **item)
{
    sfpy_map_ctx *ctx = raw;
    sfpy_thread_tick(ctx->pool_ctx->state, 1);
    if (ctx->upstream_map) {
        /* straight from the previous map's window; its item errors go on */
        PyObject *value = NULL;
        int got = take((SfMapIterObject *)ctx->iterator, &value);
        if (got == 1) {
            *item = sfpy_carry_error(value);
            return SF_PULL_ITEM;
        }
        if (got == 0) {
            *item = value;
            return SF_PULL_ITEM;
        }
        if (!PyErr_Occurred())
            return SF_PULL_END;
        *item = sfpy_fetch_exception();
        return SF_PULL_ERROR;
    }
    PyObject *next = PyIter_Next(ctx->iterator);
    if (next) {
        *item = next;
        return SF_PULL_ITEM;
    }
    if (!PyErr_Occurred())
        return SF_PULL_END;
    *item = sfpy_fetch_exception();
    return SF_PULL_ERROR;
}

/* An iterator over something already in memory (a list, a tuple, a
 * range): its next never waits and runs no Python code, so the engine may
 * pull it several items at a time. */
static int never_blocks(PyObject *iterator)
{
    PyTypeObject *type = Py_TYPE(iterator);
    return type == &PyListIter_Type || type == &PyTupleIter_Type || type == &PyRangeIter_Type ||
           type == &PyLongRangeIter_Type;
}

static int ctx_work(void *raw, void **value)
{
    sfpy_map_ctx *ctx = raw;
    sfpy_thread_tick(ctx->pool_ctx->state, 1);
    if (sfpy_is_carried(*value)) { /* failed upstream: pass it on */
        *value = sfpy_carried(*value);
        return 1;
    }
    PyObject *item = *value;
    PyObject *result = ctx->star ? PyObject_Call(ctx->fn, item, NULL)
                                 : PyObject_CallOneArg(ctx->fn, item);
    Py_DECREF(item); /* the input item is not needed once it ran */
    if (result) {
        *value = result;
        return 0;
    }
    *value = sfpy_fetch_exception();
    return 1;
}

/* sys.getsizeof's answer, on the worker that made the result; a large
 * result counts towards running the thread's pending work (which frees
 * the ones the consumer dropped) as that many more items. */
static size_t ctx_result_bytes(void *raw, const void *value)
{
    sfpy_map_ctx *ctx = raw;
    size_t bytes = sfpy_result_bytes((PyObject *)value);
    size_t weight = bytes / SFPY_RUN_PENDING_ITEM_BYTES;
    if (weight)
        sfpy_thread_tick(ctx->pool_ctx->state,
                         weight < SFPY_RUN_PENDING_EVERY ? (unsigned)weight : SFPY_RUN_PENDING_EVERY);
    return bytes;
}

static void ctx_discard(void *raw, void *value)
{
    (void)raw;
    Py_XDECREF(sfpy_carried(value));
}

static void ctx_destroy(void *raw)
{
    sfpy_map_ctx *ctx = raw;
    Py_DECREF(ctx->fn);
    Py_DECREF(ctx->iterator);
    PyMem_RawFree(ctx);
}

static const sf_map_ops python_map_ops = {.pull = ctx_pull,
                                          .work = ctx_work,
                                          .discard = ctx_discard,
                                          .destroy = ctx_destroy,
                                          .result_bytes = ctx_result_bytes};

/* a process pool: each claimed batch goes to the worker thread's process */
static const sf_map_ops process_map_ops = {.pull = ctx_pull,
                                           .discard = ctx_discard,
                                           .destroy = ctx_destroy,
                                           .work_batch = sfpy_process_map_batch,
                                           .result_bytes = ctx_result_bytes};

PyObject *sfpy_map_iter_new(PyObject *owner, sfpy_pool_ctx *pool_ctx, sf_pool *pool,
                            const sfpy_map_request *rq)
{
    SfMapIterObject *it = PyObject_GC_New(SfMapIterObject, pool_ctx->state->map_iter_type);
    if (!it)
        return NULL;
    /* what dealloc reads is set before anything can fail */
    it->map = NULL;
    it->weakreflist = NULL;
    it->on_finish = NULL;
    it->ahead_next = it->ahead_len = 0;
    it->ahead_dropped = 0;
    SFPY_LEAF_LOCK_INIT(&it->ahead_lock);
    it->pool = Py_NewRef(owner);
    sfpy_map_ctx *ctx = PyMem_RawMalloc(sizeof *ctx);
    if (!ctx) {
        Py_DECREF(it);
        return PyErr_NoMemory();
    }
    it->pool_ctx = pool_ctx;
    int64_t timeout_ns = rq->timeout < 0 ? -1 : sfpy_timeout_ns(rq->timeout);
    it->deadline = timeout_ns < 0 ? -1 : sf_now_ns() + timeout_ns;
    it->started = 0;
    it->stop_when_dropped = rq->stop_when_dropped;
    it->inside = 0;
    it->take_ahead = rq->window > 0 && rq->window_max > rq->window ? SFPY_TAKE_AHEAD : 0;
    memset(&it->last_stats, 0, sizeof it->last_stats);
    ctx->fn = Py_NewRef(rq->fn);
    ctx->iterator = Py_NewRef(rq->iterator);
    ctx->upstream_map = Py_TYPE(rq->iterator) == pool_ctx->state->map_iter_type;
    ctx->star = rq->star;
    ctx->task_timeout = rq->task_timeout;
    ctx->task_timeout_ns = rq->task_timeout > 0 ? sfpy_timeout_ns(rq->task_timeout) : 0;
    if (ctx->task_timeout_ns < 0)
        ctx->task_timeout_ns = 0; /* too long to ever expire: none */
    ctx->pool_ctx = pool_ctx;
    ctx->pool = pool;
    sf_map_options options = {.window = rq->window > 0 ? (size_t)rq->window : SF_WINDOW_UNBOUNDED,
                              .unordered = rq->unordered,
                              .pull_never_blocks = never_blocks(rq->iterator)};
    /* adaptive (threads: window_max > window), or only shrinking for the
     * results' budget (processes: window_max == window) */
    if (rq->window > 0 && rq->window_max >= rq->window) {
        options.window_max = (size_t)rq->window_max;
        options.result_budget = rq->result_budget > 0 ? (size_t)rq->result_budget : 0;
    }
    const sf_map_ops *ops = &python_map_ops;
    if (pool_ctx->proc) {
        /* a message per batch: aim for batches of PROCESS_BATCH_NS, but
         * keep at least two batches per worker inside the window so none
         * waits */
        ops = &process_map_ops;
        options.batch = rq->chunksize;
        options.batch_ns = PROCESS_BATCH_NS;
        options.max_batch = PROCESS_MAX_BATCH;
        unsigned workers = sf_pool_max_threads(pool);
        if (rq->window > 0 && (size_t)options.max_batch * 2 * workers > (size_t)rq->window)
            options.max_batch = (int)(rq->window / (2 * (Py_ssize_t)workers));
        if (options.max_batch < 1)
            options.max_batch = 1;
    }
    int rc = sf_map_create(&it->map, pool, ops, ctx, &options);
    if (rc != 0) {
        ctx_destroy(ctx);
        Py_DECREF(it);
        return sfpy_raise_for_pool_error(pool_ctx, rc), NULL;
    }
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

/* Results taken ahead and not handed out: discarded when the iteration
 * ends early, and counted so stats() leaves them out.  Emptied (moved to
 * dropped[], their count returned) before any is released by
 * release_dropped (a finalizer may come back here). */
static int empty_taken_ahead(SfMapIterObject *it, PyObject **dropped)
{
    sfpy_leaf_lock_acquire(&it->ahead_lock);
    int n = it->ahead_len - it->ahead_next;
    memcpy(dropped, it->ahead + it->ahead_next, (size_t)n * sizeof *dropped);
    it->ahead_next = it->ahead_len = 0;
    it->ahead_dropped += (uint64_t)n;
    sfpy_leaf_lock_release(&it->ahead_lock);
    return n;
}

static void release_dropped(PyObject **dropped, int n)
{
    for (int k = 0; k < n; k++)
        Py_DECREF(dropped[k]);
}

static void drop_taken_ahead(SfMapIterObject *it)
{
    PyObject *dropped[SFPY_TAKE_AHEAD];
    release_dropped(dropped, empty_taken_ahead(it, dropped));
}

/* The map's stats, counting as taken only the results handed out. */
static void read_stats(SfMapIterObject *it, sf_map *map, sf_map_stats *st)
{
    sf_map_get_stats(map, st);
    sfpy_leaf_lock_acquire(&it->ahead_lock);
    st->taken -= (uint64_t)(it->ahead_len - it->ahead_next) + it->ahead_dropped;
    sfpy_leaf_lock_release(&it->ahead_lock);
}

/* The next result taken ahead: its failed flag (0 or 1) with the result in
 * *out, or -1 when none is left. */
static int pop_taken_ahead(SfMapIterObject *it, PyObject **out)
{
    int failed = -1;
    sfpy_leaf_lock_acquire(&it->ahead_lock);
    if (it->ahead_next < it->ahead_len) {
        int k = it->ahead_next++;
        *out = it->ahead[k];
        failed = it->ahead_failed[k];
    }
    sfpy_leaf_lock_release(&it->ahead_lock);
    return failed;
}

/* End the iteration.  Another thread may be inside sf_map_next on this
 * map (asleep there with the GIL released, its critical section
 * suspended): then only cancel, which makes it return SF_END, and let the
 * last one out drop the engine reference. */
static void finish(SfMapIterObject *it)
{
    sf_map *map = it->map;
    if (!map)
        return;
    if (it->inside) {
        sf_map_cancel(map);
        drop_taken_ahead(it);
        return;
    }
    /* emptied first: next() hands out what was taken ahead with no
     * critical section, and the last stats must count each it handed out */
    PyObject *dropped[SFPY_TAKE_AHEAD];
    int n_dropped = empty_taken_ahead(it, dropped);
    read_stats(it, map, &it->last_stats);
    it->map = NULL;
    sf_map_close(map);
    release_dropped(dropped, n_dropped);
    run_on_finish(it);
}

static PyObject *raise_and_finish(SfMapIterObject *it, PyObject *exc_type, const char *message)
{
    finish(it);
    if (message)
        PyErr_SetString(exc_type, message);
    else
        PyErr_SetNone(exc_type);
    return NULL;
}

/* One sf_map_next, counted in `inside` so that a finish() meanwhile (from
 * another thread, or from code a discarded value's finalizer runs) leaves
 * the map to this call.  The caller holds the iterator's critical section;
 * it is suspended while the GIL is released. */
static int next_counted(SfMapIterObject *it, sf_map *map, void **value, int64_t deadline)
{
    int rc;
    it->inside++;
    if (deadline == 0) {
        /* no wait, so the critical section is held throughout: nobody
         * else refills `ahead`, which the caller found empty, and the
         * results taken ahead follow this one directly.  None is taken
         * ahead while another thread waits in the map (its critical
         * section suspended): it will take the next result when it wakes,
         * and results taken ahead meanwhile would come before it, so
         * that thread would be handed results out of input order */
        PyObject *ahead[SFPY_TAKE_AHEAD];
        unsigned char ahead_failed[SFPY_TAKE_AHEAD];
        int n = 0;
        int more = it->inside > 1 ? 0 : it->take_ahead;
        rc = sf_map_next_many(map, value, 0, (void **)ahead, ahead_failed, more, &n);
        if (n > 0) {
            sfpy_leaf_lock_acquire(&it->ahead_lock);
            memcpy(it->ahead, ahead, (size_t)n * sizeof *ahead);
            memcpy(it->ahead_failed, ahead_failed, (size_t)n);
            it->ahead_next = 0;
            it->ahead_len = n;
            sfpy_leaf_lock_release(&it->ahead_lock);
        }
    } else {
        Py_BEGIN_ALLOW_THREADS
        rc = sf_map_next(map, value, deadline);
        Py_END_ALLOW_THREADS
    }
    it->inside--;
    return rc;
}

/* The next outcome: 0 with a result, 1 with an item's exception (both new
 * references in *value), -1 with an exception set or at the end; without
 * wait, NOTHING_READY when no outcome is there yet.  With the iterator's
 * critical section held (take_or_not). */
static int take_locked(SfMapIterObject *it, PyObject **out, int wait)
{
    void *value;
    int rc = pop_taken_ahead(it, out);
    if (rc >= 0)
        return rc;
    if (!it->map)
        return -1;
    it->started = 1;
    rc = next_counted(it, it->map, &value, 0);
    if (rc == -EAGAIN && !wait) /* deadline 0: one look, no wait */
        return NOTHING_READY;
    while (rc < 0) {
        if (rc == -ECHILD) /* inherited through fork: nothing will ever come */
            return raise_and_finish(it, PyExc_RuntimeError, SFPY_FORKED_MESSAGE), -1;
        int64_t now = sf_now_ns(), until = now + SFPY_WAIT_SLICE_NS;
        if (it->deadline >= 0 && now >= it->deadline)
            /* one deadline for the whole map: cancel everything pending */
            return raise_and_finish(it, it->pool_ctx->state->timeout_error, NULL), -1;
        if (it->deadline >= 0 && it->deadline < until)
            until = it->deadline;
        rc = next_counted(it, it->map, &value, until);
        if (rc < 0 && PyErr_CheckSignals() < 0)
            return -1; /* e.g. KeyboardInterrupt; the iterator stays usable */
        if (!it->map)
            return -1; /* closed by a signal handler */
    }
    switch (rc) {
    case SF_RESULT:
        *out = value;
        return 0;
    case SF_ERROR: /* raised at its position; the next call goes on */
        *out = value;
        return 1;
    case SF_CANCELLED:
        *out = PyObject_CallNoArgs(it->pool_ctx->state->cancelled_error);
        return *out ? 1 : -1;
    case SF_INPUT_ERROR: /* raised after every earlier result; ends it */
        finish(it);
        sfpy_raise_exception(value);
        return -1;
    case SF_SHUT_DOWN:
        return raise_and_finish(it, PyExc_RuntimeError, SFPY_SHUTDOWN_MESSAGE), -1;
    case SF_BROKEN:
        finish(it);
        return sfpy_raise_for_pool_error(it->pool_ctx, -EPIPE);
    default: /* SF_END */
        finish(it);
        return -1;
    }
}

/* Every method that reads or changes the iterator holds its critical
 * section (next() unless a result taken ahead is there: ahead_lock):
 * next(), close(), stats() and the progress bar's callback may come from
 * different threads at once on a free-threaded build. */
static int take_or_not(SfMapIterObject *it, PyObject **out, int wait)
{
    int rc;
    /* a result taken ahead needs only ahead_lock: the critical section
     * (on 3.13t a lock and a thread-state push, twice per item) is for
     * the rest */
    if ((rc = pop_taken_ahead(it, out)) >= 0)
        return rc;
    Py_BEGIN_CRITICAL_SECTION(it);
    rc = take_locked(it, out, wait);
    Py_END_CRITICAL_SECTION();
    return rc;
}

static PyObject *mapiter_next(SfMapIterObject *it)
{
    PyObject *value = NULL;
    switch (take(it, &value)) {
    case 0:
        return value;
    case 1:
        sfpy_raise_exception(value);
        return NULL;
    default:
        return NULL;
    }
}



/* _poll(): the next result if one is there now, as (True, result); an
 * item's exception is raised, as next() would; (False, None) when nothing
 * is ready; StopIteration at the end.  For consumers that must not block
 * (async for), which wait elsewhere and then take every ready result. */
static PyObject *mapiter_poll(SfMapIterObject *it, PyObject *unused)
{
    (void)unused;
    PyObject *value = NULL;
    switch (take_or_not(it, &value, 0)) {
    case 0:
        return Py_BuildValue("(ON)", Py_True, value);
    case 1:
        sfpy_raise_exception(value);
        return NULL;
    case NOTHING_READY:
        return Py_BuildValue("(OO)", Py_False, Py_None);
    default:
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
}

static void finish_locked(SfMapIterObject *it)
{
    Py_BEGIN_CRITICAL_SECTION(it);
    finish(it);
    Py_END_CRITICAL_SECTION();
}

static PyObject *mapiter_close(SfMapIterObject *it, PyObject *unused)
{
    (void)unused;
    finish_locked(it);
    Py_RETURN_NONE;
}

static PyObject *mapiter_outstanding(SfMapIterObject *it, PyObject *unused)
{
    (void)unused;
    size_t outstanding;
    Py_BEGIN_CRITICAL_SECTION(it);
    outstanding = it->map ? sf_map_outstanding(it->map) : 0;
    Py_END_CRITICAL_SECTION();
    return PyLong_FromSize_t(outstanding);
}

static PyObject *mapiter_stats(SfMapIterObject *it, PyObject *unused)
{
    (void)unused;
    sf_map_stats st;
    Py_BEGIN_CRITICAL_SECTION(it);
    st = it->last_stats;
    if (it->map)
        read_stats(it, it->map, &st);
    Py_END_CRITICAL_SECTION();
    return Py_BuildValue("{sKsKsdsdsd}", "items_in", (unsigned long long)st.pulled, "items_out",
                         (unsigned long long)st.taken, "busy", st.busy_ns / 1e9,
                         "waiting_for_input", st.input_ns / 1e9, "blocked_on_output",
                         st.full_ns / 1e9);
}

static PyObject *mapiter_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *mapiter_exit(SfMapIterObject *it, PyObject *args)
{
    (void)args;
    finish_locked(it);
    Py_RETURN_FALSE;
}

static void mapiter_dealloc(SfMapIterObject *it)
{
    PyTypeObject *type = Py_TYPE(it);
    PyObject_GC_UnTrack(it);
    if (it->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)it);
    if (it->map) {
        sf_map *map = it->map;
        read_stats(it, map, &it->last_stats);
        it->map = NULL;
        if (it->started)
            sf_map_close(map);   /* early exit: cancel what has not started */
        else if (it->stop_when_dropped)
            sf_map_abandon(map); /* an explicit buffersize: read no more input */
        else
            sf_map_detach(map);  /* fire-and-forget: run everything */
    }
    drop_taken_ahead(it);
    run_on_finish(it);
    Py_CLEAR(it->pool);
    PyObject_GC_Del(it);
    Py_DECREF(type); /* a heap type: each instance holds it */
}

/* No tp_clear: the Pool is the only reference the collector can see, and
 * nothing the Pool holds leads back here but objects with a tp_clear of
 * their own; dealloc needs the Pool's context to close or release the map. */
static int mapiter_traverse(SfMapIterObject *it, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(it));
    Py_VISIT(it->pool);
    Py_VISIT(it->on_finish);
    return 0;
}

/* async for: the adapter lives in Python (streamfutures/_aio.py); it waits
 * on a thread and takes every ready result per wake-up of the loop. */
static PyObject *mapiter_aiter(SfMapIterObject *it)
{
    PyObject *adapter = it->pool_ctx->state->async_results;
    return PyObject_CallOneArg(adapter, (PyObject *)it);
}

static PyObject *mapiter_on_finish(SfMapIterObject *it, PyObject *callback)
{
    PyObject *r;
    Py_BEGIN_CRITICAL_SECTION(it);
    if (!it->map) { /* already over */
        r = PyObject_CallFunction(callback, "K", (unsigned long long)it->last_stats.taken);
    } else {
        Py_XSETREF(it->on_finish, Py_NewRef(callback));
        r = Py_NewRef(Py_None);
    }
    Py_END_CRITICAL_SECTION();
    return r;
}

static PyMethodDef mapiter_methods[] = {
    {"close", (PyCFunction)mapiter_close, METH_NOARGS,
     "Cancel every item not started and stop pulling input."},
    {"stats", (PyCFunction)mapiter_stats, METH_NOARGS,
     "Items in and out, and seconds busy (summed over workers), waiting for input, and "
     "blocked on a full window (the consumer is slower)."},
    {"_poll", (PyCFunction)mapiter_poll, METH_NOARGS,
     "_poll() -> (True, result) or (False, None) when none is ready; never waits."},
    {"_on_finish", (PyCFunction)mapiter_on_finish, METH_O,
     "_on_finish(callback): callback(results_taken), once, when the map ends or is closed "
     "or collected."},
    {"_outstanding", (PyCFunction)mapiter_outstanding, METH_NOARGS,
     "Items acquired from the input and not yet yielded."},
    {"__enter__", (PyCFunction)mapiter_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)mapiter_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef mapiter_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(SfMapIterObject, weakreflist), Py_READONLY,
     NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot mapiter_slots[] = {
    {Py_tp_doc, "Results of Executor.map, lazily, within a bounded window."},
    {Py_tp_dealloc, mapiter_dealloc},
    {Py_tp_traverse, mapiter_traverse},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, mapiter_next},
    {Py_am_aiter, mapiter_aiter},
    {Py_tp_methods, mapiter_methods},
    {Py_tp_members, mapiter_members},
    {0, NULL},
};

PyType_Spec sfpy_map_iter_spec = {
    .name = "streamfutures._engine.MapIterator",
    .basicsize = sizeof(SfMapIterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = mapiter_slots,
};
