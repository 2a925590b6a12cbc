"""The remote side of sf.map on an executor that is not ours: the one task
each chunk is, run where the executor runs it (a Dask worker, an MPI rank,
a loky or stdlib worker process).

A chunk's task returns every item's outcome, never raises for an item: a
value, or its exception kept at its position with the traceback text it
had where it was raised.  An exception that would not survive the trip
back (it does not pickle, or does not unpickle) is replaced by a
``RemoteError`` that keeps its type name, message and traceback text.
The task also returns the time it spent running the items, so the client
can tell the executor's overhead from the items' own cost
(_chunk_policy.py).  Kept small and free of the engine: it is what a
worker imports and runs.
"""
import builtins
import itertools
import pickle
import time
import traceback


class RemoteError(Exception):
    """An item's exception that could not be sent back as itself (it does
    not pickle): its type's qualified name, its message, and the traceback
    text from where it was raised."""

    def __init__(self, type_name, message, traceback_text):
        super().__init__("%s: %s" % (type_name, message))
        self.type_name, self.message, self.traceback_text = type_name, message, traceback_text

    def __reduce__(self):
        return (type(self), (self.type_name, self.message, self.traceback_text))


def _portable(error):
    """(the exception to send back, its traceback text)."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        kind = type(error)
        error = RemoteError("%s.%s" % (kind.__module__, kind.__qualname__), str(error), text)
    return error, text


def run_chunk(fn, chunk, star):
    """fn over the chunk's items (each an argument tuple when ``star``):
    (seconds spent, the values, None or [(position, exception, traceback
    text), ...]); a failed item's value is None.  The items run inside
    map()/starmap(), which go on to the next item after one raised."""
    start = time.perf_counter()
    values = []
    errors = None
    calls = itertools.starmap(fn, chunk) if star else builtins.map(fn, chunk)
    while True:
        try:
            values.extend(calls)  # keeps the values before an item that raised
            break
        except BaseException as error:  # the item's outcome, as a worker keeps it
            if errors is None:
                errors = []
            errors.append((len(values),) + _portable(error))
            values.append(None)
    return time.perf_counter() - start, values, errors
