"""Issue 9's error paths: timeouts no C integer can hold, sizes no buffer
can have.  Each gets the stdlib's behaviour or a clear error, never
undefined behaviour or a hang."""
import gc
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
