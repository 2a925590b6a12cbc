"""Argument handling shared by the executors' map() and as_completed(),
with the stdlib's exception types and messages (Executor.map in 3.14)."""


def check_buffersize(buffersize):
    if buffersize is not None and not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize is not None and buffersize < 1:
        raise ValueError("buffersize must be None or > 0")
    return buffersize


def map_arguments(iterables, buffersize):
    """(iterator, star, window) for the engine's map: one iterable is read
    as it is, several are zipped and their items spread as arguments;
    window 0 means unbounded (buffersize=None)."""
    check_buffersize(buffersize)
    if len(iterables) == 1:
        return iter(iterables[0]), False, buffersize or 0
    return zip(*iterables), True, buffersize or 0
