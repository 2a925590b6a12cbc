"""submit() + result() per future, streamfutures vs the stdlib (issue 2:
>= 2x faster).  Two patterns: a batch (submit N, then take every result:
the throughput figure) and a round trip (submit, wait, repeat: mostly the
cost of waking a thread, reported for information)."""
import concurrent.futures as cf

import streamfutures as sf
from common import best_of, line

N = 50_000
ROUND_TRIPS = 5_000


def trivial(x):
    return x


def batch(ex, n):
    futures = [ex.submit(trivial, i) for i in range(n)]
    for f in futures:
        f.result()


def round_trips(ex, n):
    for i in range(n):
        ex.submit(trivial, i).result()


def main(n=N):
    results = {}
    with cf.ThreadPoolExecutor() as std, sf.ThreadPoolExecutor() as ours:
        for ex in (std, ours):
            batch(ex, 2000)  # start the threads
        t_std = best_of(3, lambda: batch(std, n))
        t_ours = best_of(3, lambda: batch(ours, n))
        r_std = best_of(2, lambda: round_trips(std, ROUND_TRIPS))
        r_ours = best_of(2, lambda: round_trips(ours, ROUND_TRIPS))
    us = lambda t, k: "%.2f" % (t / k * 1e6)
    print("submit() + result(), f trivial, default max_workers:")
    line("stdlib: submit %d, then result() each" % n, us(t_std, n), "us/future")
    line("streamfutures: submit %d, then result() each" % n, us(t_ours, n), "us/future")
    line("ratio stdlib / streamfutures (must be >= 2)", "%.1fx" % (t_std / t_ours))
    line("stdlib: submit + result round trip", us(r_std, ROUND_TRIPS), "us/future")
    line("streamfutures: submit + result round trip", us(r_ours, ROUND_TRIPS), "us/future")
    line("round-trip ratio stdlib / streamfutures", "%.1fx" % (r_std / r_ours))
    results["submit_us_per_future"] = {"stdlib": t_std / n * 1e6, "streamfutures": t_ours / n * 1e6}
    results["submit_ratio_vs_stdlib"] = t_std / t_ours
    results["round_trip_us"] = {"stdlib": r_std / ROUND_TRIPS * 1e6,
                                "streamfutures": r_ours / ROUND_TRIPS * 1e6}
    return results


if __name__ == "__main__":
    main()
