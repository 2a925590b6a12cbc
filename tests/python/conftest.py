"""Every test must leave no thread and no file descriptor behind: the
autouse fixture compares the process's native threads (engine threads are
not in threading.enumerate()) and open fds before and after each test."""
import gc
import os
import threading

import pytest

from streamfutures import _engine


def native_threads():
    return len(os.listdir("/proc/self/task"))


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks():
    gc.collect()
    _engine.reap(True)
    threads, fds, py_threads = native_threads(), open_fds(), set(threading.enumerate())
    yield
    gc.collect()
    _engine.reap(True)
    assert native_threads() == threads, "the test left a thread running"
    assert set(threading.enumerate()) == py_threads, "the test left a Python thread"
    assert open_fds() == fds, "the test left a file descriptor open"


class Gate:
    """An event a test opens; waiting on it never hangs a broken test."""

    def __init__(self):
        self.event = threading.Event()

    def open(self):
        self.event.set()

    def wait(self):
        assert self.event.wait(30), "gate never opened"


class CountingInput:
    """An input iterator that records how many items were taken from it and
    on which threads."""

    def __init__(self, items):
        self.items = iter(items)
        self.pulled = 0
        self.threads = set()
        self.lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        self.threads.add(threading.get_ident())
        item = next(self.items)
        with self.lock:
            self.pulled += 1
        return item


def wait_until(predicate, what="condition"):
    """Poll for a state the engine reaches in the background."""
    import time

    for _ in range(3000):
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError("never reached: " + what)
