"""What a process holds, counted from /proc: native threads (engine
threads are not in threading.enumerate()), open fds and child processes.
The pytest leak fixture (tests/python/conftest.py) and the stress runs
(tests/stress/scenario.py) compare these before and after."""
import os


def native_threads():
    return len(os.listdir("/proc/self/task"))


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def child_pids():
    me, found = os.getpid(), set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(name))
    return found
