"""The engine in an isolated subinterpreter with its own GIL: the module
loads there (multi-phase init, module state, heap types), and engine
threads attach to the interpreter that made their pool, so a thread map
and submit() run there.  Each run is a child process: a broken
subinterpreter must not take the test run down with it."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# 3.13: _interpreters.create() is isolated with its own GIL by default;
# 3.12: _xxsubinterpreters.create() is too (isolated=True); 3.10 and 3.11:
# a subinterpreter that shares the main GIL, still an interpreter of its
# own (engine threads must attach to it, not to the main one)
try:
    import _interpreters as subinterpreters
except ImportError:
    try:
        import _xxsubinterpreters as subinterpreters
    except ImportError:
        subinterpreters = None

needs_subinterpreters = pytest.mark.skipif(
    subinterpreters is None,
    reason="this Python (%s) has no _interpreters or _xxsubinterpreters module"
    % sys.version.split()[0],
)

IN_SUBINTERPRETER = '''
import threading
import streamfutures as sf
names = set()
def double(x):
    names.add(threading.current_thread().name)
    return x * 2
with sf.ThreadPoolExecutor(3, thread_name_prefix="sub") as ex:
    got = list(ex.map(double, range(2000), buffersize=16))
    assert got == [x * 2 for x in range(2000)], got[:10]
    assert ex.submit(pow, 2, 10).result() == 1024
    assert list(ex.map(double, iter([1, 2]))) == [2, 4]
assert names and all(name.startswith("sub_") for name in names), names
print("subinterpreter:", len(got), "results ok")
'''


def run_child(code):
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


@needs_subinterpreters
def test_a_subinterpreter_with_its_own_gil_runs_map_and_submit():
    proc = run_child(f"""
    try:
        import _interpreters as subinterpreters
        run = subinterpreters.exec
    except ImportError:
        import _xxsubinterpreters as subinterpreters
        run = subinterpreters.run_string
    interp = subinterpreters.create()
    failure = run(interp, {IN_SUBINTERPRETER!r})
    subinterpreters.destroy(interp)
    print("main: failure =", failure)
    import streamfutures as sf   # the main interpreter's own module instance still works
    with sf.ThreadPoolExecutor(2) as ex:
        print("main:", sum(ex.map(abs, range(100))))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "subinterpreter: 2000 results ok",
        "main: failure = None",
        "main: 4950",
    ], proc.stderr


def test_the_module_keeps_no_state_between_its_instances():
    # two module objects of one interpreter (importlib can make a second)
    # have their own types: nothing lives in C globals
    proc = run_child("""
    import importlib.util, sys
    import streamfutures
    from streamfutures import _engine
    spec = importlib.util.find_spec("streamfutures._engine")
    second = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second)
    print(second is not _engine, second.Pool is not _engine.Pool)
    pool = second.Pool(2, "second", None, ())
    it = pool.map(abs, iter(range(-5, 0)), False, 4, False, None, False)
    print(list(it))
    pool.shutdown(True, False, False)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["True True", "[5, 4, 3, 2, 1]"], proc.stderr
