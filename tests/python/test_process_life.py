"""Ctrl-C and interpreter exit, each in a child interpreter: KeyboardInterrupt
reaches the consumer promptly, and the interpreter exits without hanging
whatever maps are running, abandoned or fire-and-forget."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child(code):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("child hung; stdout=%r stderr=%r" % (out, err))
    return proc.returncode, out, err


SLOW_WORK = """
    import threading, time, itertools
    import streamfutures as sf
    stop = threading.Event()
    def slow(x):
        stop.wait(60)   # released by the handler below
        return x
"""


@pytest.mark.parametrize("waiting_in", ["map", "result"])
def test_ctrl_c_interrupts_a_blocked_consumer(waiting_in):
    wait = "next(iter(ex.map(slow, itertools.count())))" if waiting_in == "map" \
        else "ex.submit(slow, 1).result()"
    proc = child(SLOW_WORK + f"""
    ex = sf.ThreadPoolExecutor(2)
    print("ready", flush=True)
    try:
        {wait}
    except KeyboardInterrupt:
        print("interrupted")
    stop.set()
    ex.shutdown()
    print("clean")
    """)
    assert proc.stdout.readline().strip() == "ready"
    import time
    time.sleep(0.3)  # let it block in the wait
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.split() == ["interrupted", "clean"]


def test_exit_while_a_map_over_an_endless_input_is_running():
    proc = child("""
    import itertools
    import streamfutures as sf
    ex = sf.ThreadPoolExecutor(2)
    it = ex.map(abs, itertools.count())
    print(next(it), next(it))
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.split() == ["0", "1"]


def test_exit_after_abandoning_a_started_map():
    proc = child("""
    import itertools
    import streamfutures as sf
    ex = sf.ThreadPoolExecutor(3)
    for x in ex.map(abs, itertools.count(), buffersize=64):
        if x == 5:
            break
    print("left")
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.split() == ["left"]


def test_exit_runs_fire_and_forget_work_to_the_end_like_the_stdlib():
    proc = child("""
    import atexit
    import streamfutures as sf
    done = []
    atexit.register(lambda: print(len(done)))   # runs after the executors' exit hook
    ex = sf.ThreadPoolExecutor(2)
    ex.map(done.append, range(2000))            # the default window: the classic rule
    ex.submit(done.append, -1)
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.split() == ["2001"]


@pytest.mark.parametrize("executor", ["ThreadPoolExecutor", "ProcessPoolExecutor"])
def test_exit_with_a_dropped_explicit_buffersize_map_over_an_endless_input(executor):
    # seed 001's scenario at interpreter exit: a live feed, a map dropped
    # unread; 3.14's rule stops reading the feed, so the exit hook's join ends
    proc = child(f"""
    import atexit, itertools, time
    import streamfutures as sf
    pulled = []
    def produce():
        for i in itertools.count():
            time.sleep(0.01)
            pulled.append(i)
            yield i
    atexit.register(lambda: print(len(pulled)))   # runs after the executors' exit hook
    ex = sf.{executor}(2)
    ex.map(abs, produce(), buffersize=10)
    time.sleep(0.2)
    print("dropped")
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    said = out.split()
    assert said[0] == "dropped"
    assert int(said[1]) <= 10 + 1  # the window, plus the one pull under way


def test_new_work_is_refused_once_the_interpreter_is_exiting():
    proc = child("""
    import atexit
    import streamfutures as sf
    ex = sf.ThreadPoolExecutor(1)
    def late():
        try:
            ex.submit(abs, 1)
        except RuntimeError as exc:
            print(exc)
    atexit.register(late)   # runs after the executors' exit hook
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.strip() == "cannot schedule new futures after interpreter shutdown"


BLOCKED_INPUT = """
    import threading
    import streamfutures as sf
    never = threading.Event()
    def blocked_input():
        yield 1
        yield 2
        never.wait()    # an input waiting on something that never comes
        yield 3
"""


@pytest.mark.parametrize("executor", ["ThreadPoolExecutor", "ProcessPoolExecutor"])
def test_ctrl_c_interrupts_shutdown_waiting_for_work(executor):
    proc = child(f"""
    import time
    import streamfutures as sf
    ex = sf.{executor}(1)
    future = ex.submit(time.sleep, 3)
    time.sleep(0.1)
    print("ready", flush=True)
    try:
        ex.shutdown(wait=True)
        print("waited")
    except KeyboardInterrupt:
        print("interrupted", future.done())
    ex.shutdown(wait=True)
    print("clean", future.done())
    """)
    assert proc.stdout.readline().strip() == "ready"
    import time
    time.sleep(0.3)  # let it block in the join
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.split() == ["interrupted", "False", "clean", "True"]


@pytest.mark.parametrize("executor", ["ThreadPoolExecutor", "ProcessPoolExecutor"])
def test_with_exit_and_interpreter_exit_do_not_wait_for_a_blocked_input(executor):
    proc = child(BLOCKED_INPUT + f"""
    with sf.{executor}(2) as ex:
        results = ex.map(abs, blocked_input())
        print(next(results), next(results), flush=True)
    print("left the with-block", flush=True)
    """)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.split() == ["1", "2", "left", "the", "with-block"]
