"""Helpers for the benchmarks: timing with a warm-up, best of N runs, and
ratio formatting.  Every figure is a ratio measured in the same process
run, so machine noise affects both sides alike."""
import time


def best_of(runs, fn):
    """Best wall time of `runs` calls (the least disturbed run)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def line(label, value, unit=""):
    print("  %-58s %12s %s" % (label, value, unit))
