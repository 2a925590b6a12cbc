"""The peer benchmark's harness (bench/bench_peers.py) on the peers that
need no install: each (workload, peer) in its own child with a deadline,
a crashed worker classified as finishes / raises / hangs, a peer that is
missing reported as n/a with the reason, and the markdown table written.
The figures themselves are `make bench`'s; this checks what is said
about each peer is what happened."""
import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = "streamfutures,concurrent.futures,multiprocessing.Pool.imap,pebble"


def test_crash_and_first_result_side_by_side(tmp_path):
    # deadlines at a fifth: 6 s for the crash, which multiprocessing.Pool
    # never returns from
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "bench_peers.py"), "--only",
         "crash,first_result", "--peers", PEERS, "--out", str(tmp_path), "--deadline-scale",
         "0.2", "--no-plots"], capture_output=True, text=True, timeout=300, check=True).stdout
    results = json.loads((tmp_path / "peers.json").read_text())
    crash = results["workloads"]["crash"]
    first = results["workloads"]["first_result"]

    ours = crash["streamfutures"]
    assert (ours["outcome"], ours["results"], ours["lost"]) == ("finishes", 199, 0)
    assert ours["errors"] == ["WorkerCrashedError"]

    stdlib = crash["concurrent.futures"]
    assert stdlib["outcome"] == "raises"
    assert "BrokenProcessPool" in stdlib["errors"] and stdlib["lost"] > 0
    assert stdlib["results"] + stdlib["lost"] == 199

    assert crash["multiprocessing.Pool.imap"]["outcome"] == "hangs"
    assert "hangs:" in crash["multiprocessing.Pool.imap"]["text"]

    # lazy: a result before the input ended; the stdlib's map() reads all
    # of its input before it returns
    assert first["streamfutures"]["first_before_input_end"] is True
    assert first["concurrent.futures"]["first_before_input_end"] is False
    assert first["concurrent.futures"]["value"] >= first["concurrent.futures"]["input_end_s"]

    table = (tmp_path / "peers.md").read_text()
    for name in PEERS.split(","):
        assert "| %s " % name in table
    if importlib.util.find_spec("pebble") is None:
        for workload in ("crash", "first_result"):
            assert results["workloads"][workload]["pebble"] == {
                "na": "pebble is not installed (make bench installs it)"}
        assert "n/a [" in table and "pebble is not installed" in table
    assert "hangs" in out and "finishes: 199 results, item 100 raised WorkerCrashedError" in out
