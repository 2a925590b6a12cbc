"""Argument checks shared by map() and as_completed(), with the stdlib's
exception types and messages (Executor.map in Python 3.14)."""


def check_buffersize(buffersize):
    if buffersize is not None and not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize is not None and buffersize < 1:
        raise ValueError("buffersize must be None or > 0")
    return buffersize
