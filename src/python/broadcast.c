/*
 * broadcast.c -- _engine.broadcast(iterable, n, buffersize[, read_ahead]): one Python
 * iterable read once by n reader iterators (sf.tee's copies and
 * sf.fanout's consumers' inputs), on an sf_ring.
 *
 * DESIGN.  A Broadcast object is the ring's context: it holds the source
 * iterator, the module (for CancelledError) and the input's exception with
 * the traceback it had when the input raised.  No reader raises that
 * object: each raises a copy of its own with that traceback
 * (exception_copy.c), since readers on several threads raising one object
 * would each write its __traceback__ while the others read it.  Each
 * reader holds the Broadcast; the Broadcast does not hold its readers (no
 * cycle), so a reader can be dropped on its own, which closes it: it stops
 * holding the others back.  The last reader closed frees the ring, whose
 * destroy callback releases the source.  Every ring callback runs on a
 * thread attached to the interpreter: pull and discard on the thread of a
 * next(), destroy in a close.  next() polls attached and only sleeps with
 * the GIL released, in slices, so signal handlers run.  A reader's fields
 * are guarded by its critical section, the ring pointer by the
 * Broadcast's (the last close frees the ring; cancel() reads it).  A
 * reader is closed only when no thread is inside its next() (a close from
 * another thread during one is carried out by that next() when it
 * returns), so the ring is never freed under a thread that is using it;
 * an item is referenced before the reader leaves, while the ring still
 * lends it.  Nothing is taken ahead while another thread is inside the
 * reader's next(): its next ring call would end the loan of the items
 * taken ahead before they were handed out.  The items taken ahead have a
 * leaf lock of their own (ahead_lock): next() hands one out, referenced,
 * under that lock alone, without the critical section.  Only a next()
 * holding the critical section installs items, and it calls the ring
 * again only once it has seen them all handed out, under that lock; a
 * close empties them under it before the ring ends their loan, and a
 * closed reader installs none.
 */
#include <errno.h>
#include <string.h>

#include "broadcast.h"
#include "compat.h"
#include "exception_copy.h"
#include "state.h"
#include "thread_hooks.h"


typedef struct SfBroadcastObject {
    PyObject_HEAD
    sf_ring *ring;         /* NULL once every reader is closed */
    _Atomic int cancelled; /* cancel() was called: readers stop handing out what they took ahead */
    PyObject *module;
    sfpy_state *state;     /* the module's, alive as long as `module` */
    PyObject *source;      /* NULL once the ring is freed */
    PyObject *input_error; /* the input's exception, or NULL */
    PyObject *input_traceback;
    size_t buffersize;
    size_t take_ahead;     /* the most a reader takes behind the item it needs */
} SfBroadcastObject;

/* A fanout reader takes up to this many published items behind the one it
 * needs in one ring call and hands them out itself (borrowed: the ring
 * lends them until the reader's next ring call); at most 1/16 of the ring,
 * since what a reader took still holds the ring. */
#define READER_TAKE_AHEAD 32

typedef struct SfReaderObject {
    PyObject_HEAD
    SfBroadcastObject *owner;
    unsigned index;
    int closed;        /* closed, or to be closed once `inside` drops to 0 */
    int released;      /* sf_ring_close_reader was called */
    int inside;        /* threads inside next() */
    sfpy_leaf_lock ahead_lock; /* guards ahead_len, ahead_next, ahead[] */
    size_t ahead_len, ahead_next; /* ahead[ahead_next..ahead_len): taken, not yet handed out */
    PyObject *ahead[READER_TAKE_AHEAD];
    PyObject *raised_input_error; /* the copy of the input's exception it raised */
    PyObject *weakreflist;
} SfReaderObject;

static enum sf_pull source_pull(void *raw, void **item)
{
    SfBroadcastObject *b = raw;
    sfpy_thread_tick(b->state, 1);
    PyObject *next = b->source ? PyIter_Next(b->source) : NULL;
    if (next) {
        *item = next;
        return SF_PULL_ITEM;
    }
    if (!PyErr_Occurred())
        return SF_PULL_END;
    PyObject *exc = sfpy_fetch_exception();
    sfpy_exception_prepare_copies(exc);
    b->input_error = Py_NewRef(exc);
    b->input_traceback = PyException_GetTraceback(exc);
    *item = exc;
    return SF_PULL_ERROR;
}

static void value_discard(void *raw, void *value)
{
    (void)raw;
    Py_XDECREF((PyObject *)value);
}

static void ring_destroy(void *raw)
{
    SfBroadcastObject *b = raw;
    b->ring = NULL;
    Py_CLEAR(b->source);
}

static const sf_ring_ops python_ring_ops = {
    .pull = source_pull, .discard = value_discard, .destroy = ring_destroy};

/* With the reader's critical section held.  The Broadcast's own critical
 * section is taken around the close: the last close frees the ring, and
 * cancel() must not read it meanwhile. */
static void release_reader(SfReaderObject *r)
{
    r->closed = 1;
    /* forgotten (borrowed from the ring) before the ring ends their loan,
     * even when the close waits for a thread inside: none is handed out
     * after a close */
    sfpy_leaf_lock_acquire(&r->ahead_lock);
    r->ahead_len = r->ahead_next = 0;
    sfpy_leaf_lock_release(&r->ahead_lock);
    if (r->released || r->inside)
        return;
    r->released = 1;
    SfBroadcastObject *b = r->owner;
    Py_BEGIN_CRITICAL_SECTION(b);
    if (b->ring)
        sf_ring_close_reader(b->ring, r->index);
    Py_END_CRITICAL_SECTION();
}

static PyObject *raise_deadlock(SfReaderObject *r)
{
    PyErr_Format(PyExc_RuntimeError,
                 "this copy is buffersize=%zu items ahead of the copies holding it back, "
                 "and they were last read on this same thread (or it was read from inside "
                 "its own input): waiting for them here would never end; read them on "
                 "other threads, close them, or raise buffersize",
                 r->owner->buffersize);
    return NULL;
}

/* How many items a next() may take ahead now: none while another thread
 * is inside this reader's next() (asleep in the ring, its critical section
 * suspended).  Its next ring call ends the loan of whatever was taken
 * ahead, so the items taken ahead and not yet handed out would be lost;
 * one taken alone is referenced before this thread leaves. */
static size_t take_ahead_now(const SfReaderObject *r)
{
    return r->inside > 1 ? 0 : r->owner->take_ahead;
}

/* The next item taken ahead, referenced, or NULL when none is there (or
 * the ring was cancelled: the ring call says so). */
static PyObject *pop_taken_ahead(SfReaderObject *r)
{
    PyObject *value = NULL;
    if (atomic_load_explicit(&r->owner->cancelled, memory_order_relaxed))
        return NULL;
    sfpy_leaf_lock_acquire(&r->ahead_lock);
    if (r->ahead_next < r->ahead_len)
        value = Py_NewRef(r->ahead[r->ahead_next++]);
    sfpy_leaf_lock_release(&r->ahead_lock);
    return value;
}

/* With the critical section held and the ring's result referenced: the
 * items taken behind it are handed out next, unless a close came
 * meanwhile (a finalizer the ring call ran, or a thread while this one
 * slept). */
static void install_taken_ahead(SfReaderObject *r, PyObject **ahead, size_t n)
{
    if (n == 0 || r->closed)
        return;
#ifdef Py_GIL_DISABLED
    /* each is about to be referenced here, and was made on another
     * reader's thread: its lines are asked for together, not one miss
     * per next() */
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(ahead[i], 1, 3);
#endif
    sfpy_leaf_lock_acquire(&r->ahead_lock);
    memcpy(r->ahead, ahead, n * sizeof *ahead);
    r->ahead_next = 0;
    r->ahead_len = n;
    sfpy_leaf_lock_release(&r->ahead_lock);
}

static PyObject *reader_next_locked(SfReaderObject *r)
{
    if (r->closed) {
        release_reader(r); /* a close deferred while another thread was inside */
        return NULL;
    }
    PyObject *taken = pop_taken_ahead(r); /* installed since this thread looked */
    if (taken)
        return taken;
    sf_ring *ring = r->owner->ring;
    void *value = NULL;
    PyObject *ahead[READER_TAKE_AHEAD];
    size_t n_ahead = 0;
    r->inside++;
    int rc = sf_ring_next_many(ring, r->index, &value, 0, (void **)ahead,
                               take_ahead_now(r), &n_ahead);
    while (rc == -EAGAIN) {
        int waited;
        Py_BEGIN_ALLOW_THREADS
        waited = sf_ring_wait(ring, r->index, sf_now_ns() + SFPY_WAIT_SLICE_NS);
        Py_END_ALLOW_THREADS
        if (waited != 0 && PyErr_CheckSignals() < 0) {
            rc = -EINTR; /* e.g. KeyboardInterrupt; the copy stays usable */
            break;
        }
        if (r->closed) { /* closed by another thread or a signal handler */
            rc = SF_END;
            break;
        }
        rc = sf_ring_next_many(ring, r->index, &value, 0, (void **)ahead,
                               take_ahead_now(r), &n_ahead);
    }
    if (rc == SF_RESULT) {
        Py_INCREF((PyObject *)value);
        install_taken_ahead(r, ahead, n_ahead);
    }
    r->inside--;
    switch (rc) {
    case SF_RESULT: /* taken while counted inside: the ring lends it until our next call */
        return (PyObject *)value;
    case SF_CANCELLED: {
        sfpy_state *st = r->owner->state;
        PyErr_SetNone(st->cancelled_error);
        return NULL;
    }
    case SF_INPUT_ERROR: {
        SfBroadcastObject *b = r->owner;
        PyObject *exc = sfpy_exception_copy(b->input_error, b->input_traceback);
        if (!exc) {
            /* a type that cannot be made again from its args: the one
             * object is raised by every reader, its traceback put back
             * under the Broadcast's critical section */
            exc = Py_NewRef(b->input_error);
            Py_BEGIN_CRITICAL_SECTION(b);
            PyException_SetTraceback(exc, b->input_traceback ? b->input_traceback : Py_None);
            Py_END_CRITICAL_SECTION();
        }
        Py_XSETREF(r->raised_input_error, Py_NewRef(exc));
        release_reader(r);
        sfpy_raise_exception(exc);
        return NULL;
    }
    case -EDEADLK:
        return raise_deadlock(r);
    case -EINTR:
        return NULL;
    case -ECHILD:
        PyErr_SetString(PyExc_RuntimeError,
                        "this iterator was made in a parent process and cannot be read "
                        "after fork()");
        return NULL;
    default: /* SF_END, or closed while asleep */
        release_reader(r);
        return NULL;
    }
}

/* Every reader method holds the reader's critical section: a copy may be
 * read on one thread while another closes it (free-threaded build); an
 * item taken ahead needs only ahead_lock (on 3.13t the critical section
 * is a lock and a thread-state push per item). */
static PyObject *reader_next(SfReaderObject *r)
{
    PyObject *value = pop_taken_ahead(r);
    if (value)
        return value;
    Py_BEGIN_CRITICAL_SECTION(r);
    value = reader_next_locked(r);
    Py_END_CRITICAL_SECTION();
    return value;
}

static PyObject *reader_close(SfReaderObject *r, PyObject *unused)
{
    (void)unused;
    PyObject *raised;
    Py_BEGIN_CRITICAL_SECTION(r);
    release_reader(r);
    raised = r->raised_input_error;
    r->raised_input_error = NULL;
    Py_END_CRITICAL_SECTION();
    Py_XDECREF(raised); /* its traceback's frames may run code: not inside */
    Py_RETURN_NONE;
}

static PyObject *reader_get_input_error(SfReaderObject *r, void *unused)
{
    (void)unused;
    PyObject *exc;
    Py_BEGIN_CRITICAL_SECTION(r);
    exc = Py_NewRef(r->raised_input_error ? r->raised_input_error : Py_None);
    Py_END_CRITICAL_SECTION();
    return exc;
}

static PyObject *reader_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *reader_exit(SfReaderObject *r, PyObject *args)
{
    (void)args;
    PyObject *none = reader_close(r, NULL);
    Py_XDECREF(none);
    Py_RETURN_FALSE;
}

static void reader_dealloc(SfReaderObject *r)
{
    PyTypeObject *type = Py_TYPE(r);
    PyObject_GC_UnTrack(r);
    if (r->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)r);
    if (r->owner)
        release_reader(r);
    Py_CLEAR(r->owner);
    Py_CLEAR(r->raised_input_error);
    PyObject_GC_Del(r);
    Py_DECREF(type);
}

static int reader_traverse(SfReaderObject *r, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(r));
    Py_VISIT(r->owner);
    Py_VISIT(r->raised_input_error);
    return 0;
}

static PyMethodDef reader_methods[] = {
    {"close", (PyCFunction)reader_close, METH_NOARGS,
     "Stop reading: this copy no longer holds the others back."},
    {"__enter__", (PyCFunction)reader_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)reader_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef reader_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(SfReaderObject, weakreflist), Py_READONLY,
     NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
    {"input_error", (getter)reader_get_input_error, NULL,
     "The copy of the input's exception this reader raised, or None; close() drops it.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot reader_slots[] = {
    {Py_tp_doc, "One reader of a broadcast input: every item, in order, read once upstream."},
    {Py_tp_dealloc, reader_dealloc},
    {Py_tp_traverse, reader_traverse},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, reader_next},
    {Py_tp_methods, reader_methods},
    {Py_tp_members, reader_members},
    {Py_tp_getset, reader_getset},
    {0, NULL},
};

PyType_Spec sfpy_broadcast_reader_spec = {
    .name = "streamfutures._engine.BroadcastReader",
    .basicsize = sizeof(SfReaderObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = reader_slots,
};

/* ---- the Broadcast ------------------------------------------------------ */

static PyObject *broadcast_cancel(SfBroadcastObject *b, PyObject *unused)
{
    (void)unused;
    atomic_store(&b->cancelled, 1);
    Py_BEGIN_CRITICAL_SECTION(b);
    if (b->ring)
        sf_ring_cancel(b->ring);
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static PyObject *broadcast_get_input_error(SfBroadcastObject *b, void *unused)
{
    (void)unused;
    return Py_NewRef(b->input_error ? b->input_error : Py_None);
}

static PyObject *broadcast_get_input_traceback(SfBroadcastObject *b, void *unused)
{
    (void)unused;
    return Py_NewRef(b->input_traceback ? b->input_traceback : Py_None);
}

static void broadcast_dealloc(SfBroadcastObject *b)
{
    PyTypeObject *type = Py_TYPE(b);
    PyObject_GC_UnTrack(b);
    /* every reader holds us: the ring was freed by the last one's close */
    Py_CLEAR(b->source);
    Py_CLEAR(b->input_error);
    Py_CLEAR(b->input_traceback);
    Py_CLEAR(b->module);
    PyObject_GC_Del(b);
    Py_DECREF(type);
}

static int broadcast_traverse(SfBroadcastObject *b, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(b));
    Py_VISIT(b->module);
    Py_VISIT(b->source);
    Py_VISIT(b->input_error);
    Py_VISIT(b->input_traceback);
    return 0;
}

/* A cycle through the source (a generator that holds one of its own
 * readers) is broken here: the input then reads as ended. */
static int broadcast_clear(SfBroadcastObject *b)
{
    Py_CLEAR(b->source);
    Py_CLEAR(b->input_error);
    Py_CLEAR(b->input_traceback);
    return 0;
}

static PyMethodDef broadcast_methods[] = {
    {"cancel", (PyCFunction)broadcast_cancel, METH_NOARGS,
     "Every reader raises CancelledError at its next step; no more input is read."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef broadcast_getset[] = {
    {"input_error", (getter)broadcast_get_input_error, NULL,
     "The exception the input raised, or None.", NULL},
    {"input_traceback", (getter)broadcast_get_input_traceback, NULL,
     "Its traceback as the input raised it.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot broadcast_slots[] = {
    {Py_tp_doc, "One input read once for several readers, at most buffersize items ahead."},
    {Py_tp_dealloc, broadcast_dealloc},
    {Py_tp_traverse, broadcast_traverse},
    {Py_tp_clear, broadcast_clear},
    {Py_tp_methods, broadcast_methods},
    {Py_tp_getset, broadcast_getset},
    {0, NULL},
};

PyType_Spec sfpy_broadcast_spec = {
    .name = "streamfutures._engine.Broadcast",
    .basicsize = sizeof(SfBroadcastObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = broadcast_slots,
};

PyObject *sfpy_broadcast(PyObject *module, PyObject *args)
{
    PyObject *iterable;
    Py_ssize_t n, buffersize, read_ahead = 1;
    if (!PyArg_ParseTuple(args, "Onn|n", &iterable, &n, &buffersize, &read_ahead))
        return NULL;
    if (n < 1 || n > (Py_ssize_t)SF_RING_MAX_READERS) {
        PyErr_Format(PyExc_ValueError, "n must be between 1 and %u", SF_RING_MAX_READERS);
        return NULL;
    }
    if (buffersize < 0) { /* 0: unbounded */
        PyErr_SetString(PyExc_ValueError, "buffersize must be None or > 0");
        return NULL;
    }
    if (read_ahead < 1) {
        PyErr_SetString(PyExc_ValueError, "read_ahead must be >= 1");
        return NULL;
    }
    sfpy_state *st = sfpy_state_of(module);
    PyObject *source = PyObject_GetIter(iterable);
    if (!source)
        return NULL;
    SfBroadcastObject *b = PyObject_GC_New(SfBroadcastObject, st->broadcast_type);
    if (!b) {
        Py_DECREF(source);
        return NULL;
    }
    b->ring = NULL;
    b->module = Py_NewRef(module);
    b->state = st;
    b->source = source;
    b->input_error = NULL;
    b->input_traceback = NULL;
    b->buffersize = (size_t)buffersize;
    atomic_init(&b->cancelled, 0);
    /* tee() reads copies in lockstep on one thread, where what a copy took
     * ahead would count against the others' room: only fanout takes ahead */
    b->take_ahead = read_ahead > 1 ? READER_TAKE_AHEAD : 0;
    if (buffersize > 0 && b->take_ahead > (size_t)buffersize / 16)
        b->take_ahead = (size_t)buffersize / 16;
    PyObject_GC_Track(b);
    PyObject *readers = PyTuple_New(n);
    if (!readers) {
        Py_DECREF(b);
        return NULL;
    }
    int rc = sf_ring_create(&b->ring, (unsigned)n, (size_t)buffersize, &python_ring_ops, b);
    if (rc < 0) {
        Py_DECREF(readers);
        Py_DECREF(b);
        return rc == -ENOMEM ? PyErr_NoMemory()
                             : PyErr_Format(PyExc_ValueError, "buffersize is too large");
    }
    sf_ring_read_ahead(b->ring, (size_t)read_ahead);
    for (Py_ssize_t i = 0; i < n; i++) {
        SfReaderObject *r = PyObject_GC_New(SfReaderObject, st->broadcast_reader_type);
        if (!r) {
            /* close the readers no object took, so the ring is freed */
            for (Py_ssize_t j = i; j < n; j++)
                sf_ring_close_reader(b->ring, (unsigned)j);
            Py_DECREF(readers);
            Py_DECREF(b);
            return NULL;
        }
        r->owner = (SfBroadcastObject *)Py_NewRef(b);
        r->index = (unsigned)i;
        r->closed = r->released = r->inside = 0;
        r->ahead_len = r->ahead_next = 0;
        SFPY_LEAF_LOCK_INIT(&r->ahead_lock);
        r->weakreflist = NULL;
        r->raised_input_error = NULL;
        PyObject_GC_Track(r);
        PyTuple_SET_ITEM(readers, i, (PyObject *)r);
    }
    PyObject *result = PyTuple_Pack(2, (PyObject *)b, readers);
    Py_DECREF(b);
    Py_DECREF(readers);
    return result;
}
