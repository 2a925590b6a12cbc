/*
 * process_pool.c -- the Python side of a process pool's work: how items
 * become task messages, how replies become results, and how the engine's
 * a batch reaches the calling engine thread's worker process.
 *
 * DESIGN.  A map's claimed batch (or one submitted call) is handed to the
 * calling engine thread's sf_proc_worker with a codec; the engine does the
 * sending, waiting, crash attribution, timeouts and replacement.  Encoding
 * pickles (fn, mode, items) once per batch; if that fails, each item is
 * pickled alone to find the ones that cannot be, which fail by themselves
 * (with the stdlib's remote-traceback __cause__), and the rest is sent.  A
 * reply is decoded (wire.c) and published at once.  Every codec callback
 * runs with the GIL held; the engine releases it while it waits.
 */
#include <errno.h>
#include <limits.h>

#include "process_pool.h"
#include "compat.h"
#include "future.h"
#include "thread_hooks.h"
#include "wire.h"

/* ---- shared by map and submit --------------------------------------------- */

/* The exception for an item that got no reply (a new reference). */
static PyObject *lost_exception(sfpy_pool_ctx *ctx, enum sf_proc_lost why, int status,
                                double timeout)
{
    PyObject *exc = PyObject_CallFunction(ctx->proc->lost_error, "iid", (int)why, status, timeout);
    return exc ? exc : sfpy_fetch_exception();
}

/* The value of a reply (a new reference); *failed when it is an exception. */
static PyObject *reply_value(const sfpy_state *st, const sf_proc_msg *msg, int *failed)
{
    PyObject *value = sfpy_wire_decode(st, msg->kind, msg->data, msg->len, failed);
    if (!value) {
        value = sfpy_fetch_exception(); /* e.g. a result class the parent cannot import */
        *failed = 1;
    }
    return value;
}

/* The pickling error of an argument, as the stdlib reports it. */
static PyObject *pickling_exception(const sfpy_state *st)
{
    PyObject *exc = sfpy_fetch_exception();
    PyObject *wrapped = PyObject_CallOneArg(st->pickling_error, exc);
    if (!wrapped)
        return exc;
    Py_DECREF(exc);
    return wrapped;
}

static PyObject *pickle_batch(const sfpy_state *st, PyObject *fn, long mode, PyObject *items)
{
    PyObject *batch = Py_BuildValue("(OlO)", fn, mode, items);
    PyObject *bytes = batch ? sfpy_pickle(st, batch) : NULL;
    Py_XDECREF(batch);
    return bytes;
}

/* ---- map ----------------------------------------------------------------- */

#define PUBLISH_AT_ONCE 256

typedef struct map_codec {
    sfpy_map_ctx *map;
    const sfpy_state *st;
    sf_batch *batch;
    PyObject *payload; /* the last message's bytes */
    /* finished items not yet handed to the consumer (see map_flush) */
    int npending;
    int pending[PUBLISH_AT_ONCE], pending_failed[PUBLISH_AT_ONCE];
} map_codec;

/* Hand the finished items to the consumer, in one lock round trip; the
 * consumer is woken by map_wake, once the GIL is dropped. */
static int map_flush(void *raw)
{
    map_codec *c = raw;
    int n = c->npending;
    c->npending = 0;
    return n ? sf_batch_publish_many(c->batch, c->pending, c->pending_failed, n) : 0;
}

static void map_wake(void *raw)
{
    map_codec *c = raw;
    sf_batch_wake(c->batch);
}

/* Finish one item; it is published at the next flush, which the engine
 * makes before it waits for more, so nothing is held back. */
static int map_finish(map_codec *c, int pos, PyObject *value, int failed)
{
    void **values = sf_batch_values(c->batch);
    Py_XDECREF((PyObject *)values[pos]); /* the input item */
    values[pos] = value;
    c->pending[c->npending] = pos;
    c->pending_failed[c->npending++] = failed;
    return c->npending == PUBLISH_AT_ONCE ? map_flush(c) : 0;
}

/* Items pos[0..n) fail with exc (a new reference, consumed): nothing is
 * sent for them, and no error is left pending. */
static int fail_items(map_codec *c, const int *pos, int n, PyObject *exc)
{
    int cancelled = 0;
    for (int i = 0; i < n; i++)
        cancelled |= map_finish(c, pos[i], Py_NewRef(exc), 1);
    Py_DECREF(exc);
    return cancelled;
}

static int map_encode(void *raw, int *pos, int *n, const void **data, uint32_t *len)
{
    map_codec *c = raw;
    const sfpy_state *st = c->st;
    void **values = sf_batch_values(c->batch);
    long mode = c->map->star ? SFPY_CALL_STAR : SFPY_CALL_ONE;
    int cancelled = 0, sent = 0;
    for (int i = 0; i < *n; i++) { /* failed in an earlier map: not sent, passed on */
        if (sfpy_is_carried(values[pos[i]])) {
            PyObject *exc = sfpy_carried(values[pos[i]]);
            values[pos[i]] = NULL;
            cancelled |= map_finish(c, pos[i], exc, 1);
        } else {
            pos[sent++] = pos[i];
        }
    }
    *n = sent;
    Py_CLEAR(c->payload);
    if (!sent)
        return cancelled;
    PyObject *items = PyList_New(*n);
    if (!items) {
        cancelled |= fail_items(c, pos, *n, sfpy_fetch_exception());
        *n = 0;
        return cancelled;
    }
    for (int i = 0; i < *n; i++)
        PyList_SET_ITEM(items, i, Py_NewRef((PyObject *)values[pos[i]]));
    c->payload = pickle_batch(st, c->map->fn, mode, items);
    if (!c->payload) {
        /* find the items that cannot be pickled; they fail alone */
        PyErr_Clear();
        PyObject *fn_error = NULL;
        PyObject *fn_bytes = sfpy_pickle(st, c->map->fn);
        if (!fn_bytes)
            fn_error = pickling_exception(st);
        Py_XDECREF(fn_bytes);
        PyErr_Clear();
        int kept = 0;
        PyObject *sendable = PyList_New(0);
        if (!sendable) {
            cancelled |= fail_items(c, pos, *n, sfpy_fetch_exception());
            *n = 0;
        }
        for (int i = 0; i < *n; i++) {
            PyObject *item = PyList_GET_ITEM(items, i);
            PyObject *alone = fn_error ? NULL : sfpy_pickle(st, item);
            if (alone) {
                Py_DECREF(alone);
                if (PyList_Append(sendable, item) == 0) {
                    pos[kept++] = pos[i];
                    continue;
                }
            }
            PyObject *exc = fn_error ? Py_NewRef(fn_error) : pickling_exception(st);
            cancelled |= map_finish(c, pos[i], exc, 1);
        }
        Py_XDECREF(fn_error);
        *n = kept;
        c->payload = sendable && kept ? pickle_batch(st, c->map->fn, mode, sendable) : NULL;
        Py_XDECREF(sendable);
        if (kept && !c->payload) {
            /* pickles alone but not together (a shared unpicklable part):
             * give up on these items with that error */
            cancelled |= fail_items(c, pos, kept, pickling_exception(st));
            *n = 0;
        }
    }
    Py_DECREF(items);
    if (c->payload) {
        *data = PyBytes_AS_STRING(c->payload);
        *len = (uint32_t)PyBytes_GET_SIZE(c->payload);
    }
    return cancelled;
}

static int map_reply(void *raw, int pos, const sf_proc_msg *msg)
{
    map_codec *c = raw;
    int failed;
    sfpy_thread_tick(c->st, 1); /* a batch may run for long: count each result */
    PyObject *value = reply_value(c->st, msg, &failed);
    return map_finish(c, pos, value, failed);
}

static int map_lost(void *raw, int pos, enum sf_proc_lost why, int status)
{
    map_codec *c = raw;
    return map_finish(c, pos, lost_exception(c->map->pool_ctx, why, status, c->map->task_timeout),
                      1);
}

/* The worker is about to run dry: claim the next ready items into this
 * batch, so they are sent before the current ones are all answered. */
static int map_more(void *raw, int *first)
{
    map_codec *c = raw;
    *first = sf_batch_size(c->batch);
    return sf_batch_extend(c->batch, INT_MAX);
}

void sfpy_process_map_batch(void *ctx, sf_batch *batch)
{
    sfpy_map_ctx *map = ctx;
    map_codec c = {.map = map, .st = map->pool_ctx->state, .batch = batch};
    sf_proc_codec codec = {.ctx = &c,
                           .count = sf_batch_size(batch),
                           .encode = map_encode,
                           .reply = map_reply,
                           .lost = map_lost,
                           .flush = map_flush,
                           .wake = map_wake,
                           .more = map_more,
                           .capacity = sf_batch_capacity(batch)};
    sf_proc_worker *worker = sfpy_current_worker_process();
    if (!worker || sf_proc_worker_run(worker, &codec, map->task_timeout_ns) == -EPIPE)
        sf_pool_break(map->pool); /* no worker process can be had any more */
    map_flush(&c);
    Py_XDECREF(c.payload);
}

/* ---- submit --------------------------------------------------------------- */

typedef struct submit_codec {
    PyObject *future, *fn, *args, *kwargs;
    PyObject *payload;
    sfpy_pool_ctx *ctx;
    double task_timeout;
} submit_codec;

static int submit_encode(void *raw, int *pos, int *n, const void **data, uint32_t *len)
{
    submit_codec *c = raw;
    const sfpy_state *st = c->ctx->state;
    (void)pos;
    PyObject *item = Py_BuildValue("[(OO)]", c->args, c->kwargs ? c->kwargs : Py_None);
    c->payload = item ? pickle_batch(st, c->fn, SFPY_CALL_ARGS_KWARGS, item) : NULL;
    Py_XDECREF(item);
    if (!c->payload) {
        PyObject *exc = pickling_exception(st);
        sfpy_future_finish(st, c->future, NULL, exc);
        Py_DECREF(exc);
        *n = 0;
        return 0;
    }
    *data = PyBytes_AS_STRING(c->payload);
    *len = (uint32_t)PyBytes_GET_SIZE(c->payload);
    return 0;
}

static int submit_reply(void *raw, int pos, const sf_proc_msg *msg)
{
    submit_codec *c = raw;
    int failed;
    (void)pos;
    PyObject *value = reply_value(c->ctx->state, msg, &failed);
    sfpy_future_finish(c->ctx->state, c->future, failed ? NULL : value, failed ? value : NULL);
    Py_DECREF(value);
    return 0;
}

static int submit_lost(void *raw, int pos, enum sf_proc_lost why, int status)
{
    submit_codec *c = raw;
    (void)pos;
    PyObject *exc = lost_exception(c->ctx, why, status, c->task_timeout);
    sfpy_future_finish(c->ctx->state, c->future, NULL, exc);
    Py_DECREF(exc);
    return 0;
}

void sfpy_process_run_submitted(sfpy_pool_ctx *ctx, sf_pool *pool, PyObject *future,
                                PyObject *fn, PyObject *args, PyObject *kwargs,
                                double task_timeout)
{
    submit_codec c = {future, fn, args, kwargs, NULL, ctx, task_timeout};
    sf_proc_codec codec = {.ctx = &c,
                           .count = 1,
                           .encode = submit_encode,
                           .reply = submit_reply,
                           .lost = submit_lost,
                           .capacity = 1};
    sf_proc_worker *worker = sfpy_current_worker_process();
    int64_t timeout_ns = task_timeout > 0 ? sfpy_timeout_ns(task_timeout) : 0;
    if (timeout_ns < 0)
        timeout_ns = 0; /* too long to ever expire: none */
    if (!worker || sf_proc_worker_run(worker, &codec, timeout_ns) == -EPIPE)
        sf_pool_break(pool);
    Py_XDECREF(c.payload);
}
