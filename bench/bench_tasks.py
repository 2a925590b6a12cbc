"""Functions the process benchmarks run in worker processes (a module of
their own, so every start method can import them)."""
import os
import signal
import time


def identity(x):
    return x


def peak_mib():
    """This process's peak resident memory (VmHWM: its own address space;
    ru_maxrss would carry the parent's peak across execve on Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


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
