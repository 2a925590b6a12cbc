/* map_object.h -- _engine.MapIterator, the iterator Executor.map returns
 * (map_object.c). */
#ifndef SFPY_MAP_OBJECT_H
#define SFPY_MAP_OBJECT_H

#include "pool_ctx.h"

typedef struct sfpy_map_request {
    PyObject *fn, *iterator;
    int star;             /* fn(*item): several iterables were zipped */
    Py_ssize_t window;    /* 0: unbounded */
    int unordered;
    int stop_when_dropped; /* dropped unstarted: read no more input (3.14's rule) */
    double timeout;       /* whole map, seconds; < 0: none */
    int chunksize;        /* process pools: 0 = adaptive */
    double task_timeout;  /* process pools: per item, seconds; <= 0: none */
    Py_ssize_t window_max;    /* > window: the window adapts up to this (threads) */
    Py_ssize_t result_budget; /* bytes of finished results it holds, adapting */
} sfpy_map_request;

/* A consumer that finds results ready takes up to this many more with
 * each one (sf_map_next_many): the map's lock, which the workers publish
 * under, is then taken once per run of ready results, not per result.
 * _engine.MAP_TAKE_AHEAD. */
#define SFPY_TAKE_AHEAD 32

extern PyType_Spec sfpy_map_iter_spec;

/* A new iterator over pool (owner: the Pool object, kept alive by it). */
PyObject *sfpy_map_iter_new(PyObject *owner, sfpy_pool_ctx *ctx, sf_pool *pool,
                            const sfpy_map_request *request);

#endif
