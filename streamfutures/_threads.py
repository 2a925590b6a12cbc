"""Python-level identity of engine threads.

Engine threads are not threading.Thread objects; the first call of
threading.current_thread() on one (logging does it for %(threadName)s)
registers a _DummyThread that would stay in threading._active after the
thread ends.  The binding calls enter() when an engine thread starts, so it
carries the stdlib's worker name ("ThreadPoolExecutor-0_3"), and leave()
just before it ends, so nothing outlives it.
"""
import threading


def enter(name):
    threading.current_thread().name = name


def run_pending():
    """Does nothing, on purpose: the binding calls it now and then on an
    engine thread that may otherwise run no Python code for long (a C
    iterator as input, a C function as the task, results unpickled from a
    process).  CPython does a thread's pending work where a Python function
    starts, and on 3.13t that work includes freeing the objects this thread
    made that other threads have dropped since (biased reference counting
    hands them back to their maker): without it they would pile up for as
    long as the thread runs, one per item."""


def leave():
    ident = threading.get_ident()
    with threading._active_limbo_lock:
        current = threading._active.get(ident)
        if isinstance(current, threading._DummyThread):
            del threading._active[ident]
