"""The Future that submit() returns: a concurrent.futures.Future whose
Condition is made only when somebody needs it.

The stdlib's Future makes a threading.Condition in __init__ and takes it on
every state change; that is most of the per-task cost of submit().  Here
``_condition`` is created on first access.  Every stdlib path that can wait
on a future or register interest in it (result(), wait(), as_completed(),
add_done_callback(), cancel(), asyncio.wrap_future, ...) goes through
``_condition`` first.  So while no condition exists nobody can be waiting,
and the engine's worker, holding the GIL, may complete the future by
setting its state directly (src/python/pool_object.c); once one exists the
worker uses the ordinary set_running_or_notify_cancel / set_result /
set_exception, which notify waiters and run callbacks.
"""
import threading
from concurrent.futures import _base

_FINISHED = _base.FINISHED


class EngineFuture(_base.Future):
    """A concurrent.futures.Future; only its bookkeeping is lazier."""

    def __init__(self):
        # no Condition yet: see the module docstring
        self._state = _base.PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []
        self._watch = {}  # "condition": the Condition, once somebody needs it

    @property
    def _condition(self):
        found = self._watch.get("condition")
        if found is None:
            # setdefault is atomic (it holds the dict's lock on a
            # free-threaded build, as the engine's check does): two
            # threads racing here share one Condition
            found = self._watch.setdefault("condition", threading.Condition())
        return found

    def result(self, timeout=None):
        # A finished future's state never changes again: no lock needed.
        if self._state == _FINISHED:
            if self._exception is not None:
                try:
                    raise self._exception
                finally:
                    self = None  # break the cycle through the traceback, as the stdlib does
            return self._result
        return super().result(timeout)

    result.__doc__ = _base.Future.result.__doc__
