"""sf.Stream: a pipeline of stages over one iterable (seed 001's download ->
count -> upload), bounded end to end, with one close() and per-stage
statistics.

Each map stage is an engine map (src/core/map.c) whose input is the
previous stage's iterator itself: one engine map pulls straight from the
next one's C iterator, with no Python generator in between.  The windows
give the backpressure: a stage whose window is full stops pulling, so the
stage before it stops too, back to the source.  This module only builds
the chain, owns the executors it made, and reads the engine's counters.
"""
import itertools
import threading
import weakref

from .fanout import DEFAULT_FANOUT_BUFFERSIZE, fanout
from .process import ProcessPoolExecutor
from .thread import ThreadPoolExecutor
from . import _aio, _progress
from ._progress import name_of as _name_of
from ._validate import STAGE_DEFAULT, check_buffersize
from .foreign import DEFAULT_FOREIGN_BUFFERSIZE, ForeignMap





class _MapStage:
    def __init__(self, fn, workers, processes, executor, buffersize, unordered, progress=None):
        if not callable(fn):
            raise TypeError("%r is not callable" % (fn,))
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError("workers must be None or > 0")
        if processes is not False and processes is not True and (
                not isinstance(processes, int) or processes < 1):
            raise ValueError("processes must be a bool or a count > 0")
        if executor is not None and (workers is not None or processes is not False):
            raise TypeError("executor= runs the stage on that executor: "
                            "give workers= or processes= only without it")
        check_buffersize(buffersize)
        self.fn, self.workers, self.processes = fn, workers, processes
        self.executor, self.buffersize, self.unordered = executor, buffersize, bool(unordered)
        self.name = "map(%s)" % _name_of(fn)
        self.progress = progress

    def start(self, upstream, run):
        executor = self.executor
        if executor is None:
            if self.processes is not False:
                count = self.processes if self.processes is not True else self.workers
                executor = ProcessPoolExecutor(count)
            else:
                executor = ThreadPoolExecutor(self.workers)
            run.owned.append(executor)
        if isinstance(executor, (ThreadPoolExecutor, ProcessPoolExecutor)):
            # the executor's own default window, which adapts to what the
            # results cost, but a stream dropped before it started reads no
            # more input, as with an explicit buffersize
            window = STAGE_DEFAULT if self.buffersize is None else self.buffersize
            iterator = executor.map(self.fn, upstream, buffersize=window,
                                    unordered=self.unordered)
            return iterator, iterator.stats
        foreign = ForeignMap(executor, self.fn, (upstream,),
                             self.buffersize or DEFAULT_FOREIGN_BUFFERSIZE, self.unordered, None)
        return foreign, foreign.stats


class _InlineStage:
    """filter, flat_map, batch: run on the thread that pulls from them."""

    def __init__(self, name, make):
        self.name, self._make = name, make

    def start(self, upstream, run):
        counter = _Counter(self._make(upstream))
        return counter, counter.stats


class _Counter:
    """Counts what an inline stage yields (its in is the stage before's out)."""

    __slots__ = ("_next", "count")

    def __init__(self, iterator):
        self._next = iterator.__next__
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = self._next()
        self.count += 1
        return item

    def stats(self):
        return {"items_out": self.count}

    def close(self):
        pass


class StreamStats(list):
    """stats(): one dict per stage, in order; print() shows a table."""

    _COLUMNS = ("items_in", "items_out", "busy", "waiting_for_input", "blocked_on_output")

    def __str__(self):
        def cell(value):
            if value is None:
                return "-"
            return "%.3f s" % value if isinstance(value, float) else str(value)

        rows = [("stage",) + self._COLUMNS]
        rows += [(s["stage"],) + tuple(cell(s.get(c)) for c in self._COLUMNS) for s in self]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                         for r in rows)


class _Run:
    """A started stream: its stage iterators and the executors it made."""

    def __init__(self, source, stages, progress=None):
        self.owned = []
        self.iterators = []
        self.readers = []
        self.closed = False
        self._closing = threading.Lock()  # close() may come from several threads at once
        # bars first (one line per map stage): a missing tqdm fails before
        # anything starts
        bars = {}
        upstream = iter(source)
        try:
            for i, stage in enumerate(stages):
                wanted = stage.progress if _progress.wanted(
                    getattr(stage, "progress", None)) else progress
                if isinstance(stage, _MapStage) and _progress.wanted(wanted):
                    total = _progress.total_of([source]) if i == 0 else None
                    bars[i] = _progress.make_bar(wanted, total, stage.name, position=len(bars))
            for stage in stages:
                upstream, stats = stage.start(upstream, self)
                self.iterators.append(upstream)
                self.readers.append(stats)
        except BaseException:
            for bar, owned in bars.values():
                if owned:
                    bar.close()
            self.close()
            raise
        self.last = upstream
        if bars:
            shown = _progress.Progress()
            for i, (bar, owned) in bars.items():
                if hasattr(self.iterators[i], "_on_finish"):  # an engine map
                    shown.show(self.iterators[i], bar, owned)
                elif owned:
                    bar.close()

    def close(self):
        with self._closing:
            if self.closed:
                return
            self.closed = True
        try:
            for iterator in self.iterators:  # from the source on: stop reading first
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        finally:
            for executor in self.owned:
                executor.shutdown(wait=True, cancel_futures=True)


class _Results:
    """What iter(stream) returns: the last stage's results.  Dropping it
    (a `break` out of a for loop) closes the stream."""

    __slots__ = ("_next", "_stream", "__weakref__")

    def __init__(self, stream, last):
        self._next = last.__next__
        self._stream = stream

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._next()
        except StopIteration:
            self._stream.close()  # ended: give the threads and processes back now
            raise

    def __del__(self):
        self._stream.close()


class Stream:
    """A lazy pipeline over one iterable.

    Building it does no work: it starts when first iterated and then runs
    ahead of the consumer by at most each stage's window, so memory is
    bounded end to end by the sum of the windows.  ``close()``, leaving a
    ``with`` block, breaking out of ``for x in stream`` (the loop's iterator
    is dropped) or the garbage collector stops every stage at once: no
    more input is read, items not started are cancelled, and the threads
    and processes the stream made are joined.  An exception from a stage's
    function is raised at its item's position, as in ``map``; one from the
    source ends the stream after every earlier result."""

    def __init__(self, iterable, progress=None):
        self._source = iterable
        self._progress = progress
        self._stages = ()
        self._run = None
        self._results = None
        self._starting = threading.RLock()  # one start, one results iterator, whichever thread asks

    def _then(self, stage):
        if self._run is not None:
            raise RuntimeError("a stream cannot get new stages once it has started")
        stream = Stream(self._source, self._progress)
        stream._stages = self._stages + (stage,)
        return stream

    def map(self, fn, *, workers=None, processes=False, executor=None, buffersize=None,
            unordered=False, progress=None):
        """A stage that calls fn on every item: on engine threads (``workers``
        of them), on worker processes (``processes=True`` or a count, with
        the process pool's batching and crash isolation), or on an executor
        you own (``executor=``: ours or any concurrent.futures.Executor,
        left running at the end).  ``buffersize``: the stage's window
        (default: the executor's map default).  ``progress=True`` (or a tqdm
        class or bar) shows this stage's progress; ``Stream(xs,
        progress=True)`` shows every map stage's, one line each."""
        return self._then(_MapStage(fn, workers, processes, executor, buffersize, unordered,
                                    progress))

    def filter(self, predicate):
        """Keep the items for which predicate(item) is true (inline)."""
        return self._then(_InlineStage("filter(%s)" % _name_of(predicate),
                                       lambda it: filter(predicate, it)))

    def flat_map(self, fn):
        """Replace every item by the items of fn(item) (inline)."""
        return self._then(_InlineStage(
            "flat_map(%s)" % _name_of(fn),
            lambda it: itertools.chain.from_iterable(map(fn, it))))

    def batch(self, n):
        """Group items into tuples of n (the last may be shorter; inline)."""
        if not isinstance(n, int):
            raise TypeError("batch size must be an integer")
        if n < 1:
            raise ValueError("batch size must be at least one")
        return self._then(_InlineStage("batch(%d)" % n, lambda it: _batched(it, n)))

    def __aiter__(self):
        """``async for x in stream``: never blocks the event loop (see
        streamfutures/_aio.py); cancelling the task, ``break`` or
        ``aclose()`` closes the stream."""
        results = iter(self)
        return _aio.for_stream(self, results, self._run.last)

    def _start(self):
        with self._starting:
            if self._run is None:
                self._run = _Run(self._source, self._stages, self._progress)
            return self._run

    def __iter__(self):
        with self._starting:
            results = self._results() if self._results is not None else None
            if results is None:
                results = _Results(self, self._start().last)
                self._results = weakref.ref(results)
            return results

    def fanout(self, *consumers, buffersize=DEFAULT_FANOUT_BUFFERSIZE):
        """sf.fanout over this stream's results; the stream is closed after."""
        with self:
            return fanout(iter(self), *consumers, buffersize=buffersize)

    def close(self):
        """Stop every stage: read no more input, cancel what has not started,
        join the threads and processes the stream made."""
        if self._run is not None:
            self._run.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def stats(self):
        """Per stage, while the stream runs or after it ended: items in and
        out, seconds busy (summed over its workers), waiting for input, and
        blocked because the next stage (or you) did not take results.  The
        bottleneck is the busiest stage whose input was rarely late."""
        rows = StreamStats()
        run = self._run
        previous_out = None
        for position, stage in enumerate(self._stages):
            row = {"stage": stage.name, "items_in": previous_out, "items_out": None,
                   "busy": None, "waiting_for_input": None, "blocked_on_output": None}
            if run is not None and position < len(run.readers):
                row.update(run.readers[position]())
            previous_out = row["items_out"]
            rows.append(row)
        return rows

    def __repr__(self):
        state = "not started" if self._run is None else (
            "closed" if self._run.closed else "running")
        return "<Stream %s: %s>" % (state, " -> ".join(s.name for s in self._stages) or "source")


def _batched(iterator, n):
    batched = getattr(itertools, "batched", None)
    if batched is not None:
        return batched(iterator, n)
    return iter(lambda: tuple(itertools.islice(iterator, n)), ())
