"""sf.Stream: building does no work; results equal the serial pipeline;
memory is bounded end to end by the sum of the windows; close, break and
the collector stop every stage; exceptions at their positions; stats per
stage while running and after the end; executor= on ours and the stdlib's."""
import concurrent.futures
import gc
import itertools
import time

import pytest

import streamfutures as sf
from streamfutures import _engine
from conftest import CountingInput, wait_until
from proc_tasks import square


def double(x):
    return 2 * x


def fails_on_7(x):
    if x == 7:
        raise ValueError("item 7 failed")
    return x


def test_building_does_no_work_until_iterated():
    source = CountingInput(range(10))
    stream = sf.Stream(source).map(double, workers=2).filter(bool)
    time.sleep(0.05)
    assert source.pulled == 0
    assert repr(stream).startswith("<Stream not started")
    assert list(stream) == [2 * x for x in range(1, 10)]
    assert source.pulled == 10


def batches(items, n):
    items = list(items)
    return [tuple(items[i:i + n]) for i in range(0, len(items), n)]


def test_results_equal_the_serial_pipeline_with_thread_and_process_stages():
    stream = (sf.Stream(range(300))
              .map(double, workers=4)
              .filter(lambda x: x % 3)
              .map(square, processes=2)
              .flat_map(lambda x: (x, x + 1))
              .batch(7)
              .map(sum, workers=2))
    kept = [square(double(z)) for z in range(300) if double(z) % 3]
    flat = [y for x in kept for y in (x, x + 1)]
    assert list(stream) == [sum(b) for b in batches(flat, 7)]


def test_unordered_stages_give_every_result_once():
    stream = sf.Stream(range(500)).map(double, workers=4, unordered=True).map(
        square, processes=2, unordered=True)
    assert sorted(stream) == sorted(square(double(x)) for x in range(500))


def test_memory_is_bounded_by_the_sum_of_the_windows():
    source = CountingInput(itertools.count())
    consumed = 0
    worst = 0
    with sf.Stream(source).map(double, workers=2, buffersize=8).map(
            str, workers=2, buffersize=5) as stream:
        for _ in stream:
            consumed += 1
            time.sleep(0.0005)
            worst = max(worst, source.pulled - consumed)
            if consumed == 2000:
                break
    assert worst <= 8 + 5 + 1  # the windows, and the result in our hand


def test_a_stage_at_the_default_window_adapts_as_the_executors_map_does():
    # a stage's default window is its executor's map default: it starts at
    # 32 items per worker and grows while the results are small and the
    # workers keep up (a fixed 64 would hand items over 64 at a time)
    source = CountingInput(itertools.count())
    start = sf.DEFAULT_BUFFERSIZE_PER_WORKER * 2
    stream = sf.Stream(source).map(double, workers=2)
    results = iter(stream)
    for expected in range(20000):
        assert next(results) == 2 * expected
    cap = max(sf.ADAPTIVE_WINDOW_MAX_AT_LEAST, sf.ADAPTIVE_WINDOW_MAX_PER_WORKER * 2)
    wait_until(lambda: source.pulled - 20000 > 4 * start, "the stage's window grew")
    assert source.pulled - 20000 <= cap + 2 * _engine.MAP_TAKE_AHEAD
    stream.close()


def test_a_stream_dropped_before_its_first_result_reads_no_more_input():
    # its stages started (iter) and nothing was taken: what was acquired
    # runs and no more of an endless input is read
    source = CountingInput(itertools.count())
    results = iter(sf.Stream(source).map(double, workers=2).map(str, workers=2))
    wait_until(lambda: source.pulled > 0, "the first stage pulling")
    del results
    gc.collect()
    time.sleep(0.05)  # what was acquired finishes
    pulled = source.pulled
    time.sleep(0.05)
    assert source.pulled == pulled


def test_break_stops_every_stage_and_joins_the_threads():
    source = CountingInput(itertools.count())
    stream = sf.Stream(source).map(double, workers=3, buffersize=6).map(str, workers=2)
    for i, _ in enumerate(stream):
        if i == 20:
            break
    # the for loop dropped its iterator: the stream is closed (the fixture
    # checks that no thread is left); the source is read no more
    assert repr(stream).startswith("<Stream closed")
    pulled = source.pulled
    time.sleep(0.05)
    assert source.pulled == pulled


def test_close_cancels_what_has_not_started_on_a_process_stage():
    source = CountingInput(itertools.count())
    stream = sf.Stream(source).map(square, processes=2, buffersize=16)
    results = iter(stream)
    assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
    stream.close()
    assert list(results) == []
    pulled = source.pulled
    time.sleep(0.05)
    assert source.pulled == pulled


def test_a_collected_stream_stops():
    source = CountingInput(itertools.count())
    results = iter(sf.Stream(source).map(double, workers=2, buffersize=4))
    next(results)
    del results
    gc.collect()
    pulled = source.pulled
    time.sleep(0.05)
    assert source.pulled == pulled


def test_an_exception_from_a_stage_is_raised_at_its_position_and_iteration_goes_on():
    results = iter(sf.Stream(range(10)).map(fails_on_7, workers=3).map(double, workers=2))
    assert [next(results) for _ in range(7)] == [0, 2, 4, 6, 8, 10, 12]
    with pytest.raises(ValueError, match="item 7 failed"):
        next(results)
    assert list(results) == [16, 18]


def test_an_item_that_failed_upstream_passes_a_process_stage_at_its_position():
    results = iter(sf.Stream(range(10)).map(fails_on_7, workers=2).map(square, processes=2))
    assert [next(results) for _ in range(7)] == [x * x for x in range(7)]
    with pytest.raises(ValueError, match="item 7 failed"):
        next(results)
    assert list(results) == [64, 81]


def test_an_exception_from_the_source_ends_the_stream_after_every_earlier_result():
    def source():
        yield from range(5)
        raise KeyError("source broke")

    results = iter(sf.Stream(source()).map(double, workers=2).map(str, workers=2))
    assert [next(results) for _ in range(5)] == ["0", "2", "4", "6", "8"]
    with pytest.raises(KeyError, match="source broke"):
        next(results)


def test_stats_per_stage_while_running_and_after_the_end():
    stream = sf.Stream(range(200)).map(double, workers=2).filter(lambda x: x % 4).map(
        str, workers=2)
    assert [s["stage"] for s in stream.stats()] == [
        "map(double)", "filter(<lambda>)", "map(str)"]
    assert stream.stats()[0]["items_in"] is None  # not started
    results = iter(stream)
    next(results)
    running = stream.stats()
    assert running[2]["items_out"] == 1
    rest = list(results)
    assert len(rest) == 99
    stats = stream.stats()
    assert [(s["items_in"], s["items_out"]) for s in stats] == [(200, 200), (200, 100),
                                                                (100, 100)]
    for s in (stats[0], stats[2]):
        assert s["busy"] > 0 and s["waiting_for_input"] >= 0 and s["blocked_on_output"] >= 0
    text = str(stats)
    assert "map(double)" in text and "items_in" in text


def test_stats_point_at_the_bottleneck():
    def slow(x):
        time.sleep(0.01)
        return x

    stream = sf.Stream(range(60)).map(slow, workers=1, buffersize=4).map(str, workers=2)
    assert len(list(stream)) == 60
    slow_stage, fast_stage = stream.stats()
    assert slow_stage["busy"] > 10 * fast_stage["busy"]
    assert fast_stage["waiting_for_input"] > slow_stage["waiting_for_input"]


def test_a_stage_on_an_executor_we_do_not_own_leaves_it_running():
    with sf.ThreadPoolExecutor(2) as ours, concurrent.futures.ThreadPoolExecutor(2) as stdlib:
        stream = sf.Stream(range(50)).map(double, executor=ours).map(
            str, executor=stdlib, buffersize=4)
        assert list(stream) == [str(2 * x) for x in range(50)]
        assert ours.submit(double, 4).result() == 8  # still running
        assert stdlib.submit(double, 5).result() == 10
        stats = stream.stats()
        assert (stats[1]["items_in"], stats[1]["items_out"]) == (50, 50)


def test_a_foreign_stage_unordered_and_closed_early_cancels_its_futures():
    with concurrent.futures.ThreadPoolExecutor(2) as stdlib:
        source = CountingInput(itertools.count())
        stream = sf.Stream(source).map(double, executor=stdlib, buffersize=4, unordered=True)
        results = iter(stream)
        got = {next(results) for _ in range(10)}
        assert got <= {2 * x for x in range(14)}
        stream.close()
        # 10 yielded, one more taken out of the window of 4 to make room,
        # and nothing else
        assert source.pulled <= 10 + 1 + 4


def test_stream_fanout_is_the_last_step():
    stream = sf.Stream(range(1000)).map(double, workers=2)
    assert stream.fanout(sum, max, len_of) == (999000, 1998, 1000)
    assert repr(stream).startswith("<Stream closed")


def len_of(it):
    return sum(1 for _ in it)


def test_a_stream_gets_no_stage_once_started():
    stream = sf.Stream(range(3)).map(double)
    iter(stream)
    with pytest.raises(RuntimeError, match="once it has started"):
        stream.map(str)
    stream.close()


def test_bad_stage_arguments():
    with pytest.raises(TypeError, match="is not callable"):
        sf.Stream(range(3)).map(5)
    with pytest.raises(ValueError, match="workers must be None or > 0"):
        sf.Stream(range(3)).map(str, workers=0)
    with pytest.raises(TypeError, match="executor="):
        sf.Stream(range(3)).map(str, workers=2, executor=object())
    with pytest.raises(ValueError, match="buffersize must be None or > 0"):
        sf.Stream(range(3)).map(str, buffersize=0)
    with pytest.raises(ValueError, match="batch size"):
        sf.Stream(range(3)).batch(0)


def test_wait_until_helper_is_used_for_background_state():
    # the first stage's window fills in the background before anything is taken
    source = CountingInput(itertools.count())
    stream = sf.Stream(source).map(double, workers=1, buffersize=3)
    results = iter(stream)
    wait_until(lambda: source.pulled >= 3, "the window filled")
    time.sleep(0.02)
    assert source.pulled <= 3 + 1
    results_list = [next(results) for _ in range(3)]
    assert results_list == [0, 2, 4]
    stream.close()
