"""Seed 003: sum and max of one iterator that can be read only once.

itertools.tee gives the right answer, but sum() exhausts one copy before
max() starts on the other, so tee keeps every item in memory.
sf.fanout reads the input once and runs sum and max at the same time, at
most buffersize items apart, so memory stays flat whatever the length.
Each variant runs in a fresh interpreter, which reports its time and its
peak memory above its own baseline.
"""
import json
import subprocess
import sys
import textwrap
from typing import Any

import streamfutures as sf

N = 5_000_000

CHILD = """
import itertools, json, sys, time
import streamfutures as sf

def numbers(n):
    for i in range(n):
        yield i

def peak_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

def with_tee(it):
    a, b = itertools.tee(it)
    return sum(a), max(b)

def with_fanout(it):
    return sf.fanout(it, sum, max)

run = {"tee": with_tee, "fanout": with_fanout}[sys.argv[1]]
n = int(sys.argv[2])
run(numbers(1000))
base = peak_mib()
start = time.perf_counter()
result = run(numbers(n))
took = time.perf_counter() - start
print(json.dumps({"result": result, "seconds": took, "peak_mib": peak_mib() - base}))
"""


def measure(which: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), which, str(N)],
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> None:
    print("seed 003: sum and max of one generator of %d numbers, read once" % N)
    print("  %-46s %10s %14s   %s" % ("", "time", "peak memory", "result"))
    results: dict[str, dict[str, Any]] = {}
    for which, label in (("tee", "itertools.tee, then sum(a) and max(b)"),
                         ("fanout", "sf.fanout(numbers, sum, max)")):
        got = results[which] = measure(which)
        print("  %-46s %8.2f s %10.1f MiB   %s" % (label, got["seconds"], got["peak_mib"],
                                                   tuple(got["result"])))
    assert results["tee"]["result"] == results["fanout"]["result"]
    print("  fanout holds at most %d items between the input and the slower consumer;"
          % sf.DEFAULT_FANOUT_BUFFERSIZE)
    print("  tee held all %d, because sum finished before max began." % N)


if __name__ == "__main__":
    main()
