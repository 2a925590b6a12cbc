"""Issue 8's figures: fan-out (seed 003) against tee and the seed's other
approaches, fan-out's peak memory, pipeline throughput against the
bottleneck stage, a Stream's per-item cost against chained ex.map, and a
thread -> process -> thread pipeline against the process stage alone.
Every figure is a ratio from this one run."""
import asyncio
import concurrent.futures as cf
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

from bench_tasks import factorize_naive, seed004_numbers
from common import best_of, line

import streamfutures as sf

N = 10**6


# ---- seed 003's approaches, re-implemented as the seed describes them ----

def tee_serial(it):
    a, b = itertools.tee(it)
    return sum(a), max(b)


def threads_barrier(it):
    stop = object()
    next_val = None
    consumed = threading.Barrier(2 + 1)
    val_id = 0
    got_val = threading.Condition()

    def send(val):
        nonlocal next_val, val_id
        consumed.wait()
        with got_val:
            next_val = val
            val_id += 1
            got_val.notify_all()

    def consume():
        last_val_id = -1
        while True:
            consumed.wait()
            with got_val:
                got_val.wait_for(lambda: val_id != last_val_id)
            if next_val is stop:
                return
            yield next_val
            last_val_id = val_id

    with cf.ThreadPoolExecutor(2) as executor:
        s = executor.submit(lambda: sum(consume()))
        m = executor.submit(lambda: max(consume()))
        for elem in it:
            send(elem)
        send(stop)
    return s.result(), m.result()


def greenlets(it):
    import greenlet

    stop = object()
    consumers = None

    def consume():
        g_produce = greenlet.getcurrent().parent
        while True:
            val = g_produce.switch()
            if val is stop:
                return
            yield val

    sum_result, max_result = [], []
    gsum = greenlet.greenlet(lambda: sum_result.append(sum(consume())))
    gsum.switch()
    gmax = greenlet.greenlet(lambda: max_result.append(max(consume())))
    gmax.switch()
    consumers = (gsum, gmax)
    for elem in it:
        for g in consumers:
            g.switch(elem)
    for g in consumers:
        g.switch(stop)
    return sum_result[0], max_result[0]


def asyncio_queues(it):
    async def asum(ait):
        total = 0
        async for x in ait:
            total += x
        return total

    async def amax(ait):
        best = None
        async for x in ait:
            best = x if best is None or x > best else best
        return best

    async def main():
        queues = [asyncio.Queue(1), asyncio.Queue(1)]
        stop = object()

        async def reader(q):
            while True:
                x = await q.get()
                if x is stop:
                    return
                yield x

        async def produce():
            for x in it:
                for q in queues:
                    await q.put(x)
            for q in queues:
                await q.put(stop)

        results = await asyncio.gather(asum(reader(queues[0])), amax(reader(queues[1])),
                                       produce())
        return results[0], results[1]

    return asyncio.run(main())


def fanout_ours(it):
    return sf.fanout(it, sum, max)


def per_item_us(fn, n, runs):
    expected = (sum(range(n)), n - 1)
    assert fn(iter(range(n))) == expected
    return best_of(runs, lambda: fn(iter(range(n)))) / n * 1e6


def fanout_figures():
    out = {}
    tee_s = best_of(5, lambda: tee_serial(iter(range(N))))
    ours_s = best_of(5, lambda: fanout_ours(iter(range(N))))
    out["fanout_vs_tee"] = ours_s / tee_s
    print("seed 003: sum and max of one iterator of %d items" % N)
    line("itertools.tee, serial (buffers everything)", "%.3f" % tee_s, "s")
    line("sf.fanout (bounded, consumers on threads)", "%.3f" % ours_s, "s")
    line("fanout / tee time (must be <= 3)", "%.2f" % out["fanout_vs_tee"], "x")
    ours_us = ours_s / N * 1e6
    approaches = {"tee (serial)": tee_s / N * 1e6, "sf.fanout": ours_us}
    # the slow ones on fewer items: per-item cost is flat in n
    approaches["threads + barrier"] = per_item_us(threads_barrier, 5000, 2)
    try:
        approaches["greenlet"] = per_item_us(greenlets, 200_000, 3)
    except ImportError:
        approaches["greenlet"] = None
    approaches["asyncio"] = per_item_us(asyncio_queues, 50_000, 3)
    print("  per item, side by side:")
    for name, us in approaches.items():
        if us is None:
            line("  " + name, "n/a", "(greenlet not installed)")
        else:
            line("  " + name, "%.3f" % us, "us  (%.1fx ours)" % (us / ours_us))
    out["seed003_us_per_item"] = approaches
    return out


MEMORY_CHILD = """
import itertools, json, sys
import streamfutures as sf
from bench_tasks import peak_mib
n = int(sys.argv[2])
sf.fanout(range(1000), sum, max)
a, b = itertools.tee(range(1000)); sum(a); max(b)
base = peak_mib()
if sys.argv[1] == "fanout":
    result = sf.fanout(iter(range(n)), sum, max)
else:
    a, b = itertools.tee(iter(range(n)))
    result = (sum(a), max(b))
assert result == (n * (n - 1) // 2, n - 1)
print(json.dumps({"baseline_mib": base, "peak_mib": peak_mib()}))
"""


def peak_above_baseline(which, n):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(MEMORY_CHILD), which, str(n)],
                         check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__))).stdout
    got = json.loads(out)
    return got["peak_mib"] - got["baseline_mib"]


def memory_figures():
    n = 5_000_000
    ours = peak_above_baseline("fanout", n)
    tee = peak_above_baseline("tee", n)
    print("peak memory of sum and max over %d items, above the baseline" % n)
    line("sf.fanout (must be <= 20 MiB)", "%.1f" % ours, "MiB")
    line("itertools.tee (holds them all)", "%.1f" % tee, "MiB")
    return {"fanout_peak_mib": ours, "tee_peak_mib": tee}


def sleeper(seconds):
    def stage(x):
        time.sleep(seconds)
        return x
    stage.__name__ = "sleep_%gms" % (seconds * 1000)
    return stage


def pipeline_figures():
    # capacities: 4 workers / 10 ms = 400/s; 2 / 10 ms = 200/s; 8 / 10 ms = 800/s
    items = 400
    stream = (sf.Stream(range(items))
              .map(sleeper(0.010), workers=4)
              .map(sleeper(0.010), workers=2)
              .map(sleeper(0.010), workers=8))
    start = time.perf_counter()
    assert list(stream) == list(range(items))
    took = time.perf_counter() - start
    rate = items / took
    ratio = rate / 200.0
    print("3-stage pipeline of sleeping stages (400/s, 200/s, 800/s), %d items" % items)
    line("throughput", "%.0f" % rate, "items/s")
    line("vs the bottleneck's 200/s (must be >= 0.9)", "%.2f" % ratio, "x")
    print(textwrap.indent(str(stream.stats()), "    "))
    return {"pipeline_vs_bottleneck": ratio}


def inc(x):
    return x + 1


def per_item_cost_figures():
    n = 200_000

    def chained():
        with sf.ThreadPoolExecutor(2) as a, sf.ThreadPoolExecutor(2) as b, \
                sf.ThreadPoolExecutor(2) as c:
            for _ in c.map(inc, b.map(inc, a.map(inc, range(n)))):
                pass

    def stream():
        for _ in sf.Stream(range(n)).map(inc, workers=2).map(inc, workers=2).map(
                inc, workers=2):
            pass

    chained_s = best_of(3, chained)
    stream_s = best_of(3, stream)
    ratio = stream_s / chained_s
    print("3 trivial stages over %d items" % n)
    line("three chained ex.map", "%.3f" % (chained_s / n * 1e6), "us/item")
    line("sf.Stream", "%.3f" % (stream_s / n * 1e6), "us/item")
    line("Stream / chained (must be <= 1.2)", "%.2f" % ratio, "x")
    return {"stream_vs_chained": ratio}


def fetch(n):  # the I/O stage before: a short wait per item
    time.sleep(0.0001)
    return n


def store(factors):  # the I/O stage after
    time.sleep(0.0001)
    return len(factors)


def mixed_run(nums, workers):
    def process_alone():
        with sf.ProcessPoolExecutor(workers) as ex:
            return sum(len(f) for f in ex.map(factorize_naive, nums))

    def pipeline():
        stream = (sf.Stream(nums).map(fetch, workers=16)
                  .map(factorize_naive, processes=workers)
                  .map(store, workers=16))
        return sum(stream)

    assert process_alone() == pipeline()
    alone = piped = float("inf")
    for _ in range(3):  # interleaved: this host's speed drifts by 20% over seconds
        alone = min(alone, best_of(1, process_alone))
        piped = min(piped, best_of(1, pipeline))
    return alone, piped


def mixed_figures():
    nums = seed004_numbers(20000)
    cpus = os.cpu_count() or 1
    print("thread (I/O) -> process (seed 004's factorization) -> thread (I/O), %d items"
          % len(nums))
    out = {}
    # the I/O stages run in this process: with a process per core they take
    # their CPU time from the workers; with one core left to them, they do not
    for workers, key in ((max(1, cpus - 1), "mixed_pipeline_vs_process_alone"),
                         (cpus, "mixed_pipeline_vs_process_alone_all_cores")):
        alone, piped = mixed_run(nums, workers)
        out[key] = alone / piped
        line("%d processes: process stage alone / 3-stage pipeline" % workers,
             "%.2f / %.2f" % (alone, piped), "s")
        line("  throughput vs the process stage alone%s" % (
            " (must be >= 0.9)" if workers < cpus or cpus == 1 else ""),
            "%.2f" % out[key], "x")
    return out


def main():
    results = {}
    for figures in (fanout_figures, memory_figures, pipeline_figures, per_item_cost_figures,
                    mixed_figures):
        results.update(figures())
        print()
    return results


if __name__ == "__main__":
    main()
