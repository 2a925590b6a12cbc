"""ThreadPoolExecutor: the stdlib's class, on the streamfutures engine.

Everything that runs per task lives in C (streamfutures._engine); this
module only turns the stdlib's signatures and defaults into engine calls.
"""
import itertools
import os
import threading
import weakref
from concurrent.futures import _base

from . import _engine, _progress
from ._validate import DEFAULT, MAX_WINDOW, check_result_memory, is_default, map_arguments

#: map()'s default window adapts (src/core/window.c).  It starts at this
#: many items per worker thread: enough to keep every worker busy while the
#: consumer is briefly slow and to absorb uneven item times in ordered mode
#: (a Stream stage's default window is the same)...
DEFAULT_BUFFERSIZE_PER_WORKER = 32
#: ...doubles up to this many while results are small and the workers run
#: out of input (never while acquired items wait for them), where refilling
#: the window stops costing anything next to the items: each refill is a
#: few thread hand-offs, and with a GIL the input, the workers and the
#: consumer take turns a window at a time (bench/bench_window.py)...
ADAPTIVE_WINDOW_MAX_PER_WORKER = 4096
#: ...or to this many in all where that is more: a refill costs the same
#: hand-offs whatever the number of workers, so a pool of one or two needs
#: as large a window as one of four (bench/bench_window.py --trivial-threads)...
ADAPTIVE_WINDOW_MAX_AT_LEAST = 16384
#: ...and shrinks, down to this many, so that the finished results held for
#: the consumer stay within result_memory bytes (each counted as
#: sys.getsizeof counts it); while they fill it, acquired items wait to
#: start (as input, not as results), but this many per worker still run...
ADAPTIVE_WINDOW_MIN_PER_WORKER = 2
#: ...ThreadPoolExecutor(result_memory=...)'s default.
DEFAULT_RESULT_MEMORY = 256 * 1024 * 1024

_cpu_count = getattr(os, "process_cpu_count", os.cpu_count)

# Engines of live executors, for the exit hook.
_live_pools = weakref.WeakSet()
_exit_lock = threading.Lock()
_exiting = False


def _python_exit():
    """Before the interpreter joins its threads: stop every engine thread.

    Maps that still have a consumer stop pulling input and cancel what has
    not started (nobody will read them); submitted futures and
    fire-and-forget maps finish, as the stdlib's queued work items do."""
    global _exiting
    with _exit_lock:
        _exiting = True
    _engine.set_exiting()
    for pool in list(_live_pools):
        pool.shutdown(True, False, True)
    _engine.reap(True)


threading._register_atexit(_python_exit)


class ThreadPoolExecutor(_base.Executor):
    """Drop-in for concurrent.futures.ThreadPoolExecutor.

    map() returns at once, pulls its input in the background, keeps at most
    ``buffersize`` items acquired and not yet yielded, and yields results
    in input order (or completion order with ``unordered=True``)."""

    _counter = itertools.count().__next__

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=(),
                 *, result_memory=DEFAULT_RESULT_MEMORY):
        if max_workers is None:
            # the running stdlib's default: I/O-bound work, at most 32
            max_workers = min(32, (_cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._result_memory = check_result_memory(result_memory)
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix or (
            "ThreadPoolExecutor-%d" % self._counter()
        )
        self._initializer = initializer
        self._initargs = initargs
        self._pool = _engine.Pool(
            max_workers, self._thread_name_prefix, initializer, tuple(initargs)
        )
        self._submit = self._pool.submit
        with _exit_lock:
            if not _exiting:
                _live_pools.add(self._pool)

    def submit(self, fn, /, *args, **kwargs):
        return self._submit(fn, args, kwargs)

    submit.__doc__ = _base.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=DEFAULT,
            unordered=False, progress=None):
        """Return an iterator equivalent to map(fn, *iterables), lazily.

        The input is pulled in the background; at most ``buffersize`` items
        are acquired and not yet yielded (None means no bound).  By default
        the bound adapts: it starts at 32 items per worker, doubles up to
        4096 per worker (16384 at least) while results are small and the
        workers keep up with the input, and shrinks (to 2 per worker at
        least) so the results waiting for the consumer stay within the
        executor's ``result_memory`` bytes (sys.getsizeof).  An exception from fn is
        raised at its item's position and the next call to next() goes on;
        an exception from the input is raised after every earlier result and
        ends the iteration.
        ``timeout`` is one deadline counted from this call.  Closing the
        iterator (or dropping it once started) cancels what has not started.
        Dropping it before it started lets every item run, unless
        ``buffersize`` was given as an integer: then, as in Python 3.14,
        what was acquired runs and no more input is read.  ``progress=True``
        (or a tqdm class or bar) shows a progress bar, fed by the engine's
        counters."""
        def start():
            iterator, star, window, stop_when_dropped = map_arguments(
                iterables, buffersize, DEFAULT_BUFFERSIZE_PER_WORKER * self._max_workers)
            window_max = 0 if not is_default(buffersize) else min(MAX_WINDOW, max(
                ADAPTIVE_WINDOW_MAX_AT_LEAST, ADAPTIVE_WINDOW_MAX_PER_WORKER * self._max_workers))
            return self._pool.map(fn, iterator, star, window, bool(unordered), timeout,
                                  stop_when_dropped, 1, None, window_max, self._result_memory)

        return _progress.map_with_progress(progress, fn, iterables, start)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._pool.shutdown(wait, cancel_futures, False)

    shutdown.__doc__ = _base.Executor.shutdown.__doc__

    @property
    def _broken(self):
        if self._pool.broken:
            return "A thread initializer failed, the thread pool is not usable anymore"
        return False
