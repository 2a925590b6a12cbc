/* map_ctx.h -- what one map's engine callbacks need: the function, the
 * input, and for process pools the per-item timeout.  Made and freed by
 * map_object.c; read by process_pool.c's batch op. */
#ifndef SFPY_MAP_CTX_H
#define SFPY_MAP_CTX_H

#include "pool_ctx.h"

typedef struct sfpy_map_ctx {
    PyObject *fn;
    PyObject *iterator;
    int star;                /* fn(*item): several iterables were zipped */
    int64_t task_timeout_ns; /* process pools; 0: none */
    double task_timeout;
    sfpy_pool_ctx *pool_ctx;
    sf_pool *pool;
} sfpy_map_ctx;

#endif
