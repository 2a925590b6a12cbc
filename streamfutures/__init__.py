"""streamfutures: concurrent.futures executors whose map() is lazy, bounded
and non-blocking, on an engine written in C.

Change one import::

    import streamfutures as sf
    with sf.ThreadPoolExecutor(max_workers=8) as ex:
        for page in ex.map(download, read_urls(), buffersize=32):
            handle(page)
"""
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    InvalidStateError,
    TimeoutError,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.thread import BrokenThreadPool

from . import _engine
from ._as_completed import as_completed
from .fanout import DEFAULT_FANOUT_BUFFERSIZE, fanout, tee
from ._chunk_runner import RemoteError
from .foreign import DEFAULT_FOREIGN_BUFFERSIZE, map
from .process import DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER, ProcessPoolExecutor, UnguardedMainError
from ._remote import DeserializationError, WorkerCrashedError
from .stream import Stream
from .thread import (ADAPTIVE_WINDOW_MAX_AT_LEAST, ADAPTIVE_WINDOW_MAX_PER_WORKER,
                     ADAPTIVE_WINDOW_MIN_PER_WORKER, DEFAULT_BUFFERSIZE_PER_WORKER,
                     DEFAULT_RESULT_MEMORY, ThreadPoolExecutor)

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "BrokenExecutor",
    "BrokenProcessPool",
    "BrokenThreadPool",
    "CancelledError",
    "DEFAULT_BUFFERSIZE_PER_WORKER",
    "ADAPTIVE_WINDOW_MAX_AT_LEAST",
    "ADAPTIVE_WINDOW_MAX_PER_WORKER",
    "ADAPTIVE_WINDOW_MIN_PER_WORKER",
    "DEFAULT_RESULT_MEMORY",
    "DEFAULT_FANOUT_BUFFERSIZE",
    "DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER",
    "Executor",
    "Future",
    "InvalidStateError",
    "ProcessPoolExecutor",
    "Stream",
    "ThreadPoolExecutor",
    "TimeoutError",
    "UnguardedMainError",
    "WorkerCrashedError",
    "DeserializationError",
    "map",
    "DEFAULT_FOREIGN_BUFFERSIZE",
    "RemoteError",
    "as_completed",
    "fanout",
    "tee",
    "wait",
]
__version__ = _engine.version()  # the C library's: one version for both
