/* future.h -- finishing the concurrent.futures.Future of a submitted call
 * (future.c), quietly when nobody can be watching it. */
#ifndef SFPY_FUTURE_H
#define SFPY_FUTURE_H

#include "state.h"

/* 1: run it, 0: it was cancelled, -1: the future is unusable (reported) */
int sfpy_future_start(const sfpy_state *st, PyObject *future);
/* Exactly one of result and exc (borrowed). */
void sfpy_future_finish(const sfpy_state *st, PyObject *future, PyObject *result,
                        PyObject *exc);
/* The call never ran: fail the future with exc (borrowed), or cancel it
 * when exc is NULL.  Through the stdlib's methods: a waiter may exist. */
void sfpy_future_drop(const sfpy_state *st, PyObject *future, PyObject *exc);

#endif
