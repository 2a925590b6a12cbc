/* exception_copy.h -- one exception raised on several threads at once, as
 * distinct objects (exception_copy.c). */
#ifndef SFPY_EXCEPTION_COPY_H
#define SFPY_EXCEPTION_COPY_H

#include "compat.h"

/* A new exception like exc -- its type, args, attributes, __cause__,
 * __context__ and __suppress_context__ -- with `traceback` as its
 * __traceback__.  NULL with the error cleared when exc's type cannot be
 * made again from its args (a __new__ that refuses them).  New reference. */
PyObject *sfpy_exception_copy(PyObject *exc, PyObject *traceback);

/* On the thread that caught exc, before any copy is made: makes what
 * CPython would otherwise make on the first copy's read (its __dict__), so
 * copies made at once only read the original. */
void sfpy_exception_prepare_copies(PyObject *exc);

#endif
