"""async for over maps and streams: results in order, errors at their
position, the loop never blocked, one wake per batch of ready results,
and cancel / break / aclose close the map.  On asyncio's loop and on
uvloop (from PyPI)."""
import asyncio
import concurrent.futures
import threading
import time

import pytest

import streamfutures as sf
from streamfutures import _aio
from conftest import CountingInput
from proc_tasks import raise_at_five, square

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop installs from PyPI here
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop else [])

if uvloop:
    # libuv opens a process-wide signal pipe with its first loop and keeps
    # it: open it now, so it is part of every test's baseline of fds
    uvloop.run(asyncio.sleep(0))


def run(loop, coroutine):
    if loop == "uvloop":
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def slow_square(x):
    time.sleep(0.02)
    return x * x


def slow_input(n):
    for i in range(n):
        time.sleep(0.02)
        yield i


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("executor", [sf.ThreadPoolExecutor, sf.ProcessPoolExecutor])
def test_async_for_yields_every_result_in_order(loop, executor):
    async def main():
        with executor(2) as ex:
            return [x async for x in ex.map(square, range(500))]
    assert run(loop, main()) == [i * i for i in range(500)]


@pytest.mark.parametrize("loop", LOOPS)
def test_async_for_over_a_stream(loop):
    async def main():
        stream = sf.Stream(range(300)).map(square).filter(lambda x: x % 2).map(str)
        return [x async for x in stream]
    assert run(loop, main()) == [str(i * i) for i in range(300) if i % 2]


def test_an_items_exception_is_raised_at_its_position_and_iteration_goes_on():
    async def main():
        got = []
        with sf.ThreadPoolExecutor(2) as ex:
            results = ex.map(raise_at_five, range(8)).__aiter__()
            while True:
                try:
                    got.append(await results.__anext__())
                except StopAsyncIteration:
                    return got
                except ValueError as e:
                    got.append(str(e))
    assert asyncio.run(main()) == [0, 1, 2, 3, 4, "bad item 5", 6, 7]


@pytest.mark.parametrize("loop", LOOPS)
def test_the_loop_keeps_ticking_while_a_slow_map_runs(loop):
    """The input's second item waits for the ticker to have ticked three
    times after the first result: were the loop blocked while the map
    waits, the ticker could never run and the map never go on."""
    gate = threading.Event()

    def gated_input():
        yield 0
        assert gate.wait(30), "the event loop was blocked"
        for i in range(1, 8):
            time.sleep(0.01)  # a slow input, and slow work below
            yield i

    async def main():
        first_seen = asyncio.Event()
        ticks_after_first = 0

        async def ticker():
            nonlocal ticks_after_first
            while not gate.is_set():
                if first_seen.is_set():
                    ticks_after_first += 1
                    if ticks_after_first == 3:
                        gate.set()
                await asyncio.sleep(0.001)

        ticking = asyncio.create_task(ticker())
        seen = []
        with sf.ThreadPoolExecutor(2) as ex:
            async for value in ex.map(slow_square, gated_input()):
                seen.append(value)
                first_seen.set()
        await ticking
        return seen, ticks_after_first

    seen, ticks = run(loop, main())
    assert seen == [i * i for i in range(8)]
    assert ticks == 3 and gate.is_set()


def test_one_wake_per_batch_of_ready_results(monkeypatch):
    sizes = []
    take_batch = _aio.AsyncResults._take_batch

    def counting(next_, poll):
        batch = take_batch(next_, poll)
        sizes.append(len(batch))
        return batch

    monkeypatch.setattr(_aio.AsyncResults, "_take_batch", staticmethod(counting))

    async def main():
        with sf.ThreadPoolExecutor(4) as ex:
            results = ex.map(square, range(20_000))
            await asyncio.sleep(0.05)  # results pile up meanwhile
            return [x async for x in results]

    assert asyncio.run(main()) == [i * i for i in range(20_000)]
    assert sum(sizes) == 20_000 + 1  # every result, and the end
    assert max(sizes) > 1 and len(sizes) < 20_000


@pytest.mark.parametrize("how", ["cancel", "break", "aclose"])
def test_cancel_break_and_aclose_close_the_map(how):
    source = CountingInput(range(100_000))

    async def main():
        with sf.ThreadPoolExecutor(2) as ex:
            results = ex.map(slow_square, source, buffersize=4)
            if how == "cancel":
                async def consume():
                    async for _ in results:
                        pass
                task = asyncio.create_task(consume())
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            elif how == "break":
                async for value in results:
                    if value == 4:
                        break
                del value
            else:
                aiter = results.__aiter__()
                assert await aiter.__anext__() == 0
                await aiter.aclose()
                with pytest.raises(StopAsyncIteration):
                    await aiter.__anext__()
            # the map itself is closed: not one more result (a window of
            # 4 alone would also stop the input, so the count below is not
            # proof enough)
            with pytest.raises(StopIteration):
                next(results)
            del results
            pulled = source.pulled
            await asyncio.sleep(0.1)
            settled = source.pulled
            await asyncio.sleep(0.1)
            return pulled, settled, source.pulled

    before, settled, after = asyncio.run(main())
    # a pull already under way when the map closed may still finish (its
    # item is discarded); then the input is no longer read
    assert settled - before <= 1
    assert after == settled
    assert after < 100  # at most the window and what was taken


class LingeringExecutor(concurrent.futures.ThreadPoolExecutor):
    """Its thread still holds the call a while after the call's result is
    set, as the stdlib's worker does until its `del work_item`: the loop
    may resume the coroutine in that gap."""

    def submit(self, fn, /, *args, **kwargs):
        done = concurrent.futures.Future()

        def call_then_linger():
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as e:
                done.set_exception(e)
            time.sleep(0.3)  # fn and args are still referenced here

        super().submit(call_then_linger)
        return done


def test_break_closes_the_map_while_the_executor_thread_still_holds_its_call():
    async def main():
        asyncio.get_running_loop().set_default_executor(LingeringExecutor(1))
        with sf.ThreadPoolExecutor(2) as ex:
            results = ex.map(square, range(100_000), buffersize=4)
            async for value in results:
                if value == 4:
                    break
            del value
            with pytest.raises(StopIteration):  # closed at the break
                next(results)

    asyncio.run(main())
