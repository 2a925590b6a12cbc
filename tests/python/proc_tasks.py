"""Tasks for the process-pool tests: a module of its own, so workers
started with spawn or forkserver can import them by name."""
import ctypes
import os
import signal
import sys
import threading
import time

_initialized = None


def square(x):
    return x * x


def add(a, b):
    return a + b


def call_with(*args, **kwargs):
    return args, kwargs


def pid(_=None):
    return os.getpid()


def echo(x):
    return x


class ListSubclass(list):
    """A list whose type must survive the trip (it is pickled, not flattened)."""


def raise_at_five(x):
    if x == 5:
        raise ValueError("bad item %d" % x)
    return x


def fail_badly(x):
    """What each crash kind does at item 3 (the kind travels with the item)."""
    kind, i = x
    if i == 3:
        if kind == "segfault":
            ctypes.string_at(0)
        elif kind == "exit":
            os._exit(3)
        elif kind == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "unpicklable_result":
            return threading.Lock()
        elif kind == "corrupt_ring":
            corrupt_result_ring()
    return i


def corrupt_result_ring():
    """Do what a worker corrupting its own memory may do: move the head of
    its result ring (src/core/proc_ring.c: a u64 at offset 0, the parent's
    tail at offset 64) far beyond the ring, once the parent has read every
    earlier result; ring the doorbell as a reply does (src/core/proc.c: u32
    length 0, u32 kind 0xfffffffd, u64 id), then wait to be killed."""
    import mmap
    import struct

    from streamfutures import process

    _, result_fd, ring_fd = process._serving_fds
    ring = mmap.mmap(ring_fd, 0)
    head = int.from_bytes(ring[0:8], "little")
    for _ in range(10000):
        if int.from_bytes(ring[64:72], "little") == head:
            break
        time.sleep(0.001)
    ring[0:8] = (head + (1 << 40)).to_bytes(8, "little")
    os.write(result_fd, struct.pack("<IIQ", 0, 0xFFFFFFFD, 0))
    time.sleep(60)


def sleep_at(x):
    i, seconds = x
    time.sleep(seconds)
    return i


def set_initialized(value):
    global _initialized
    _initialized = value


def initialized(_=None):
    return _initialized


def failing_initializer():
    raise RuntimeError("initializer failed on purpose")


def record(path_and_item):
    path, item = path_and_item
    with open(path, "a") as f:
        f.write("%d\n" % item)
    time.sleep(0.01)
    return item


class ExitsWhenUnpickled:
    """Pickles fine; unpickling it calls sys.exit(how) for an int, raises
    KeyboardInterrupt for "interrupt", ValueError for anything else, as a
    hostile or broken __reduce__ may."""

    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        if isinstance(self.how, int):
            return (sys.exit, (self.how,))
        if self.how == "interrupt":
            return (raise_keyboard_interrupt, ())
        return (int, ("not a number",))


def raise_keyboard_interrupt():
    raise KeyboardInterrupt


def exits_when_unpickled(how):
    return ExitsWhenUnpickled(how)


def nested_pools(n):
    """A task that runs its own thread pool and process pool inside a worker
    (with fork, the worker was forked from an engine thread)."""
    import streamfutures as sf

    with sf.ThreadPoolExecutor(2) as threads:
        total = sum(threads.map(abs, range(-n, 0)))
    with sf.ProcessPoolExecutor(1) as processes:
        total += processes.submit(abs, -n).result()
    return total


def pid_when_all_run(directory_and_count):
    """This worker's pid, once `count` items run at once: each leaves a file
    in `directory` and waits for the others' (up to 60 s), so that items
    given together hold one worker each, however long the workers take to
    start."""
    directory, count = directory_and_count
    mark = os.path.join(directory, "%d-%d" % (os.getpid(), threading.get_ident()))
    open(mark, "w").close()
    deadline = time.monotonic() + 60
    while len(os.listdir(directory)) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()


def note_signals_in(path):
    """An initializer: SIGUSR1 appends a line to path."""
    def handler(signo, frame):
        with open(path, "a") as f:
            f.write("signal\n")

    signal.signal(signal.SIGUSR1, handler)


PARENT_MARK = None  # set at run time by a test's parent process


def how_started(_=None):
    """How this worker was started, as seen from inside: fork copies the
    parent's run-time state (PARENT_MARK) and keeps it as the parent;
    spawn starts afresh as its child; forkserver's children are the
    forkserver's."""
    return os.getppid(), PARENT_MARK


def start_method_seen(parent_pid, ppid, mark):
    if mark is not None:
        return "fork"
    return "spawn" if ppid == parent_pid else "forkserver"


def start_a_descendant(pid_file, then="return"):
    """Start a long `sleep` (and it a child of its own), write their pids
    to pid_file, then return, hang, or crash this worker."""
    import subprocess

    child = subprocess.Popen(["sh", "-c", "sleep 1000 & echo $!; wait"],
                             stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    with open(pid_file + ".tmp", "w") as f:
        f.write("%d %d\n" % (child.pid, grandchild))
    os.rename(pid_file + ".tmp", pid_file)
    if then == "hang":
        time.sleep(1000)
    elif then == "crash":
        os._exit(3)
    return child.pid


class UnpicklableError(Exception):
    """An exception that cannot cross a process boundary (it holds a lock)."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def raise_unpicklable_at_two(x):
    if x == 2:
        raise UnpicklableError("item two holds a lock")
    return x


def exit_at_seven(x):
    """The worker process dies (os._exit) at item 7."""
    if x == 7:
        os._exit(7)
    return x


def sleep_100ms(x):
    time.sleep(0.1)
    return x


def sleep_1ms(x):
    time.sleep(0.001)
    return x


def reported_outcomes(results):
    """Every outcome of a map to its end, an exception as "Type: message":
    what a child interpreter's checks report as JSON."""
    got = []
    while True:
        try:
            got.append(next(results))
        except StopIteration:
            return got
        except Exception as e:
            got.append("%s: %s" % (type(e).__name__, e))


class ClaimsSize:
    """A result that claims `size` bytes (its __sizeof__) without taking
    them, and counts how many of its kind the process holding it made:
    a worker's result is made again in the parent, by unpickling."""

    made = []

    def __init__(self, size):
        self.size = size
        ClaimsSize.made.append(1)

    def __reduce__(self):
        return (ClaimsSize, (self.size,))

    def __sizeof__(self):
        return self.size


def claims_size(size):
    return ClaimsSize(size)


class CountsWhenFreed:
    """A mixin for a builtin type's subclass that counts its instances as
    they are freed (class attributes count and lock); it adds no __dict__,
    so making one runs no Python code."""
    __slots__ = ()

    def __del__(self):
        counted = type(self)
        with counted.lock:
            counted.count += 1


class Freed(CountsWhenFreed, float):
    """A float, made by float's __new__ in C, freed by whichever thread
    drops it last."""
    __slots__ = ()
    count = 0
    lock = threading.Lock()


def make_freed(x):
    return Freed(x)


class FreedBlob(CountsWhenFreed, bytearray):
    """A bytearray of the given size (zeros, made in C)."""
    __slots__ = ()
    count = 0
    lock = threading.Lock()
