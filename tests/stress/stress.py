"""The stress matrix: every fault mode against map, submit and Stream, on
thread and process pools and every start method, each run in a fresh
interpreter (tests/stress/scenario.py), several at a time.

A run that has not ended by its deadline is killed and counted as a hang
(it is not waited for).  A run's lost items and leaks are what it reports;
a run that exits with the map still live must leave no worker behind,
and no run may leave behind a process that a worker's task started.
Prints a table of mode x API (runs, hangs, lost, leaks) and, last,
exactly: stress: N runs, H hangs, L lost, K leaks

Usage: stress.py [--repeat R] [--jobs J] [--deadline S]"""
import argparse
import collections
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

PROCESS_ONLY = ["os_exit", "sigkill", "segfault", "unpicklable_argument", "unpicklable_result",
                "argument_raises_when_pickled", "argument_exits_when_unpickled",
                "result_exits_when_unpickled", "task_timeout"]
ANY_POOL = ["ctrl_c_in_next", "ctrl_c_in_result", "exit_with_live_maps", "break_mid_map",
            "shutdown_from_another_thread", "failing_initializer"]
APIS = ["map", "submit", "stream"]


# free-threaded CPython 3.13 can deadlock a forked child in its at-fork
# handlers (tests/python/conftest.py, FORK_DEADLOCKS): not a fault of ours
FORK_DEADLOCKS = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and sys.version_info < (3, 14)


def matrix():
    methods = [m for m in ("fork", "forkserver", "spawn")
               if m in multiprocessing.get_all_start_methods()
               and not (m == "fork" and FORK_DEADLOCKS)]
    for mode in PROCESS_ONLY + ANY_POOL:
        for api in APIS:
            if mode == "ctrl_c_in_result" and api != "submit":
                continue  # result() is submit's; next() is the others'
            if mode == "ctrl_c_in_next" and api == "submit":
                continue
            if mode in ANY_POOL:
                yield mode, api, "thread", None
            for method in methods:
                yield mode, api, "process", method


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def run_one(case, deadline):
    mode, api, pool, method = case
    args = [sys.executable, os.path.join(HERE, "scenario.py"), mode, api, pool] + (
        [method] if method else [])
    with tempfile.TemporaryDirectory() as descendants:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE, os.path.dirname(HERE)]),
                   SF_STRESS_DESCENDANTS=descendants)
        result = run_and_check(args, env, deadline)
        started = [int(name) for name in os.listdir(descendants)]
    # a task's subprocess ends with its worker: none is left once the run is
    for _ in range(500):
        left = [pid for pid in started if not gone(pid)]
        if not left:
            break
        time.sleep(0.01)
    else:
        for pid in left:
            os.kill(pid, 9)
        result["leak"] = 1
        result["why"] += " descendants left: %s" % left
    return result


def run_and_check(args, env, deadline):
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        return {"hang": 1, "lost": 0, "leak": 0, "why": "no end within %ds" % deadline}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"hang": 0, "lost": 1, "leak": 0,
                "why": "no report (exit %s): %s" % (proc.returncode, err.strip()[-300:])}
    report = json.loads(lines[-1])
    leak = bool(report["leaks"])
    # after the interpreter is gone, so are its workers: no orphan
    for _ in range(500):
        if all(gone(pid) for pid in report["workers"]):
            break
        time.sleep(0.01)
    else:
        leak = True
        report["leaks"].append("orphaned workers")
    why = "" if not (report["lost"] or leak) else json.dumps(report)
    return {"hang": 0, "lost": report["lost"], "leak": int(leak), "why": why}


def main():
    # the Ctrl-C modes need Python's SIGINT handler in each run, which a
    # run started from a background shell command would not get (it
    # inherits SIGINT ignored): the disposition we pass on is the default
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--deadline", type=int, default=60)
    opts = parser.parse_args()
    cases = [case for _ in range(opts.repeat) for case in matrix()]
    table = collections.defaultdict(lambda: collections.Counter())
    started = time.monotonic()
    failures = []
    with ThreadPoolExecutor(opts.jobs) as runner:
        for case, result in zip(cases, runner.map(lambda c: run_one(c, opts.deadline), cases)):
            row = table[case[0], case[1]]
            row["runs"] += 1
            for key in ("hang", "lost", "leak"):
                row[key] += result[key]
            if result["why"]:
                failures.append("%s: %s" % ("/".join(filter(None, case)), result["why"]))
    print("%-32s %-7s %5s %6s %5s %6s" % ("mode", "api", "runs", "hangs", "lost", "leaks"))
    for (mode, api), row in sorted(table.items()):
        print("%-32s %-7s %5d %6d %5d %6d" % (mode, api, row["runs"], row["hang"], row["lost"],
                                             row["leak"]))
    for failure in failures[:20]:
        print("  " + failure)
    total = collections.Counter()
    for row in table.values():
        total.update(row)
    print("(%.0f s, %d at a time)" % (time.monotonic() - started, opts.jobs))
    if FORK_DEADLOCKS:
        print("fork not run: free-threaded CPython 3.13 can deadlock a forked child")
    print("stress: %d runs, %d hangs, %d lost, %d leaks"
          % (total["runs"], total["hang"], total["lost"], total["leak"]))
    return 1 if total["hang"] or total["lost"] or total["leak"] else 0


if __name__ == "__main__":
    sys.exit(main())
