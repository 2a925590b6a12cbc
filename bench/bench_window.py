"""The thread map's adaptive default window (issue 20), as ratios from one
run:

1. trivial tasks, 300 000 items, 6 threads: defaults vs
   multiprocessing.pool.ThreadPool.imap at its best chunksize (1000 or
   10000) and vs the stdlib's thread map;
2. 16 MiB results, 4 workers, a consumer that pauses 3 s after its fifth:
   the peak count of live results, at defaults and with the old fixed
   window (buffersize=128, 32 per worker); the same on a process pool, at
   defaults and without its result budget (result_memory=None: the window
   of 4096 per worker alone);
3. seed 002 (a worker returning a list of floats, 3 workers; 20 jobs of
   10**6 floats where the seed has 50 of 10**7): peak RSS at defaults vs
   the stdlib's generator recipe from the seed, each in a fresh process;
4. 1 ms tasks (waits) on 2 workers over a generator: the most input items
   read ahead of the results taken, on threads and on processes (whose
   window starts at its largest, 8192 here): what the window's read-ahead
   rule leaves in memory when the work is the slow stage.

``--trivial-threads N`` measures figure 1 alone, at N threads (as on a
16-core machine).
"""
import concurrent.futures as cf
import itertools
import math
import os
import resource
import subprocess
import sys
import threading
import time
from multiprocessing.pool import ThreadPool

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import streamfutures as sf  # noqa: E402
from bench_tasks import Blob, blob_16mib, pause_1ms  # noqa: E402
from common import best_of, line  # noqa: E402

THREADS = 6
TRIVIAL_ITEMS = 300_000
STDLIB_ITEMS = 30_000
BIG = 16 * 1024 * 1024
SEED002_JOBS, SEED002_FLOATS = 20, 1_000_000
PROCESS_BIG_ITEMS = 60
READ_AHEAD_TAKEN = 1500


def identity(x):
    return x


def trivial():
    with sf.ThreadPoolExecutor(THREADS) as ours, ThreadPool(THREADS) as peer, \
            cf.ThreadPoolExecutor(THREADS) as std:
        best = {}
        variants = {
            "sf defaults": lambda: list(ours.map(identity, range(TRIVIAL_ITEMS))),
            "ThreadPool.imap chunksize=1000":
                lambda: list(peer.imap(identity, range(TRIVIAL_ITEMS), chunksize=1000)),
            "ThreadPool.imap chunksize=10000":
                lambda: list(peer.imap(identity, range(TRIVIAL_ITEMS), chunksize=10000)),
            "stdlib": lambda: list(std.map(identity, range(STDLIB_ITEMS))),
        }
        for _ in range(3):  # interleaved, best of 3
            for name, run in variants.items():
                best[name] = min(best.get(name, float("inf")), best_of(1, run))
    us = {name: t / (STDLIB_ITEMS if name == "stdlib" else TRIVIAL_ITEMS) * 1e6
          for name, t in best.items()}
    peer_best = min(us["ThreadPool.imap chunksize=1000"], us["ThreadPool.imap chunksize=10000"])
    for name, value in us.items():
        line("trivial tasks, %d threads, %s" % (THREADS, name), "%.3f" % value, "us/item")
    return {"window_trivial_us": us["sf defaults"],
            "window_trivial_vs_best_threadpool": us["sf defaults"] / peer_best,
            "window_trivial_stdlib_vs_sf": us["stdlib"] / us["sf defaults"]}


class Result:
    """16 MiB that count themselves while alive (list appends, no lock: a
    result may be finalized by the thread that made it, inside its code)."""

    made, gone, alive_when_made = [], [], []

    def __init__(self):
        self.payload = bytes(BIG)
        Result.made.append(1)
        Result.alive_when_made.append(len(Result.made) - len(Result.gone))

    def __sizeof__(self):
        return object.__sizeof__(self) + len(self.payload)

    def __del__(self):
        Result.gone.append(1)


def peak_live_results(**map_kwargs):
    Result.made, Result.gone, Result.alive_when_made = [], [], []
    with sf.ThreadPoolExecutor(4) as ex:
        for k, result in enumerate(ex.map(lambda i: Result(), range(150), **map_kwargs)):
            del result
            if k == 4:
                time.sleep(3)
    return max(Result.alive_when_made)


def peak_live_process_results(**executor_kwargs):
    Blob.reset()
    with sf.ProcessPoolExecutor(4, **executor_kwargs) as ex:
        for k, result in enumerate(ex.map(blob_16mib, range(PROCESS_BIG_ITEMS))):
            del result
            if k == 4:
                time.sleep(3)
    return max(Blob.alive_when_made)


def big_results():
    adaptive = peak_live_results()
    fixed = peak_live_results(buffersize=128)
    process = peak_live_process_results()
    process_unbudgeted = peak_live_process_results(result_memory=None)
    line("16 MiB results, pause after 5: peak live at defaults", adaptive, "results")
    line("the same with the old window (buffersize=128)", fixed, "results")
    line("the same on 4 processes (%d items), defaults" % PROCESS_BIG_ITEMS, process, "results")
    line("the same, no result budget (4096 per worker)", process_unbudgeted, "results")
    return {"window_big_peak_live": adaptive, "window_big_peak_live_fixed128": fixed,
            "window_big_peak_live_process": process,
            "window_big_peak_live_process_unbudgeted": process_unbudgeted}


def seed002_worker(n):
    x = []
    for i in range(SEED002_FLOATS):
        x.append(math.sin(i))
    return x


def seed002_child(variant):
    if variant == "stdlib":
        with cf.ThreadPoolExecutor(max_workers=3) as executor:
            jobs = (executor.submit(seed002_worker, n) for n in range(SEED002_JOBS))
            for future in cf.as_completed(jobs):
                _ = future.result()
    else:
        with sf.ThreadPoolExecutor(max_workers=3) as executor:
            for _ in executor.map(seed002_worker, range(SEED002_JOBS)):
                pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def seed002():
    rss = {}
    for variant in ("stdlib", "sf"):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--seed002", variant],
                             check=True, capture_output=True, text=True).stdout
        rss[variant] = int(out.split()[-1]) / 1024
    line("seed 002 peak RSS, stdlib generator recipe", "%.0f" % rss["stdlib"], "MiB")
    line("seed 002 peak RSS, sf map at defaults", "%.0f" % rss["sf"], "MiB")
    return {"window_seed002_rss_vs_stdlib": rss["sf"] / rss["stdlib"]}


def most_read_ahead(executor):
    pulled = [0]

    def source():
        for i in itertools.count():
            pulled[0] += 1
            yield i

    most = 0
    with executor(2) as ex:
        it = ex.map(pause_1ms, source())
        for taken in range(1, READ_AHEAD_TAKEN + 1):
            next(it)
            most = max(most, pulled[0] - taken)
        it.close()
    return most


def read_ahead():
    threads = most_read_ahead(sf.ThreadPoolExecutor)
    processes = most_read_ahead(sf.ProcessPoolExecutor)
    line("1 ms tasks, 2 threads: most input read ahead", threads, "items")
    line("the same on 2 processes (window of 8192)", processes, "items")
    return {"window_read_ahead_threads": threads, "window_read_ahead_processes": processes}


def main():
    print("adaptive window (bench_window.py): %d cores" % os.cpu_count())
    results = {}
    for part in (trivial, big_results, seed002, read_ahead):
        results.update(part())
    line("trivial: defaults vs ThreadPool.imap at its best (<= 1.10)",
         "%.2f" % results["window_trivial_vs_best_threadpool"], "x")
    line("trivial: stdlib thread map's cost vs ours (>= 30)",
         "%.1f" % results["window_trivial_stdlib_vs_sf"], "x")
    line("16 MiB results: peak live at defaults (<= 20)", results["window_big_peak_live"], "")
    line("seed 002: peak RSS vs the stdlib's recipe (<= 1.1)",
         "%.2f" % results["window_seed002_rss_vs_stdlib"], "x")
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seed002":
        seed002_child(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--trivial-threads":
        # the trivial-task figure alone, at another thread count (16 cores)
        THREADS = int(sys.argv[2])
        line("trivial: defaults vs ThreadPool.imap at its best",
             "%.2f" % trivial()["window_trivial_vs_best_threadpool"], "x")
    else:
        main()
