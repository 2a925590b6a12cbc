/* compat.h -- one exception object in, one out, on every supported Python
 * (compat.c), timeouts from Python floats, and the member-definition names
 * that moved in 3.12. */
#ifndef SFPY_COMPAT_H
#define SFPY_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

/* Locks for the free-threaded build (3.13t), one spelling everywhere.  A
 * critical section locks one object (two, with the 2 forms) and is a no-op
 * where a GIL exists; it is suspended while its thread blocks with the GIL
 * released, so state read before a wait is read again after it.  An
 * sfpy_mutex guards state that belongs to no object (the zombie list); it
 * is a PyMutex from 3.13 (a blocking lock detaches, so it cannot deadlock
 * with a stop-the-world), and before 3.13 the GIL is that lock. */
#if PY_VERSION_HEX >= 0x030D0000
typedef PyMutex sfpy_mutex;
#define sfpy_mutex_lock(m) PyMutex_Lock(m)
#define sfpy_mutex_unlock(m) PyMutex_Unlock(m)
#else
typedef struct { char unused; } sfpy_mutex;
#define sfpy_mutex_lock(m) ((void)(m))
#define sfpy_mutex_unlock(m) ((void)(m))
#define Py_BEGIN_CRITICAL_SECTION(op) {
#define Py_END_CRITICAL_SECTION() }
#define Py_BEGIN_CRITICAL_SECTION2(a, b) {
#define Py_END_CRITICAL_SECTION2() }
#endif

/* An sfpy_leaf_lock guards a few fields on a hot path for a moment, with
 * nothing else taken and no Python code run while it is held.  On a
 * free-threaded build it is a spin lock that yields the CPU while it waits,
 * not a PyMutex: a PyMutex that has to wait detaches the thread state,
 * which suspends the critical sections its thread holds, and a leaf lock
 * is taken inside one (a refill installs what it took under both).  Its
 * holder never blocks, so the wait is short unless the holder was
 * preempted.  Wherever a GIL exists (3.13 included) the GIL is that lock,
 * and it costs nothing. */
#ifdef Py_GIL_DISABLED
#include <stdatomic.h>
typedef struct { _Atomic unsigned char held; } sfpy_leaf_lock;
#define SFPY_LEAF_LOCK_INIT(m) atomic_init(&(m)->held, 0)
void sfpy_leaf_lock_wait(sfpy_leaf_lock *m); /* until it looks free */
static inline void sfpy_leaf_lock_acquire(sfpy_leaf_lock *m)
{
    while (atomic_exchange_explicit(&m->held, 1, memory_order_acquire))
        sfpy_leaf_lock_wait(m);
}
static inline void sfpy_leaf_lock_release(sfpy_leaf_lock *m)
{
    atomic_store_explicit(&m->held, 0, memory_order_release);
}
#else
typedef struct { char unused; } sfpy_leaf_lock;
#define SFPY_LEAF_LOCK_INIT(m) ((void)(m))
#define sfpy_leaf_lock_acquire(m) ((void)(m))
#define sfpy_leaf_lock_release(m) ((void)(m))
#endif

PyObject *sfpy_fetch_exception(void);     /* new reference, error cleared */

/* A timeout in seconds as nanoseconds, without a float-to-integer cast out
 * of range (undefined behaviour in C): -1 when no deadline can be that far
 * (inf, or beyond about 73 years: no deadline), 0 for nan (expired at once,
 * as the stdlib's comparisons with nan make it). */
int64_t sfpy_timeout_ns(double seconds);

/* How often a next() asleep with the GIL released wakes to run signal
 * handlers (Ctrl-C). */
#define SFPY_WAIT_SLICE_NS 50000000
void sfpy_raise_exception(PyObject *exc); /* steals exc */

#endif
