/* pool_object.h -- _engine.Pool, an sf_pool seen from Python
 * (pool_object.c). */
#ifndef SFPY_POOL_OBJECT_H
#define SFPY_POOL_OBJECT_H

#include "state.h"

extern PyType_Spec sfpy_pool_spec;

#endif
