"""sf.fanout (seed 003): the input is read once, every consumer sees every
item in order, at most buffersize items are held between the input and the
slowest consumer still reading, early returns detach, a failing consumer
cancels the others, the input's error is raised once, Ctrl-C stops it."""
import collections
import itertools
import os
import signal
import statistics
import threading
import time
import traceback

import pytest

import streamfutures as sf
from conftest import CountingInput


def test_every_consumer_sees_the_whole_input_read_once():
    source = CountingInput(range(100_000))
    total, largest, counts, mean, items = sf.fanout(
        source, sum, max, collections.Counter, statistics.fmean, list)
    assert total == sum(range(100_000))
    assert largest == 99_999
    assert counts == collections.Counter(range(100_000))
    assert mean == statistics.fmean(range(100_000))
    assert items == list(range(100_000))
    assert source.pulled == 100_000


@pytest.mark.thread_unsafe(reason="checks that the first consumer runs on the main thread")
def test_consumers_run_on_engine_threads_and_the_first_on_the_caller():
    ran_on = {}

    def on(name):
        def consume(it):
            ran_on[name] = threading.current_thread()
            return sum(it)
        return consume

    # a ring far smaller than the input: they can only finish together
    assert sf.fanout(range(100_000), on("a"), on("b"), on("c"), buffersize=16) == (
        sum(range(100_000)),) * 3
    assert ran_on["a"] is threading.main_thread()
    assert ran_on["b"] is not threading.main_thread()
    assert ran_on["c"] is not ran_on["b"]


class Bounded:
    """An input that checks, at every pull, that the items pulled and not yet
    seen by the slowest consumer stay below the bound."""

    def __init__(self, n, consumers, buffersize):
        self.n, self.buffersize = n, buffersize
        self.seen = [0] * consumers
        self.pulled = 0
        self.worst = 0

    def __iter__(self):
        for i in range(self.n):
            self.pulled += 1  # this item is now held too
            self.worst = max(self.worst, self.pulled - min(self.seen))
            yield i

    def consumer(self, index, pause_every):
        def consume(it):
            total = 0
            for x in it:
                self.seen[index] += 1
                total += x
                if pause_every and self.seen[index] % pause_every == 0:
                    time.sleep(0.001)
            return total
        return consume


@pytest.mark.parametrize("buffersize", [1, 7, 64])
def test_at_most_buffersize_items_between_the_input_and_the_slowest(buffersize):
    source = Bounded(5000, 3, buffersize)
    results = sf.fanout(source, source.consumer(0, 0), source.consumer(1, 500),
                        source.consumer(2, 97), buffersize=buffersize)
    assert results == (sum(range(5000)),) * 3
    assert source.pulled == 5000
    assert 1 <= source.worst <= buffersize


def test_a_consumer_that_returns_early_never_holds_the_others_back():
    source = CountingInput(range(50_000))
    first, found, head, total = sf.fanout(
        source, lambda it: next(iter(it)), lambda it: any(x == 10 for x in it),
        lambda it: list(itertools.islice(it, 3)), sum, buffersize=4)
    assert (first, found, head) == (0, True, [0, 1, 2])
    assert total == sum(range(50_000))
    assert source.pulled == 50_000


def test_a_consumer_that_raises_cancels_the_others_and_is_raised_first():
    seen = []

    def fails_at_50(it):
        for i, _ in enumerate(it):
            if i == 50:
                raise ValueError("consumer failed at 50")

    def records(it):
        try:
            for x in it:
                seen.append(x)
        except BaseException as exc:
            seen.append(exc)
            raise

    with pytest.raises(ValueError, match="consumer failed at 50") as info:
        sf.fanout(itertools.count(), records, fails_at_50, buffersize=8)
    assert isinstance(seen[-1], sf.CancelledError)  # unwound, not a silent end
    assert seen[:-1] == list(range(len(seen) - 1))
    assert len(seen) - 1 <= 50 + 8
    assert "fails_at_50" in "".join(traceback.format_tb(info.value.__traceback__))


def test_a_reader_stops_at_cancel_even_with_items_it_took_in_one_run():
    # a fanout reader takes the items already published behind the one it
    # needs in one trip into the ring; a cancel must still stop it at its
    # very next step, not after what it took
    from streamfutures import _engine
    ring, (ahead, behind) = _engine.broadcast(range(100), 2, 1024, 256)
    assert [next(ahead) for _ in range(50)] == list(range(50))  # all 100 pulled
    assert next(behind) == 0
    ring.cancel()
    with pytest.raises(sf.CancelledError):
        next(behind)
    with pytest.raises(sf.CancelledError):
        next(ahead)
    behind.close()
    ahead.close()


def test_a_reader_hands_out_a_run_it_took_in_order_then_reads_on():
    from streamfutures import _engine
    ring, (ahead, behind) = _engine.broadcast(iter(range(1000)), 2, 64, 16)
    assert [next(ahead) for _ in range(40)] == list(range(40))
    # runs of what is published, then items it pulls itself
    assert [next(behind) for _ in range(80)] == list(range(80))
    behind.close()
    assert list(ahead) == list(range(40, 1000))


def test_an_input_that_waits_until_a_consumer_saw_its_last_item_still_ends():
    # the input's thread is one consumer's, inside that consumer's next():
    # only the other consumer can see the item, so it must be handed out
    # before the next pull returns, even in the middle of a producer's turn
    n = 30
    seen = [-1, -1]
    changed = threading.Condition()

    def source():
        for i in range(n):
            yield i
            with changed:
                if not changed.wait_for(lambda: max(seen) >= i, timeout=60):
                    raise AssertionError("no consumer was handed item %d" % i)

    def consumer(position):
        def consume(items):
            for item in items:
                with changed:
                    seen[position] = item
                    changed.notify_all()
            return seen[position]
        return consume

    assert sf.fanout(source(), consumer(0), consumer(1)) == (n - 1, n - 1)


def test_the_inputs_exception_reaches_every_consumer_and_is_raised_once():
    def source():
        yield from range(100)
        raise KeyError("input broke")

    met = []

    def sees_all(it):
        count = 0
        try:
            for _ in it:
                count += 1
        except KeyError as exc:
            met.append((count, exc))
            raise

    with pytest.raises(KeyError, match="input broke") as info:
        sf.fanout(source(), sees_all, sees_all, sees_all)
    assert [count for count, _ in met] == [100, 100, 100]
    # each consumer raised a copy of its own (consumers run on several
    # threads at once); fanout raises the first one met, once
    assert len({id(exc) for _, exc in met}) == 3
    assert any(exc is info.value for _, exc in met)
    assert all(type(exc) is KeyError and exc.args == ("input broke",) for _, exc in met)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(frame.name == "source" for frame in frames)


def test_the_inputs_exception_is_raised_even_when_a_consumer_swallows_it():
    def source():
        yield 1
        raise KeyError("input broke")

    def swallows(it):
        try:
            return list(it)
        except KeyError:
            return "swallowed"

    with pytest.raises(KeyError, match="input broke"):
        sf.fanout(source(), swallows, swallows)


def test_an_empty_input_is_passed_on_as_empty():
    with pytest.raises(ValueError) as serial:
        max([])
    with pytest.raises(ValueError) as fanned:  # max's own error, whatever this Python says
        sf.fanout([], sum, max)
    assert str(fanned.value) == str(serial.value)
    assert sf.fanout([], sum, list) == (0, [])
    assert sf.fanout(iter(()), lambda it: sum(1 for _ in it)) == (0,)


def test_one_consumer_runs_on_the_caller():
    assert sf.fanout(range(10), list) == (list(range(10)),)


def test_bad_arguments_get_clear_errors():
    with pytest.raises(TypeError, match="at least one consumer"):
        sf.fanout(range(3))
    with pytest.raises(TypeError, match="consumer 1 is not callable"):
        sf.fanout(range(3), sum, 5)
    with pytest.raises(TypeError, match="buffersize must be an integer or None"):
        sf.fanout(range(3), sum, buffersize=1.5)
    with pytest.raises(ValueError, match="buffersize must be None or > 0"):
        sf.fanout(range(3), sum, buffersize=0)
    with pytest.raises(TypeError, match="not iterable"):
        sf.fanout(5, sum)


def test_unbounded_buffersize_none_still_reads_once():
    source = CountingInput(range(10_000))
    assert sf.fanout(source, sum, max, buffersize=None) == (sum(range(10_000)), 9999)
    assert source.pulled == 10_000


def endless_slow():
    for i in itertools.count():
        time.sleep(0.002)
        yield i


@pytest.mark.thread_unsafe(reason="a signal reaches the main thread only")
@pytest.mark.parametrize("first", ["reading", "waiting"])
def test_ctrl_c_raises_keyboard_interrupt_promptly_and_stops_every_thread(first):
    # "reading": the caller's consumer reads the endless input itself;
    # "waiting": it returned at once, so the caller waits for the others
    consumers = [sum, max] if first == "reading" else [lambda it: None, sum, max]
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sf.fanout(endless_slow(), *consumers, buffersize=16)
    finally:
        timer.cancel()
        timer.join()
