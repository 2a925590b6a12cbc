/* result_size.h -- a result's cost for the adaptive window (result_size.c). */
#ifndef SFPY_RESULT_SIZE_H
#define SFPY_RESULT_SIZE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* sys.getsizeof's (shallow) size of a result; never fails. */
size_t sfpy_result_bytes(PyObject *o);

#endif
