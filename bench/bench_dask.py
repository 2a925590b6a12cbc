"""sf.map over executors that are not ours, against their own map.

Dask: a real LocalCluster (worker processes, one thread each), each
variant in a fresh client interpreter with its own cluster, so each peak
of client memory is its own:
  - trivial tasks, sf.map vs client.gather(client.map(...)): items/s and
    the client's peak memory growth (20 000 items: the headline; 200 000:
    client.map may not end within the deadline, and is then n/a);
  - 400 tasks of 20 ms: throughput against the cluster's capacity
    (workers x 50/s), and the first result (the median of 5 maps on
    warm workers) against two tasks' time plus one round trip; also the
    first sf.map's, on fresh workers, which import streamfutures once.
mpi4py: MPIPoolExecutor under ``mpiexec -n 3`` (two workers), 100 000
trivial tasks, sf.map at its defaults vs MPIPoolExecutor.map at
chunksize=1 and at its best chunksize.

    python bench/bench_dask.py [--deadline SECONDS]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.abspath(os.path.dirname(__file__)))

DASK_CHILD = textwrap.dedent("""
    import json, statistics, sys, time
    import streamfutures as sf
    from distributed import Client, LocalCluster
    from bench_tasks import peak_mib

    def inc(x):
        return x + 1

    def sleep_20ms(x):
        time.sleep(0.02)
        return x

    if __name__ == "__main__":
        which, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            trips = []
            for i in range(7):  # warm, then one task's round trip
                start = time.perf_counter()
                client.submit(inc, i, pure=False).result()
                trips.append(time.perf_counter() - start)
            cold_first = None
            if which == "sf.map-20ms":
                # the first sf.map on fresh workers: each imports streamfutures
                # once to run its first chunk; the measured run below is warm
                start = time.perf_counter()
                next(iter(sf.map(sleep_20ms, range(4), executor=client.get_executor())))
                cold_first = time.perf_counter() - start
                firsts = []
                for _ in range(5):  # warm: the median of 5 maps' first results
                    time.sleep(0.2)
                    start = time.perf_counter()
                    with sf.map(sleep_20ms, range(8), executor=client.get_executor()) as m:
                        next(m)
                        firsts.append(time.perf_counter() - start)
            base = peak_mib()
            start = time.perf_counter()
            first = None
            if which == "client.map":
                total = sum(client.gather(client.map(inc, range(n))))
            else:
                fn = sleep_20ms if which == "sf.map-20ms" else inc
                total = 0
                for result in sf.map(fn, range(n), executor=client.get_executor()):
                    if first is None:
                        first = time.perf_counter() - start
                    total += result
            took = time.perf_counter() - start
            if cold_first is not None:
                first = statistics.median(firsts)
            print(json.dumps({"total": total, "seconds": took, "first": first,
                              "cold_first": cold_first,
                              "round_trip": statistics.median(trips[1:]),
                              "peak_mib": peak_mib() - base}))
""")

MPI_CHILD = textwrap.dedent("""
    import json, time
    import streamfutures as sf
    from mpi4py.futures import MPIPoolExecutor

    def inc(x):
        return x + 1

    if __name__ == "__main__":
        n = 100_000
        with MPIPoolExecutor() as ex:
            sum(ex.map(inc, range(1000), chunksize=10))  # the workers are up
            def timed(run):
                start = time.perf_counter()
                assert sum(run()) == n * (n + 1) // 2
                return time.perf_counter() - start
            one = timed(lambda: ex.map(inc, range(n), chunksize=1))
            best = {}
            ours = []
            for _ in range(3):  # interleaved, best of 3
                for chunksize in (100, 1000, 10000, 50000):
                    took = timed(lambda: ex.map(inc, range(n), chunksize=chunksize))
                    best[chunksize] = min(best.get(chunksize, took), took)
                ours.append(timed(lambda: sf.map(inc, range(n), executor=ex)))
            print(json.dumps({"n": n, "workers": ex.num_workers, "chunksize_1": one,
                              "by_chunksize": best, "sf": min(ours)}))
""")


def child_path():
    # the package from the source tree, and bench_tasks beside this file
    return os.pathsep.join([ROOT, os.path.join(ROOT, "bench")] +
                           [p for p in [os.environ.get("PYTHONPATH")] if p])


def run_child(argv, deadline):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=deadline,
                             env=dict(os.environ, PYTHONPATH=child_path()))
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        sys.exit("%s failed:\n%s" % (argv[-3:], out.stderr[-4000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def dask(which, n, workers, deadline):
    return run_child([sys.executable, "-c", DASK_CHILD, which, str(n), str(workers)], deadline)


def mpiexec():
    """The venv's mpiexec (the mpich wheel), else one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


def main(deadline=150.0, workers=2):
    figures = {}
    print("Dask LocalCluster (%d worker processes x 1 thread), trivial tasks, each "
          "variant in a fresh client process" % workers)
    for n in (20_000, 200_000):
        got = {}
        for which in ("client.map", "sf.map"):
            r = got[which] = dask(which, n, workers, deadline)
            if r is None:
                print("  %7d  %-12s n/a: did not end within the %.0f s deadline"
                      % (n, which, deadline), flush=True)
            else:
                assert r["total"] == n * (n + 1) // 2
                print("  %7d  %-12s %9.0f items/s %8.1f MiB peak growth in the client"
                      % (n, which, n / r["seconds"], r["peak_mib"]), flush=True)
        if got["client.map"] and got["sf.map"]:
            speed = got["client.map"]["seconds"] / got["sf.map"]["seconds"]
            memory = got["sf.map"]["peak_mib"] / max(got["client.map"]["peak_mib"], 0.1)
            print("  %7d  sf.map: %.0fx client.map's throughput (target >= 50x), %.3fx its "
                  "memory growth (target <= 0.10x)" % (n, speed, memory))
            figures["dask_%d_speedup_vs_client_map" % n] = speed
            figures["dask_%d_memory_vs_client_map" % n] = memory
        figures["dask_%d_items_per_s" % n] = {
            k: (n / v["seconds"] if v else None) for k, v in got.items()}
    n = 400
    r = dask("sf.map-20ms", n, workers, deadline)
    capacity = workers * 50.0
    through = n / r["seconds"] / capacity
    first_bound = 2 * 0.02 + r["round_trip"]
    print("  400 tasks of 20 ms: %.1f items/s = %.2fx the cluster's capacity of %.0f/s "
          "(target >= 0.9x); first result after %.1f ms (target <= 2 x 20 ms + one round "
          "trip of %.1f ms = %.1f ms); the first sf.map on fresh workers: first result "
          "after %.1f ms (each worker imports streamfutures once)"
          % (n / r["seconds"], through, capacity, r["first"] * 1e3, r["round_trip"] * 1e3,
             first_bound * 1e3, r["cold_first"] * 1e3))
    figures["dask_20ms_vs_capacity"] = through
    figures["dask_20ms_first_result_ms"] = r["first"] * 1e3
    figures["dask_20ms_first_result_bound_ms"] = first_bound * 1e3
    figures["dask_20ms_cold_first_result_ms"] = r["cold_first"] * 1e3

    launcher = mpiexec()
    if launcher is None:
        print("mpi4py: n/a, no mpiexec (make venv installs the mpich wheel from PyPI)")
        return figures
    with tempfile.TemporaryDirectory() as scratch:  # a file: every rank imports main
        script = os.path.join(scratch, "bench_mpi_child.py")
        with open(script, "w") as out:
            out.write(MPI_CHILD)
        r = run_child([launcher, "-n", "3", sys.executable, "-m", "mpi4py.futures", script], 600)
    n = r["n"]
    best_chunk = min(r["by_chunksize"], key=r["by_chunksize"].get)
    best = r["by_chunksize"][best_chunk]
    print("mpi4py MPIPoolExecutor (mpiexec -n 3: %d workers), %d trivial tasks" % (r["workers"], n))
    print("  %-37s %9.0f items/s" % ("MPIPoolExecutor.map(chunksize=1)", n / r["chunksize_1"]))
    for chunksize, took in sorted(r["by_chunksize"].items(), key=lambda kv: int(kv[0])):
        print("  %-37s %9.0f items/s" % ("MPIPoolExecutor.map(chunksize=%s)" % chunksize, n / took))
    print("  %-37s %9.0f items/s = %.2fx its best, chunksize=%s (target >= 0.9x); %.0fx "
          "chunksize=1" % ("sf.map(executor=...) at its defaults", n / r["sf"], best / r["sf"],
                           best_chunk, r["chunksize_1"] / r["sf"]))
    figures["mpi_vs_best_chunksize"] = best / r["sf"]
    figures["mpi_vs_chunksize_1"] = r["chunksize_1"] / r["sf"]
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deadline", type=float, default=150.0,
                        help="seconds a Dask variant may run before it is n/a")
    main(parser.parse_args().deadline)
