"""The start method of a ProcessPoolExecutor given no mp_context.

forkserver, Python 3.14's default, on every version, unless the program
chose a start method: workers are started from engine threads, and fork()
in a process with threads is unsafe unless asked for (see README).

multiprocessing cannot tell us whether one was chosen.  On 3.10-3.13 it
fixes its global default to fork the first time anything asks for it
without allow_none, and starting any spawn or forkserver process does
(spawn.get_preparation_data), as does any default-context object (a
Queue, a Lock).  After that, get_start_method(allow_none=True) says "fork"
as if the program had chosen it.  So the choice is recorded where it is
made: set_start_method(method) is the only caller of the default
context's get_context(method) that goes through the instance (the
module-level multiprocessing.get_context was bound when multiprocessing
was imported, so it bypasses the hook), and the hook only records and
delegates.  A start method already fixed when streamfutures is imported
counts as chosen: we cannot tell how it was fixed.  On 3.14 and later the
default is forkserver already, and the stdlib's own answer is used.
"""
import multiprocessing as mp
import sys
import threading
from multiprocessing import context as _mp_context

_lock = threading.Lock()
_chosen = None  # the method last given to set_start_method, or None


def _install_hook():
    global _chosen
    default = _mp_context._default_context
    original = type(default).get_context

    def get_context(method=None):
        global _chosen
        if method is not None:
            with _lock:
                _chosen = method
        return original(default, method)

    with _lock:
        if getattr(default, "_actual_context", None) is not None:
            _chosen = default._actual_context.get_start_method()
    default.get_context = get_context


_HOOKED = sys.version_info < (3, 14) and isinstance(
    getattr(_mp_context, "_default_context", None), _mp_context.DefaultContext)
if _HOOKED:
    _install_hook()


def chosen_start_method():
    """The start method the program chose, or None."""
    if not _HOOKED:
        return mp.get_start_method(allow_none=True)
    global _chosen
    with _lock:
        if mp.get_start_method(allow_none=True) is None:
            _chosen = None  # never fixed, or reset by set_start_method(None, force=True)
        return _chosen


def default_context():
    """The context of a process pool given no mp_context."""
    method = chosen_start_method()
    if method is None and "forkserver" in mp.get_all_start_methods():
        return mp.get_context("forkserver")
    return mp.get_context(method)
