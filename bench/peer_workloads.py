"""The workloads of bench_peers.py, as they run inside one child process
per (workload, peer): the child opens the peer's pool, measures, and
prints one JSON line.  Lines starting "progress " before it tell the
parent how far a run got if it has to be killed (memory cap, deadline).

Every run checks its results (count, and a sum that does not depend on
order), so a peer that drops or duplicates items cannot look fast.
"""
import json
import math
import os
import sys
import time

from bench_tasks import (CRASH_ITEM, crash_at_item_100, factorize_naive, identity, pause_1ms,
                         seed004_numbers, status_mib, work_25ms)

THROUGHPUT_CHUNKSIZES = (1, 10, 100, 1000)
FACTORIZE_CHUNKSIZES = (10, 100, 1000)
FACTORIZE_ITEMS = 40_000
MEMORY_ITEMS = 5_000_000
PIPELINE_ITEMS = 2000
PIPELINE_STAGES = 3
SLOW_INPUT_ITEMS = 40
SLOW_INPUT_EVERY_S = 0.025
CRASH_ITEMS = 200


def progress(done):
    print("progress %d" % done, flush=True)


def start_workers(imap):
    """A small map first, so no measurement counts the pool's start."""
    checked_sum(imap(identity, range(200), 1), 200)


def checked_sum(results, n):
    """Consume results; they must be exactly 0..n-1 in some order."""
    count = total = 0
    for value in results:
        count += 1
        total += value
    if count != n or total != n * (n - 1) // 2:
        raise AssertionError("wrong results: %d items summing to %d" % (count, total))


def per_item_us(imap, chunksize, min_s=0.4, max_items=4_000_000):
    """Double the item count until a run lasts min_s, then best of that
    run and one more (per item)."""
    n = 1000
    while True:
        start = time.perf_counter()
        checked_sum(imap(identity, range(n), chunksize), n)
        elapsed = time.perf_counter() - start
        if elapsed >= min_s or n >= max_items:
            break
        n *= 2
    start = time.perf_counter()
    checked_sum(imap(identity, range(n), chunksize), n)
    return min(elapsed, time.perf_counter() - start) / n * 1e6, n


def sweep(peer, kind, candidates, measure):
    """measure(chunksize) for each chunk size the peer takes (None if it
    takes none); the best one, as {value, chunksize, tried}."""
    sizes = candidates if kind in peer.chunked else (None,)
    tried = {}
    for size in sizes:
        tried[str(size)] = measure(size)
    best = min(tried, key=lambda k: tried[k])
    return {"value": tried[best], "chunksize": None if best == "None" else int(best),
            "tried": tried}


def throughput(peer, kind, workers, chunksize):
    with peer.open(kind, workers) as imap:
        start_workers(imap)
        items = {}

        def measure(size):
            us, items[str(size)] = per_item_us(imap, size)
            return us
        out = sweep(peer, kind, THROUGHPUT_CHUNKSIZES, measure)
        out["items"] = items[str(out["chunksize"])]
        return out


def factorize(peer, kind, workers, chunksize):
    nums = seed004_numbers(FACTORIZE_ITEMS)
    # order-free check: the factors of each number multiply back to it
    expected = sum(nums)
    with peer.open(kind, workers) as imap:
        start_workers(imap)

        def measure(size):
            start = time.perf_counter()
            got = sum(math.prod(f) for f in imap(factorize_naive, nums, size))
            elapsed = time.perf_counter() - start
            if got != expected:
                raise AssertionError("wrong factorizations")
            return elapsed
        return sweep(peer, kind, FACTORIZE_CHUNKSIZES, measure)


def slow_input(ended):
    for i in range(SLOW_INPUT_ITEMS):
        time.sleep(SLOW_INPUT_EVERY_S)
        yield i
    ended.append(time.perf_counter())


def first_result(peer, kind, workers, chunksize):
    """Seed 000: the input yields an item every 25 ms; each item takes
    25 ms of work.  A lazy map has its first result after about 50 ms."""
    with peer.open(kind, workers) as imap:
        start_workers(imap)
        start = time.perf_counter()
        first = None
        count = 0
        ended = []
        for _ in imap(work_25ms, slow_input(ended), chunksize):
            if first is None:
                first = time.perf_counter() - start
                # an order of events, not a time: did the first result
                # come out while the input was still being read?
                before_input_end = not ended
            count += 1
        last = time.perf_counter() - start
        assert count == SLOW_INPUT_ITEMS, count
        return {"value": first, "last_s": last, "input_end_s": ended[0] - start,
                "first_before_input_end": before_input_end}


def memory(peer, kind, workers, chunksize):
    """Peak resident memory above the start of the map, over 5 M trivial
    items whose results are dropped as they come."""
    with peer.open(kind, workers) as imap:
        start_workers(imap)
        baseline = status_mib("VmRSS")
        print("baseline %f" % baseline, flush=True)
        start = time.perf_counter()
        count = total = 0
        for value in imap(identity, range(MEMORY_ITEMS), chunksize):
            count += 1
            total += value
            if not count & 0x3FFFF:
                progress(count)
        elapsed = time.perf_counter() - start
        assert count == MEMORY_ITEMS and total == MEMORY_ITEMS * (MEMORY_ITEMS - 1) // 2
        return {"value": status_mib("VmHWM") - baseline, "baseline_mib": baseline,
                "seconds": elapsed}


def pipeline(peer, kind, workers, chunksize):
    """Three stages, each an I/O-like 1 ms per item on its own `workers`;
    pipelined, they give `workers` items per ms; stage after stage, a
    third of that."""
    start = time.perf_counter()
    with peer.pipeline(kind, workers, [pause_1ms] * PIPELINE_STAGES, range(PIPELINE_ITEMS),
                       chunksize) as results:
        checked_sum(results, PIPELINE_ITEMS)
    elapsed = time.perf_counter() - start
    ideal = PIPELINE_ITEMS * 0.001 / workers
    return {"value": PIPELINE_ITEMS / elapsed, "seconds": elapsed,
            "vs_ideal": ideal / elapsed}


def crash(peer, kind, workers, chunksize):
    """A worker is SIGKILLed by item 100 of 200.  Iterate on after any
    exception (a peer whose iterator survives one keeps going) and count
    what came out.  The result is printed before the pool is closed, so a
    shutdown that hangs is told apart from a map that hangs."""
    results, errors = [], []
    after_error = 0
    with peer.open(kind, workers) as imap:
        iterator = imap(crash_at_item_100, range(CRASH_ITEMS), chunksize)
        while len(errors) <= CRASH_ITEMS:
            try:
                results.append(next(iterator))
                after_error += bool(errors)
            except StopIteration:
                break
            except Exception as exc:   # noqa: BLE001 -- recording which exception is the point
                errors.append(type(exc).__name__)
            progress(len(results))
        lost = sorted(set(range(CRASH_ITEMS)) - set(results) - {CRASH_ITEM})
        report = {"results": len(results), "errors": errors, "lost": len(lost),
                  "after_error": after_error, "value": None}
        print(json.dumps(report), flush=True)
    return report


WORKLOADS = {"threads": throughput, "processes": throughput, "factorize": factorize,
             "first_result": first_result, "memory": memory, "pipeline": pipeline,
             "crash": crash}


def run_child(workload, peer, kind, workers, chunksize):
    out = WORKLOADS[workload](peer, kind, workers, chunksize)
    out["kind"] = kind
    print(json.dumps(out), flush=True)
    # a peer may leave non-daemon threads behind; the parent has its answer
    sys.stdout.flush()
    os._exit(0)
