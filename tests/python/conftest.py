"""Every test must leave no thread, no process and no file descriptor
behind: the autouse fixture compares the process's native threads (engine
threads are not in threading.enumerate()), its child processes and its
open fds before and after each test.  multiprocessing's own long-lived
helpers (the forkserver and the resource tracker) are started once first,
so they count as the baseline.

A test that forks worker processes from this multi-threaded process must
ask for it (the ``forks`` mark): the fork_warnings fixture records Python
3.12+'s "is multi-threaded, use of fork()" DeprecationWarning there, and
fails any other test that makes one (a default pool silently forking)."""
import gc
import multiprocessing
import os
import signal
import sys
import sysconfig
import threading
import warnings

import pytest

from streamfutures import _engine

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from census import child_pids, native_threads, open_fds  # noqa: E402


def pytest_sessionstart(session):
    # A shell starts a background command with SIGINT ignored, and Python
    # then installs no handler: the Ctrl-C tests (here and in the child
    # interpreters, which inherit the disposition) would wait for an
    # interrupt that never comes.  They test a program started as a user
    # starts one, with Python's own handler.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # ThreadSanitizer's runtime starts a thread of its own with the first
    # thread the process makes (make tsan-ft): let that happen before any
    # test counts threads
    if "--with-thread-sanitizer" in (sysconfig.get_config_var("CONFIG_ARGS") or ""):
        first = threading.Thread(target=lambda: None)
        first.start()
        first.join()


@pytest.fixture(scope="session", autouse=True)
def multiprocessing_helpers():
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()
    if "forkserver" in multiprocessing.get_all_start_methods():
        forkserver.ensure_running()


@pytest.fixture(autouse=True)
def no_leaks(multiprocessing_helpers):
    gc.collect()
    _engine.reap(True)
    threads, fds, py_threads = native_threads(), open_fds(), set(threading.enumerate())
    children = child_pids()
    yield
    gc.collect()
    _engine.reap(True)
    assert child_pids() == children, "the test left a process behind"
    assert native_threads() == threads, "the test left a thread running"
    assert set(threading.enumerate()) == py_threads, "the test left a Python thread"
    assert open_fds() == fds, "the test left a file descriptor open"


FORK_WARNING = "is multi-threaded, use of fork() may lead to deadlocks"


FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


# Free-threaded CPython 3.13 can deadlock a forked child: threading's
# at-fork handler changes the forking thread's __class__, which stops the
# world, and the stop-the-world lock may have been held at the fork by
# another thread of the parent (seen in the stress matrix: the child hangs
# in object_set_class -> _PyEval_StopTheWorld under run_at_forkers).  No
# library can avoid it; the default start method here is forkserver.
FORK_DEADLOCKS = FREE_THREADED and sys.version_info < (3, 14)
FORK_DEADLOCK_REASON = ("free-threaded CPython 3.13 can deadlock a forked child in its "
                        "at-fork handlers (the stop-the-world lock)")


def pytest_collection_modifyitems(config, items):
    if FORK_DEADLOCKS:
        for item in items:
            if item.get_closest_marker("forks") is not None:
                item.add_marker(pytest.mark.skip(reason=FORK_DEADLOCK_REASON))


def pytest_sessionfinish(session, exitstatus):
    """On a free-threaded build the GIL must still be off at the end: an
    import that needed it (ours or a dependency's) would have turned it on
    for the whole run, and the run would have tested nothing without it."""
    if FREE_THREADED and sys._is_gil_enabled():
        session.config.get_terminal_writer().line(
            "FAILED: the GIL was enabled during the run (see the RuntimeWarning above)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "forks: the test starts worker processes with fork, and Python 3.12+ warns")
    # pytest-run-parallel's own marker (make py-test-ft runs thread tests
    # concurrently with it); declared here for the venvs without the plugin
    config.addinivalue_line(
        "markers", "thread_unsafe: not run on several threads at once by pytest-run-parallel")


@pytest.fixture(autouse=True)
def fork_warnings(request):
    """The fork warnings the test made, recorded; every other warning is
    passed on to pytest as it came."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    forked = [w for w in caught if issubclass(w.category, DeprecationWarning)
              and FORK_WARNING in str(w.message)]
    for w in caught:
        if w not in forked:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if forked and request.node.get_closest_marker("forks") is None:
        pytest.fail("%d worker process(es) forked from a multi-threaded process in a test that "
                    "did not ask for fork: %s" % (len(forked), forked[0].message), pytrace=False)


class Gate:
    """An event a test opens; waiting on it never hangs a broken test."""

    def __init__(self):
        self.event = threading.Event()

    def open(self):
        self.event.set()

    def wait(self):
        assert self.event.wait(30), "gate never opened"


def free_what_other_threads_let_go():
    """On a free-threaded build, an object whose last reference a thread
    other than its creator dropped is freed when the creator next merges its
    reference counts; a collection merges every thread's at once.  With a
    GIL it was freed at once, and there is nothing to do.  (An object still
    referenced is not freed by this either.)"""
    if FREE_THREADED:
        gc.collect()


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
