"""sf.map over any concurrent.futures.Executor: Dask distributed's
client.get_executor(), mpi4py's MPIPoolExecutor, loky, the stdlib's.

The engine keeps the window: an engine map (one engine thread) whose work
for an item is ``executor.submit(fn, *item)``, so the input is read lazily
in the background and at most ``buffersize`` items are acquired and not
yet yielded, exactly as for our own executors.  Each submitted future gets
a done-callback that forgets it (and, unordered, queues it); the consumer
takes the futures from the engine map in input order and waits on each
(ordered), or takes the first one done (unordered).  ``close()``, ``break``
(dropping the iterator) or the garbage collector stop the input and
cancel every future not yet finished; the executor itself is the caller's
and is left running.
"""
import queue
import threading
import time

from .thread import ThreadPoolExecutor

#: the window on an executor that is not ours: futures in flight at once
DEFAULT_FOREIGN_BUFFERSIZE = 64


class ForeignMap:
    """The iterator sf.map returns for an executor that is not ours."""

    def __init__(self, executor, fn, iterables, buffersize, unordered, timeout):
        if buffersize is not None and (not isinstance(buffersize, int) or buffersize < 1):
            raise ValueError("buffersize must be None or > 0")
        self._executor, self._fn = executor, fn
        self._unordered = bool(unordered)
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._in_flight = set()
        self._lock = threading.Lock()
        self._done = queue.SimpleQueue()  # unordered: futures as they finish
        self._taken = 0     # futures taken from the engine map
        self._yielded = 0   # their outcomes given to the consumer
        self._ended = True  # until it exists: nothing for __del__ to close
        self._submitter = ThreadPoolExecutor(1, thread_name_prefix="streamfutures-submit")
        try:  # buffersize=None: no bound, every item submitted as it is read
            self._futures = self._submitter.map(self._submit, *iterables, buffersize=buffersize)
        except BaseException:
            self._submitter.shutdown(wait=True)
            raise
        self._ended = False

    def _submit(self, *args):
        future = self._executor.submit(self._fn, *args)
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future):
        with self._lock:
            self._in_flight.discard(future)
        if self._unordered:
            self._done.put(future)

    def __iter__(self):
        return self

    def _left(self):
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            self.close()
            raise TimeoutError()
        return left

    def __next__(self):
        if self._ended:
            raise StopIteration
        try:
            future = self._first_done() if self._unordered else self._take()
        except StopIteration:
            self.close()
            raise
        self._yielded += not self._unordered
        try:
            return future.result(self._left())
        except TimeoutError:
            if not future.done():  # our deadline, not the item's own error
                self.close()
            raise

    def _take(self):
        future = next(self._futures)  # waits for the engine (input and submit)
        self._taken += 1
        return future

    def _first_done(self):
        """Unordered: the first future to finish among those submitted."""
        while True:
            # take a submitted future from the engine (freeing a slot of its
            # window) only as one is yielded: a future taken and not yet
            # yielded is still acquired, and the window bounds those too
            try:
                while self._taken <= self._yielded:
                    got, _ = self._futures._poll()
                    if not got:
                        break
                    self._taken += 1
            except StopIteration:
                if self._yielded == self._taken:
                    raise
            left = self._left()
            try:
                future = self._done.get(timeout=0.05 if left is None else min(0.05, left))
            except queue.Empty:
                continue
            self._yielded += 1
            return future

    def stats(self):
        engine = self._futures.stats()
        return {"items_in": engine["items_in"], "items_out": self._yielded, "busy": None,
                "waiting_for_input": engine["waiting_for_input"], "blocked_on_output": None}

    def close(self):
        """Stop reading the input and cancel every future not finished."""
        with self._lock:  # once, whichever thread closes first
            if self._ended:
                return
            self._ended = True
        self._futures.close()
        self._submitter.shutdown(wait=True)
        with self._lock:
            pending = list(self._in_flight)
        for future in pending:
            future.cancel()

    def __del__(self):
        if not getattr(self, "_ended", True):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def map(fn, *iterables, executor, buffersize=DEFAULT_FOREIGN_BUFFERSIZE, unordered=False,
        timeout=None):
    """map(fn, *iterables) on any concurrent.futures.Executor, lazily.

    At most ``buffersize`` items are acquired from the input and not yet
    yielded; results come in input order (or as they complete with
    ``unordered=True``); an exception from fn is raised at its item's
    position; ``timeout`` is one deadline for the whole map.  On our own
    executors this is ``executor.map``."""
    from .process import ProcessPoolExecutor

    if isinstance(executor, (ThreadPoolExecutor, ProcessPoolExecutor)):
        return executor.map(fn, *iterables, buffersize=buffersize, unordered=unordered,
                            timeout=timeout)
    return ForeignMap(executor, fn, iterables, buffersize, unordered, timeout)
