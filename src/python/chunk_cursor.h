/* chunk_cursor.h -- _engine.ChunkCursor: the base of sf.map's iterator on
 * executors that are not ours, which yields the items of the chunk it
 * holds (chunk_cursor.c). */
#ifndef SFPY_CHUNK_CURSOR_H
#define SFPY_CHUNK_CURSOR_H

#include "state.h"

extern PyType_Spec sfpy_chunk_cursor_spec;

#endif
