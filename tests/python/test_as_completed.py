"""streamfutures.as_completed: the stdlib's behaviour, and with buffersize
a lazy pull of futures that never runs more than N ahead (seed 002)."""
import concurrent.futures as cf
import threading

import pytest

import streamfutures as sf
from conftest import Gate


def square(x):
    return x * x


def test_without_buffersize_it_is_the_stdlib_function():
    with sf.ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(square, i) for i in range(50)]
        assert sorted(f.result() for f in sf.as_completed(futures)) == [i * i for i in range(50)]


def test_bounded_never_creates_more_than_n_unfinished_futures():
    created, yielded = [0], [0]
    worst = [0]

    def submissions(ex):
        for n in range(500):
            created[0] += 1
            worst[0] = max(worst[0], created[0] - yielded[0])
            yield ex.submit(square, n)

    results = []
    with sf.ThreadPoolExecutor(4) as ex:
        for future in sf.as_completed(submissions(ex), buffersize=8):
            yielded[0] += 1
            results.append(future.result())
    assert sorted(results) == [n * n for n in range(500)]
    assert worst[0] <= 8


def test_bounded_yields_in_completion_order():
    gate = Gate()
    with sf.ThreadPoolExecutor(2) as ex:
        slow = ex.submit(gate.wait)
        fast = ex.submit(square, 3)
        it = sf.as_completed(iter([slow, fast]), buffersize=2)
        assert next(it) is fast
        gate.open()
        assert next(it) is slow
        with pytest.raises(StopIteration):
            next(it)


def test_bounded_timeout_says_how_many_are_unfinished():
    gate = Gate()
    with sf.ThreadPoolExecutor(1) as ex:
        futures = [ex.submit(gate.wait), ex.submit(square, 2)]
        with pytest.raises(cf.TimeoutError, match=r"2 \(of 2\) futures unfinished"):
            list(sf.as_completed(iter(futures), timeout=0.05, buffersize=5))
        gate.open()


def test_bounded_yields_a_repeated_future_once():
    with sf.ThreadPoolExecutor(1) as ex:
        future = ex.submit(square, 4)
        future.result()
        assert list(sf.as_completed([future, future], buffersize=3)) == [future]


@pytest.mark.parametrize(
    "bad, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), ("x", TypeError)]
)
def test_buffersize_validation(bad, error):
    with pytest.raises(error):
        sf.as_completed([], buffersize=bad)


def test_futures_from_another_executor_work_too():
    with cf.ThreadPoolExecutor(2) as ex:
        futures = (ex.submit(square, i) for i in range(20))
        got = sorted(f.result() for f in sf.as_completed(futures, buffersize=3))
    assert got == [i * i for i in range(20)]
    assert threading.active_count() >= 1
