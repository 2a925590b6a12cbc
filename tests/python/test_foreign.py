"""sf.map over executors that are not ours: the items travel in chunks, one
task per chunk.  The stdlib's thread and process pools and loky here; a
real Dask distributed LocalCluster (processes on this machine) in a child
interpreter (distributed keeps threads of its own for the process's
life); mpi4py's MPIPoolExecutor under mpiexec (the mpich wheel).
Laziness, the bound, order, errors at their position, chunk sizes, early
exit."""
import asyncio
import concurrent.futures as cf
import functools
import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import streamfutures as sf
from conftest import CountingInput, wait_until
from proc_tasks import (UnpicklableError, exit_at_seven, raise_at_five,
                        raise_unpicklable_at_two, sleep_100ms, square)
from streamfutures._chunk_runner import RemoteError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CountingExecutor(cf.ThreadPoolExecutor):
    """The stdlib's thread pool, counting the tasks it is given and the
    size of each chunk (a chunk's task is run_chunk(fn, chunk, star))."""

    def __init__(self, workers):
        super().__init__(workers)
        self.tasks = 0
        self.sizes = []

    def submit(self, fn, *args, **kwargs):
        self.tasks += 1
        self.sizes.append(len(args[1]))
        return super().submit(fn, *args, **kwargs)


def outcomes(results, count):
    got = []
    for _ in range(count):
        try:
            got.append(next(results))
        except Exception as e:
            got.append(e)
    with pytest.raises(StopIteration):
        next(results)
    return got


def spawn_pool(workers):
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def test_results_in_order_and_errors_at_their_position_on_the_stdlibs_executor():
    with cf.ThreadPoolExecutor(3) as ex:
        assert list(sf.map(square, range(2000), executor=ex, buffersize=64)) == \
            [i * i for i in range(2000)]
        got = outcomes(sf.map(raise_at_five, range(8), executor=ex), 8)
        assert got[:5] == [0, 1, 2, 3, 4] and got[6:] == [6, 7]
        assert type(got[5]) is ValueError and str(got[5]) == "bad item 5"
        # where it was raised, as the stdlib's process pool reports it
        assert isinstance(got[5].__cause__, cf.process._RemoteTraceback)
        assert 'raise ValueError("bad item %d" % x)' in str(got[5].__cause__)


def test_a_process_pool_errors_at_their_position_and_an_unpicklable_one_stands_in():
    with spawn_pool(2) as ex:
        got = outcomes(sf.map(raise_unpicklable_at_two, range(6), executor=ex), 6)
        assert got[:2] == [0, 1] and got[3:] == [3, 4, 5]
        error = got[2]
        assert type(error) is RemoteError
        assert error.type_name == "proc_tasks.UnpicklableError"
        assert error.message == "item two holds a lock"
        assert str(error) == "proc_tasks.UnpicklableError: item two holds a lock"
        assert "raise UnpicklableError" in error.traceback_text
        assert "raise UnpicklableError" in str(error.__cause__)
        # a picklable one comes back as itself
        got = outcomes(sf.map(raise_at_five, range(7), executor=ex), 7)
        assert type(got[5]) is ValueError and got[:5] == [0, 1, 2, 3, 4] and got[6] == 6
    assert not isinstance(got[5], UnpicklableError)


def test_several_iterables_stop_at_the_shortest():
    with cf.ThreadPoolExecutor(2) as ex:
        assert list(sf.map(pow, range(100), itertools.repeat(2), executor=ex)) == \
            [i * i for i in range(100)]


def test_unordered_yields_each_result_once_and_a_chunk_in_its_order():
    with cf.ThreadPoolExecutor(3) as ex:
        got = list(sf.map(square, range(3000), executor=ex, unordered=True))
    assert sorted(got) == [i * i for i in range(3000)]


def test_the_inputs_error_comes_after_every_earlier_result():
    def source():
        yield from range(50)
        raise KeyError("the input broke")

    for unordered in (False, True):
        with cf.ThreadPoolExecutor(2) as ex:
            results = sf.map(square, source(), executor=ex, unordered=unordered)
            got = []
            with pytest.raises(KeyError, match="the input broke"):
                for value in results:
                    got.append(value)
            assert sorted(got) == [i * i for i in range(50)]
            with pytest.raises(StopIteration):
                next(results)


def test_the_window_bounds_the_items_acquired_over_an_endless_input():
    source = CountingInput(itertools.count())
    with cf.ThreadPoolExecutor(2) as ex:
        results = sf.map(square, source, executor=ex, buffersize=16)
        assert [next(results) for _ in range(200)] == [i * i for i in range(200)]
        time.sleep(0.1)
        assert source.pulled <= 200 + 16 + 1  # yielded + the window + one being pulled
        assert results.stats()["items_in"] - results.stats()["items_out"] <= 16
        results.close()
        pulled = source.pulled
        time.sleep(0.1)
        assert source.pulled <= pulled + 1  # a pull under way at the close may finish


def test_the_chunk_size_grows_on_trivial_tasks_and_stays_small_on_slow_ones():
    with CountingExecutor(2) as ex:
        with sf.map(square, range(100_000), executor=ex) as results:
            assert sum(results) == sum(i * i for i in range(100_000))
            assert results.stats()["chunk_size"] >= 64
        assert ex.sizes[0] == 1  # the first result after one item's task
        assert max(ex.sizes) >= 64 and ex.tasks < 100_000 / 16
        ex.sizes.clear()
        assert list(sf.map(sleep_100ms, range(12), executor=ex)) == list(range(12))
        assert max(ex.sizes) <= 2


def test_a_fixed_chunksize_and_chunksize_1_is_one_task_per_item():
    with CountingExecutor(2) as ex:
        assert list(sf.map(square, range(100), executor=ex, chunksize=1)) == \
            [i * i for i in range(100)]
        assert ex.tasks == 100
        assert list(sf.map(square, range(100), executor=ex, chunksize=30)) == \
            [i * i for i in range(100)]
        assert ex.tasks == 100 + 4
    with pytest.raises(ValueError, match="chunksize must be >= 1"):
        sf.map(square, [1], executor=ex, chunksize=0)


def test_close_and_a_dropped_iterator_cancel_the_chunks_not_started():
    gate = threading.Event()
    started = []

    def blocked(x):
        started.append(x)
        gate.wait(30)
        return x

    for how in ("close", "drop"):
        started.clear()
        gate.clear()
        with cf.ThreadPoolExecutor(1) as ex:
            results = sf.map(blocked, range(100), executor=ex, buffersize=10, chunksize=2)
            wait_until(lambda: started, "the first item started")
            flow = results._flow
            wait_until(lambda: len(flow.in_flight) == 2, "two chunks per worker sent")
            in_flight = list(flow.in_flight)
            if how == "close":
                results.close()
            else:
                del results
            assert flow.closed
            gate.set()
        assert sum(f.cancelled() for f in in_flight) == 1  # all but the running one
        assert started == [0, 1]  # the running chunk's items, no other


def test_a_chunk_lost_whole_fails_each_of_its_items_with_that_error():
    with spawn_pool(1) as ex:
        got = outcomes(sf.map(exit_at_seven, range(12), executor=ex, chunksize=4), 12)
    assert got[:4] == [0, 1, 2, 3]
    assert all(type(e) is cf.process.BrokenProcessPool for e in got[4:8])
    # the chunks after it: the pool is broken, each of their items says so
    assert all(isinstance(e, cf.process.BrokenProcessPool) for e in got[8:])


def test_one_map_read_by_several_threads_hands_out_each_item_once():
    # the chunk held is handed out in C (ChunkCursor) under the iterator's
    # lock; loading the next chunk is serialized in _next_chunk
    n, readers = 20_000, 4
    with cf.ThreadPoolExecutor(2) as ex:
        for unordered in (False, True):
            results = sf.map(raise_at_five_hundred, range(n), executor=ex, unordered=unordered)
            got = [[] for _ in range(readers)]
            errors = []

            def read(mine):
                while True:
                    try:
                        mine.append(next(results))
                    except StopIteration:
                        return
                    except ValueError as error:
                        errors.append(str(error))

            threads = [threading.Thread(target=read, args=(mine,)) for mine in got]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            everything = sorted(itertools.chain.from_iterable(got))
            assert everything == [i * i for i in range(n) if i % 500 != 499]
            assert sorted(errors) == sorted("bad item %d" % i for i in range(499, n, 500))
            if not unordered:  # each reader's share is in input order
                assert all(mine == sorted(mine) for mine in got)
            assert results.stats()["items_out"] == n


def raise_at_five_hundred(x):
    if x % 500 == 499:
        raise ValueError("bad item %d" % x)
    return x * x


def test_the_deadline_covers_the_whole_map():
    with cf.ThreadPoolExecutor(1) as ex:
        results = sf.map(sleep_100ms, range(20), executor=ex, timeout=0.35, chunksize=1)
        got = []
        with pytest.raises(cf.TimeoutError):
            for value in results:
                got.append(value)
        assert got == list(range(len(got))) and 1 <= len(got) < 20
        with pytest.raises(StopIteration):
            next(results)


def test_a_progress_bar_counts_every_item():
    import io

    from tqdm import tqdm

    tqdm.monitor_interval = 0  # tqdm's monitor thread would outlive the test
    out = io.StringIO()
    with cf.ThreadPoolExecutor(2) as ex:
        assert list(sf.map(square, range(500), executor=ex,
                           progress=functools.partial(tqdm, file=out, mininterval=0))) == \
            [i * i for i in range(500)]
    assert "500/500" in out.getvalue()


def test_async_for():
    async def collect(ex):
        got = []
        async for value in sf.map(square, range(300), executor=ex):
            got.append(value)
        return got

    with cf.ThreadPoolExecutor(2) as ex:
        assert asyncio.run(collect(ex)) == [i * i for i in range(300)]


def test_our_own_executors_use_their_map():
    with sf.ThreadPoolExecutor(2) as ex:
        assert type(sf.map(abs, [-1], executor=ex)).__name__ == "MapIterator"


def test_a_stream_stage_on_a_foreign_executor():
    with cf.ThreadPoolExecutor(2) as ex:
        stream = sf.Stream(range(500)).map(square, executor=ex).map(str)
        assert list(stream) == [str(i * i) for i in range(500)]


LOKY_CHECKS = textwrap.dedent("""
    import json
    import loky
    import streamfutures as sf
    from proc_tasks import raise_at_five, reported_outcomes, square
    if __name__ == "__main__":
        ex = loky.get_reusable_executor(max_workers=2)
        ordered = list(sf.map(square, range(3000), executor=ex)) == [i * i for i in range(3000)]
        got = reported_outcomes(sf.map(raise_at_five, range(7), executor=ex))
        ex.shutdown(wait=True, kill_workers=True)
        print(json.dumps({"ordered": ordered, "errors": got}))
""")


def run_checks(argv):
    """A child interpreter's checks (the tests' modules importable), and
    the JSON report it prints last."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                             [ROOT, os.path.dirname(os.path.abspath(__file__))])))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_loky():
    # in a child: loky keeps a resource-tracker process of its own for good
    report = run_checks([sys.executable, "-c", LOKY_CHECKS])
    assert report == {"ordered": True, "errors": [0, 1, 2, 3, 4, "ValueError: bad item 5", 6]}


DASK_CHECKS = textwrap.dedent("""
    import asyncio, itertools, json, threading, time, uuid
    import streamfutures as sf
    from distributed import Client, LocalCluster
    from distributed.cfexecutor import ClientExecutor
    from proc_tasks import (raise_at_five, raise_unpicklable_at_two, reported_outcomes as outcomes,
                            sleep_100ms, square)

    def fresh(_):
        return uuid.uuid4().hex

    def source():
        yield from range(30)
        raise KeyError("the input broke")

    class Recording(ClientExecutor):  # records the size of every chunk sent, in order
        sizes = []
        def submit(self, run, fn, chunk, *rest, **options):
            self.sizes.append(len(chunk))
            return super().submit(run, fn, chunk, *rest, **options)

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            ex = client.get_executor()
            report = {}
            grows = sf.map(square, range(20000), executor=Recording(client))
            report["first_size"] = (next(grows), Recording.sizes[0])
            report["ordered"] = list(grows) == [i * i for i in range(1, 20000)]
            report["grown_size"] = grows.stats()["chunk_size"]
            report["unordered"] = sorted(sf.map(square, range(5000), executor=ex,
                                                unordered=True)) == [i * i for i in range(5000)]
            pulled = 0
            def counted():
                global pulled
                for i in itertools.count():
                    pulled = i + 1
                    yield i
            results = sf.map(square, counted(), executor=ex, buffersize=8)
            report["first"] = [next(results) for _ in range(5)]
            time.sleep(0.5)
            report["pulled"] = pulled
            results.close()
            report["errors"] = outcomes(sf.map(raise_at_five, range(7), executor=ex))
            report["unpicklable"] = outcomes(sf.map(raise_unpicklable_at_two, range(4),
                                                    executor=ex))
            report["input_error"] = outcomes(sf.map(square, source(), executor=ex))[-2:]
            # identical chunks are never one key: each runs
            report["distinct"] = len(set(sf.map(fresh, [0] * 40, executor=ex, chunksize=2)))
            slow = sf.map(sleep_100ms, range(10), executor=ex)
            sizes = []
            for _ in slow:
                sizes.append(slow.stats()["chunk_size"])
            report["slow_sizes"] = max(sizes)
            timed = sf.map(sleep_100ms, range(50), executor=ex, timeout=0.5)
            report["timeout"] = outcomes(timed)[-1]
            async def collect():
                return [x async for x in sf.map(square, range(300), executor=ex)]
            report["async"] = asyncio.run(collect()) == [i * i for i in range(300)]
            report["stream"] = list(sf.Stream(range(200)).map(square, executor=ex)) == \\
                [i * i for i in range(200)]
            import tqdm, io
            bar = tqdm.tqdm(total=400, file=io.StringIO())
            report["progress"] = (sum(1 for _ in sf.map(square, range(400), executor=ex,
                                                      progress=bar)), bar.n)
            bar.close()
            # a closed map cancels what has not started: the cluster is idle again
            blocked = sf.map(sleep_100ms, range(1000), executor=ex)
            next(blocked)
            blocked.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and client.processing() and \\
                    any(client.processing().values()):
                time.sleep(0.05)
            report["idle_after_close"] = not any(client.processing().values())
            print(json.dumps(report))
""")


def test_on_a_real_dask_localcluster():
    # not imported here: importing distributed starts threads for good
    import importlib.util
    assert importlib.util.find_spec("distributed"), "make venv installs distributed from PyPI"
    report = run_checks([sys.executable, "-c", DASK_CHECKS])
    assert report["first_size"] == [0, 1]  # the first chunk is one item
    assert report["ordered"] and report["unordered"] and report["stream"] and report["async"]
    assert report["grown_size"] >= 256
    assert report["first"] == [0, 1, 4, 9, 16]
    assert report["pulled"] <= 5 + 8 + 1  # lazy and bounded over an endless input
    assert report["errors"] == [0, 1, 2, 3, 4, "ValueError: bad item 5", 6]
    assert report["unpicklable"] == [
        0, 1, "RemoteError: proc_tasks.UnpicklableError: item two holds a lock", 3]
    assert report["input_error"] == [29 * 29, "KeyError: 'the input broke'"]
    assert report["distinct"] == 40
    assert report["slow_sizes"] <= 2
    assert report["timeout"] == "TimeoutError: "
    assert report["progress"] == [400, 400]
    assert report["idle_after_close"]


def mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    assert os.path.exists(beside), "make venv installs mpi4py and the mpich wheel from PyPI"
    return beside


MPI_CHECKS = textwrap.dedent("""
    import json
    import streamfutures as sf
    from mpi4py.futures import MPIPoolExecutor
    from proc_tasks import raise_at_five, reported_outcomes, square
    class Recording:  # records the size of every chunk sent, in order
        def __init__(self, pool):
            self.pool, self.num_workers, self.sizes = pool, pool.num_workers, []
        def submit(self, run, fn, chunk, *rest):
            self.sizes.append(len(chunk))
            return self.pool.submit(run, fn, chunk, *rest)
    if __name__ == "__main__":
        with MPIPoolExecutor() as ex:
            recording = Recording(ex)
            results = sf.map(square, range(20000), executor=recording)
            first = [next(results), recording.sizes[0]]
            ordered = list(results) == [i * i for i in range(1, 20000)]
            got = reported_outcomes(sf.map(raise_at_five, range(7), executor=ex))
            unordered = sorted(sf.map(square, range(3000), executor=ex, unordered=True))
            print(json.dumps({"first": first, "ordered": ordered,
                              "grown": results.stats()["chunk_size"], "errors": got,
                              "workers": ex.num_workers,
                              "unordered": unordered == [i * i for i in range(3000)]}))
""")


def test_on_mpi4pys_pool_executor_under_mpiexec(tmp_path):
    script = tmp_path / "mpi_checks.py"  # a file: every rank imports the main module
    script.write_text(MPI_CHECKS)
    report = run_checks([mpiexec(), "-n", "3", sys.executable, "-m", "mpi4py.futures",
                         str(script)])
    assert report["workers"] == 2
    assert report["first"] == [0, 1]  # the first chunk is one item
    assert report["ordered"] and report["unordered"]
    assert report["grown"] >= 64
    assert report["errors"] == [0, 1, 2, 3, 4, "ValueError: bad item 5", 6]
