"""A process pool made while a worker imports the main module is refused.

With spawn and forkserver, each worker process imports the program's main
module before it runs anything.  A script without an
``if __name__ == "__main__":`` guard would then make a pool of its own in
every worker and do all its work again there, silently.  The stdlib refuses
at the process start, with multiprocessing's own RuntimeError; we refuse
when the pool is made, with the same error.

The parent learns why its worker died from the exit status: the refusal
marks this process, and if the error is what ends it (as it does unless the
script catches it), the process exits with UNGUARDED_MAIN_EXIT once the
traceback is printed.  A worker that died with that status before it was
ready breaks the pool with UnguardedMainError, which names the fix.
"""
import multiprocessing as mp
import os
import sys
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import spawn as _mp_spawn

#: a worker's exit status when it refused to make a pool while importing
#: the main module
UNGUARDED_MAIN_EXIT = 87

UNGUARDED_MAIN_MESSAGE = (
    "A worker process exited while importing the main module: it reached code that "
    "starts a process pool. Put that code under 'if __name__ == \"__main__\":' so "
    "that worker processes (started with %s) do not run it again."
)


class UnguardedMainError(BrokenProcessPool):
    """The worker processes could not start: importing the main module in
    them started another process pool, because the main module runs its
    work without an ``if __name__ == "__main__":`` guard."""


_refused = False


def _exit_after_traceback(exc_type, exc, tb, _previous=sys.excepthook):
    _previous(exc_type, exc, tb)
    if _refused and isinstance(exc, RuntimeError):
        try:
            sys.stderr.flush()
        finally:
            os._exit(UNGUARDED_MAIN_EXIT)


def refuse_while_bootstrapping():
    """Raise multiprocessing's RuntimeError if this process is a worker
    still importing the main module (its bootstrapping phase)."""
    global _refused
    if not getattr(mp.process.current_process(), "_inheriting", False):
        return
    _refused = True
    sys.excepthook = _exit_after_traceback
    _mp_spawn._check_not_importing_main()  # raises the stdlib's error and message
    raise RuntimeError("a process pool cannot start while the main module is being imported")
