/* broadcast.h -- _engine.broadcast: one iterable read once by n readers
 * (broadcast.c), the engine of sf.tee and sf.fanout. */
#ifndef SFPY_BROADCAST_H
#define SFPY_BROADCAST_H

#include "state.h"
#include "streamfutures.h"

extern PyType_Spec sfpy_broadcast_spec;
extern PyType_Spec sfpy_broadcast_reader_spec;

/* broadcast(iterable, n, buffersize) -> (Broadcast, (reader, ...));
 * buffersize 0: unbounded */
PyObject *sfpy_broadcast(PyObject *module, PyObject *args);

#endif
