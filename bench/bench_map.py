"""Per-item cost of map(f, range(N)) with a trivial f: streamfutures vs
concurrent.futures.ThreadPoolExecutor.map vs builtin map (issue 2: >= 10x
lower than the stdlib)."""
import concurrent.futures as cf

import streamfutures as sf
from common import best_of, line

N = 200_000


def trivial(x):
    return x


def drain(iterator):
    for _ in iterator:
        pass


def main(n=N):
    with cf.ThreadPoolExecutor() as std, sf.ThreadPoolExecutor() as ours:
        drain(std.map(trivial, range(1000)))  # start the threads of both
        drain(ours.map(trivial, range(1000)))
        t_std = best_of(2, lambda: drain(std.map(trivial, range(n))))
        t_ours = best_of(3, lambda: drain(ours.map(trivial, range(n))))
        t_ours_unordered = best_of(3, lambda: drain(ours.map(trivial, range(n), unordered=True)))
        workers = ours._max_workers
    t_builtin = best_of(3, lambda: drain(map(trivial, range(n))))
    us = lambda t: "%.3f" % (t / n * 1e6)
    print("map(f, range(%d)), f trivial, default settings (%d workers):" % (n, workers))
    line("builtin map", us(t_builtin), "us/item")
    line("concurrent.futures.ThreadPoolExecutor.map", us(t_std), "us/item")
    line("streamfutures.ThreadPoolExecutor.map", us(t_ours), "us/item")
    line("streamfutures ... map(unordered=True)", us(t_ours_unordered), "us/item")
    line("ratio stdlib / streamfutures (must be >= 10)", "%.1fx" % (t_std / t_ours))
    return {
        "map_us_per_item": {"builtin": t_builtin / n * 1e6, "stdlib": t_std / n * 1e6,
                            "streamfutures": t_ours / n * 1e6,
                            "streamfutures_unordered": t_ours_unordered / n * 1e6},
        "map_ratio_vs_stdlib": t_std / t_ours,
    }


if __name__ == "__main__":
    main()
