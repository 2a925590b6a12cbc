from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import (
    ALL_COMPLETED as ALL_COMPLETED,
    FIRST_COMPLETED as FIRST_COMPLETED,
    FIRST_EXCEPTION as FIRST_EXCEPTION,
    BrokenExecutor as BrokenExecutor,
    CancelledError as CancelledError,
    Executor as Executor,
    Future as Future,
    InvalidStateError as InvalidStateError,
    TimeoutError as TimeoutError,
    wait as wait,
)
from concurrent.futures.process import BrokenProcessPool as BrokenProcessPool
from concurrent.futures.thread import BrokenThreadPool as BrokenThreadPool
from multiprocessing.context import BaseContext
from typing import Any, ParamSpec, TypeVar, overload

_T = TypeVar("_T")
_P = ParamSpec("_P")
_U = TypeVar("_U")
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")
_R1 = TypeVar("_R1")
_R2 = TypeVar("_R2")
_R3 = TypeVar("_R3")
_R4 = TypeVar("_R4")

DEFAULT_BUFFERSIZE_PER_WORKER: int
ADAPTIVE_WINDOW_MAX_AT_LEAST: int
ADAPTIVE_WINDOW_MAX_PER_WORKER: int
ADAPTIVE_WINDOW_MIN_PER_WORKER: int
DEFAULT_RESULT_MEMORY: int
DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER: int
__version__: str

class AsyncResults(AsyncIterator[_T]):
    def __anext__(self) -> Awaitable[_T]: ...
    async def aclose(self) -> None: ...

class MapIterator(Iterator[_T]):
    def __next__(self) -> _T: ...
    def __aiter__(self) -> AsyncResults[_T]: ...
    def close(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def __enter__(self) -> MapIterator[_T]: ...
    def __exit__(self, *exc: object) -> bool: ...

class ThreadPoolExecutor(Executor):
    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        result_memory: int | None = ...,
    ) -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    @overload
    def map(
        self, fn: Callable[[_A], _T], iterable: Iterable[_A], /, *,
        timeout: float | None = None, chunksize: int = 1, buffersize: int | None = ...,
        unordered: bool = False, progress: Any = None,
    ) -> MapIterator[_T]: ...
    @overload
    def map(
        self, fn: Callable[[_A, _B], _T], iterable: Iterable[_A], iterable2: Iterable[_B], /, *,
        timeout: float | None = None, chunksize: int = 1, buffersize: int | None = ...,
        unordered: bool = False, progress: Any = None,
    ) -> MapIterator[_T]: ...
    @overload
    def map(
        self, fn: Callable[..., _T], *iterables: Iterable[Any],
        timeout: float | None = None, chunksize: int = 1, buffersize: int | None = ...,
        unordered: bool = False, progress: Any = None,
    ) -> MapIterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

class WorkerCrashedError(BrokenProcessPool):
    exitcode: int | None
    def __init__(self, message: str, exitcode: int | None = None) -> None: ...

class DeserializationError(BrokenProcessPool): ...

class UnguardedMainError(BrokenProcessPool): ...

class ProcessPoolExecutor(Executor):
    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        result_memory: int | None = ...,
    ) -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    def submit_with_timeout(
        self, task_timeout: float, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_T]: ...
    @overload
    def map(
        self, fn: Callable[[_A], _T], iterable: Iterable[_A], /, *,
        timeout: float | None = None, chunksize: int | None = None,
        buffersize: int | None = ..., unordered: bool = False, task_timeout: float | None = None,
        progress: Any = None,
    ) -> MapIterator[_T]: ...
    @overload
    def map(
        self, fn: Callable[[_A, _B], _T], iterable: Iterable[_A], iterable2: Iterable[_B], /, *,
        timeout: float | None = None, chunksize: int | None = None,
        buffersize: int | None = ..., unordered: bool = False, task_timeout: float | None = None,
        progress: Any = None,
    ) -> MapIterator[_T]: ...
    @overload
    def map(
        self, fn: Callable[..., _T], *iterables: Iterable[Any],
        timeout: float | None = None, chunksize: int | None = None,
        buffersize: int | None = ..., unordered: bool = False, task_timeout: float | None = None,
        progress: Any = None,
    ) -> MapIterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
    def terminate_workers(self) -> None: ...
    def kill_workers(self) -> None: ...

def as_completed(
    fs: Iterable[Future[_T]], timeout: float | None = None, *, buffersize: int | None = None
) -> Iterator[Future[_T]]: ...

DEFAULT_FANOUT_BUFFERSIZE: int
DEFAULT_FOREIGN_BUFFERSIZE: int

class RemoteError(Exception):
    type_name: str
    message: str
    traceback_text: str
    def __init__(self, type_name: str, message: str, traceback_text: str) -> None: ...

class ForeignMap(Iterator[_T]):
    def __next__(self) -> _T: ...
    def close(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def __enter__(self) -> ForeignMap[_T]: ...
    def __exit__(self, *exc: object) -> bool: ...

@overload
def map(fn: Callable[[_A], _T], iterable: Iterable[_A], /, *, executor: Executor,
        buffersize: int | None = ..., unordered: bool = False,
        timeout: float | None = None, chunksize: int | None = None,
        progress: Any = None) -> Iterator[_T]: ...
@overload
def map(fn: Callable[..., _T], *iterables: Iterable[Any], executor: Executor,
        buffersize: int | None = ..., unordered: bool = False,
        timeout: float | None = None, chunksize: int | None = None,
        progress: Any = None) -> Iterator[_T]: ...

class BroadcastReader(Iterator[_T]):
    def __next__(self) -> _T: ...
    def close(self) -> None: ...
    def __enter__(self) -> BroadcastReader[_T]: ...
    def __exit__(self, *exc: object) -> bool: ...

def tee(iterable: Iterable[_T], n: int = 2, *, buffersize: int | None = None) -> tuple[BroadcastReader[_T], ...]: ...
@overload
def fanout(iterable: Iterable[_T], c1: Callable[[Iterator[_T]], _R1], /, *,
           buffersize: int | None = ...) -> tuple[_R1]: ...
@overload
def fanout(iterable: Iterable[_T], c1: Callable[[Iterator[_T]], _R1],
           c2: Callable[[Iterator[_T]], _R2], /, *, buffersize: int | None = ...) -> tuple[_R1, _R2]: ...
@overload
def fanout(iterable: Iterable[_T], c1: Callable[[Iterator[_T]], _R1],
           c2: Callable[[Iterator[_T]], _R2], c3: Callable[[Iterator[_T]], _R3], /, *,
           buffersize: int | None = ...) -> tuple[_R1, _R2, _R3]: ...
@overload
def fanout(iterable: Iterable[_T], c1: Callable[[Iterator[_T]], _R1],
           c2: Callable[[Iterator[_T]], _R2], c3: Callable[[Iterator[_T]], _R3],
           c4: Callable[[Iterator[_T]], _R4], /, *,
           buffersize: int | None = ...) -> tuple[_R1, _R2, _R3, _R4]: ...
@overload
def fanout(iterable: Iterable[_T], *consumers: Callable[[Iterator[_T]], Any],
           buffersize: int | None = ...) -> tuple[Any, ...]: ...

class StreamStats(list[dict[str, Any]]): ...

class Stream(Iterable[_T]):
    def __init__(self, iterable: Iterable[_T], progress: Any = None) -> None: ...
    def map(
        self,
        fn: Callable[[_T], _U],
        *,
        workers: int | None = None,
        processes: bool | int = False,
        executor: Executor | None = None,
        buffersize: int | None = None,
        unordered: bool = False,
        progress: Any = None,
    ) -> Stream[_U]: ...
    def filter(self, predicate: Callable[[_T], object]) -> Stream[_T]: ...
    def flat_map(self, fn: Callable[[_T], Iterable[_U]]) -> Stream[_U]: ...
    def batch(self, n: int) -> Stream[tuple[_T, ...]]: ...
    def __iter__(self) -> Iterator[_T]: ...
    def __aiter__(self) -> AsyncResults[_T]: ...
    def fanout(self, *consumers: Callable[[Iterator[_T]], Any], buffersize: int | None = ...) -> tuple[Any, ...]: ...
    def close(self) -> None: ...
    def stats(self) -> StreamStats: ...
    def __enter__(self) -> Stream[_T]: ...
    def __exit__(self, *exc: object) -> bool: ...
