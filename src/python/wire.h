/* wire.h -- what travels between the parent and a worker process: task
 * messages (pickled (fn, call mode, items)) and replies, a result or an
 * exception, most small builtins without pickle (wire.c). */
#ifndef SFPY_WIRE_H
#define SFPY_WIRE_H

#include <stdint.h>

#include "state.h"

/* How a task message's items are called: fn(item), fn(*item), or
 * fn(*item[0], **item[1]) (submit).  The mode travels in the message. */
enum sfpy_call_mode { SFPY_CALL_ONE = 0, SFPY_CALL_STAR = 1, SFPY_CALL_ARGS_KWARGS = 2 };

typedef struct sfpy_wire_value {
    uint32_t kind;
    uint32_t len;
    const void *data;
    PyObject *owner;        /* keeps data alive, or NULL */
    char inline_bytes[8];
} sfpy_wire_value;

/* The most bytes one message between the parent and a worker carries. */
#define SFPY_MAX_MESSAGE_BYTES UINT32_MAX

/* Pickled with protocol 5; OverflowError above SFPY_MAX_MESSAGE_BYTES. */
PyObject *sfpy_pickle(const sfpy_state *st, PyObject *obj);
PyObject *sfpy_unpickle(const sfpy_state *st, const void *data, uint32_t len);
int sfpy_wire_encode(const sfpy_state *st, PyObject *value, sfpy_wire_value *out);
void sfpy_wire_encode_exception(const sfpy_state *st, PyObject *exc, sfpy_wire_value *out);
void sfpy_wire_release(sfpy_wire_value *value);
/* An exception encoded by sfpy_wire_encode_exception is why the worker
 * could not unpickle its task: the parent reports the item's error as
 * _remote.DeserializationError, with it as the cause. */
void sfpy_wire_mark_task_unpickling_failed(sfpy_wire_value *exception);
/* A new reference; *failed says it is the item's exception.  What
 * unpickling raised is never returned or raised as such (it may be a
 * SystemExit): it is the cause of a _remote.DeserializationError, the
 * item's exception.  NULL with an error set only when even that failed. */
PyObject *sfpy_wire_decode(const sfpy_state *st, uint32_t kind, const void *data, uint32_t len,
                           int *failed);

#endif
