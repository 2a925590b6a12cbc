"""One stress run, in a fresh interpreter: a pool, an API, a fault mode.

Usage: scenario.py MODE API POOL [START_METHOD]
Prints one JSON line: {"lost": n, "leaks": [...], "workers": [pids], ...}.
An item is accounted for when it yielded its square, raised the exception
its fault calls for at its own position, or was cancelled (never delivered
because the consumer stopped, or a CancelledError, or the pool broke for
all).  Anything else (a wrong value, a missing item, a foreign exception,
an item delivered twice) is lost.  Leaks: threads, child processes and
file descriptors left after the pool was shut down and collected."""
import concurrent.futures as cf
import gc
import json
import multiprocessing
import os
import signal
import sys
import threading
import time

import streamfutures as sf
from streamfutures import _engine
from census import child_pids, native_threads, open_fds
from stress_tasks import FAULT_AT, ITEMS, argument, failing_initializer, item_fn

# what the faulty item raises, by mode (None: it succeeds)
FAULT_RAISES = {
    "os_exit": sf.WorkerCrashedError,
    "sigkill": sf.WorkerCrashedError,
    "segfault": sf.WorkerCrashedError,
    "unpicklable_argument": TypeError,
    "unpicklable_result": TypeError,
    "argument_raises_when_pickled": ValueError,
    "argument_exits_when_unpickled": sf.DeserializationError,
    "result_exits_when_unpickled": sf.DeserializationError,
    "task_timeout": cf.TimeoutError,
}
STOPS_EARLY = {"ctrl_c_in_next", "ctrl_c_in_result", "break_mid_map", "shutdown_from_another_thread"}


def snapshot():
    return {"threads": native_threads(), "fds": open_fds(), "children": child_pids()}


def make_pool(mode, pool, method):
    kwargs = {}
    if mode == "failing_initializer":
        kwargs = {"initializer": failing_initializer}
    if pool == "thread":
        return sf.ThreadPoolExecutor(3, **kwargs)
    return sf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method), **kwargs)


def check(mode, i, outcome):
    """Is this outcome of item i accounted for?"""
    kind, value = outcome
    if kind == "cancelled":
        return True
    if mode == "failing_initializer":
        return kind == "exc" and isinstance(value, cf.BrokenExecutor)
    if kind == "exc" and isinstance(value, cf.CancelledError):
        return mode == "shutdown_from_another_thread"
    expected = FAULT_RAISES.get(mode) if i == FAULT_AT else None
    if expected is None:
        return kind == "ok" and value == i * i
    return kind == "exc" and isinstance(value, expected)


def interrupt_soon(delay=0.15):
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def run_iterator(mode, make_iterator, ex):
    """map or Stream: outcomes by position."""
    outcomes = []
    iterator = make_iterator()
    timer = interrupt_soon() if mode == "ctrl_c_in_next" else None
    stopper = None
    if mode == "shutdown_from_another_thread":
        stopper = threading.Timer(0.15, ex.shutdown, kwargs={"wait": True, "cancel_futures": True})
        stopper.start()
    try:
        while True:
            try:
                outcomes.append(("ok", next(iterator)))
            except StopIteration:
                break
            except KeyboardInterrupt:
                break
            except Exception as e:  # noqa: B902 - the item's own exception
                outcomes.append(("exc", e))
                if mode == "failing_initializer":
                    break  # a broken pool ends the map, as in the stdlib
            if mode == "break_mid_map" and len(outcomes) == FAULT_AT + 1:
                break
            if mode == "exit_with_live_maps" and len(outcomes) == 2:
                return outcomes, iterator  # left running at exit
    finally:
        if timer:
            timer.join()
        if stopper:
            stopper.join()
    close = getattr(iterator, "close", None)
    if close:
        close()
    return outcomes, None


def run_submit(mode, ex):
    futures = []
    for i in range(ITEMS):
        try:
            futures.append(ex.submit(item_fn, (mode, argument(mode, i))))
        except cf.BrokenExecutor as e:  # the pool broke meanwhile: reported at once
            failed = cf.Future()
            failed.set_exception(e)
            futures.append(failed)
    if mode == "exit_with_live_maps":
        return [], futures
    timer = stopper = None
    if mode == "ctrl_c_in_result":
        timer = interrupt_soon()
    if mode == "shutdown_from_another_thread":
        stopper = threading.Timer(0.15, ex.shutdown, kwargs={"wait": True, "cancel_futures": True})
        stopper.start()
    try:
        for i, f in enumerate(futures):
            if mode == "break_mid_map" and i == FAULT_AT + 1:
                break
            try:
                f.result()
            except KeyboardInterrupt:
                break
            except BaseException:
                pass
    finally:
        if timer:
            timer.join()
        if stopper:
            stopper.join()
    ex.shutdown(wait=True, cancel_futures=True)
    outcomes = []
    for f in futures:
        if not f.done():
            outcomes.append(("missing", None))
        elif f.cancelled():
            outcomes.append(("cancelled", None))
        elif f.exception() is not None:
            outcomes.append(("exc", f.exception()))
        else:
            outcomes.append(("ok", f.result()))
    return outcomes, None


def main():
    mode, api, pool = sys.argv[1:4]
    method = sys.argv[4] if len(sys.argv) > 4 else None
    if method == "forkserver":
        from multiprocessing import forkserver
        forkserver.ensure_running()
    if pool == "process":
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()
    before = snapshot()
    ex = make_pool(mode, pool, method)
    inputs = [(mode, argument(mode, i)) for i in range(ITEMS)]
    kwargs = {"chunksize": 1} if pool == "process" else {}
    if mode == "task_timeout":
        kwargs["task_timeout"] = 1.0
    live = None
    try:
        if api == "map":
            outcomes, live = run_iterator(mode, lambda: ex.map(item_fn, inputs, **kwargs), ex)
        elif api == "stream":
            def stream():
                if mode == "task_timeout":
                    return ex.map(item_fn, inputs, **kwargs)  # a Stream stage has no task_timeout
                return iter(sf.Stream(inputs).map(item_fn, executor=ex))
            outcomes, live = run_iterator(mode, stream, ex)
        else:
            if mode == "task_timeout":
                submit = ex.submit
                ex.submit = lambda fn, *a: ex.submit_with_timeout(1.0, fn, *a) if a[0][1] == FAULT_AT \
                    else submit(fn, *a)
            outcomes, live = run_submit(mode, ex)
    except KeyboardInterrupt:
        outcomes = []
    workers = sorted(getattr(getattr(ex, "_spawner", None), "processes", {}))
    if mode == "exit_with_live_maps":
        print(json.dumps({"lost": 0, "leaks": [], "workers": workers, "live": live is not None}),
              flush=True)
        return  # the interpreter exits with the map (or futures) still running
    lost = sum(not check(mode, i, o) for i, o in enumerate(outcomes))
    delivered = len(outcomes)
    if mode not in STOPS_EARLY and mode != "failing_initializer" and delivered != ITEMS:
        lost += ITEMS - delivered  # an item that never came
    if api == "submit" and delivered != ITEMS:
        lost += ITEMS - delivered
    ex.shutdown(wait=True)
    del ex
    leaks = []
    for _ in range(500):  # threads and processes end a moment after the join
        gc.collect()
        _engine.reap(True)
        after = snapshot()
        leaks = [what for what in ("threads", "fds", "children") if after[what] != before[what]]
        if not leaks:
            break
        time.sleep(0.01)
    print(json.dumps({"lost": lost, "leaks": leaks, "workers": workers, "delivered": delivered,
                      "outcomes": [o[0] for o in outcomes]}), flush=True)


if __name__ == "__main__":
    main()
