"""ProcessPoolExecutor: the stdlib's class, on the streamfutures engine.

Each engine worker thread owns one worker process, started through the
executor's multiprocessing context (fork, forkserver or spawn).  A map's
items travel in batches sized by the engine from measured task times; the
worker answers item by item through shared memory, so results stream back
as they exist and a crash fails only the item that was running.  What is
here is the glue multiprocessing needs: starting a process with the right
file descriptors, and reaping it.
"""
import itertools
import multiprocessing as mp
import os
import signal
import threading
from concurrent.futures import _base
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import reduction

from . import _engine, _progress, _remote, _start_method, _unguarded_main
from . import thread as _thread
from ._remote import WorkerCrashedError
from ._unguarded_main import UnguardedMainError
from ._validate import DEFAULT, check_result_memory, is_default, map_arguments

#: map()'s default window is this many items per worker process: batches
#: of tiny tasks are then large enough to amortise a message, and two
#: batches per worker fit in the window so no worker waits for the next.
DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER = 4096

#: each worker's shared-memory result ring; larger results use the pipe
RING_BYTES = 1 << 20

_cpu_count = getattr(os, "process_cpu_count", os.cpu_count)

# Every descriptor the pools of this process made for their workers
# (pipes, result rings, pidfds, and multiprocessing's own pipes to each
# worker process), as fd -> (st_dev, st_ino), under _fds_lock.
# A worker started with fork inherits all of them and closes all but its
# own first: a sibling's pipe held open would hide that sibling's death and
# its parent's exit.  A descriptor is made and registered under the lock,
# and a fork happens under it, so no child inherits one unregistered.  The
# engine closes a worker's descriptors before reap() forgets them, so an
# entry is forgotten, or closed in a child, only while the number still
# names the same file: meanwhile it may have been reused.
_engine_fds = {}
_fds_lock = threading.Lock()


def _after_fork_in_child():
    # a fork made while the lock was held (our own starts are) left the
    # child's copy held by a thread that does not exist there
    global _fds_lock
    _fds_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _identity(fd):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _register(fds):
    """_fds_lock held: remember fds as the engine's; their identities."""
    identities = {fd: _identity(fd) for fd in fds}
    _engine_fds.update(identities)
    return identities


def _still_same(fd, identity):
    try:
        return _identity(fd) == identity
    except OSError:
        return False

#: pidfds (Linux >= 5.3) tell a worker's death even if another process held
#: its result pipe; False forces the fallback (end of file on that pipe).
USE_PIDFD = hasattr(os, "pidfd_open")
NO_PIDFD = -2  # SF_PROC_NO_PIDFD in include/streamfutures_proc.h

# In a worker process: the descriptors it serves on (task pipe, result
# pipe, result ring), all it needs of its parent's.
_serving_fds = None


def _open_pidfd(pid):
    """A pidfd for pid, registered, or NO_PIDFD (forced, or the kernel or a
    seccomp filter refuses it)."""
    if not USE_PIDFD:
        return NO_PIDFD
    with _fds_lock:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return NO_PIDFD
        _register((fd,))
        return fd


class _Fd:
    """A file descriptor passed to a worker process.

    With fork it is simply inherited.  With spawn and forkserver,
    multiprocessing duplicates it into the child while it starts it."""

    def __init__(self, fd):
        self.fd = fd

    def __reduce__(self):
        return (_Fd._rebuild, (reduction.DupFd(self.fd),))

    @staticmethod
    def _rebuild(duplicated):
        return _Fd(duplicated.detach())


def _forget_the_parents_forkserver():
    """A forked worker's copy of multiprocessing's forkserver state names
    the parent's forkserver, which is not this process's child: a default
    pool made in a task here would fail on it (ECHILD).  Forget it (and
    close our copy of its liveness pipe) so one of our own is started if
    a task needs it."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is None or getattr(server, "_forkserver_pid", None) is None:
        return  # spawn or forkserver: this process started afresh
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        try:
            os.close(alive)
        except OSError:
            pass
    preload = getattr(server, "_preload_modules", None)
    type(server).__init__(server)
    if preload is not None:
        server._preload_modules = preload


def _worker_main(task, result, ring, initializer, initargs):
    """A worker process: run the engine's serve loop until told to stop."""
    # Ctrl-C is the parent's to handle: it cancels what has not started and
    # stops the workers, which would otherwise all print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # what the tasks start ends with this worker (the engine kills the group)
    _engine.lead_process_group()
    _engine.die_with_parent(task.fd)  # no orphan when the parent is killed mid-task
    global _serving_fds
    _serving_fds = (task.fd, result.fd, ring.fd)
    for fd, identity in _engine_fds.items():
        if fd not in _serving_fds and _still_same(fd, identity):
            os.close(fd)
    _engine_fds.clear()
    _forget_the_parents_forkserver()
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            _base.LOGGER.critical("Exception in initializer:", exc_info=True)
            # no READY is sent: the parent sees this worker die unready and
            # marks the pool broken, as the stdlib does
            return
    _engine.serve(task.fd, result.fd, ring.fd)


def _multiprocessing_fds(process):
    """The parent's ends of multiprocessing's pipes to a started process:
    its sentinel, and what its Popen closes when it is finalized."""
    fds = {process.sentinel}
    finalizer = getattr(getattr(process, "_popen", None), "finalizer", None)
    closes = getattr(finalizer, "_args", None)
    if closes and isinstance(closes[0], (tuple, list)):
        fds.update(fd for fd in closes[0] if isinstance(fd, int))
    return fds


def _close_fds(identities):
    with _fds_lock:
        for fd in identities:
            del _engine_fds[fd]
            os.close(fd)


class _Spawner:
    """Starts and reaps the worker processes of one executor (called by the
    engine's worker threads, with the GIL)."""

    def __init__(self, mp_context, initializer, initargs):
        self.mp_context = mp_context
        self.forks = mp_context.get_start_method() == "fork"
        self.initializer = initializer
        self.initargs = initargs
        self.processes = {}
        self.lock = threading.Lock()  # guards processes, stopping, unguarded_main
        self.stopping = None  # terminate_workers()/kill_workers(): that operation's name
        self.unguarded_main = False  # a worker refused to start a pool while importing main

    def spawn(self):
        with self.lock:
            if self.stopping:
                return None
        with _fds_lock:  # made and registered before any fork can copy them
            task_r, task_w = os.pipe()
            result_r, result_w = os.pipe()
            try:
                ring = _engine.ring_create(RING_BYTES)
            except BaseException:
                for fd in (task_r, task_w, result_r, result_w):
                    os.close(fd)
                raise
            identities = _register((task_r, task_w, result_r, result_w, ring))
        try:
            process = self.mp_context.Process(
                target=_worker_main,
                args=(_Fd(task_r), _Fd(result_w), _Fd(ring), self.initializer, self.initargs),
            )
            if self.forks:
                with _fds_lock:  # the child's copy of _engine_fds is complete
                    process.start()
                    process._sf_mp_fds = _register(_multiprocessing_fds(process))
            else:
                process.start()  # the child gets only the descriptors passed
                with _fds_lock:
                    process._sf_mp_fds = _register(_multiprocessing_fds(process))
        except BaseException:
            _close_fds(identities)
            raise
        _close_fds({fd: identities[fd] for fd in (task_r, result_w)})  # the worker's ends
        pidfd = _open_pidfd(process.pid)
        # the engine owns task_w, result_r, ring and pidfd from here; reap
        # forgets them once the engine closed them
        process._sf_fds = {fd: identities[fd] for fd in (task_w, result_r, ring)}
        if pidfd >= 0:
            process._sf_fds[pidfd] = _engine_fds[pidfd]
        with self.lock:
            self.processes[process.pid] = process
            stopped_meanwhile = self.stopping  # signal_all's list was taken without it
        if stopped_meanwhile:
            self._signal(process, stopped_meanwhile)
        return process, process.pid, task_w, result_r, ring, pidfd

    def reap(self, process):
        process.join()
        exitcode = process.exitcode
        with self.lock:
            self.processes.pop(process.pid, None)
            if exitcode == _unguarded_main.UNGUARDED_MAIN_EXIT and not self.forks:
                self.unguarded_main = True
        with _fds_lock:  # the engine closed its own; close() closes multiprocessing's
            for fd, identity in {**process._sf_fds, **process._sf_mp_fds}.items():
                if _engine_fds.get(fd) == identity:
                    del _engine_fds[fd]
            process.close()
        return exitcode

    def lost_error(self, why, status, timeout):
        """The exception of items that got no answer, or of the broken pool."""
        if why in (_remote.BROKEN, _remote.UNAVAILABLE):
            with self.lock:
                unguarded = self.unguarded_main
            if unguarded:
                return _unguarded_main.UnguardedMainError(
                    _unguarded_main.UNGUARDED_MAIN_MESSAGE % self.mp_context.get_start_method())
        return _remote.lost_error(why, status, timeout)

    def stop_spawning(self, operation):
        """No worker is started or replaced from now on; one being started
        right now gets `operation` ("terminate", "kill") once it exists."""
        with self.lock:
            self.stopping = operation

    def signal_all(self, operation):
        with self.lock:
            processes = list(self.processes.values())
        for process in processes:
            self._signal(process, operation)

    @staticmethod
    def _signal(process, operation):
        try:
            if process.is_alive():
                getattr(process, operation)()
        except (ValueError, ProcessLookupError):
            pass


class ProcessPoolExecutor(_base.Executor):
    """Drop-in for concurrent.futures.ProcessPoolExecutor.

    map() returns at once, pulls its input in the background, keeps at most
    ``buffersize`` items acquired and not yet yielded, batches items
    adaptively (``chunksize=None``), and yields results in input order (or
    completion order with ``unordered=True``).  A worker that dies fails
    only the item it was running; it is replaced and the rest goes on."""

    _counter = itertools.count().__next__

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None, result_memory=_thread.DEFAULT_RESULT_MEMORY):
        _unguarded_main.refuse_while_bootstrapping()
        if max_workers is None:
            max_workers = _cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if mp_context is None:
            if max_tasks_per_child is not None:
                mp_context = mp.get_context("spawn")
            else:
                mp_context = _start_method.default_context()
        self._mp_context = mp_context
        self._safe_to_dynamically_spawn_children = (
            mp_context.get_start_method(allow_none=False) != "fork"
        )
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            elif max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context.get_start_method(allow_none=False) == "fork":
                raise ValueError(
                    "max_tasks_per_child is incompatible with"
                    " the 'fork' multiprocessing start method;"
                    " supply a different mp_context."
                )
        self._result_memory = check_result_memory(result_memory)
        self._max_workers = max_workers
        self._initializer = initializer
        self._initargs = initargs
        self._max_tasks_per_child = max_tasks_per_child
        self._spawner = _Spawner(mp_context, initializer, tuple(initargs))
        self._pool = _engine.Pool(
            max_workers, "ProcessPoolExecutor-%d" % self._counter(), None, (),
            spawn=self._spawner.spawn, reap=self._spawner.reap,
            lost_error=self._spawner.lost_error, max_tasks=max_tasks_per_child or 0,
        )
        with _thread._exit_lock:
            if not _thread._exiting:
                _thread._live_pools.add(self._pool)

    def submit(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, args, kwargs)

    submit.__doc__ = _base.Executor.submit.__doc__

    def submit_with_timeout(self, task_timeout, fn, /, *args, **kwargs):
        """submit(fn, *args, **kwargs), stopped after ``task_timeout`` seconds
        of running: its worker is replaced and the future raises
        TimeoutError."""
        return self._pool.submit(fn, args, kwargs, task_timeout)

    def map(self, fn, *iterables, timeout=None, chunksize=None, buffersize=DEFAULT,
            unordered=False, task_timeout=None, progress=None):
        """Return an iterator equivalent to map(fn, *iterables), lazily.

        ``chunksize=None`` batches items adaptively from measured task
        times (results still come back one by one as they finish); an
        integer sends exactly that many items per batch.  At most
        ``buffersize`` items are acquired and not yet yielded (default:
        4096 per worker, fewer while the results waiting for the consumer
        would exceed the executor's ``result_memory`` bytes, as
        sys.getsizeof counts them; None means no bound).  An exception from fn is
        raised at its item's position with the worker's traceback as its
        __cause__, and the iteration goes on.  ``task_timeout`` stops an
        item that runs longer (TimeoutError at its position).  Dropped
        before it started, it runs every item, or with an explicit integer
        ``buffersize`` only what it had acquired (Python 3.14's rule).
        ``progress=True`` (or a tqdm class or bar) shows a progress bar."""
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        per_worker = max(DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER, 2 * (chunksize or 0))
        def start():
            iterator, star, window, stop_when_dropped = map_arguments(
                iterables, buffersize, per_worker * self._max_workers)
            # the default window only shrinks, for the results' budget
            window_max = window if is_default(buffersize) else 0
            return self._pool.map(fn, iterator, star, window, bool(unordered), timeout,
                                  stop_when_dropped, chunksize or 0, task_timeout,
                                  window_max, self._result_memory)

        return _progress.map_with_progress(progress, fn, iterables, start)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._pool.shutdown(wait, cancel_futures, False)

    shutdown.__doc__ = _base.Executor.shutdown.__doc__

    def _force_shutdown(self, operation):
        self._spawner.stop_spawning(operation)
        self.shutdown(wait=False, cancel_futures=True)
        self._spawner.signal_all(operation)

    def terminate_workers(self):
        """Send SIGTERM to every worker process and shut the pool down: items
        running fail with WorkerCrashedError, pending ones are cancelled."""
        self._force_shutdown("terminate")

    def kill_workers(self):
        """As terminate_workers(), with SIGKILL."""
        self._force_shutdown("kill")

    @property
    def _processes(self):
        with self._spawner.lock:
            return dict(self._spawner.processes)

    @property
    def _broken(self):
        if self._pool.broken:
            return str(self._spawner.lost_error(_remote.BROKEN, 0, 0.0))
        return False


__all__ = ["BrokenProcessPool", "ProcessPoolExecutor", "UnguardedMainError", "WorkerCrashedError",
           "DEFAULT_PROCESS_BUFFERSIZE_PER_WORKER"]
