"""What the stress scenarios run in their pools: item FAULT_AT misbehaves
in the way the mode says, every other item returns its square.  Module
level, so workers started by spawn or forkserver can import it."""
import ctypes
import os
import signal
import sys
import threading
import time

FAULT_AT = 5
ITEMS = 12
SLOW_SECONDS = 0.4  # the faulty item in modes that need time to interrupt it


class RaisesWhenPickled:
    def __reduce__(self):
        raise ValueError("refuses to be pickled")


class ExitsWhenUnpickled:
    def __reduce__(self):
        return (sys.exit, (3,))


def square(x):
    return x * x


def start_a_descendant():
    """In a worker process, the faulty item first starts a long `sleep` and
    notes its pid where the stress runner looks (SF_STRESS_DESCENDANTS): it
    must end with its worker, however the worker ends."""
    import multiprocessing
    import subprocess

    where = os.environ.get("SF_STRESS_DESCENDANTS")
    if not where or multiprocessing.parent_process() is None:
        return  # a thread pool's task is the program's own
    child = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(where, str(child.pid)), "w"):
        pass


def fault(mode, x):
    """The item function for mode: item FAULT_AT fails as the mode says."""
    if x != FAULT_AT:
        return x * x
    start_a_descendant()
    if mode == "os_exit":
        os._exit(3)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "segfault":
        ctypes.string_at(0)
    if mode == "unpicklable_result":
        return threading.Lock()
    if mode == "result_exits_when_unpickled":
        return ExitsWhenUnpickled()
    if mode in ("task_timeout", "ctrl_c_in_next", "ctrl_c_in_result", "break_mid_map",
                "shutdown_from_another_thread", "exit_with_live_maps"):
        time.sleep(SLOW_SECONDS if mode != "task_timeout" else 30)
    return x * x


def argument(mode, x):
    """The argument for item x (the faulty one may not pickle, or not
    unpickle)."""
    if x != FAULT_AT:
        return x
    if mode == "unpicklable_argument":
        return threading.Lock()
    if mode == "argument_raises_when_pickled":
        return RaisesWhenPickled()
    if mode == "argument_exits_when_unpickled":
        return ExitsWhenUnpickled()
    return x


def item_fn(args):
    """map's and submit's function: (mode, argument) -> result."""
    mode, x = args
    if not isinstance(x, int):  # an argument that travelled: it is FAULT_AT's
        x = FAULT_AT
    return fault(mode, x)


def failing_initializer():
    raise RuntimeError("initializer fails on purpose")
