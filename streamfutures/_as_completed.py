"""as_completed with an optional bound on how far ahead it pulls futures.

With ``buffersize=None`` this is exactly concurrent.futures.as_completed.
With ``buffersize=N`` the iterable of futures is consumed lazily, and only
while fewer than N of the futures taken from it are unfinished, so a
generator that submits work (seed 002) never runs more than N ahead.
"""
import concurrent.futures
import queue
import time

from ._validate import check_buffersize


def as_completed(fs, timeout=None, *, buffersize=None):
    """Yield futures from ``fs`` as they complete (finished or cancelled)."""
    if check_buffersize(buffersize) is None:
        return concurrent.futures.as_completed(fs, timeout)
    return _bounded_as_completed(iter(fs), timeout, buffersize)


def _bounded_as_completed(futures, timeout, buffersize):
    end_time = None if timeout is None else timeout + time.monotonic()
    finished = queue.SimpleQueue()
    unfinished = set()
    taken = 0
    exhausted = False
    while True:
        while not exhausted and len(unfinished) < buffersize:
            try:
                future = next(futures)
            except StopIteration:
                exhausted = True
                break
            if future in unfinished:
                continue  # the stdlib yields each distinct future once
            taken += 1
            unfinished.add(future)
            future.add_done_callback(finished.put)  # runs now if already done
        if not unfinished:
            return
        remaining = None if end_time is None else end_time - time.monotonic()
        try:
            if remaining is not None and remaining <= 0:
                future = finished.get_nowait()
            else:
                future = finished.get(timeout=remaining)
        except queue.Empty:
            raise concurrent.futures.TimeoutError(
                "%d (of %d) futures unfinished" % (len(unfinished), taken)
            ) from None
        unfinished.discard(future)
        yield future
