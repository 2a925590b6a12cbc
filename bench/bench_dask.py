"""sf.map over a Dask distributed LocalCluster vs client.map, which makes
every future up front: peak memory in the client and throughput, side by
side, each variant in a fresh client interpreter (so each peak is its own).

    python bench/bench_dask.py [N [WORKERS]]   (default 200000 items, 2 workers)

Not part of make bench's default run on a 2-core machine: the scheduler
costs about 2 ms per task here, so N=200000 takes minutes per variant."""
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import json, sys, time
    import streamfutures as sf
    from distributed import Client, LocalCluster
    from bench_tasks import peak_mib

    def inc(x):
        return x + 1

    if __name__ == "__main__":
        which, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.submit(inc, 0).result()  # warm
            base = peak_mib()
            start = time.perf_counter()
            if which == "client.map":
                total = sum(client.gather(client.map(inc, range(n))))
            else:
                total = sum(sf.map(inc, range(n), executor=client.get_executor(),
                                   buffersize=1000))
            took = time.perf_counter() - start
            print(json.dumps({"total": total, "seconds": took,
                              "peak_mib": peak_mib() - base}))
""")


def measure(which, n, workers):
    # the package from the source tree, and bench_tasks beside this file
    path = os.pathsep.join([ROOT, os.path.join(ROOT, "bench")] +
                           [p for p in [os.environ.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(n), str(workers)],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=path))
    if out.returncode != 0:
        sys.exit("%s failed:\n%s" % (which, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(n=200_000, workers=2):
    print("Dask LocalCluster (%d worker processes): %d trivial tasks" % (workers, n))
    got = {}
    # each line as soon as its variant ends: a long run cut short still says something
    for which, label in (("client.map", "client.map (every future up front)"),
                         ("sf.map", "sf.map(..., executor=client.get_executor())")):
        r = got[which] = measure(which, n, workers)
        print("  %-48s %8.0f items/s %8.1f MiB peak in the client"
              % (label, n / r["seconds"], r["peak_mib"]), flush=True)
    assert got["client.map"]["total"] == got["sf.map"]["total"]
    return {"dask_items_per_s": {k: n / v["seconds"] for k, v in got.items()},
            "dask_client_peak_mib": {k: v["peak_mib"] for k, v in got.items()}}


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
