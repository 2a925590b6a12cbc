/* map_ctx.h -- what one map's engine callbacks need: the function, the
 * input, and for process pools the per-item timeout.  Made and freed by
 * map_object.c; read by process_pool.c's batch op. */
#ifndef SFPY_MAP_CTX_H
#define SFPY_MAP_CTX_H

#include "pool_ctx.h"

typedef struct sfpy_map_ctx {
    PyObject *fn;
    PyObject *iterator;
    int upstream_map;        /* the input is another engine map (a pipeline) */
    int star;                /* fn(*item): several iterables were zipped */
    int64_t task_timeout_ns; /* process pools; 0: none */
    double task_timeout;
    sfpy_pool_ctx *pool_ctx;
    sf_pool *pool;
} sfpy_map_ctx;

/* In a chain of maps, an item that failed in an earlier map travels on as
 * its exception with the low bit of the pointer set (objects are aligned):
 * every later map passes it through without calling fn, so it is raised
 * at its own position at the end and the items after it go on. */
static inline void *sfpy_carry_error(PyObject *exc) { return (void *)((uintptr_t)exc | 1u); }
static inline int sfpy_is_carried(const void *value) { return ((uintptr_t)value & 1u) != 0; }
static inline PyObject *sfpy_carried(void *value)
{
    return (PyObject *)((uintptr_t)value & ~(uintptr_t)1u);
}

#endif
