"""Exceptions that cross a process boundary, reported the stdlib's way.

An exception raised in a worker arrives with ``__cause__`` set to a
``_RemoteTraceback`` holding the worker's traceback text (the worker side
is ``concurrent.futures.process._ExceptionWithTraceback``, used from C).
An argument that cannot be pickled fails its own item with the pickling
error, its ``__cause__`` carrying where the pickling failed, as the
stdlib's call-queue feeder does.  Items that get no answer at all (their
worker died, overran its task_timeout, or could not be started) get the
exceptions made here.
"""
import signal
import traceback
from concurrent.futures import TimeoutError
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

# sf_proc_lost in include/streamfutures.h, and the pool itself broken
# (SFPY_LOST_POOL_BROKEN in src/python/pool_ctx.h)
BROKEN, CRASHED, TIMED_OUT, UNAVAILABLE = 0, 1, 2, 3

POOL_BROKEN = "A child process terminated abruptly, the process pool is not usable anymore"

PENDING_LOST = (
    "A process in the process pool was terminated abruptly while the future was "
    "running or pending."
)


class WorkerCrashedError(BrokenProcessPool):
    """The worker process running this item died; the pool replaced it.

    ``exitcode`` is the process's exit code, or minus the signal that
    killed it (as ``multiprocessing.Process.exitcode``)."""

    def __init__(self, message, exitcode=None):
        super().__init__(message)
        self.exitcode = exitcode

    def __reduce__(self):
        return (type(self), (self.args[0], self.exitcode))


def describe_exit(status):
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "unknown signal"
        return "killed by signal %d (%s)" % (-status, name)
    return "exit code %d" % status


def lost_error(why, status, timeout):
    if why == CRASHED:
        return WorkerCrashedError(
            "A process in the process pool was terminated abruptly while the future "
            "was running: %s. The worker was replaced; other items go on."
            % describe_exit(status),
            status,
        )
    if why == TIMED_OUT:
        return TimeoutError(
            "the task ran longer than task_timeout=%g s; its worker process was "
            "stopped and replaced" % timeout
        )
    if why == BROKEN:
        return BrokenProcessPool(POOL_BROKEN)
    return BrokenProcessPool(PENDING_LOST)


class DeserializationError(BrokenProcessPool):
    """This item's task could not be unpickled in its worker, or its result
    (or exception) could not be unpickled here.  The original error,
    whatever it was (``SystemExit`` from a ``__reduce__`` included), is the
    ``__cause__``.  Only this item failed: the pool goes on.  The stdlib
    breaks the whole pool with a ``BrokenProcessPool`` here; code written
    for it still catches this."""


TASK_UNPICKLING_FAILED = (
    "A task has failed to un-serialize. Please ensure that the arguments of the "
    "function are all picklable."
)
RESULT_UNPICKLING_FAILED = (
    "A result has failed to un-serialize. Please ensure that the objects returned "
    "by the function are always picklable."
)


def unpickling_error(in_worker, cause):
    """The item's exception when unpickling raised ``cause`` (in the worker,
    or here); never ``cause`` itself, which may be a SystemExit."""
    error = DeserializationError(TASK_UNPICKLING_FAILED if in_worker else RESULT_UNPICKLING_FAILED)
    error.__cause__ = cause
    return error


def pickling_error(exc):
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    exc.__cause__ = _RemoteTraceback('\n"""\n{}"""'.format("".join(tb)))
    return exc
