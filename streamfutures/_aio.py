"""async for over a map or a Stream, without ever blocking the event loop.

The wait happens on a thread of the loop's default executor: it blocks for
the next outcome (in the engine, with the GIL released), then takes every
outcome that is ready at that moment without waiting (``_poll``), and hands
the whole batch back.  Completing that one executor future is one
thread-safe wake of the loop (``call_soon_threadsafe`` inside asyncio, the
loop's own mechanism), so a burst of results costs one wake, not one per
item.  Cancelling the task, ``break`` (the adapter is dropped) and
``aclose()`` close the map as ``close()`` does; a close wakes the waiting
thread, so the executor is never left blocked.
"""
from collections import deque

_RESULT, _ERROR, _END = 0, 1, 2


class AsyncResults:
    """What ``async for`` iterates: the results of one map (or a Stream's
    last stage), in its order."""

    __slots__ = ("_next", "_poll", "_close", "_ready", "_ended", "__weakref__")

    def __init__(self, iterator, poll=None, close=None):
        self._next = iterator.__next__
        self._poll = poll if poll is not None else iterator._poll
        self._close = close if close is not None else iterator.close
        self._ready = deque()
        self._ended = False

    def __aiter__(self):
        return self

    @staticmethod
    def _take_batch(next_, poll):
        """On an executor thread: one outcome (waiting), then all ready ones.
        It is given the map's methods, not the adapter: the executor's
        thread may hold its call a while after the result is set, and the
        adapter must die at a `break` for its ``__del__`` to close the map."""
        batch = []
        try:
            batch.append((_RESULT, next_()))
            while True:
                got, value = poll()
                if not got:
                    break
                batch.append((_RESULT, value))
        except StopIteration:
            batch.append((_END, None))
        except BaseException as e:  # an item's exception, at its position
            batch.append((_ERROR, e))
        return batch

    async def __anext__(self):
        if not self._ready:
            if self._ended:
                raise StopAsyncIteration
            import asyncio  # here, not at import: the engine's module state imports
            # this module, also in subinterpreters that never use asyncio

            loop = asyncio.get_running_loop()
            try:
                self._ready.extend(await loop.run_in_executor(None, self._take_batch, self._next, self._poll))
            except BaseException:  # cancelled (or the loop is going): stop the map
                self._close()
                raise
        kind, value = self._ready.popleft()
        if kind == _RESULT:
            return value
        if kind == _END:
            self._ended = True
            self._close()  # a stream gives its threads and processes back now
            raise StopAsyncIteration
        raise value

    async def aclose(self):
        self._ended = True
        self._ready.clear()
        self._close()

    def __del__(self):  # `break` out of `async for`: nobody will read the rest
        if not self._ended:
            self._close()


def _nothing_ready():
    return False, None


def for_stream(stream, results, last):
    """async for over a stream: its last stage is polled when it is an
    engine map (a filter or a foreign executor's stage gives one result per
    wake)."""
    return AsyncResults(results, poll=getattr(last, "_poll", _nothing_ready), close=stream.close)
