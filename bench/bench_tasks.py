"""Functions the process benchmarks run in worker processes (a module of
their own, so every start method can import them)."""
import os
import signal
import time


def identity(x):
    return x


def status_mib(field, pid="self"):
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in MiB, or None
    once the process is gone."""
    try:
        with open("/proc/%s/status" % pid) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_mib():
    """This process's peak resident memory (VmHWM: its own address space;
    ru_maxrss would carry the parent's peak across execve on Linux)."""
    return status_mib("VmHWM")


def seed004_numbers(n):
    """The integers the factorization benchmarks factor."""
    return [10**7 + 7919 * i for i in range(n)]


def factorize_naive(n):
    """Seed 004's naive factorization: the factors of n, smallest first."""
    if n < 2:
        return []
    factors = []
    p = 2
    while True:
        if n == 1:
            return factors
        r = n % p
        if r == 0:
            factors.append(p)
            n = n // p
        elif p * p >= n:
            factors.append(n)
            return factors
        elif p > 2:
            p += 2
        else:
            p += 1


def die_noting_time(path):
    """Write the monotonic clock (system-wide) to path, then die by SIGKILL."""
    with open(path, "w") as f:
        f.write(repr(time.monotonic()))
    os.kill(os.getpid(), signal.SIGKILL)


def pause_1ms(x):
    """An I/O-like stage: waits a millisecond, holding no lock."""
    time.sleep(0.001)
    return x


def work_25ms(x):
    """Seed 000's processor, scaled down from 2 s."""
    time.sleep(0.025)
    return x


CRASH_ITEM = 100


def crash_at_item_100(x):
    """A worker killed mid-map: item CRASH_ITEM SIGKILLs the process that
    runs it; every other item takes 5 ms."""
    if x == CRASH_ITEM:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.005)
    return x


class Blob:
    """A result that counts itself alive in the process that holds it: a
    worker process's result is made again by unpickling in the parent."""

    made, gone, alive_when_made = [], [], []

    def __init__(self, payload):
        self.payload = payload
        Blob.made.append(1)
        Blob.alive_when_made.append(len(Blob.made) - len(Blob.gone))

    def __reduce__(self):
        return (Blob, (self.payload,))

    def __sizeof__(self):
        return object.__sizeof__(self) + len(self.payload)

    def __del__(self):
        Blob.gone.append(1)

    @classmethod
    def reset(cls):
        cls.made, cls.gone, cls.alive_when_made = [], [], []


def blob_16mib(i):
    return Blob(bytes(16 * 1024 * 1024))
