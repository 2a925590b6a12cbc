"""Many threads on one object at once: what a free-threaded build (3.13t)
runs truly in parallel.  Each test checks counts and order, not only that
nothing crashed; on a GIL build the same tests check the same promises.
On a free-threaded build the import must leave the GIL off."""
import gc
import os
import subprocess
import sys
import threading
from concurrent.futures import CancelledError, wait

import pytest

import streamfutures as sf
from conftest import FREE_THREADED
from proc_tasks import Freed, FreedBlob, make_freed, square

THREADS = 8
# an explicit window, and the default one, whose next() takes the results
# already finished behind the one it hands out (and hands those out with
# no critical section on a free-threaded build)
WINDOWS = pytest.mark.parametrize("window", [{"buffersize": 64}, {}], ids=["buffersize", "default"])


def on_threads(n, target, *args):
    """Run target(i, *args) on n threads started together; join them all
    and raise the first exception any of them raised."""
    errors = []
    start = threading.Barrier(n)

    def run(i):
        try:
            start.wait()
            target(i, *args)
        except BaseException as e:  # reported below, on the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.skipif(not FREE_THREADED, reason="only a free-threaded build can run without the GIL")
def test_importing_streamfutures_keeps_the_gil_off_and_warns_nothing():
    code = ("import sys, streamfutures as sf\n"
            "with sf.ThreadPoolExecutor(2) as ex:\n"
            "    assert list(ex.map(abs, range(-3, 3))) == [3, 2, 1, 0, 1, 2]\n"
            "print(sys._is_gil_enabled())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert done.stderr == ""


@WINDOWS
def test_one_map_read_by_several_threads_delivers_each_result_once(window):
    n = 20_000
    with sf.ThreadPoolExecutor(4) as ex:
        results = ex.map(square, range(n), **window)
        got = [[] for _ in range(THREADS)]

        def read(i):
            for value in results:
                got[i].append(value)

        on_threads(THREADS, read)
    everything = sorted(v for part in got for v in part)
    assert everything == [i * i for i in range(n)]
    for part in got:  # each reader saw its share in input order
        assert part == sorted(part)


@WINDOWS
def test_close_and_stats_from_other_threads_while_next_runs(window):
    for _ in range(20):
        with sf.ThreadPoolExecutor(4) as ex:
            results = ex.map(square, iter(range(10**9)), **window)
            taken = []
            closed = threading.Event()

            def work(i):
                if i == 0:  # the consumer
                    for value in results:
                        taken.append(value)
                elif i == 1:  # closes once the consumer is under way
                    while len(taken) < 100:
                        results.stats()
                    results.close()
                    closed.set()
                else:  # asks for statistics all along
                    while not closed.is_set():
                        stats = results.stats()
                        assert stats["items_out"] <= stats["items_in"]

            on_threads(4, work)
        assert taken == [i * i for i in range(len(taken))]  # in order, nothing lost
        assert next(results, "closed") == "closed"
        stats = results.stats()
        assert stats["items_out"] == len(taken)


def test_done_callbacks_added_from_eight_threads_run_exactly_once():
    per_thread = 2000
    calls = [0] * (THREADS * per_thread)
    lock = threading.Lock()

    def count(future):
        with lock:
            calls[future.tag] += 1

    with sf.ThreadPoolExecutor(4) as ex:
        def submit(i):
            for k in range(per_thread):
                future = ex.submit(square, k)
                future.tag = i * per_thread + k
                future.add_done_callback(count)

        on_threads(THREADS, submit)
    assert calls == [1] * len(calls)


def test_result_waiters_on_other_threads_are_all_woken():
    with sf.ThreadPoolExecutor(4) as ex:
        futures = [ex.submit(square, i) for i in range(4000)]

        def wait_all(i):
            for k in range(i, len(futures), THREADS):
                assert futures[k].result(timeout=60) == k * k

        on_threads(THREADS, wait_all)
        assert [f.result() for f in futures] == [i * i for i in range(4000)]


def test_submit_racing_shutdown_either_runs_or_is_refused_with_the_stdlib_message():
    for _ in range(20):
        ex = sf.ThreadPoolExecutor(4)
        accepted, refused = [], []

        def work(i):
            if i == 0:
                ex.shutdown(wait=True)
                return
            for k in range(300):
                try:
                    accepted.append(ex.submit(square, k))
                except RuntimeError as e:
                    refused.append(str(e))

        on_threads(4, work)
        ex.shutdown(wait=True)
        assert set(refused) <= {"cannot schedule new futures after shutdown"}
        for future in accepted:  # shutdown(wait=True) ran every accepted call
            assert future.done() and not future.cancelled()
        assert len(accepted) + len(refused) == 3 * 300


def test_cancel_racing_the_worker_never_leaves_a_future_both_cancelled_and_run():
    ran = []

    def record(k):
        ran.append(k)
        return k

    with sf.ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(record, k) for k in range(5000)]

        def cancel(i):
            for f in futures[i::4]:
                f.cancel()

        on_threads(4, cancel)
    cancelled = {k for k, f in enumerate(futures) if f.cancelled()}
    assert cancelled.isdisjoint(ran)
    assert sorted(set(ran) | cancelled) == list(range(5000))
    for k, f in enumerate(futures):
        if k not in cancelled:
            assert f.result() == k
        else:
            with pytest.raises(CancelledError):
                f.result()


def test_tee_copies_read_on_four_threads_each_see_the_whole_input():
    n = 50_000
    copies = sf.tee(range(n), 4, buffersize=64)
    seen = [None] * 4

    def read(i):
        seen[i] = list(copies[i])

    on_threads(4, read)
    assert seen == [list(range(n))] * 4


def test_fanout_with_four_consumers_on_threads():
    n = 100_000
    count = lambda items: sum(1 for _ in items)
    assert sf.fanout(range(n), sum, max, min, count) == (n * (n - 1) // 2, n - 1, 0, n)


def test_a_fanout_consumer_reading_its_input_on_several_threads_gets_each_item_once():
    n = 200_000

    def read_on_four_threads(items):
        got = [[] for _ in range(4)]

        def read(i):
            for x in items:
                got[i].append(x)

        on_threads(4, read)
        return got

    for _ in range(3):
        got, total = sf.fanout(range(n), read_on_four_threads, sum)
        assert sorted(x for part in got for x in part) == list(range(n))
        assert all(part == sorted(part) for part in got)  # each thread in input order
        assert total == n * (n - 1) // 2


def test_a_fanout_consumer_closed_while_another_thread_reads_it_hands_out_nothing_after():
    n = 10**6

    def close_while_read(items):
        read_before, read_after = [], []
        reading, closed = threading.Event(), threading.Event()

        def read():
            while True:
                began_after_close = closed.is_set()
                try:
                    x = next(items)
                except StopIteration:
                    return
                (read_after if began_after_close else read_before).append(x)
                if len(read_before) == 5000:
                    reading.set()

        reader = threading.Thread(target=read)
        reader.start()
        reading.wait()
        items.close()
        closed.set()
        reader.join()
        return read_before, read_after

    for _ in range(5):
        (before, after), total = sf.fanout(range(n), close_while_read, sum)
        assert after == []
        assert before == list(range(len(before)))
        assert total == n * (n - 1) // 2  # the closed copy no longer held it back


def test_the_inputs_error_reaches_each_copy_on_its_thread_once():
    def failing():
        yield from range(1000)
        raise ValueError("input broke")

    copies = sf.tee(failing(), 4, buffersize=16)
    outcome = [None] * 4

    def read(i):
        items = []
        try:
            for x in copies[i]:
                items.append(x)
        except ValueError as e:
            outcome[i] = (items == list(range(1000)), str(e))

    on_threads(4, read)
    assert outcome == [(True, "input broke")] * 4


def test_a_stream_closed_from_another_thread_stops_and_gives_its_threads_back():
    for _ in range(10):
        stream = sf.Stream(iter(range(10**9))).map(square, workers=2).map(str, workers=2)
        taken = []
        started = threading.Event()

        def work(i):
            if i == 0:
                for value in stream:
                    taken.append(value)
                    started.set()
            else:
                started.wait(30)
                stream.close()

        on_threads(2, work)
        assert taken == [str(i * i) for i in range(len(taken))]
        assert repr(stream).startswith("<Stream closed")


def test_maps_beside_a_collector_running_in_a_loop():
    stop = threading.Event()

    def collect():  # each collection stops the world on a free-threaded build: let it turn
        while not stop.wait(0.002):
            gc.collect()

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        def run(i):
            with sf.ThreadPoolExecutor(2) as ex:
                for _ in range(3):
                    assert list(ex.map(square, range(2000))) == [k * k for k in range(2000)]

        on_threads(4, run)
    finally:
        stop.set()
        collector.join()


def test_process_maps_started_from_several_threads():
    with sf.ProcessPoolExecutor(2) as ex:
        got = [None] * 4

        def run(i):
            got[i] = list(ex.map(square, range(i * 1000, (i + 1) * 1000)))

        on_threads(4, run)
    assert got == [[k * k for k in range(i * 1000, (i + 1) * 1000)] for i in range(4)]


def test_forty_workers_started_at_once():
    barrier = threading.Barrier(40, timeout=60)

    def meet(k):
        barrier.wait()  # every worker thread exists and runs Python at the same time
        return k

    with sf.ThreadPoolExecutor(40) as ex:
        futures = [ex.submit(meet, k) for k in range(40)]
        done, not_done = wait(futures, timeout=120)
    assert not not_done
    assert sorted(f.result() for f in futures) == list(range(40))


@pytest.mark.parametrize("made_on", ["input thread", "worker thread", "process pool's thread"])
def test_what_an_engine_thread_made_is_freed_once_dropped_on_another(made_on):
    # 3.13t hands an object dropped on another thread than its maker back
    # to the maker, which frees it only when it next runs Python code; an
    # engine thread that runs only C (a C iterator as input, a C callable,
    # unpickling results) must still free them, or every item stays alive
    n, checked_at = 20_000, 15_000
    Freed.count = 0
    if made_on == "input thread":  # by map(), a C iterator; dropped by a worker
        pool = sf.ThreadPoolExecutor(2)
        results = pool.map(abs, map(Freed, range(n)), buffersize=64)
    elif made_on == "worker thread":  # by a C callable; dropped here
        pool = sf.ThreadPoolExecutor(2)
        results = pool.map(Freed, range(n), buffersize=64)
    else:  # unpickled by the thread that serves the process; dropped here
        pool = sf.ProcessPoolExecutor(2)
        results = pool.map(make_freed, range(n), buffersize=64)
    with pool:
        for taken, _ in enumerate(results, 1):
            if taken == checked_at:
                # each dropped one is freed, but for what a thread made
                # since it last ran Python code (a few hundred at most)
                assert checked_at - Freed.count < 1500
        assert taken == n


def test_large_results_dropped_on_another_thread_are_freed_after_a_few():
    # as above, with results of 1 MiB made by a C callable: they count for
    # more than one item each, so a worker frees what the consumer dropped
    # after a few of them, not after hundreds (256 MiB)
    FreedBlob.count = 0
    n, checked_at = 300, 250
    with sf.ThreadPoolExecutor(2) as pool:
        for taken, blob in enumerate(pool.map(FreedBlob, [1 << 20] * n), 1):
            assert len(blob) == 1 << 20
            if taken == checked_at:
                assert checked_at - FreedBlob.count < 64
        assert taken == n
