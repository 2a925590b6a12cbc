"""sf.fanout and sf.tee: one iterable, read once, seen whole by several
consumers at the same time, in bounded memory (seed 003).

Both sit on the engine's broadcast ring (src/core/ring.c, bound by
src/python/broadcast.c): the copies are C iterators, and the copy that has
read everything pulls the next item itself, so there is no producer thread.
This module only validates arguments and, for fanout, runs the consumers on
engine threads and decides which exception the caller sees.
"""
import threading
from concurrent.futures import wait as _wait

from . import _engine
from .thread import ThreadPoolExecutor
from ._validate import check_buffersize

#: fanout()'s default buffersize: items held between the input and the
#: slowest consumer.  With a GIL, consumers take turns, each running until
#: it is a ring ahead of the slowest (or has caught up): a larger ring means
#: fewer hand-offs, a smaller one less memory.  Without one (3.13t) they run
#: at once and the ring's size hardly matters past 1024.  1024 items keep
#: the hand-offs rare on both and stay small next to anything worth fanning
#: out (1024 pointers, plus the items a lagging consumer pins); the figures
#: are in the README ("Free-threaded Python"), from bench_freethreading.py.
DEFAULT_FANOUT_BUFFERSIZE = 1024


#: Items a fanout consumer that pulls takes from the input in one turn,
#: while the input answers at once (the engine ends a turn after ~20 us).
#: The consumers run on different cores: handing the producer role over
#: per item costs more than the item (bench/bench_freethreading.py).  The
#: input runs ahead by at most this, within buffersize.  tee() keeps
#: itertools.tee's rule: it pulls only the item a copy asks for.
FANOUT_READ_AHEAD = 256


def _ring_size(buffersize):
    """The engine's capacity for a buffersize: None is 0, unbounded."""
    return check_buffersize(buffersize) or 0


def tee(iterable, n=2, *, buffersize=None):
    """Return n independent iterators over one iterable, like itertools.tee,
    whose copies may be read on different threads at the same time.

    The input is read once, by whichever copy is ahead.  With buffersize
    None a copy never waits and the items between the fastest and the
    slowest copy are kept, as itertools.tee keeps them.  With a buffersize,
    a copy that is buffersize items ahead of the slowest open copy waits,
    with the GIL released, until that one catches up.  A copy that is
    closed (close(), a with-block) or garbage-collected stops counting.
    When the copies holding it back were all last read on the very thread
    that would wait, waiting could never end: that read raises RuntimeError
    instead.  A copy never read yet may be headed for another thread, so it
    is waited for.  When the input raises, every copy raises that exception
    at the same position, each as its own copy of it (same type, args,
    attributes, cause and traceback), since copies on several threads may
    raise it at once."""
    if not isinstance(n, int):
        raise TypeError("'%s' object cannot be interpreted as an integer" % type(n).__name__)
    if n < 0:
        raise ValueError("n must be >= 0")
    size = _ring_size(buffersize)
    if n == 0:
        iter(iterable)  # the same TypeError itertools.tee gives for a non-iterable
        return ()
    return _engine.broadcast(iterable, n, size)[1]


def fanout(iterable, *consumers, buffersize=DEFAULT_FANOUT_BUFFERSIZE):
    """Run every consumer on the same input, read once, at the same time,
    and return their results as a tuple, in order.

    A consumer is any callable that takes one iterable (sum, max, Counter,
    statistics.fmean, your function).  The first runs on the calling
    thread, the others on engine threads that end before this returns.
    At most ``buffersize`` items are held between the input and the slowest
    consumer still reading.  A consumer that returns early stops counting.
    When a consumer raises, every other consumer's iterator raises
    CancelledError at its next step, and fanout raises the first exception.
    When the input raises, every consumer sees that exception at the end of
    its items (each its own copy: same type, args, attributes and
    traceback), and fanout raises it once, after all of them stopped."""
    if not consumers:
        raise TypeError("fanout() needs at least one consumer")
    for position, consumer in enumerate(consumers):
        if not callable(consumer):
            raise TypeError("consumer %d is not callable: %r" % (position, consumer))
    ring, readers = _engine.broadcast(iterable, len(consumers), _ring_size(buffersize),
                                      FANOUT_READ_AHEAD)
    errors = []  # in the order consumers met them; the input's counted once
    input_error_met = []
    errors_lock = threading.Lock()  # consumers fail on several threads at once

    def run(consumer, reader):
        try:
            return consumer(reader)
        except BaseException as exc:
            # each reader raises its own copy of the input's exception
            from_input = exc is reader.input_error
            with errors_lock:
                if not (from_input and input_error_met):
                    errors.append(exc)
                if from_input:
                    input_error_met.append(True)
            if not from_input:
                ring.cancel()
            raise
        finally:
            reader.close()

    results = [None] * len(consumers)
    first, rest = readers[0], readers[1:]
    del readers
    with ThreadPoolExecutor(max(1, len(rest)), "streamfutures-fanout") as executor:
        futures = [executor.submit(run, c, r) for c, r in zip(consumers[1:], rest)]
        del rest  # each reader is now held by its consumer only
        try:
            results[0] = run(consumers[0], first)
        except BaseException:
            pass  # recorded in errors
        del first
        while True:
            try:
                _wait(futures)
                break
            except BaseException as exc:  # Ctrl-C while waiting: stop them all
                errors.append(exc)
                ring.cancel()
    if errors:
        interrupts = [e for e in errors if not isinstance(e, Exception)]
        raise (interrupts or errors)[0]
    if ring.input_error is not None:  # a consumer swallowed it: raise it anyway
        raise ring.input_error.with_traceback(ring.input_traceback)
    for position, future in enumerate(futures, 1):
        results[position] = future.result()
    return tuple(results)
