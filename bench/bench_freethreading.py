"""Free-threaded Python figures (issue 17), each a ratio measured in one
run on one interpreter, interleaved (best of 3):

1. seed 004's naive factorization on sf.ThreadPoolExecutor(cores): speedup
   over serial, vs the stdlib's ThreadPoolExecutor(cores), vs our own
   ProcessPoolExecutor(cores);
2. trivial tasks on threads: per-item cost vs the stdlib's thread map;
3. fanout(range(10**6), sum, max) vs itertools.tee read serially;
4. a 3-stage Stream of CPU-bound thread stages vs its slowest stage alone;
5. trivial tasks on a process pool (per-item cost); on a free-threaded
   build also with the GIL turned on in the same interpreter, as importing
   us did before we declared the module free-threading safe (each run in
   its own process, the two alternating).

``--beside PYTHON`` also runs the same figures on another interpreter (the
GIL build) and prints both columns: `make bench-ft` runs it on 3.13t beside
the GIL venv.  ``--json`` prints the figures as one JSON object.
"""
import argparse
import concurrent.futures as cf
import itertools
import json
import os
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import streamfutures as sf  # noqa: E402
from common import best_of  # noqa: E402
from bench_tasks import factorize_naive, identity, seed004_numbers  # noqa: E402

CORES = len(os.sched_getaffinity(0))
FACTOR_ITEMS = 30_000
TRIVIAL_ITEMS = 300_000
STDLIB_TRIVIAL_ITEMS = 30_000
FANOUT_ITEMS = 10**6
STAGE_ITEMS = 4_000


def interleaved(variants, rounds=3, warm=False):
    """Best time of each variant, the variants run in turn each round.

    ``warm``: each timed run comes right after an untimed one of the same
    variant.  For the short runs (trivial tasks, tens of ms): a core left
    idle by the variant before (the stdlib's map keeps one of two busy) runs
    slower for about as long on the machines measured here, and a short
    run would measure that instead of its per-item cost (3.13t, 2 cores:
    0.109-0.112 us cold, 0.083-0.090 warm; 3.11: 0.093, 0.080-0.090)."""
    best = {name: float("inf") for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            if warm:
                run()
            best[name] = min(best[name], best_of(1, run))
    return best


def factorization():
    nums = seed004_numbers(FACTOR_ITEMS)
    with cf.ThreadPoolExecutor(CORES) as std, sf.ThreadPoolExecutor(CORES) as ours, \
            sf.ProcessPoolExecutor(CORES) as procs:
        list(procs.map(identity, range(1000)))  # workers started before timing
        t = interleaved({
            "serial": lambda: [factorize_naive(n) for n in nums],
            "stdlib threads": lambda: list(std.map(factorize_naive, nums)),
            "sf threads": lambda: list(ours.map(factorize_naive, nums)),
            "sf processes": lambda: list(procs.map(factorize_naive, nums)),
        })
    return {"factor_speedup_threads": t["serial"] / t["sf threads"],
            "factor_speedup_stdlib_threads": t["serial"] / t["stdlib threads"],
            "factor_threads_vs_stdlib": t["stdlib threads"] / t["sf threads"],
            "factor_threads_vs_processes": t["sf processes"] / t["sf threads"]}


def trivial_threads():
    with cf.ThreadPoolExecutor(CORES) as std, sf.ThreadPoolExecutor(CORES) as ours:
        t = interleaved({
            "stdlib": lambda: list(std.map(identity, range(STDLIB_TRIVIAL_ITEMS))),
            "sf": lambda: list(ours.map(identity, range(TRIVIAL_ITEMS))),
        }, warm=True)
    std_us = t["stdlib"] / STDLIB_TRIVIAL_ITEMS * 1e6
    sf_us = t["sf"] / TRIVIAL_ITEMS * 1e6
    return {"trivial_threads_us": sf_us, "trivial_threads_vs_stdlib": std_us / sf_us}


def fanout_vs_tee():
    def serial_tee():
        a, b = itertools.tee(range(FANOUT_ITEMS))
        return sum(a), max(b)

    t = interleaved({"tee": serial_tee,
                     "fanout": lambda: sf.fanout(range(FANOUT_ITEMS), sum, max)})
    return {"fanout_time_vs_serial_tee": t["fanout"] / t["tee"]}


def light(n):
    factorize_naive(n)
    return n


def heavy(n):
    for k in range(3):
        factorize_naive(n + k)
    return n


def stream_of_cpu_stages():
    """light -> heavy -> str, each stage on its own threads: the pipeline
    runs its stages at once, so it should go as fast as heavy alone."""
    nums = seed004_numbers(STAGE_ITEMS)
    workers = max(1, CORES // 2)

    def pipeline():
        stream = sf.Stream(nums).map(light, workers=workers).map(heavy, workers=workers) \
            .map(str, workers=1)
        return list(stream)

    with sf.ThreadPoolExecutor(workers) as a, sf.ThreadPoolExecutor(workers) as b:
        t = interleaved({"light": lambda: list(a.map(light, nums)),
                         "heavy": lambda: list(b.map(heavy, nums)),
                         "pipeline": pipeline})
    slowest = max(t["light"], t["heavy"])
    return {"stream_vs_slowest_stage": slowest / t["pipeline"]}


def trivial_processes():
    n = 200_000
    with sf.ProcessPoolExecutor(CORES) as ex:
        list(ex.map(identity, range(1000)))
        t = interleaved({"sf": lambda: list(ex.map(identity, range(n)))}, rounds=2, warm=True)
    return {"trivial_processes_us": t["sf"] / n * 1e6}


def processes_with_and_without_the_gil(rounds=2):
    """trivial_processes on this interpreter with PYTHON_GIL=1 and =0, each
    run in a fresh process, alternating; the best of each."""
    best = {"1": float("inf"), "0": float("inf")}
    for _ in range(rounds):
        for gil in best:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--json",
                                  "--only", "trivial_processes"],
                                 env=dict(os.environ, PYTHON_GIL=gil), check=True,
                                 capture_output=True, text=True).stdout
            us = json.loads(out.strip().splitlines()[-1])["trivial_processes_us"]
            best[gil] = min(best[gil], us)
    return {"trivial_processes_gil_on_us": best["1"], "trivial_processes_gil_off_us": best["0"]}


PARTS = {f.__name__: f for f in (factorization, trivial_threads, fanout_vs_tee,
                                 stream_of_cpu_stages, trivial_processes)}


def measure(only=None):
    figures = {"python": sys.version.split()[0],
               "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
               "gil_enabled": sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True,
               "cores": CORES}
    for name, part in PARTS.items():
        if only in (None, name):
            figures.update(part())
    if only is None and figures["free_threaded"] and not figures["gil_enabled"]:
        figures.update(processes_with_and_without_the_gil())
    return figures


ROWS = [
    ("seed 004 on sf threads: speedup over serial", "factor_speedup_threads", "x"),
    ("  the stdlib's threads: speedup over serial", "factor_speedup_stdlib_threads", "x"),
    ("  sf threads vs the stdlib's threads", "factor_threads_vs_stdlib", "x"),
    ("  sf threads vs sf processes", "factor_threads_vs_processes", "x"),
    ("trivial tasks on sf threads (us/item)", "trivial_threads_us", ""),
    ("  vs the stdlib's thread map (lower cost)", "trivial_threads_vs_stdlib", "x"),
    ("fanout(sum, max) time vs serial itertools.tee", "fanout_time_vs_serial_tee", "x"),
    ("3 CPU-bound stages vs the slowest alone", "stream_vs_slowest_stage", "x"),
    ("trivial tasks on sf processes (us/item)", "trivial_processes_us", ""),
    ("  fresh processes, this build, GIL off (us/item)", "trivial_processes_gil_off_us", ""),
    ("  the same with PYTHON_GIL=1 (us/item)", "trivial_processes_gil_on_us", ""),
]


def report(columns):
    heads = ["%s%s" % (c["python"], "t, GIL off" if c["free_threaded"] and not c["gil_enabled"]
                       else " (GIL)") for c in columns]
    print("free-threading figures, %d cores" % CORES)
    print("  %-50s" % "" + "".join("%16s" % h for h in heads))
    for label, key, unit in ROWS:
        print("  %-50s" % label + "".join(
            "%16s" % ("%.2f%s" % (c[key], unit) if key in c else "-") for c in columns))
    ft = [c for c in columns if c["free_threaded"] and not c["gil_enabled"]]
    if ft:
        c = ft[0]
        print("  targets on the free-threaded build:")
        print("    speedup >= %.2f (0.95 x cores): %.2f" % (0.95 * CORES, c["factor_speedup_threads"]))
        print("    vs stdlib threads >= 1.15: %.2f" % c["factor_threads_vs_stdlib"])
        print("    vs sf processes >= 0.95: %.2f" % c["factor_threads_vs_processes"])
        print("    trivial vs stdlib >= 20: %.1f" % c["trivial_threads_vs_stdlib"])
        print("    fanout vs serial tee <= 1.0: %.2f" % c["fanout_time_vs_serial_tee"])
        print("    3-stage stream >= 0.9: %.2f" % c["stream_vs_slowest_stage"])
        print("    process trivial, GIL off <= GIL on: %.2f vs %.2f us"
              % (c["trivial_processes_gil_off_us"], c["trivial_processes_gil_on_us"]))


def main(beside=None):
    columns = [measure()]
    if beside:
        out = subprocess.run([beside, os.path.abspath(__file__), "--json"], check=True,
                             capture_output=True, text=True).stdout
        columns.append(json.loads(out.strip().splitlines()[-1]))
    report(columns)
    return {"freethreading": columns}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--beside", help="another interpreter to measure the same figures on")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=sorted(PARTS), help="with --json: one part's figures")
    opts = parser.parse_args()
    if opts.json:
        print(json.dumps(measure(opts.only)))
    else:
        main(opts.beside)
