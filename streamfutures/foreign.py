"""sf.map over any concurrent.futures.Executor: Dask distributed's
client.get_executor(), mpi4py's MPIPoolExecutor, loky, the stdlib's.

The items travel in chunks, one task per chunk (_chunk_runner.run_chunk),
sized by _chunk_policy from measured times: a task on such an executor
costs far more than an item (Dask's scheduler alone spends about a
millisecond on each).  The engine reads the input: an engine map with one
thread whose input is the chunks and whose work for a chunk is
``executor.submit``; so the input is read lazily in the background and the
consumer takes the chunks' futures in input order from it (or, unordered,
as they finish, from a queue their done-callbacks fill).  The window is
``buffersize`` items acquired and not yet yielded: the chunk maker waits
for room before it reads an item, and the consumer gives room back once it
has yielded a whole chunk.  A chunk is sent once it has its size, or early
when the input is slow to give items (filling it has taken as long as a
task's overhead), so a slow input never holds back results.

Each item comes back with its own outcome: a value, or its exception at
its position (its remote traceback as ``__cause__``, as the stdlib's
process pool gives it).  A chunk that is lost whole (a worker killed, the
pool broken, the chunk cancelled by someone else) fails each of its items
with that error.  ``close()``, ``break`` (dropping the iterator) or the
garbage collector stop the input and cancel every chunk not finished; the
executor itself is the caller's and is left running.

The consumer-facing ForeignMap and the state the engine's thread shares
(_Flow) are two objects so that dropping the iterator frees it at once:
the engine map holds the flow, never the iterator.
"""
import itertools
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, TimeoutError
from concurrent.futures.process import _RemoteTraceback

from . import _aio, _progress
from ._chunk_policy import ChunkSizer
from ._chunk_runner import run_chunk
from ._engine import ChunkCursor
from ._validate import DEFAULT
from .thread import ThreadPoolExecutor

#: the window on an executor that is not ours: items acquired and not yet
#: yielded.  Two chunks per worker fit in it (the chunk cap): on a small
#: cluster, trivial tasks travel a few thousand to a task, where a task's
#: fixed cost stops counting (bench/bench_dask.py)
DEFAULT_FOREIGN_BUFFERSIZE = 16384
#: the chunk cap when buffersize=None (no window to share out)
UNBOUNDED_CHUNK_CAP = 1 << 16
#: unordered, while no chunk finishes: how often the end of the input is checked
END_POLL_SECONDS = 0.05


def _is_dask(executor):
    """Dask's executor or client, or a subclass of either."""
    return any(cls.__module__.startswith("distributed.") for cls in type(executor).__mro__)


def worker_count(executor):
    """The executor's workers (threads, ranks or processes), or the
    machine's cores when it does not say."""
    try:
        if _is_dask(executor):
            return max(1, sum(executor._client.nthreads().values()))
        for name in ("_max_workers", "num_workers"):
            count = getattr(executor, name, None)
            if isinstance(count, int) and count > 0:
                return count
    except Exception:  # a foreign executor's attribute: only a hint
        pass
    return os.cpu_count() or 1


class _Chunk:
    __slots__ = ("size", "future", "sent", "measures_overhead", "error")

    def __init__(self, size):
        self.size, self.future, self.error = size, None, None


class _Flow:
    """What the engine's thread (making and sending chunks), the executor's
    threads (chunks finishing) and the consumer share."""

    def __init__(self, executor, fn, buffersize, chunksize, unordered, star):
        self.executor, self.fn, self.star = executor, fn, star
        self.buffersize = buffersize
        self.workers = worker_count(executor)
        # Dask: never merge identical chunks into one key (pure=True would)
        self.submit_options = {"pure": False} if _is_dask(executor) else {}
        cap = buffersize // (2 * self.workers) if buffersize is not None else UNBOUNDED_CHUNK_CAP
        self.sizer = None if chunksize is not None else ChunkSizer(cap)
        self.fixed_size = chunksize
        self.unordered = unordered
        self.room = threading.Condition(threading.Lock())
        self.held = 0        # items acquired and not given back by the consumer
        self.unfinished = 0  # chunks made and not finished
        # two per worker: one running, one queued behind it, so no worker
        # waits for a round trip between chunks
        self.max_unfinished = 2 * self.workers
        self.acquired = 0
        self.closed = False
        self.in_flight = set()  # chunks' futures not finished
        self.finished = queue.SimpleQueue()  # unordered: chunks as they finish

    def chunk_size(self):
        return self.fixed_size if self.sizer is None else self.sizer.size

    def chunks(self, items):
        """The input, cut into chunks (the engine map's input)."""
        while True:
            size = self.chunk_size()
            with self.room:
                while not self.closed and (self.unfinished >= self.max_unfinished or (
                        self.buffersize is not None and self.held >= self.buffersize)):
                    self.room.wait()
                if self.closed:
                    return
                if self.buffersize is not None:
                    size = min(size, self.buffersize - self.held)
            # a slow input: send what it gave once waiting for more has
            # taken as long as a task's overhead (a fixed size waits); read
            # in doubling pieces, so the clock is read a few times a chunk
            deadline = None if self.sizer is None else time.perf_counter() + self.sizer.overhead
            chunk, error, piece = [], None, 1
            try:
                while True:
                    got = len(chunk)
                    chunk.extend(itertools.islice(items, min(piece, size - got)))
                    if len(chunk) == got or len(chunk) >= size or (
                            deadline is not None and time.perf_counter() > deadline):
                        break
                    piece *= 2
            except BaseException as raised:  # the items read before it still go
                error = raised
            if chunk:
                with self.room:
                    self.held += len(chunk)
                    self.acquired += len(chunk)
                    self.unfinished += 1
                yield chunk
            if error is not None:
                raise error
            if not chunk:
                return

    def _finished_one(self, future):
        with self.room:
            self.in_flight.discard(future)
            self.unfinished -= 1
            self.room.notify()

    def give_back(self, count):
        with self.room:
            self.held -= count
            self.room.notify()

    def close(self):
        with self.room:
            self.closed = True
            self.room.notify_all()

    def submit(self, chunk):
        """The engine map's work: one task for the chunk; a submit that
        fails fails the chunk's items."""
        record = _Chunk(len(chunk))
        with self.room:
            record.measures_overhead = len(self.in_flight) < self.workers
        record.sent = time.perf_counter()
        try:
            record.future = self.executor.submit(run_chunk, self.fn, chunk, self.star,
                                                 **self.submit_options)
        except BaseException as error:
            record.error = error
            self._finished_one(None)
            if self.unordered:
                self.finished.put(record)
            return record
        with self.room:
            self.in_flight.add(record.future)
        record.future.add_done_callback(lambda future: self.settled(record, future))
        return record

    def settled(self, record, future):
        """A chunk finished (on the executor's thread): measure it."""
        round_trip = time.perf_counter() - record.sent
        self._finished_one(future)
        if self.sizer is not None and not future.cancelled() and future.exception() is None:
            self.sizer.observe(record.size, round_trip, future.result()[0],
                               record.measures_overhead)
        if self.unordered:
            self.finished.put(record)

    def cancel_in_flight(self):
        with self.room:
            pending = list(self.in_flight)
        for future in pending:
            future.cancel()


def _outcomes(record, timeout):
    """The chunk's items' (values, errors), as ChunkCursor._load takes
    them: errors is None, a dict from a failed item's position to its
    exception, or, for a chunk lost whole, the one error of every item
    (values None)."""
    if record.error is not None:
        return None, record.error
    try:
        _, values, errors = record.future.result(timeout)
    except TimeoutError:
        if not record.future.done():
            raise
        return None, record.future.exception()
    except (CancelledError, Exception) as error:  # lost whole: each item fails with it
        return None, error
    if errors is None:
        return values, None
    failed = {}
    for position, error, text in errors:
        error.__cause__ = _RemoteTraceback(text)
        failed[position] = error
    return values, failed


class ForeignMap(ChunkCursor):
    """The iterator sf.map returns for an executor that is not ours.  Its
    base (_engine.ChunkCursor, in C) hands out the items of the chunk it
    holds; _next_chunk loads the next one."""

    def __init__(self, executor, fn, iterables, buffersize, unordered, timeout, chunksize=None):
        if buffersize is not None and (not isinstance(buffersize, int) or buffersize < 1):
            raise ValueError("buffersize must be None or > 0")
        if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError("chunksize must be >= 1.")
        if _is_dask(executor) and hasattr(executor, "get_executor"):
            executor = executor.get_executor()  # a Client: its executor
        star = len(iterables) != 1
        items = zip(*iterables) if star else iter(iterables[0])
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._unordered = bool(unordered)
        self._used_room = 0     # the chunk being handed out: its items' room, given
        # back to the window once it is used up and the next one is asked for
        self._loading = threading.Lock()  # one thread loads the next chunk at a time
        self._taken = 0         # chunks taken from the engine map
        self._given = 0         # chunks whose items were all yielded
        self._head_record = None  # ordered: the chunk taken, its outcome not yet in
        self._input_end = None  # unordered: the engine's end (or input error), held back
        self._on_finish_calls = []
        self._ended = True      # until it exists: nothing for __del__ to close
        self._flow = _Flow(executor, fn, buffersize, chunksize, self._unordered, star)
        self._submitter = ThreadPoolExecutor(1, thread_name_prefix="streamfutures-submit")
        try:  # no engine bound: the chunk maker keeps the window in items
            self._chunks = self._submitter.map(self._flow.submit, self._flow.chunks(items),
                                               buffersize=None)
        except BaseException:
            self._submitter.shutdown(wait=True)
            raise
        self._ended = False

    def __aiter__(self):
        return _aio.AsyncResults(self, poll=self._poll, close=self.close)

    def _give_back_used_chunk(self):
        used, self._used_room = self._used_room, 0
        if used:
            self._given += 1
            self._flow.give_back(used)

    def _load_chunk(self, record, outcome):
        values, errors = outcome
        self._load(values, errors, record.size)
        self._used_room = record.size

    def _next_chunk(self):
        """Called by ChunkCursor's next() once the chunk held is used up:
        load the next one, or raise (StopIteration at the end)."""
        with self._loading:
            if not self._has_items():  # else another thread loaded one meanwhile
                self._load_next(wait=True)

    def _load_next(self, wait):
        """With _loading held and the chunk held used up: give its room
        back and load the next chunk; False when none is ready (only when
        not waiting).  The end, the input's error (after every earlier
        result) or the deadline closes the map and is raised."""
        if self._ended:
            raise StopIteration
        self._give_back_used_chunk()
        try:
            if self._unordered:
                return self._next_finished(wait)
            record = self._head(wait)
            if record is None or (not wait and record.future is not None and
                                  not record.future.done()):
                return False
            self._head_record = None
            self._load_chunk(record, _outcomes(record, self._left() if wait else 0))
            return True
        except BaseException:
            self.close()
            raise

    def _left(self):
        if self._deadline is None:
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        return left

    def _head(self, wait):
        """Ordered: the next chunk in input order (None: not sent yet)."""
        if self._head_record is None:
            if wait:
                self._head_record = next(self._chunks)
            else:
                got, record = self._chunks._poll()
                if not got:
                    return None
                self._head_record = record
            self._taken += 1
        return self._head_record

    def _drain_submitted(self):
        """Unordered: take the sent chunks' records from the engine map (so
        it holds none), keeping its end, or the input's error, for when
        every chunk sent before it has been yielded."""
        while self._input_end is None:
            try:
                got, _ = self._chunks._poll()
            except BaseException as end:
                self._input_end = end
                return
            if not got:
                return
            self._taken += 1

    def _next_finished(self, wait):
        """Unordered: load the next chunk to finish; False when none has
        (only when not waiting)."""
        while True:
            self._drain_submitted()
            try:
                record = self._flow.finished.get_nowait()
            except queue.Empty:
                if self._input_end is not None and self._given == self._taken:
                    raise self._input_end
                if not wait:
                    return False
                left = self._left()
                try:  # a short wait: the engine's end is noticed by polling it
                    record = self._flow.finished.get(
                        timeout=END_POLL_SECONDS if left is None else min(END_POLL_SECONDS, left))
                except queue.Empty:
                    continue
            self._load_chunk(record, _outcomes(record, 0))
            return True

    def _poll(self):
        """(True, result) if one is ready now, else (False, None); never
        waits (async for takes what is ready after each wait)."""
        if not self._has_items():
            if not self._loading.acquire(blocking=False):
                return False, None  # another thread is waiting for the next chunk
            try:
                if not self._has_items() and not self._load_next(wait=False):
                    return False, None
            finally:
                self._loading.release()
        return True, next(self)

    def stats(self):
        engine = self._chunks.stats()
        return {"items_in": self._flow.acquired, "items_out": self._items_out, "busy": None,
                "waiting_for_input": engine["waiting_for_input"], "blocked_on_output": None,
                "chunk_size": self._flow.chunk_size()}

    def _on_finish(self, call):
        self._on_finish_calls.append(call)

    def close(self):
        """Stop reading the input and cancel every chunk not finished."""
        with self._flow.room:  # once, whichever thread closes first
            if self._ended:
                return
            self._ended = True
        self._stop()  # nothing more is handed out
        self._flow.close()
        self._chunks.close()
        self._submitter.shutdown(wait=True)
        self._flow.cancel_in_flight()
        for call in self._on_finish_calls:
            call(self._items_out)

    def __del__(self):
        if not getattr(self, "_ended", True):
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def map(fn, *iterables, executor, buffersize=DEFAULT, unordered=False, timeout=None,
        chunksize=None, progress=None):
    """map(fn, *iterables) on any concurrent.futures.Executor, lazily.

    At most ``buffersize`` items are acquired from the input and not yet
    yielded; results come in input order (or as they complete with
    ``unordered=True``); an exception from fn is raised at its item's
    position; ``timeout`` is one deadline for the whole map.  Items travel
    in chunks, one task each, sized from measured times
    (``chunksize=None``) or fixed (``chunksize=N``; 1 is one task per
    item).  On our own executors this is ``executor.map``."""
    from .process import ProcessPoolExecutor

    if isinstance(executor, (ThreadPoolExecutor, ProcessPoolExecutor)):
        options = {} if chunksize is None else {"chunksize": chunksize}
        return executor.map(fn, *iterables, buffersize=buffersize, unordered=unordered,
                            timeout=timeout, progress=progress, **options)
    if not callable(fn):
        raise TypeError("%r is not callable" % (fn,))
    window = DEFAULT_FOREIGN_BUFFERSIZE if buffersize is DEFAULT else buffersize
    return _progress.map_with_progress(
        progress, fn, iterables,
        lambda: ForeignMap(executor, fn, iterables, window, unordered, timeout, chunksize))
