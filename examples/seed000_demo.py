"""Seed 000, scaled down: a 2-worker pool of slow producers feeding a
2-worker pool of slow processors, run with concurrent.futures and with
streamfutures.  The stdlib's map() collects the producer's whole output
before the first item is processed; streamfutures' map() pulls it in the
background, so the first item is collected after one produce + one process
step and the last one after the pipelined total.

    python examples/seed000_demo.py [--step SECONDS] [--items N] [--quiet]
"""
import argparse
import concurrent.futures
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

import streamfutures


def run(executor_class: Callable[..., Executor], items: int, step: float,
        verbose: bool) -> tuple[float, float]:
    start = time.monotonic()
    collected: list[float] = []

    def log(stage: str, i: int) -> float:
        at = time.monotonic() - start
        if verbose:  # one write per line: several threads log at once
            sys.stdout.write("  %-9s %2d after %5.2f s\n" % (stage, i, at))
            sys.stdout.flush()
        return at

    def slow_producer(i: int) -> int:
        time.sleep(step)
        return i

    def slow_processor(i: int) -> int:
        time.sleep(step)
        log("Processed", i)
        return i

    def producer_pool() -> Iterator[int]:
        with executor_class(max_workers=2) as produce:
            for i in produce.map(slow_producer, range(items)):
                log("Produced", i)
                yield i

    with executor_class(max_workers=2) as process:
        for i in process.map(slow_processor, producer_pool()):
            collected.append(log("Collected", i))
    return collected[0], collected[-1]


def ideal(items: int, step: float) -> tuple[float, float]:
    """First: one produce + one process step.  Last: the producers finish
    item N-1 after N/2 steps (2 workers), then one more process step."""
    return 2 * step, (items + 1) // 2 * step + step


def main(argv: Sequence[str] | None = None) -> tuple[list[tuple[str, float, float]], tuple[float, float]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--step", type=float, default=0.25, help="seconds per produce/process")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    best_first, best_last = ideal(args.items, args.step)
    rows: list[tuple[str, float, float]] = []
    executors: tuple[tuple[str, Callable[..., Executor]], ...] = (

        ("concurrent.futures", concurrent.futures.ThreadPoolExecutor),
        ("streamfutures", streamfutures.ThreadPoolExecutor),
    )
    for name, cls in executors:
        if not args.quiet:
            print("%s.ThreadPoolExecutor:" % name)
        first, last = run(cls, args.items, args.step, not args.quiet)
        rows.append((name, first, last))

    print()
    print("%-20s %16s %16s" % ("", "first collected", "last collected"))
    print("%-20s %14.2f s %14.2f s" % ("ideal (pipelined)", best_first, best_last))
    for name, first, last in rows:
        print("%-20s %14.2f s %14.2f s   (%.2fx / %.2fx the ideal)"
              % (name, first, last, first / best_first, last / best_last))
    return rows, (best_first, best_last)


if __name__ == "__main__":
    main()
