"""ThreadPoolExecutor.map: the numbered behaviours of the issue, each by
events, counters and order."""
import gc
import itertools
import threading
import time
import weakref

import pytest

import streamfutures as sf
from conftest import CountingInput, Gate, free_what_other_threads_let_go, wait_until


def identity(x):
    return x


# 1. returns at once; the input is pulled in the background ---------------


def test_map_returns_before_the_first_input_item_exists():
    gate = Gate()
    returned = []

    def slow_input():
        gate.wait()
        yield 1
        yield 2

    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(identity, slow_input())
        returned.append(True)  # map() did not wait for the input
        gate.open()
        assert list(it) == [1, 2]
    assert returned == [True]


def test_input_is_never_pulled_on_the_consumer_thread():
    source = CountingInput(range(500))
    with sf.ThreadPoolExecutor(3) as ex:
        assert list(ex.map(identity, source, buffersize=7)) == list(range(500))
    assert source.pulled == 500
    assert threading.get_ident() not in source.threads


def test_slow_input_overlaps_with_the_work():
    # work on item i only finishes once item i+1 has been pulled: that can
    # only happen if input is pulled while work runs
    pulled = [threading.Event() for _ in range(12)]

    def source():
        for i in range(11):
            pulled[i].set()
            yield i

    def work(i):
        if i < 10:
            assert pulled[i + 1].wait(30)
        return i

    with sf.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(work, source(), buffersize=4)) == list(range(11))


def test_input_is_pulled_while_the_consumer_holds_a_result():
    source = CountingInput(range(100))
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(identity, source, buffersize=5)
        assert next(it) == 0
        # without calling next() again, the window refills in the background
        wait_until(lambda: source.pulled == 6, "window refilled")
        it.close()


# 2. strict bound ----------------------------------------------------------


@pytest.mark.parametrize("unordered", [False, True])
@pytest.mark.parametrize("buffersize", [1, 3, 16])
def test_acquired_and_not_yielded_never_exceeds_buffersize(buffersize, unordered):
    source = CountingInput(range(2000))
    received = 0
    with sf.ThreadPoolExecutor(4) as ex:
        it = ex.map(identity, source, buffersize=buffersize, unordered=unordered)
        for _ in it:
            received += 1
            assert source.pulled <= received + buffersize
            assert it._outstanding() <= buffersize
    assert received == 2000


@pytest.mark.parametrize("buffersize", [1, 3, 100])
def test_a_list_input_pulled_in_bursts_keeps_the_same_bound(buffersize):
    # a list (or range) iterator never blocks, so the engine pulls it
    # several items per lock round trip: still only within the free window
    started = []

    def work(x):
        started.append(x)
        return x

    with sf.ThreadPoolExecutor(4) as ex:
        it = ex.map(work, list(range(2000)), buffersize=buffersize)
        for received, x in enumerate(it, 1):
            assert x == received - 1
            assert len(started) <= received + buffersize
            assert it._outstanding() <= buffersize
    assert sorted(started) == list(range(2000))


def test_a_stalled_consumer_stops_a_list_input_at_the_window():
    started = []

    def work(x):
        started.append(x)
        return x

    with sf.ThreadPoolExecutor(4) as ex:
        it = ex.map(work, range(10**9), buffersize=10)
        assert [next(it) for _ in range(3)] == [0, 1, 2]
        wait_until(lambda: len(started) == 13, "window filled")
        time.sleep(0.1)  # give a wrong engine time to over-pull
        assert len(started) == 13
        it.close()
    assert len(started) == 13


def test_a_stalled_consumer_stops_acquisition_at_the_window():
    source = CountingInput(itertools.count())
    with sf.ThreadPoolExecutor(4) as ex:
        it = ex.map(identity, source, buffersize=10)
        assert [next(it) for _ in range(3)] == [0, 1, 2]
        wait_until(lambda: source.pulled == 13, "window filled")
        time.sleep(0.1)  # give a wrong engine time to over-pull
        assert source.pulled == 13
        it.close()
    assert source.pulled == 13


# 3. the default is bounded; None is unbounded; validation -----------------


def test_default_buffersize_is_bounded_per_worker():
    # where it starts; test_adaptive_window.py shows how it moves
    source = CountingInput(itertools.count())
    with sf.ThreadPoolExecutor(3) as ex:
        it = ex.map(identity, source)
        window = sf.DEFAULT_BUFFERSIZE_PER_WORKER * 3
        wait_until(lambda: source.pulled == window, "default window filled")
        time.sleep(0.05)
        assert source.pulled == window
        assert next(it) == 0
        it.close()


def test_buffersize_none_acquires_everything_without_a_consumer():
    source = CountingInput(range(5000))
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(identity, source, buffersize=None)
        wait_until(lambda: source.pulled == 5000, "all input acquired")
        assert list(it) == list(range(5000))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (1.5, TypeError, "buffersize must be an integer or None"),
        ("3", TypeError, "buffersize must be an integer or None"),
        (0, ValueError, "buffersize must be None or > 0"),
        (-2, ValueError, "buffersize must be None or > 0"),
    ],
)
def test_buffersize_validation_matches_the_stdlib(bad, error, message):
    with sf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(error) as info:
            ex.map(identity, [1], buffersize=bad)
    assert str(info.value) == message


def test_map_of_several_iterables_stops_at_the_shortest():
    with sf.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(pow, [2, 3, 4], [5, 2])) == [32, 9]
        assert list(ex.map(identity)) == []


def test_non_iterable_input_raises_at_the_call():
    with sf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(TypeError, match="'int' object is not iterable"):
            ex.map(identity, 5)


# 4. order -----------------------------------------------------------------


def test_results_come_in_input_order_whatever_the_finishing_order():
    gates = [threading.Event() for _ in range(8)]

    def work(i):
        # each item waits for the next one to finish: they finish in reverse
        if i < 7:
            assert gates[i + 1].wait(30)
        gates[i].set()
        return i * i

    with sf.ThreadPoolExecutor(8) as ex:
        assert list(ex.map(work, range(8), buffersize=8)) == [i * i for i in range(8)]


def test_unordered_yields_in_completion_order():
    second_done = threading.Event()

    def work(i):
        if i == 0:
            assert second_done.wait(30)
        if i == 1:
            second_done.set()
        return i

    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(work, range(2), unordered=True, buffersize=2)
        assert next(it) == 1
        assert next(it) == 0


# 5. exceptions --------------------------------------------------------------


def fails_on_multiples_of_three(x):
    if x % 3 == 0:
        raise ValueError("bad item %d" % x)
    return x


@pytest.mark.parametrize("unordered", [False, True])
def test_a_work_exception_is_raised_at_its_position_and_iteration_goes_on(unordered):
    outcomes = []
    with sf.ThreadPoolExecutor(3) as ex:
        it = ex.map(fails_on_multiples_of_three, range(10), buffersize=4, unordered=unordered)
        while True:
            try:
                outcomes.append(next(it))
            except StopIteration:
                break
            except ValueError as exc:
                outcomes.append(str(exc))
                assert exc.__traceback__ is not None
    expected = [("bad item %d" % x if x % 3 == 0 else x) for x in range(10)]
    if unordered:
        assert sorted(map(str, outcomes)) == sorted(map(str, expected))
    else:
        assert outcomes == expected


def test_the_traceback_shows_the_failing_function():
    import traceback

    with sf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(ValueError) as info:
            list(ex.map(fails_on_multiples_of_three, [3]))
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "fails_on_multiples_of_three" in frames


@pytest.mark.parametrize("unordered", [False, True])
def test_an_input_exception_comes_after_every_earlier_result_and_ends(unordered):
    def source():
        yield from range(5)
        raise KeyError("input broke")

    with sf.ThreadPoolExecutor(3) as ex:
        it = ex.map(identity, source(), unordered=unordered)
        got = [next(it) for _ in range(5)]
        with pytest.raises(KeyError, match="input broke"):
            next(it)
        with pytest.raises(StopIteration):
            next(it)
    assert sorted(got) == [0, 1, 2, 3, 4]


# 6. timeout -----------------------------------------------------------------


def test_timeout_is_one_deadline_and_cancels_everything_pending():
    gate = Gate()
    ran = []

    def work(i):
        ran.append(i)
        if i == 2:
            gate.wait()
        return i

    with sf.ThreadPoolExecutor(1) as ex:
        it = ex.map(work, range(10), timeout=0.3, buffersize=10)
        assert next(it) == 0
        assert next(it) == 1
        with pytest.raises(sf.TimeoutError):
            next(it)
        gate.open()
        with pytest.raises(StopIteration):
            next(it)
    assert ran == [0, 1, 2]  # 3..9 were cancelled, never started


# 7. early exit ----------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.ran = []
        self.lock = threading.Lock()
        self.release = Gate()

    def __call__(self, i):
        with self.lock:
            self.ran.append(i)
        if i >= 2:
            self.release.wait()
        return i


def generator_with_finally(flag, counter):
    try:
        for i in itertools.count():
            counter.append(i)
            yield i
    finally:
        flag.append("closed")


@pytest.mark.parametrize("how", ["close", "break", "del"])
def test_early_exit_cancels_what_has_not_started_and_stops_the_input(how):
    recorder = Recorder()
    closed, pulled = [], []
    with sf.ThreadPoolExecutor(1) as ex:
        it = ex.map(recorder, generator_with_finally(closed, pulled), buffersize=6)
        ref = weakref.ref(it)
        if how == "break":
            for x in it:
                if x == 1:
                    break
        else:
            assert [next(it), next(it)] == [0, 1]
        wait_until(lambda: 2 in recorder.ran, "item 2 running")
        if how == "close":
            it.close()
        del it
        gc.collect()
        assert ref() is None  # nothing keeps the iterator alive
        pulled_at_exit = len(pulled)
        recorder.release.open()
    # item 2 was running and finished; nothing after it ever started
    assert recorder.ran == [0, 1, 2]
    assert len(pulled) <= pulled_at_exit + 1  # at most the pull in flight
    assert len(pulled) <= 2 + 6 + 1
    assert closed == ["closed"]  # the input generator was released and finalized


# 8. fire-and-forget -------------------------------------------------------
# The default window (or None) keeps the classic rule: a map dropped before
# it started runs every item.  An explicit integer buffersize follows
# Python 3.14: the dropped map reads no more input.


def test_a_map_never_iterated_still_runs_every_item_in_bounded_memory():
    done = []
    source = CountingInput(range(3000))
    worst = [0]

    def record(i):
        worst[0] = max(worst[0], source.pulled - len(done))
        done.append(i)

    with sf.ThreadPoolExecutor(3) as ex:
        ex.map(record, source)  # result dropped at once
    assert sorted(done) == list(range(3000))
    # small results: the default window may grow to its cap, never past it
    assert worst[0] <= max(sf.ADAPTIVE_WINDOW_MAX_AT_LEAST, sf.ADAPTIVE_WINDOW_MAX_PER_WORKER * 3)


@pytest.mark.parametrize("buffersize", ["default", None])
def test_shutdown_waits_for_a_dropped_map(buffersize):
    done = []
    ex = sf.ThreadPoolExecutor(2)
    kwargs = {} if buffersize == "default" else {"buffersize": buffersize}
    ex.map(lambda i: done.append(i), range(500), **kwargs)
    ex.shutdown(wait=True)
    assert sorted(done) == list(range(500))


class EndlessInput:
    """An endless, slow input like a live feed: counts what was pulled."""

    def __init__(self, delay=0.002):
        self.delay = delay
        self.pulled = 0

    def __iter__(self):
        return self

    def __next__(self):
        time.sleep(self.delay)
        self.pulled += 1
        return self.pulled


@pytest.mark.parametrize("unordered", [False, True])
def test_a_dropped_map_with_an_explicit_buffersize_stops_reading_its_input(unordered):
    # seed 001's regression scenario: this with-block used to never exit
    source, ran = EndlessInput(), []
    with sf.ThreadPoolExecutor(2) as ex:
        ex.map(ran.append, source, buffersize=10, unordered=unordered)
    pulled = source.pulled
    assert pulled <= 10 + 1  # the window, plus the one pull under way
    assert len(ran) <= pulled  # what was acquired may run; nothing else
    time.sleep(0.05)
    assert source.pulled == pulled  # nothing reads it any more


def test_a_dropped_explicit_buffersize_map_runs_what_it_had_acquired():
    gate, ran = Gate(), []

    def work(i):
        gate.wait()
        ran.append(i)

    source = CountingInput(range(1000))
    ex = sf.ThreadPoolExecutor(2)
    it = ex.map(work, source, buffersize=6)
    wait_until(lambda: source.pulled == 6 and it._outstanding() == 6, "window filled")
    del it  # never started: 3.14 runs what it had submitted, reads no more
    gate.open()
    ex.shutdown(wait=True)
    assert source.pulled == 6
    assert sorted(ran) == list(range(6))


def test_a_dropped_started_map_with_an_explicit_buffersize_cancels_the_rest():
    gate, ran = Gate(), []

    def work(i):
        if i > 0:
            gate.wait()
        ran.append(i)

    source = CountingInput(range(1000))
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(work, source, buffersize=6)
        assert next(it) is None
        wait_until(lambda: source.pulled == 7, "window refilled")
        del it  # started: what has not started is cancelled
        gate.open()
    assert source.pulled == 7
    assert ran[0] == 0 and len(ran) <= 1 + 2  # item 0, and what the 2 workers had taken


# 9. the iterator keeps what it needs alive ----------------------------------


def test_dropping_the_executor_does_not_truncate_results():
    it = sf.ThreadPoolExecutor(2).map(identity, range(300), buffersize=5)
    gc.collect()
    assert list(it) == list(range(300))


def test_after_shutdown_the_acquired_items_are_yielded_then_it_says_so():
    with sf.ThreadPoolExecutor(1) as ex:
        it = ex.map(str, range(8), buffersize=2)
    assert next(it) == "0"
    assert next(it) == "1"
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


def test_iteration_started_before_shutdown_keeps_its_window():
    with sf.ThreadPoolExecutor(1) as ex:
        it = ex.map(str, range(8), buffersize=2)
        assert next(it) == "0"
    assert [next(it), next(it)] == ["1", "2"]
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        next(it)


def test_a_short_input_is_complete_after_shutdown():
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(str, range(8))
    assert list(it) == [str(i) for i in range(8)]


def test_map_after_shutdown_is_refused():
    ex = sf.ThreadPoolExecutor(1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.map(identity, [1])


# 10. no reference to yielded results ----------------------------------------


class Box:
    def __init__(self, value):
        self.value = value


def test_the_iterator_keeps_no_reference_to_yielded_results():
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(Box, range(50), buffersize=4)
        for i in range(50):
            box = next(it)
            assert box.value == i
            ref = weakref.ref(box)
            del box
            free_what_other_threads_let_go()  # made on a worker thread
            assert ref() is None
        it.close()


# cancellation by shutdown -----------------------------------------------------


def test_shutdown_cancel_futures_reports_each_cancelled_item():
    gate = Gate()
    started = threading.Event()

    def work(i):
        if i == 0:
            started.set()
            gate.wait()
        return i

    ex = sf.ThreadPoolExecutor(1)
    it = ex.map(work, range(100), buffersize=5)
    assert started.wait(30)
    wait_until(lambda: it._outstanding() == 5, "window filled")
    ex.shutdown(wait=False, cancel_futures=True)
    gate.open()
    ex.shutdown(wait=True)
    assert next(it) == 0  # it was running
    for _ in range(4):
        with pytest.raises(sf.CancelledError):
            next(it)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        next(it)


def test_an_item_arriving_while_a_worker_is_busy_goes_to_an_idle_worker():
    # item 1 is pulled only after item 0 started, and item 0 finishes only
    # once item 1 runs: the two must run on the two workers at once
    started = [threading.Event(), threading.Event()]

    def source():
        yield 0
        assert started[0].wait(30)
        yield 1

    def work(i):
        started[i].set()
        if i == 0:
            assert started[1].wait(30), "item 1 queued behind item 0"
        return i

    with sf.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(work, source())) == [0, 1]


def test_items_that_release_the_gil_after_trivial_ones_still_run_at_once():
    # With a GIL, the workers woken for trivial items find them done by the
    # one that got the GIL first, and the map stops waking more; the slow
    # items after them (waits with the GIL released) are worth a wake-up,
    # and the input has ended by then: the work jobs must chain again
    lock = threading.Lock()
    waiting, most_at_once = [0], [0]

    def work(i):
        if i < 50_000:
            return i
        with lock:
            waiting[0] += 1
            most_at_once[0] = max(most_at_once[0], waiting[0])
        time.sleep(0.002)
        with lock:
            waiting[0] -= 1
        return i

    with sf.ThreadPoolExecutor(4) as ex:
        assert list(ex.map(work, range(50_300))) == list(range(50_300))
    assert most_at_once[0] >= 2


def test_close_from_another_thread_ends_a_next_that_is_waiting():
    gate = Gate()
    outcome = []

    def consume(it):
        try:
            next(it)
            outcome.append("got an item")
        except StopIteration:
            outcome.append("stopped")

    with sf.ThreadPoolExecutor(1) as ex:
        it = ex.map(lambda x: gate.wait() or x, range(10), buffersize=3)
        waiter = threading.Thread(target=consume, args=(it,))
        waiter.start()
        wait_until(lambda: it._outstanding() == 3, "window filled while the consumer waits")
        time.sleep(0.05)  # let the consumer fall asleep in next()
        it.close()
        waiter.join(30)
        assert not waiter.is_alive()
        gate.open()
        with pytest.raises(StopIteration):
            next(it)
    assert outcome == ["stopped"]
