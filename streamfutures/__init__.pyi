from collections.abc import Callable, Iterable, Iterator
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
from concurrent.futures.thread import BrokenThreadPool as BrokenThreadPool
from typing import Any, ParamSpec, TypeVar

_T = TypeVar("_T")
_P = ParamSpec("_P")

DEFAULT_BUFFERSIZE_PER_WORKER: int
__version__: str

class MapIterator(Iterator[_T]):
    def __next__(self) -> _T: ...
    def close(self) -> None: ...
    def __enter__(self) -> MapIterator[_T]: ...
    def __exit__(self, *exc: object) -> bool: ...

class ThreadPoolExecutor(Executor):
    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = ...,
        unordered: bool = False,
    ) -> MapIterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

def as_completed(
    fs: Iterable[Future[_T]], timeout: float | None = None, *, buffersize: int | None = None
) -> Iterator[Future[_T]]: ...
