"""Issue 9's error paths: timeouts no C integer can hold, sizes no buffer
can have.  Each gets the stdlib's behaviour or a clear error, never
undefined behaviour or a hang."""
import math

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
