"""sf.map over executors that are not ours: the stdlib's here, and a real
Dask distributed LocalCluster (processes on this machine) in a child
interpreter (distributed keeps threads of its own for the process's life).
Laziness, the bound, order, errors at their position, early exit."""
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import streamfutures as sf
from conftest import CountingInput, wait_until
from proc_tasks import raise_at_five, square

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_results_in_order_and_errors_at_their_position_on_the_stdlibs_executor():
    with cf.ThreadPoolExecutor(3) as ex:
        assert list(sf.map(square, range(200), executor=ex, buffersize=8)) == \
            [i * i for i in range(200)]
        got = []
        results = sf.map(raise_at_five, range(8), executor=ex)
        for _ in range(8):
            try:
                got.append(next(results))
            except ValueError as e:
                got.append(str(e))
        assert got == [0, 1, 2, 3, 4, "bad item 5", 6, 7]
        with pytest.raises(StopIteration):
            next(results)


def test_unordered_yields_each_result_once():
    with cf.ThreadPoolExecutor(3) as ex:
        assert sorted(sf.map(square, range(300), executor=ex, unordered=True)) == \
            sorted(i * i for i in range(300))


def test_several_iterables_and_the_window_bound_over_an_endless_input():
    import itertools

    source = CountingInput(itertools.count())
    with cf.ThreadPoolExecutor(2) as ex:
        results = sf.map(pow, source, itertools.repeat(2), executor=ex, buffersize=16)
        assert [next(results) for _ in range(10)] == [i * i for i in range(10)]
        wait_until(lambda: source.pulled >= 26, "the window refilled")
        assert source.pulled <= 10 + 16 + 1  # taken + the window + one being pulled
        results.close()
        pulled = source.pulled
        time.sleep(0.1)
        settled = source.pulled
        time.sleep(0.1)
        assert settled - pulled <= 1  # a pull under way at the close may finish
        assert source.pulled == settled  # then the input is no longer read


def test_close_cancels_the_futures_not_started():
    gate = threading.Event()
    started = []

    def blocked(x):
        started.append(x)
        gate.wait(30)
        return x

    with cf.ThreadPoolExecutor(1) as ex:
        results = sf.map(blocked, range(100), executor=ex, buffersize=10)
        wait_until(lambda: started, "the first item started")
        wait_until(lambda: len(results._in_flight) == 10, "the window submitted")
        in_flight = list(results._in_flight)
        results.close()
        gate.set()
        assert sum(f.cancelled() for f in in_flight) == 9  # all but the running one
    assert started == [0]


def test_our_own_executors_use_their_map():
    with sf.ThreadPoolExecutor(2) as ex:
        assert type(sf.map(abs, [-1], executor=ex)).__name__ == "MapIterator"


def test_a_stream_stage_on_a_foreign_executor():
    with cf.ThreadPoolExecutor(2) as ex:
        stream = sf.Stream(range(50)).map(square, executor=ex).map(str)
        assert list(stream) == [str(i * i) for i in range(50)]


def test_on_a_real_dask_localcluster():
    # not imported here: importing distributed starts threads for good
    import importlib.util
    assert importlib.util.find_spec("distributed"), "make venv installs distributed from PyPI"
    code = textwrap.dedent("""
        import itertools, json
        import streamfutures as sf
        from distributed import Client, LocalCluster

        def square(x):
            return x * x

        def fails_at_three(x):
            if x == 3:
                raise ValueError("three")
            return x

        if __name__ == "__main__":
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                ex = client.get_executor()
                ordered = list(sf.map(square, range(100), executor=ex, buffersize=16))
                unordered = sorted(sf.map(square, range(100), executor=ex, unordered=True))
                pulled = 0
                def counted():
                    global pulled
                    for i in itertools.count():
                        pulled = i + 1
                        yield i
                results = sf.map(square, counted(), executor=ex, buffersize=8)
                first = [next(results) for _ in range(5)]
                results.close()
                outcomes = []
                errors = sf.map(fails_at_three, range(6), executor=ex)
                for _ in range(6):
                    try:
                        outcomes.append(next(errors))
                    except ValueError as e:
                        outcomes.append(str(e))
                stream = list(sf.Stream(range(20)).map(square, executor=ex))
                print(json.dumps({"ordered": ordered == [i * i for i in range(100)],
                                  "unordered": unordered == [i * i for i in range(100)],
                                  "first": first, "pulled": pulled, "outcomes": outcomes,
                                  "stream": stream == [i * i for i in range(20)]}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ordered"] and report["unordered"] and report["stream"]
    assert report["first"] == [0, 1, 4, 9, 16]
    assert report["pulled"] <= 5 + 8 + 1  # lazy and bounded over an endless input
    assert report["outcomes"] == [0, 1, 2, "three", 4, 5]


@pytest.mark.skipif(__import__("shutil").which("mpiexec") is None,
                    reason="no MPI library on this machine (Debian's mpich or openmpi "
                           "packages are not installed), so mpi4py cannot run")
def test_on_mpi4pys_pool_executor():
    code = textwrap.dedent("""
        import streamfutures as sf
        from mpi4py.futures import MPIPoolExecutor
        if __name__ == "__main__":
            with MPIPoolExecutor() as ex:
                print(list(sf.map(abs, range(-20, 0), executor=ex, buffersize=4)))
    """)
    out = subprocess.run(["mpiexec", "-n", "3", sys.executable, "-m", "mpi4py.futures", "-c",
                          code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == str(list(range(20, 0, -1)))
