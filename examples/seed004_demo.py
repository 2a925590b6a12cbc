"""Seed 004 with processes: CPU-bound work over a pool, and a crashing worker.

1. Factorize integers with map(): the stdlib's default chunksize=1 pays an
   IPC round trip per item; a hand-tuned chunksize fixes that; streamfutures
   batches by itself (no chunksize) and still streams each result back.
2. One task segfaults: the stdlib's pool breaks and every item fails;
   streamfutures fails that item only, replaces the worker, and goes on.
   (The stdlib's map iterator also ends at its first exception.)
"""
import concurrent.futures as cf
import ctypes
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import streamfutures as sf


def factorize_naive(n: int) -> list[int]:
    if n < 2:
        return []
    factors: list[int] = []
    p = 2
    while True:
        if n == 1:
            return factors
        if n % p == 0:
            factors.append(p)
            n //= p
        elif p * p >= n:
            factors.append(n)
            return factors
        else:
            p += 1 if p == 2 else 2


def crash_on_three(i: int) -> int:
    if i == 3:
        ctypes.string_at(0)  # segmentation fault in this worker
    return i * i


def outcomes(results: Iterator[int]) -> list[int | Exception]:
    out: list[int | Exception] = []
    while True:
        try:
            out.append(next(results))
        except StopIteration:
            return out
        except Exception as e:  # each item's own error
            out.append(e)


def main() -> None:
    nums = [10**7 + 7919 * i for i in range(20000)]
    print("1. factorize %d integers on %d processes" % (len(nums), os.cpu_count() or 1))
    runs: list[tuple[str, Callable[..., Executor], dict[str, Any]]] = [
        ("concurrent.futures map, chunksize=1 (default)", cf.ProcessPoolExecutor, {}),
        ("concurrent.futures map, chunksize=100 (tuned)", cf.ProcessPoolExecutor, {"chunksize": 100}),
        ("streamfutures map, defaults", sf.ProcessPoolExecutor, {}),
    ]
    expected: list[list[int]] | None = None
    for label, cls, kwargs in runs:
        with cls() as ex:
            start = time.perf_counter()
            got = list(ex.map(factorize_naive, nums, **kwargs))
            took = time.perf_counter() - start
        expected = expected or got
        assert got == expected
        print("   %-48s %6.2f s" % (label, took))

    print("\n2. map(f, range(8)) where f segfaults on item 3")
    pools: tuple[tuple[str, Callable[..., Executor]], ...] = (
        ("concurrent.futures", cf.ProcessPoolExecutor), ("streamfutures", sf.ProcessPoolExecutor))
    for label, cls in pools:
        with cls(2) as ex:
            seen = outcomes(ex.map(crash_on_three, range(8)))
        shown = [type(g).__name__ if isinstance(g, Exception) else g for g in seen]
        print("   %-20s %s" % (label, shown))
        for g in seen:
            if isinstance(g, Exception):
                print("   %-20s   %s" % ("", g))
                break


if __name__ == "__main__":
    main()
