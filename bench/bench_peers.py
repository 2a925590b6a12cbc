"""streamfutures against its peers, side by side, in one run (issue 10,
part 5): joblib, mpire, pebble, loky, multiprocessing.Pool.imap, pypeln,
streamable and concurrent.futures, on the same workloads:

  threads       trivial-task throughput on 4 threads (us per item)
  processes     trivial-task throughput on one process per core
  factorize     seed 004's naive factorization, speedup over serial
  first_result  seed 000: time to the first result with a slow input
  memory        peak memory over 5 M items (results dropped as they come)
  pipeline      3 I/O-like stages, items per second
  crash         a worker SIGKILLed mid-map: who finishes, raises or hangs

Every (workload, peer) runs in a fresh child process with a deadline (and,
for memory, a cap on resident memory), killed with its process group when
it runs over, so a peer that hangs is reported as hanging and the run goes
on.  A peer that cannot run a workload gets "n/a" and the reason.  Chunked
peers are run at several chunk sizes and keep their best.

Writes bench/results/peers.json, peers.md (the table) and peers*.png.

  python bench/bench_peers.py [--only W1,W2] [--peers P1,P2] [--out DIR]
                              [--deadline-scale F] [--no-plots] [--merge JSON]
  python bench/bench_peers.py --redraw JSON   (table and plots only)
"""
import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]     # the workloads, and the package from the source tree

import peer_report  # noqa: E402
import peer_workloads  # noqa: E402
from bench_tasks import factorize_naive, seed004_numbers, status_mib  # noqa: E402
from peers import BY_NAME, PEERS  # noqa: E402

CPUS = len(os.sched_getaffinity(0))
THREADS = 4

# workload -> (kind, may it fall back to the other kind, deadline in s)
WORKLOADS = {
    "threads": ("threads", False, 120),
    "processes": ("processes", False, 120),
    "factorize": ("processes", False, 180),
    "first_result": ("threads", True, 30),
    "memory": ("threads", True, 60),
    "pipeline": ("threads", True, 60),
    "crash": ("processes", False, 30),
}
MEMORY_CAP_MIB = 2048


def child_env():
    path = [HERE, ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), PYTHONUNBUFFERED="1")


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(workload, peer, kind, workers, chunksize, deadline):
    """Run one measurement; returns (status, lines, detail) where status is
    "ok", "deadline", "cap" or "failed"."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", workload, peer.name, kind,
               str(workers), str(chunksize or 0)]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(),
                                start_new_session=True)
        start = time.monotonic()
        status, detail = "ok", {}
        while proc.poll() is None:
            if time.monotonic() - start > deadline:
                status = "deadline"
            elif workload == "memory":
                rss = status_mib("VmRSS", proc.pid)
                if rss is not None and rss > MEMORY_CAP_MIB:
                    status = "cap"
            if status != "ok":
                detail["peak_mib"] = status_mib("VmHWM", proc.pid)
                detail["seconds"] = time.monotonic() - start
                kill_group(proc.pid)
                proc.wait()
                break
            time.sleep(0.05)
        # whatever the peer left behind (workers, a forkserver) goes too
        kill_group(proc.pid)
        out.seek(0)
        err.seek(0)
        lines = out.read().splitlines()
        if status == "ok" and proc.returncode != 0:
            status = "failed"
            tail = [l for l in err.read().splitlines() if l.strip()]
            detail["error"] = tail[-1] if tail else "exit status %d" % proc.returncode
        return status, lines, detail


def parse(lines):
    reports = [json.loads(l) for l in lines if l.startswith("{")]
    done = [int(l.split()[1]) for l in lines if l.startswith("progress ")]
    baseline = [float(l.split()[1]) for l in lines if l.startswith("baseline ")]
    return reports, (done[-1] if done else 0), (baseline[-1] if baseline else None)


def crash_cell(status, reports, done, detail):
    n = peer_workloads.CRASH_ITEMS
    if not reports:
        if status == "deadline":
            return {"outcome": "hangs", "results": done,
                    "text": "hangs: %d of %d results, then nothing for %ds (killed)"
                    % (done, n, detail["seconds"])}
        return {"outcome": "fails", "text": "failed: %s" % detail.get("error")}
    report = reports[0]
    errors = report["errors"]
    kinds = ", ".join(sorted(set(errors)))
    if report["results"] == n - 1 and report["lost"] == 0:
        outcome = "finishes"
        text = "finishes: %d results, item %d raised %s" % (n - 1, peer_workloads.CRASH_ITEM,
                                                            kinds or "nothing")
    else:
        outcome = "raises"
        text = "raises %s: %d of %d results (%d after the error), %d lost" % (
            kinds or "nothing", report["results"], n, report["after_error"], report["lost"])
    if len(reports) < 2 and status == "deadline":
        text += "; then its shutdown hung (killed)"
    return dict(report, outcome=outcome, text=text)


def best_chunksize(results, peer, kind):
    """The chunk size this run found best for trivial tasks on `kind`
    (those workloads are named after their kind), or None."""
    return results["workloads"].get(kind, {}).get(peer.name, {}).get("chunksize")


def measure(workload, peer, results, deadline_scale=1.0):
    kind, may_fall_back, deadline = WORKLOADS[workload]
    deadline *= deadline_scale
    if importlib.util.find_spec(peer.module) is None:
        return {"na": "%s is not installed (make bench installs it)" % peer.module}
    note = ""
    if kind not in peer.kinds:
        if not may_fall_back:
            return {"na": peer.missing[kind]}
        kind = [k for k in peer.kinds if k != kind][0]
        note = "on %s: %s" % (kind, peer.missing[WORKLOADS[workload][0]])
    workers = THREADS if kind == "threads" else CPUS
    # the chunk size found best for trivial tasks serves the other trivial
    # workload (memory) only: a chunk of slow items makes a first result
    # and a pipeline's stages wait for the whole chunk, and a chunk shares
    # its worker's fate in a crash; those run at each peer's default
    # (chunk size 1; streamfutures: its own)
    chunksize = best_chunksize(results, peer, kind) if workload == "memory" else None
    status, lines, detail = run_child(workload, peer, kind, workers, chunksize, deadline)
    reports, done, baseline = parse(lines)
    if workload == "crash":
        return crash_cell(status, reports, done, detail)
    if status == "ok":
        cell = reports[-1]
        if note:
            cell["note"] = note
        return cell
    if status == "failed":
        return {"na": "failed: %s" % detail["error"]}
    if status == "cap":
        return {"value": None, "over_cap": True, "peak_mib": detail["peak_mib"],
                "results": done, "seconds": detail["seconds"],
                "text": "> %d MiB after %d results (%.0f s): stopped at the cap"
                % (MEMORY_CAP_MIB, done, detail["seconds"])}
    text = "did not finish in %d s" % deadline
    if workload == "memory":
        text += " (%d results, %.0f MiB above start so far)" % (
            done, (detail["peak_mib"] or 0) - (baseline or 0))
    return {"na": text}


def serial_factorize_s():
    nums = seed004_numbers(peer_workloads.FACTORIZE_ITEMS)
    start = time.perf_counter()
    for n in nums:
        factorize_naive(n)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--peers", default=",".join(p.name for p in PEERS))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--deadline-scale", type=float, default=1.0)
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--merge", metavar="PEERS_JSON",
                        help="add to an earlier run's results (another part of the workloads)")
    parser.add_argument("--redraw", metavar="PEERS_JSON",
                        help="measure nothing: write the table and plots of a run's results")
    parser.add_argument("--child", nargs=5)
    args = parser.parse_args(argv)
    if args.redraw:
        with open(args.redraw) as earlier:
            results = json.load(earlier)
        peer_report.write(results, args.out, plots=not args.no_plots)
        return results
    if args.child:
        workload, name, kind, workers, chunksize = args.child
        peer_workloads.run_child(workload, BY_NAME[name], kind, int(workers),
                                 int(chunksize) or None)
        return None

    workloads = args.only.split(",")
    peers = [BY_NAME[name] for name in args.peers.split(",")]
    results = {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": CPUS,
               "threads": THREADS, "memory_cap_mib": MEMORY_CAP_MIB,
               "versions": peer_report.versions(peers), "workloads": {}}
    if args.merge:
        with open(args.merge) as earlier:
            merged = json.load(earlier)
        if (merged["cpus"], merged["python"]) != (results["cpus"], results["python"]):
            parser.error("%s was measured on another machine or Python" % args.merge)
        merged["versions"].update(results["versions"])
        results = merged
    if "factorize" in workloads:
        results["factorize_serial_s"] = serial_factorize_s()
    print("streamfutures and its peers: %d cores, %d threads for thread pools, Python %s"
          % (CPUS, THREADS, results["python"]))
    started = time.monotonic()
    for workload in workloads:
        cells = results["workloads"][workload] = {}
        print("\n%s:" % peer_report.TITLES[workload])
        for peer in peers:
            cell = cells[peer.name] = measure(workload, peer, results, args.deadline_scale)
            print("  %-38s %s" % (peer.name, peer_report.cell_text(workload, cell, results)),
                  flush=True)
    results["seconds"] = results.get("seconds", 0) + time.monotonic() - started
    peer_report.write(results, args.out, plots=not args.no_plots)
    print("\n(%.0f s) wrote peers.json, peers.md%s in %s" % (
        results["seconds"], "" if args.no_plots else " and peers*.png",
        os.path.relpath(args.out, ROOT) if args.out.startswith(ROOT) else args.out))
    return results


if __name__ == "__main__":
    main()
