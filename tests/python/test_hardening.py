"""Issue 9's error paths: timeouts no C integer can hold, sizes no buffer
can have.  Each gets the stdlib's behaviour or a clear error, never
undefined behaviour or a hang."""
import gc
import threading
import time
import math
import weakref

import pytest

import streamfutures as sf
from streamfutures import _engine
from proc_tasks import square


@pytest.mark.parametrize("timeout", [math.inf, 1e300, 2.0**63])
def test_a_timeout_too_long_for_any_deadline_means_no_deadline(timeout):
    with sf.ThreadPoolExecutor(2) as ex:
        assert list(ex.map(abs, range(-5, 5), timeout=timeout)) == [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]


def test_a_nan_timeout_has_expired_as_in_the_stdlib():
    with sf.ThreadPoolExecutor(1) as ex:
        results = ex.map(square, [1, 2, 3], timeout=math.nan)
        with pytest.raises(sf.TimeoutError):
            list(results)


@pytest.mark.parametrize("task_timeout", [math.inf, 1e300])
def test_a_task_timeout_too_long_to_expire_is_none(task_timeout):
    with sf.ProcessPoolExecutor(1) as ex:
        assert list(ex.map(square, range(4), task_timeout=task_timeout)) == [0, 1, 4, 9]
        assert ex.submit_with_timeout(task_timeout, square, 5).result() == 25


def test_a_result_ring_of_impossible_size_is_refused_not_looped_on():
    with pytest.raises(ValueError, match="bytes must be >= 0"):
        _engine.ring_create(-1)
    with pytest.raises(OSError) as info:
        _engine.ring_create(2**62)
    assert info.value.errno == 22  # EINVAL


def test_a_window_beyond_the_engines_gets_a_clear_error():
    with sf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(ValueError, match="buffersize must be at most 4294967295"):
            ex.map(abs, [1], buffersize=2**32)


def test_a_pool_in_a_cycle_through_its_initializer_is_collected_and_its_threads_end():
    class Owner:
        def __init__(self):
            self.executor = sf.ThreadPoolExecutor(2, initializer=self.setup)

        def setup(self):
            pass

    owner = Owner()
    assert owner.executor.submit(abs, -3).result() == 3
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None  # the fixture then checks that its threads ended


def test_a_thread_initializer_failing_on_a_later_thread_mid_map_retires_every_item():
    calls = []
    lock = threading.Lock()

    def second_thread_fails():
        with lock:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("second thread cannot start")

    def slow_abs(x):
        time.sleep(0.0005)
        return abs(x)

    ex = sf.ThreadPoolExecutor(4, initializer=second_thread_fails)
    results = ex.map(slow_abs, range(-2000, 0), buffersize=256)
    got = []
    with pytest.raises(sf.BrokenThreadPool):
        for r in results:
            got.append(r)
    assert got == list(range(2000, 2000 - len(got), -1))  # a prefix, in order
    ex.shutdown(wait=True)  # returns: no job is stranded on the broken pool


def test_shutdown_waits_for_the_work_not_for_an_input_blocked_for_its_consumer():
    gate = threading.Event()
    ran = []

    def blocked_input():
        yield from range(5)
        gate.wait(30)
        yield from range(5, 8)

    def record(x):
        ran.append(x)
        return x * 10

    ex = sf.ThreadPoolExecutor(2)
    results = ex.map(record, blocked_input())
    assert [next(results) for _ in range(5)] == [0, 10, 20, 30, 40]
    ex.shutdown(wait=True)  # returns with the input still blocked
    assert sorted(ran) == [0, 1, 2, 3, 4]
    gate.set()  # the input comes back: the map goes on, as after shutdown
    assert list(results) == [50, 60, 70]
    assert sorted(ran) == list(range(8))


def test_shutdown_waits_for_a_detached_maps_slow_input_as_for_the_stdlibs_eager_map():
    ran = []

    def slow_input():
        for i in range(6):
            time.sleep(0.02)
            yield i

    ex = sf.ThreadPoolExecutor(2)
    ex.map(ran.append, slow_input())  # dropped: fire and forget
    ex.shutdown(wait=True)
    assert sorted(ran) == list(range(6))


def test_a_payload_of_4_gib_or_more_is_refused_with_a_clear_error_not_cut():
    huge = bytes(2**32)  # one byte over what a worker message carries
    with sf.ProcessPoolExecutor(1) as ex:
        future = ex.submit(len, huge)
        del huge
        with pytest.raises(OverflowError, match="to or from a worker process: the limit is 4294967295 bytes"):
            future.result()
        results = ex.map(bytes, [3, 2**32, 4])  # the worker's result is refused there
        assert next(results) == b"\0\0\0"
        with pytest.raises(OverflowError, match="limit is 4294967295 bytes"):
            next(results)
        assert next(results) == b"\0\0\0\0"  # the pool goes on


def test_a_task_the_worker_cannot_unpickle_fails_only_its_item_and_never_exits_anything():
    from proc_tasks import ExitsWhenUnpickled

    with sf.ProcessPoolExecutor(1) as ex:
        future = ex.submit(abs, ExitsWhenUnpickled(3))
        error = future.exception()
        assert type(error) is sf.DeserializationError
        assert isinstance(error, sf.BrokenProcessPool)
        assert str(error).startswith("A task has failed to un-serialize.")
        assert type(error.__cause__) is SystemExit and error.__cause__.code == 3
        for chunksize in (1, 4, None):  # in a batch too, only that item fails
            results = ex.map(abs, [-1, ExitsWhenUnpickled("value"), -3, -4], chunksize=chunksize)
            assert next(results) == 1
            with pytest.raises(sf.DeserializationError) as info:
                next(results)
            assert type(info.value.__cause__) is ValueError
            assert list(results) == [3, 4]  # the pool goes on
        assert ex.submit(abs, -7).result() == 7


def test_a_result_the_parent_cannot_unpickle_fails_only_its_item_and_never_exits_the_caller():
    from proc_tasks import exits_when_unpickled

    with sf.ProcessPoolExecutor(1) as ex:
        future = ex.submit(exits_when_unpickled, 4)
        with pytest.raises(sf.DeserializationError, match="A result has failed to un-serialize") as info:
            future.result()  # a SystemExit here would end the test run
        assert type(info.value.__cause__) is SystemExit and info.value.__cause__.code == 4
        outcomes = []
        results = ex.map(exits_when_unpickled, ["value", "interrupt", 6], chunksize=1)
        for _ in range(3):
            try:
                outcomes.append(next(results))
            except sf.DeserializationError as e:
                outcomes.append(type(e.__cause__))
        assert outcomes == [ValueError, KeyboardInterrupt, SystemExit]
