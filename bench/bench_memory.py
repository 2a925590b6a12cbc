"""Peak memory of `for _ in ex.map(f, range(5_000_000)): pass` with default
settings, above the interpreter's baseline (issue 2: <= 20 MiB; the stdlib
needs about 8 GiB).  Each side runs in a fresh interpreter and reports its
peak RSS (VmHWM) before and after the loop.  The stdlib is measured on
a smaller input and scaled linearly (its memory is one Future per item):
running it on 5 M items would need gigabytes here."""
import json
import os
import subprocess
import sys
import textwrap

from common import line

N = 5_000_000
STDLIB_N = 200_000

CHILD = """
import sys, json
import concurrent.futures as cf
import streamfutures as sf
from bench_tasks import identity as f, peak_mib
cls = {"stdlib": cf.ThreadPoolExecutor, "streamfutures": sf.ThreadPoolExecutor}[sys.argv[1]]
n = int(sys.argv[2])
with cls() as ex:
    for _ in ex.map(f, range(1000)):
        pass
    base = peak_mib()
    for _ in ex.map(f, range(n)):
        pass
    print(json.dumps({"baseline_mib": base, "peak_mib": peak_mib()}))
"""


def measure(which, n):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), which, str(n)],
                         check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__))).stdout
    return json.loads(out)


def main(n=N):
    ours = measure("streamfutures", n)
    std = measure("stdlib", STDLIB_N)
    ours_delta = ours["peak_mib"] - ours["baseline_mib"]
    std_delta = std["peak_mib"] - std["baseline_mib"]
    std_scaled = std_delta * n / STDLIB_N
    print("peak memory of a map over %d items, default settings:" % n)
    line("streamfutures: above baseline (must be <= 20 MiB)", "%.1f" % ours_delta, "MiB")
    line("stdlib: above baseline for %d items (measured)" % STDLIB_N, "%.1f" % std_delta, "MiB")
    line("stdlib: scaled to %d items" % n, "%.0f" % std_scaled, "MiB")
    return {"memory_mib_above_baseline": {"streamfutures": ours_delta,
                                          "stdlib_measured_%d" % STDLIB_N: std_delta,
                                          "stdlib_scaled_%d" % n: std_scaled}}


if __name__ == "__main__":
    main()
