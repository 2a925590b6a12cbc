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
