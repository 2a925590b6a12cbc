"""streamfutures.ProcessPoolExecutor: the stdlib's behaviour, a lazy and
bounded map, and crash isolation: events, counts and order, never times."""
import asyncio
import concurrent.futures as cf
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import proc_tasks as t
import streamfutures as sf
from conftest import wait_until
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

# fork is asked for by name (and Python 3.12+ warns: conftest records it)
METHODS = [pytest.param(m, marks=pytest.mark.forks) if m == "fork" else m
           for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()]


def pool(workers=2, method=None, **kwargs):
    """A pool of the given start method; by default the default one."""
    context = multiprocessing.get_context(method) if method else None
    return sf.ProcessPoolExecutor(workers, mp_context=context, **kwargs)


def outcomes(iterator):
    """Every outcome of a map: a value, or (exception type, exception)."""
    out = []
    while True:
        try:
            out.append(next(iterator))
        except StopIteration:
            return out
        except BaseException as e:  # noqa: B902 - each item's own exception
            out.append((type(e), e))


# 1. drop-in ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_each_start_method_runs_map_and_submit(method):
    with pool(2, method, initializer=t.set_initialized, initargs=(method,)) as ex:
        assert list(ex.map(t.square, range(50))) == [i * i for i in range(50)]
        assert ex.submit(t.add, 2, b=3).result() == 5
        assert ex.submit(t.call_with, 1, x=2).result() == ((1,), {"x": 2})
        assert set(ex.map(t.initialized, range(8))) == {method}
        assert isinstance(ex.submit(t.pid), cf.Future)


def test_map_of_several_iterables_stops_at_the_shortest():
    with pool() as ex:
        assert list(ex.map(t.add, [1, 2, 3], [10, 20])) == [11, 22]


def test_results_of_every_builtin_kind_come_back_equal():
    values = [None, True, False, 0, -1, 2**63 - 1, 2**64, -(2**70), 1.5, float("inf"), "",
              "text \u20ac \udc80", b"\x00bytes", [1, (2, 3)], {"a": 1}, frozenset({1}), 3j,
              # lists and tuples of scalars travel without pickle; the rest is pickled
              [], (), [2, 3, 3, 37], (1, -2.5, "\u20ac", b"", None, True, False), [2**64, 1],
              ["\udc80"], t.ListSubclass([1, 2]), ([1],)]
    with pool(1) as ex:
        assert list(ex.map(t.echo, values)) == values
        assert all(type(a) is type(b) for a, b in zip(ex.map(t.echo, values), values))


def test_an_exception_comes_back_at_its_position_with_the_remote_traceback():
    with pool() as ex:
        got = outcomes(ex.map(t.raise_at_five, range(10), chunksize=4))
        assert got[:5] == [0, 1, 2, 3, 4] and got[6:] == [6, 7, 8, 9]
        kind, exc = got[5]
        assert kind is ValueError and str(exc) == "bad item 5"
        assert isinstance(exc.__cause__, _RemoteTraceback)
        assert "raise_at_five" in str(exc.__cause__)
        fut = ex.submit(t.raise_at_five, 5)
        with pytest.raises(ValueError, match="bad item 5"):
            fut.result()
        assert isinstance(fut.exception().__cause__, _RemoteTraceback)


def test_stdlib_validation_messages():
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        sf.ProcessPoolExecutor(0)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        sf.ProcessPoolExecutor(1, initializer=5)
    with pytest.raises(ValueError, match="max_tasks_per_child must be >= 1"):
        sf.ProcessPoolExecutor(1, max_tasks_per_child=0)
    with pytest.raises(TypeError, match="max_tasks_per_child must be an integer"):
        sf.ProcessPoolExecutor(1, max_tasks_per_child=1.5)
    with pytest.raises(ValueError, match="incompatible with the 'fork'"):
        sf.ProcessPoolExecutor(1, multiprocessing.get_context("fork"), max_tasks_per_child=2)
    with pool(1) as ex:
        with pytest.raises(ValueError, match="chunksize must be >= 1."):
            ex.map(t.echo, [1], chunksize=0)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(t.echo, 1)


def test_futures_work_with_wait_as_completed_and_asyncio():
    with pool() as ex:
        futures = [ex.submit(t.square, i) for i in range(10)]
        done, not_done = cf.wait(futures)
        assert len(done) == 10 and not not_done
        assert sorted(f.result() for f in cf.as_completed(futures)) == [i * i for i in range(10)]

        async def main():
            return await asyncio.wrap_future(ex.submit(t.square, 7))

        assert asyncio.run(main()) == 49


# 2. lazy, bounded, ordered / unordered ------------------------------------


def test_map_returns_before_its_input_ends_and_yields_the_first_result_at_once():
    gate = threading.Event()

    def blocked_input():
        yield 1
        yield 2
        assert gate.wait(30)
        yield 3

    with pool() as ex:
        it = ex.map(t.square, blocked_input())
        assert [next(it), next(it)] == [1, 4]  # while the input is still blocked
        gate.set()
        assert list(it) == [9]


def test_the_window_bounds_items_acquired_over_an_infinite_input():
    with pool() as ex:
        it = ex.map(t.echo, itertools.count(), buffersize=64)
        for i in range(500):
            assert next(it) == i
            assert it._outstanding() <= 64
        it.close()


def test_unordered_yields_each_result_once():
    with pool() as ex:
        got = list(ex.map(t.square, range(300), unordered=True))
        assert sorted(got) == [i * i for i in range(300)]


def test_explicit_chunksize_is_honoured_and_results_stay_in_order():
    with pool() as ex:
        assert list(ex.map(t.square, range(1000), chunksize=7)) == [i * i for i in range(1000)]
        assert list(ex.map(t.square, range(10), chunksize=10000)) == [i * i for i in range(10)]


# 3. crashes, unpicklable values, timeouts --------------------------------

CRASHES = {
    "segfault": (sf.WorkerCrashedError, -signal.SIGSEGV),
    "exit": (sf.WorkerCrashedError, 3),
    "sigkill": (sf.WorkerCrashedError, -signal.SIGKILL),
    # a worker that corrupts its result ring is killed: only its item fails
    "corrupt_ring": (sf.WorkerCrashedError, -signal.SIGKILL),
    "unpicklable_result": (TypeError, None),
    "unpicklable_argument": (TypeError, None),
}


def crash_items(kind):
    items = [(kind, i) for i in range(8)]
    if kind == "unpicklable_argument":
        items[3] = (kind, threading.Lock())
    return items


def check_only_item_3_failed(got, kind):
    expected_type, exitcode = CRASHES[kind]
    assert len(got) == 8
    assert [g for i, g in enumerate(got) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    failed_type, exc = got[3]
    assert issubclass(failed_type, expected_type)
    if exitcode is not None:
        assert isinstance(exc, BrokenProcessPool)
        assert exc.exitcode == exitcode
        assert ("exit code 3" if exitcode > 0 else "signal %d" % -exitcode) in str(exc)
    else:
        assert "pickle" in str(exc) and isinstance(exc.__cause__, _RemoteTraceback)


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_a_crash_fails_only_its_item_in_an_ordered_map(kind):
    with pool(2) as ex:
        check_only_item_3_failed(outcomes(ex.map(t.fail_badly, crash_items(kind), chunksize=8)), kind)
        assert list(ex.map(t.square, range(20))) == [i * i for i in range(20)]  # replaced


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_a_crash_fails_only_its_item_in_an_unordered_map(kind):
    with pool(2) as ex:
        got = outcomes(ex.map(t.fail_badly, crash_items(kind), unordered=True))
        failures = [g for g in got if isinstance(g, tuple)]
        assert sorted(g for g in got if not isinstance(g, tuple)) == [0, 1, 2, 4, 5, 6, 7]
        assert len(failures) == 1 and issubclass(failures[0][0], CRASHES[kind][0])


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_a_crash_fails_only_its_future(kind):
    with pool(2) as ex:
        futures = [ex.submit(t.fail_badly, item) for item in crash_items(kind)]
        got = []
        for f in futures:
            exc = f.exception()
            got.append((type(exc), exc) if exc is not None else f.result())
        check_only_item_3_failed(got, kind)


def test_task_timeout_stops_only_the_item_that_overran():
    items = [(i, 30 if i == 2 else 0) for i in range(6)]
    with pool(2) as ex:
        got = outcomes(ex.map(t.sleep_at, items, task_timeout=0.5, chunksize=3))
        assert [g for i, g in enumerate(got) if i != 2] == [0, 1, 3, 4, 5]
        assert got[2][0] is cf.TimeoutError and "task_timeout=0.5" in str(got[2][1])
        fut = ex.submit_with_timeout(0.5, t.sleep_at, (9, 30))
        with pytest.raises(cf.TimeoutError):
            fut.result()
        assert ex.submit(t.square, 3).result() == 9


def test_max_tasks_per_child_recycles_workers():
    with pool(1, "forkserver", max_tasks_per_child=2) as ex:
        pids = list(ex.map(t.pid, range(7)))
        assert [pids.count(p) for p in dict.fromkeys(pids)] == [2, 2, 2, 1]


def test_a_failing_initializer_breaks_the_pool_with_the_stdlib_messages():
    ex = pool(1, initializer=t.failing_initializer)
    fut = ex.submit(t.square, 2)
    with pytest.raises(BrokenProcessPool):
        fut.result()
    with pytest.raises(BrokenProcessPool, match="A child process terminated abruptly"):
        ex.submit(t.square, 2)
    ex.shutdown()


# 4. cancel, early exit, shutdown ---------------------------------------------


def test_early_exit_cancels_what_has_not_started(tmp_path):
    path = str(tmp_path / "ran")
    with pool(1) as ex:
        it = ex.map(t.record, ((path, i) for i in itertools.count()), buffersize=8, chunksize=1)
        assert [next(it) for _ in range(3)] == [0, 1, 2]
        it.close()
    ran = [int(line) for line in open(path)]
    assert ran == list(range(len(ran)))  # in order, none twice
    assert len(ran) <= 3 + 8  # what was yielded plus at most the window


def test_a_dropped_map_with_an_explicit_buffersize_stops_reading_its_input(tmp_path):
    # seed 001's regression scenario on a process pool: the with-block exits
    path, pulled = str(tmp_path / "ran"), []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield path, i

    with pool(2) as ex:
        ex.map(t.record, endless(), buffersize=10)
    assert len(pulled) <= 10 + 1  # the window, plus the one pull under way
    ran = sorted(int(line) for line in open(path)) if os.path.exists(path) else []
    assert set(ran) <= set(pulled) and len(ran) == len(set(ran))  # acquired items, once


@pytest.mark.parametrize("use_with", [True, False])
def test_a_dropped_map_with_the_default_window_runs_every_item(tmp_path, use_with):
    path = str(tmp_path / "ran")
    ex = pool(2)
    ex.map(t.record, ((path, i) for i in range(40)))  # never iterated
    if use_with:
        with ex:
            pass
    else:
        ex.shutdown(wait=True)
    assert sorted(int(line) for line in open(path)) == list(range(40))


def test_shutdown_cancel_futures_cancels_pending_submissions():
    ex = pool(1)
    first = ex.submit(t.sleep_at, (0, 0.5))
    while not first.running():
        threading.Event().wait(0.01)
    rest = [ex.submit(t.square, i) for i in range(20)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result() == 0
    assert all(f.cancelled() or f.result() == i * i for i, f in enumerate(rest))
    assert any(f.cancelled() for f in rest)


def test_terminate_workers_fails_the_running_item_and_stops_everything():
    ex = pool(1)
    running = ex.submit(t.sleep_at, (0, 30))
    while not running.running():
        threading.Event().wait(0.01)
    pending = ex.submit(t.square, 3)
    ex.terminate_workers()
    with pytest.raises(BrokenProcessPool):
        running.result(timeout=30)
    assert pending.cancelled() or isinstance(pending.exception(), BrokenProcessPool)
    ex.shutdown()


def test_worker_crashed_error_pickles_with_its_exitcode():
    assert pickle.loads(pickle.dumps(sf.WorkerCrashedError("x", 3))).exitcode == 3


# 5. process life: Ctrl-C and interpreter exit ----------------------------------


def run_script(body):
    script = textwrap.dedent(body)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, env=env, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_ctrl_c_in_next_raises_keyboardinterrupt_and_leaves_no_process():
    # SIGINT is sent from inside the script once its main thread is on the
    # line that calls next(), never earlier (a signal that arrived while the
    # script was still printing would be raised outside the try).
    code, out, err = run_script("""
        import multiprocessing, os, signal, sys, threading, time
        import streamfutures as sf, proc_tasks as t

        def interrupt_once_main_thread_waits(main_ident, line):
            while sys._current_frames()[main_ident].f_lineno != line:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)

        ex = sf.ProcessPoolExecutor(2)
        it = ex.map(t.sleep_at, [(i, 30) for i in range(10)])
        waiting_line = sys._getframe().f_lineno + 5
        interrupter = threading.Thread(target=interrupt_once_main_thread_waits,
                                       args=(threading.get_ident(), waiting_line))
        interrupter.start()
        try:
            next(it)
        except KeyboardInterrupt:
            it.close()
            ex.kill_workers()
            ex.shutdown()
            print("interrupted", len(multiprocessing.active_children()))
        interrupter.join()
    """)
    assert code == 0, err
    assert out.split() == ["interrupted", "0"]


def test_interpreter_exit_with_a_running_pool_finishes_and_reaps():
    code, out, err = run_script("""
        import streamfutures as sf, proc_tasks as t
        ex = sf.ProcessPoolExecutor(2)
        f = ex.submit(t.sleep_at, (1, 0.2))
        it = ex.map(t.square, range(100000))
        print(next(it))
    """)
    assert code == 0, err
    assert out.split() == ["0"]
    assert "Traceback" not in err


@pytest.mark.parametrize("method", METHODS)
def test_pools_inside_a_worker_work_also_in_a_replacement_forked_from_an_engine_thread(method):
    with pool(1, method) as ex:
        assert ex.submit(t.nested_pools, 10).result() == 65
        with pytest.raises(sf.WorkerCrashedError):
            ex.submit(t.fail_badly, ("exit", 3)).result()
        assert ex.submit(t.nested_pools, 4).result() == 14  # in the replacement


# How each default pool's workers were started, seen from inside them.
START_METHODS_SEEN = """
    import os, warnings, multiprocessing as mp, concurrent.futures as cf
    warnings.simplefilter("always", DeprecationWarning)  # shown, not only in __main__
    import streamfutures as sf, proc_tasks as t
    t.PARENT_MARK = "set in the parent"

    def default_pools(n):
        seen = []
        for _ in range(n):
            with sf.ProcessPoolExecutor(2) as ex:
                seen.append(t.start_method_seen(os.getpid(), *ex.submit(t.how_started).result()))
        return ",".join(seen)
"""


def test_default_pools_stay_forkserver_before_and_after_other_processes_start():
    # multiprocessing fixes its global default to fork when the first spawn
    # or forkserver process starts (ours, the stdlib's, or a Queue's use)
    code, out, err = run_script(START_METHODS_SEEN + """
    if __name__ == "__main__":
        print(default_pools(3))
        with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as std:
            std.submit(abs, 1).result()
        mp.Queue().close()
        print(default_pools(3), mp.get_start_method(allow_none=True))
    """)
    assert code == 0, err
    assert out.split() == ["forkserver,forkserver,forkserver", "forkserver,forkserver,forkserver",
                           "fork"]
    assert "use of fork()" not in err


@pytest.mark.parametrize("method", [pytest.param("fork", marks=pytest.mark.forks), "spawn",
                                    "forkserver"])
@pytest.mark.parametrize("chosen", ["before import", "after import"])
def test_a_chosen_start_method_is_the_default_pools(method, chosen):
    early = ("    import multiprocessing\n    multiprocessing.set_start_method(%r)\n" % method
             if chosen == "before import" else "")
    code, out, err = run_script(early + START_METHODS_SEEN + """
    if __name__ == "__main__":
        if mp.get_start_method(allow_none=True) is None:
            mp.set_start_method(%r)
        print(default_pools(2))
        mp.set_start_method(None, force=True)  # reset: the default again
        print(default_pools(1))
    """ % method)
    assert code == 0, err
    assert out.split() == [",".join([method] * 2), "forkserver"]
    # Python 3.12+ warns of a fork with threads running: only where fork was chosen
    forked = "is multi-threaded, use of fork() may lead to deadlocks" in err
    assert forked == (method == "fork" and sys.version_info >= (3, 12)), err


UNGUARDED = {
    "map": "with sf.ProcessPoolExecutor(2) as ex:\n    print('result', sum(ex.map(abs, range(1000))))",
    "submit": "with sf.ProcessPoolExecutor(2) as ex:\n    print('result', ex.submit(abs, -3).result())",
    "stream": "print('result', sum(sf.Stream(range(3000)).map(abs, processes=2)))",
}


# What ends each process of an unguarded script, one line per process (one
# write each): the parent and its workers share one stderr, where their
# tracebacks interleave, even within a line
REPORT_WHAT_ENDS_IT = """import json, os, sys
def report(kind, exc, tb, _previous=sys.excepthook):
    fd = os.open(%r, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (json.dumps([os.getpid(), kind.__name__, str(exc)]) + "\\n").encode())
    os.close(fd)
    _previous(kind, exc, tb)
sys.excepthook = report
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
@pytest.mark.parametrize("api", sorted(UNGUARDED))
def test_a_script_without_a_main_guard_fails_loudly_and_runs_nothing_twice(tmp_path, api, method):
    # each worker imports the main module: the pool it would start there
    # again is refused, as the stdlib refuses it, and the parent's pool
    # breaks with the reason (never a silent re-run, never a hang)
    report = tmp_path / "ended"
    script = tmp_path / "unguarded.py"
    script.write_text(REPORT_WHAT_ENDS_IT % str(report)
                      + "import multiprocessing as mp\nimport streamfutures as sf\n"
                      "mp.set_start_method(%r, force=True)\n%s\n" % (method, UNGUARDED[api]))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err
    assert "result" not in out  # not in the parent, not in any worker
    ended = {pid: (kind, message) for pid, kind, message in
             (json.loads(line) for line in report.read_text().splitlines())}
    parent_kind, parent_message = ended.pop(proc.pid)
    assert parent_kind == "UnguardedMainError", err
    assert "Put that code under 'if __name__ == \"__main__\":'" in parent_message
    assert "started with %s" % method in parent_message
    assert ended, "no worker reported its refusal"
    for kind, message in ended.values():  # the workers: the stdlib's refusal
        assert kind == "RuntimeError", err
        assert "An attempt has been made to start a new process before the" in message


def test_a_guarded_script_runs_its_work_once(tmp_path):
    script = tmp_path / "guarded.py"
    script.write_text("import streamfutures as sf\nif __name__ == '__main__':\n"
                      "    with sf.ProcessPoolExecutor(2) as ex:\n"
                      "        print('result', sum(ex.map(abs, range(1000))))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=str(tmp_path))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "result 499500\n", "")


# 6. descriptors and process lifetime ----------------------------------------


def alive(pid):
    """Running, not a zombie (a killed descendant may wait a while to be
    reaped by whichever process adopted it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants_started(pid_file):
    wait_until(lambda: os.path.exists(pid_file), "the task started its descendants")
    with open(pid_file) as f:
        return [int(p) for p in f.read().split()]


STOPPED_BY_THE_POOL = {
    "task_timeout": lambda ex, f: ex.submit_with_timeout(1.0, t.start_a_descendant, f, "hang"),
    "crash": lambda ex, f: ex.submit(t.start_a_descendant, f, "crash"),
    "kill_workers": lambda ex, f: ex.submit(t.start_a_descendant, f, "hang"),
    "terminate_workers": lambda ex, f: ex.submit(t.start_a_descendant, f, "hang"),
    "shutdown": lambda ex, f: ex.submit(t.start_a_descendant, f, "return"),
}
RAISES = {"task_timeout": cf.TimeoutError, "crash": sf.WorkerCrashedError,
          "kill_workers": sf.WorkerCrashedError, "terminate_workers": sf.WorkerCrashedError}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("how", sorted(STOPPED_BY_THE_POOL))
def test_a_worker_that_ends_takes_the_processes_its_task_started(tmp_path, how, method):
    pid_file = str(tmp_path / "descendants")
    ex = pool(1, method)
    try:
        future = STOPPED_BY_THE_POOL[how](ex, pid_file)
        pids = descendants_started(pid_file)
        if how != "crash":  # a crash may already have taken them
            assert all(alive(p) for p in pids)
        if how in ("kill_workers", "terminate_workers"):
            getattr(ex, how)()
        if how in RAISES:
            with pytest.raises(RAISES[how]):
                future.result(timeout=30)
        else:
            assert future.result(timeout=30) == pids[0]
        if how in ("task_timeout", "crash"):  # the replacement serves on
            assert ex.submit(t.square, 7).result(timeout=30) == 49
    finally:
        ex.shutdown(wait=True)
    wait_until(lambda: not any(alive(p) for p in pids), "the descendants were killed")



def identity(pid, fd):
    st = os.stat("/proc/%d/fd/%d" % (pid, fd))
    return st.st_dev, st.st_ino


def descriptors_of(pid):
    """fd number -> what it is (as /proc shows it), fds above stderr."""
    found = {}
    for name in os.listdir("/proc/%d/fd" % pid):
        if int(name) > 2:
            try:
                found[int(name)] = os.readlink("/proc/%d/fd/%s" % (pid, name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_holds_only_its_own_descriptors(method, tmp_path):
    with pool(4, method) as ex:
        # started at the same time: their spawns race
        pids = set(f.result() for f in [ex.submit(t.pid_when_all_run, (str(tmp_path), 4))
                                        for _ in range(4)])
        assert len(pids) == 4
        # each worker's pipes, as the parent knows them
        pipes_of = {}
        for pid, process in ex._spawner.processes.items():
            task_w, result_r = list(process._sf_fds)[:2]
            pipes_of[pid] = {os.readlink("/proc/self/fd/%d" % fd) for fd in (task_w, result_r)}
        assert set(pipes_of) == pids
        every_pipe = set().union(*pipes_of.values())
        for pid in pids:
            held = descriptors_of(pid).values()
            assert {d for d in held if d in every_pipe} == pipes_of[pid]  # no sibling's
            assert sum("streamfutures-results" in d for d in held) == 1  # its own ring
            assert not [d for d in held if "pidfd" in d]  # the parent's pidfds stay there
        for fd in descriptors_of(os.getpid()):  # the parent's: none leaks into an exec
            if fd in {fd for p in ex._spawner.processes.values() for fd in p._sf_fds}:
                assert os.get_inheritable(fd) is False
        # nor does any hold the parent's ends of multiprocessing's pipes to a
        # sibling (compared by identity: every memfd reads back the same name)
        mp_pipes_of = {pid: {identity(os.getpid(), fd) for fd in sf.process._multiprocessing_fds(p)}
                       for pid, p in ex._spawner.processes.items()}
        for pid in pids:
            held = {identity(pid, fd) for fd in descriptors_of(pid)}
            siblings = set().union(*(mp_pipes_of[other] for other in pids if other != pid))
            assert not held & siblings


@pytest.mark.parametrize("kind", ["exit", "sigkill", "segfault"])
def test_without_pidfd_a_death_is_still_seen_with_siblings_running(kind, monkeypatch, tmp_path):
    monkeypatch.setattr(sf.process, "USE_PIDFD", False)
    with pool(4) as ex:
        assert len(set(ex.map(t.pid_when_all_run, [(str(tmp_path), 4)] * 4, chunksize=1))) == 4
        assert not [d for p in ex._spawner.processes for d in descriptors_of(os.getpid()).values()
                    if "pidfd" in d]
        check_only_item_3_failed(outcomes(ex.map(t.fail_badly, crash_items(kind), chunksize=8)), kind)
        assert list(ex.map(t.square, range(20))) == [i * i for i in range(20)]


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_busy_in_a_task_dies_with_its_killed_parent(method):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
        import multiprocessing, os, time
        import streamfutures as sf
        if __name__ == "__main__":
            ex = sf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context({method!r}))
            print(ex.submit(os.getpid).result(), flush=True)
            ex.submit(time.sleep, 120)
            time.sleep(120)
        """)],
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))),
        stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    import time
    time.sleep(0.3)  # the worker is inside time.sleep(120)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    for _ in range(2000):
        try:
            with open("/proc/%d/stat" % worker) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break  # dead, waiting for whoever adopted it to reap it
        except FileNotFoundError:
            break
        time.sleep(0.005)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent")


def test_an_idle_worker_runs_its_python_signal_handlers(tmp_path):
    import time

    marker = str(tmp_path / "signals")
    with pool(1, "forkserver", initializer=t.note_signals_in, initargs=(marker,)) as ex:
        worker = ex.submit(os.getpid).result()
        # idle now, waiting for a task in C; a signal that lands before it
        # sleeps interrupts nothing, so send until one is handled
        for _ in range(200):
            os.kill(worker, signal.SIGUSR1)
            time.sleep(0.01)
            if os.path.exists(marker):
                break
        assert os.path.exists(marker), "the handler never ran while the worker was idle"
        assert ex.submit(os.getpid).result() == worker  # it goes on serving
