"""What mypy --strict infers from streamfutures' stubs (checked in CI by
`make typecheck`, never run): results keep their types through map,
submit, fanout, tee and Stream."""
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor as StdlibThreads
from typing import Any

from typing_extensions import assert_type

import streamfutures as sf


def numbers() -> Iterator[int]:
    yield from range(10)


def halve(x: int) -> float:
    return x / 2


def add(a: int, b: str) -> str:
    return str(a) + b


def first_two(items: Iterator[int]) -> list[int]:
    return [next(items), next(items)]


with sf.ThreadPoolExecutor(2) as threads:
    assert_type(threads.map(str, numbers()), sf.MapIterator[str])
    assert_type(threads.map(halve, numbers(), buffersize=8), sf.MapIterator[float])
    assert_type(threads.map(add, numbers(), ["x"]), sf.MapIterator[str])
    assert_type(threads.submit(halve, 3), Future[float])
    for value in threads.map(halve, numbers(), unordered=True):
        assert_type(value, float)

with sf.ProcessPoolExecutor(2) as processes:
    assert_type(processes.map(abs, numbers(), chunksize=None), sf.MapIterator[int])
    assert_type(processes.submit_with_timeout(1.0, halve, 4), Future[float])

def total(items: Iterator[int]) -> int:
    return sum(items)


assert_type(sf.fanout(numbers(), total), tuple[int])
assert_type(sf.fanout(numbers(), total, first_two), tuple[int, list[int]])
assert_type(sf.fanout(numbers(), total, first_two, set), tuple[int, list[int], set[int]])
# overloaded builtins (sum, max) cannot be solved for: the tuple is untyped
assert_type(sf.fanout(numbers(), sum, max), tuple[Any, ...])
assert_type(sf.tee(numbers()), tuple[sf.BroadcastReader[int], ...])

stream = sf.Stream(numbers()).map(halve).filter(bool).batch(3)
assert_type(stream, sf.Stream[tuple[float, ...]])
for batch in stream:
    assert_type(batch, tuple[float, ...])
assert_type(sf.Stream(["a"]).map(len, processes=True).fanout(sum, max), tuple[Any, ...])


async def consume() -> None:
    with sf.ThreadPoolExecutor(2) as ex:
        async for text in ex.map(str, numbers(), progress=True):
            assert_type(text, str)
    async for half in sf.Stream(numbers()).map(halve):
        assert_type(half, float)

# any other Executor: items travel in chunks, adaptive or fixed
with StdlibThreads(2) as stdlib:
    assert_type(sf.map(halve, numbers(), executor=stdlib), Iterator[float])
    assert_type(sf.map(add, numbers(), ["x"], executor=stdlib, chunksize=4), Iterator[str])
    assert_type(sf.map(str, numbers(), executor=stdlib, chunksize=None, progress=True),
                Iterator[str])
try:
    pass
except sf.RemoteError as lost:
    assert_type(lost.type_name, str)
