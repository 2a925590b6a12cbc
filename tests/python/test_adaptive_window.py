"""The thread map's default window adapts to what its results cost
(src/core/window.c): it grows while results are small, shrinks so the
results held for the consumer stay within result_memory bytes (as
sys.getsizeof counts them), and an explicit buffersize is still exact.
A process map's default window starts at its largest and only shrinks,
for the same budget.
Results here count themselves; nothing is measured as RSS."""
import itertools
import time

import pytest

import streamfutures as sf
from streamfutures import _engine
import proc_tasks
from conftest import FREE_THREADED, CountingInput, wait_until

MiB = 1024 * 1024


class Counted:
    """A result that claims `size` bytes (its __sizeof__) without taking
    them, and counts how many of its kind are alive at once.  No lock: on a
    free-threaded build a result dropped on one thread may be finalized by
    the thread that made it, at any point of that thread's code (its
    __del__ inside a lock that thread holds would deadlock), so the counts
    are list appends, each atomic."""

    made = []
    gone = []
    alive_when_made = []

    def __init__(self, size):
        self.size = size
        Counted.made.append(1)
        Counted.alive_when_made.append(len(Counted.made) - len(Counted.gone))

    def __sizeof__(self):
        return self.size

    def __del__(self):
        Counted.gone.append(1)

    @classmethod
    def alive(cls):
        return len(cls.made) - len(cls.gone)

    @classmethod
    def peak(cls):
        return max(cls.alive_when_made, default=0)

    @classmethod
    def reset(cls):
        cls.made, cls.gone, cls.alive_when_made = [], [], []


def identity(x):
    return x


def outstanding_settles_at(source, taken, expected):
    wait_until(lambda: source.pulled - taken == expected, "%d items acquired" % expected)
    time.sleep(0.05)  # a wrong engine would go on pulling
    assert source.pulled - taken == expected


def test_the_window_starts_at_the_default_and_grows_to_its_cap_on_small_results():
    source = CountingInput(itertools.count())
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(identity, source)
        outstanding_settles_at(source, 0, sf.DEFAULT_BUFFERSIZE_PER_WORKER * 2)
        taken = 0
        for expected in range(20000):
            assert next(it) == expected
            taken += 1
        # the engine's window settles at its cap (refilled once a sixteenth
        # is free), and the iterator holds at most MAP_TAKE_AHEAD results
        # taken ahead of the consumer
        cap = max(sf.ADAPTIVE_WINDOW_MAX_AT_LEAST, sf.ADAPTIVE_WINDOW_MAX_PER_WORKER * 2)
        wait_until(lambda: it._outstanding() >= cap - cap // 16, "window grown to its cap")
        time.sleep(0.05)  # a wrong engine would go on pulling
        assert cap - cap // 16 <= it._outstanding() <= cap
        assert 0 <= source.pulled - taken - it._outstanding() <= _engine.MAP_TAKE_AHEAD
        it.close()


def most_read_ahead(executor, taken, settle=0.0):
    """Map 1 ms tasks (waits) on 2 workers over an endless input, take
    `taken` results in order, wait `settle` seconds, close: the most input
    items read ahead of the results taken, sampled after each take and
    after the wait."""
    source = CountingInput(itertools.count())
    with executor(2) as ex:
        it = ex.map(proc_tasks.sleep_1ms, source)
        most_ahead = 0
        for expected in range(taken):
            assert next(it) == expected
            most_ahead = max(most_ahead, source.pulled - expected - 1)
        time.sleep(settle)
        most_ahead = max(most_ahead, source.pulled - taken)
        it.close()
    return most_ahead


def test_slow_work_over_a_fast_input_keeps_the_starting_window():
    """While acquired items wait for the workers, a larger window would
    only pull more input ahead of them (input items, which result_memory
    does not measure: a file read in large chunks would pile up): the
    window grows only once a worker found nothing to start.  Taking 1500
    results would have doubled it four times (64 -> 1024) otherwise."""
    start = sf.DEFAULT_BUFFERSIZE_PER_WORKER * 2
    # settle: a growing window would be pulling then
    most_ahead = most_read_ahead(sf.ThreadPoolExecutor, 1500, settle=0.05)
    # it did read ahead (sampled after each take, in the refill band below
    # the window); a doubling or two may come from moments the input fell
    # behind (the start, a busy machine), not the four of a growing window
    assert start // 2 <= most_ahead <= 4 * start + _engine.MAP_TAKE_AHEAD


@pytest.mark.thread_unsafe(reason="Counted's counts are one per process")
def test_results_taken_ahead_are_handed_out_in_order_counted_and_dropped_by_close():
    """A consumer that finds results ready takes up to MAP_TAKE_AHEAD of
    them at once (one trip into the map): they still come out one by one,
    in order and at their positions, stats() counts only those handed out,
    and close() lets go of the rest."""
    Counted.reset()

    def make(i):
        if i % 7 == 3:
            raise ValueError("item %d" % i)
        return Counted(8)

    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(make, range(60))  # all within the starting window
        wait_until(lambda: len(Counted.made) == 60 - 9, "every result made")
        got = []
        for i in range(10):
            try:
                got.append(type(next(it)))
            except ValueError as e:
                got.append(str(e))
        assert got == ["item %d" % i if i % 7 == 3 else Counted for i in range(10)]
        assert it.stats()["items_out"] == 10
        held_by_map = it._outstanding()
        assert held_by_map < 50  # some were taken ahead ...
        assert 50 - held_by_map <= _engine.MAP_TAKE_AHEAD  # ... no more than that
        del got
        it.close()
        assert it.stats()["items_out"] == 10
    # after the workers ended: on a free-threaded build an object is freed
    # by the thread that made it once the last reference is dropped elsewhere
    wait_until(lambda: Counted.alive() == 0, "every result let go")


def test_an_explicit_buffersize_takes_nothing_ahead():
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(identity, range(100), buffersize=16)
        assert next(it) == 0
        wait_until(lambda: it._outstanding() == 16, "window refilled")
        time.sleep(0.05)
        assert it.stats()["items_in"] == 17  # 1 handed out + the window, nothing beside
        it.close()


def held_while_pausing(results, made, is_expected=None):
    """Take every result, pausing after the fifth long enough for the
    workers to fill any window: the peak of results made (len(made)) and
    not yet taken, each checked by is_expected."""
    held_peak = taken = 0
    for k, result in enumerate(results):
        held_peak = max(held_peak, len(made) - taken)
        taken += 1
        assert is_expected is None or is_expected(result)
        del result
        if k == 4:
            time.sleep(0.3)
            held_peak = max(held_peak, len(made) - taken)
    return held_peak


def peak_held(count, make, executor=None, is_expected=None, **map_kwargs):
    """held_while_pausing when four threads each return make()."""
    made = []

    def work(i):
        made.append(1)
        return make()

    with sf.ThreadPoolExecutor(4, **(executor or {})) as ex:
        held_peak = held_while_pausing(ex.map(work, range(count), **map_kwargs), made,
                                       is_expected)
    assert len(made) == count
    return held_peak


def big_after_five(count, size, **map_kwargs):
    """peak_held of Counted results of `size`, and the peak of them alive.
    The two differ on a free-threaded build: a result dropped by the
    consumer is freed by the thread that made it (biased reference
    counting), when that thread next runs Python code."""
    Counted.reset()
    held = peak_held(count, lambda: Counted(size), is_expected=lambda r: r.size == size,
                     **map_kwargs)
    return held, Counted.peak()


def test_large_results_shrink_the_window_to_the_memory_budget():
    # 256 MiB of 16 MiB results: 16 held, plus what the workers are making
    held, alive = big_after_five(200, 16 * MiB)
    assert 5 <= held <= 20
    assert FREE_THREADED or alive <= 20
    # a budget of 64 MiB: 4 of them, plus at most two items a worker running
    held, alive = big_after_five(200, 16 * MiB, executor={"result_memory": 64 * MiB})
    assert 4 <= held <= 13
    assert FREE_THREADED or alive <= 13


def test_an_explicit_buffersize_is_exact_whatever_the_results_cost():
    assert big_after_five(300, 16 * MiB, buffersize=128)[0] >= 100  # the old pile-up
    source = CountingInput(itertools.count())
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(identity, source, buffersize=100)
        for expected in range(5000):
            assert next(it) == expected
        outstanding_settles_at(source, 5000, 100)
        it.close()


def test_result_memory_none_bounds_only_the_count():
    assert big_after_five(300, 16 * MiB, executor={"result_memory": None})[0] >= 100


def test_one_huge_result_stops_the_input_until_it_is_taken_and_nothing_is_lost():
    source = CountingInput(range(30000))
    pulled_when_huge = []

    def work(i):
        if i == 10000:
            pulled_when_huge.append(source.pulled)
            return Counted(1 << 40)
        return i

    Counted.reset()
    with sf.ThreadPoolExecutor(2) as ex:
        it = ex.map(work, source)
        assert [next(it) for _ in range(10000)] == list(range(10000))
        wait_until(lambda: Counted.alive() == 1, "the huge result made")
        time.sleep(0.05)
        pulled_while_held = source.pulled
        time.sleep(0.05)
        assert source.pulled == pulled_while_held  # held: no more input
        huge = next(it)
        assert huge.size == 1 << 40
        del huge
        assert list(it) == list(range(10001, 30000))
    assert source.pulled == 30000


def test_a_result_whose_sizeof_raises_is_counted_and_the_map_goes_on():
    class Broken:
        def __init__(self, i):
            self.i = i

        def __sizeof__(self):
            raise RuntimeError("no size")

    with sf.ThreadPoolExecutor(3) as ex:
        assert [r.i for r in ex.map(Broken, range(3000))] == list(range(3000))
        # the next item of the same worker is not disturbed by a stale error
        assert list(ex.map(identity, range(10))) == list(range(10))


def process_held_peak(count, size, executor=None, **map_kwargs):
    """held_while_pausing when two processes return results of `size`
    (made again in the parent, by unpickling)."""
    proc_tasks.ClaimsSize.made = made = []
    with sf.ProcessPoolExecutor(2, **(executor or {})) as ex:
        held_peak = held_while_pausing(
            ex.map(proc_tasks.claims_size, [size] * count, **map_kwargs), made,
            lambda result: result.size == size)
    assert len(made) == count
    return held_peak


def test_a_process_maps_default_window_shrinks_to_its_result_memory():
    # 256 MiB of 16 MiB results: 16 held, plus what the workers are making
    assert 5 <= process_held_peak(300, 16 * MiB) <= 20
    assert 4 <= process_held_peak(300, 16 * MiB, executor={"result_memory": 64 * MiB}) <= 13
    # no budget: the window of 4096 per worker alone lets them pile up
    assert process_held_peak(300, 16 * MiB, executor={"result_memory": None}) >= 100
    # an explicit buffersize is exactly that many, whatever the results cost
    assert process_held_peak(300, 16 * MiB, buffersize=128) >= 100


def test_a_process_map_reads_about_a_tenth_of_a_second_of_slow_work_ahead():
    """A process map's default window starts at its largest (4096 per
    worker, for tiny tasks); once an item's cost is known, the input is
    read only about 0.1 s of the workers' work ahead of them (1 ms tasks
    on 2 workers: about 200 items, where the window let 8192 be read)."""
    most_ahead = most_read_ahead(sf.ProcessPoolExecutor, 1000)
    # what waits to start, plus what the two workers' batches hold
    assert most_ahead <= 1024 < sf.DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER * 2


@pytest.mark.parametrize("executor", [sf.ThreadPoolExecutor, sf.ProcessPoolExecutor])
@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError),
                                        (1.5, TypeError), ("1", TypeError)])
def test_result_memory_is_validated(executor, bad, error):
    with pytest.raises(error, match="result_memory"):
        executor(2, result_memory=bad)


@pytest.mark.parametrize("make", [lambda: bytearray(4 * MiB), lambda: bytes(4 * MiB),
                                  lambda: [None] * (MiB // 2), lambda: "x" * (4 * MiB)],
                         ids=["bytearray", "bytes", "list", "str"])
def test_builtin_results_are_measured_without_a_python_call(make):
    # 4 MiB each (a list of 2**19 pointers), a 16 MiB budget: about 4 held
    assert 2 <= peak_held(60, make, executor={"result_memory": 16 * MiB}) <= 8
