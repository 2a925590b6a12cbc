"""Argument handling shared by the executors' map() and as_completed(),
with the stdlib's exception types and messages (Executor.map in 3.14)."""

#: map(buffersize=DEFAULT): the executor's bounded default window
DEFAULT = object()

#: map(buffersize=STAGE_DEFAULT), for Stream's stages: the default window,
#: with an explicit buffersize's rule for an iterator dropped before it
#: started (it reads no more input), so a stream dropped before it started
#: reads no more of its source.
STAGE_DEFAULT = object()


def is_default(buffersize):
    """Whether map() was given no buffersize of its own (the default
    window, which adapts)."""
    return buffersize is DEFAULT or buffersize is STAGE_DEFAULT

#: the largest window the engine takes (its slots are numbered in 32 bits)
MAX_WINDOW = 2**32 - 1


def check_buffersize(buffersize):
    if buffersize is not None and not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize is not None and buffersize < 1:
        raise ValueError("buffersize must be None or > 0")
    return buffersize


def check_result_memory(result_memory):
    """The executors' result_memory: bytes (> 0), or None for no byte
    bound; returns the engine's budget (0: none)."""
    if result_memory is not None and (
            not isinstance(result_memory, int) or isinstance(result_memory, bool)):
        raise TypeError("result_memory must be an int (bytes) or None")
    if result_memory is not None and result_memory <= 0:
        raise ValueError("result_memory must be > 0 or None")
    return result_memory or 0


def map_arguments(iterables, buffersize, default_window):
    """(iterator, star, window, stop_when_dropped) for the engine's map: one
    iterable is read as it is, several are zipped and their items spread as
    arguments; window 0 means unbounded (buffersize=None).

    stop_when_dropped is Python 3.14's rule for an explicit integer
    buffersize (and for STAGE_DEFAULT): an iterator dropped before it
    started reads no more input.
    With the default window or None, the classic rule stays: every item of
    the input runs."""
    explicit = buffersize is not DEFAULT and buffersize is not None
    if is_default(buffersize):
        buffersize = default_window
    check_buffersize(buffersize)
    if buffersize is not None and buffersize > MAX_WINDOW:
        raise ValueError("buffersize must be at most %d (the engine's window); "
                         "None means no bound" % MAX_WINDOW)
    iterator = iter(iterables[0]) if len(iterables) == 1 else zip(*iterables)
    return iterator, len(iterables) != 1, buffersize or 0, explicit
