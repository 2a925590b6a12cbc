"""Builds streamfutures._engine from the C engine (src/core) and its
CPython binding (src/python).  Metadata lives in pyproject.toml.

Warnings are errors only in development builds (the Makefile sets
STREAMFUTURES_WERROR=1): a user's pip install on a newer compiler, which
may warn about something new, must still build."""
import os
import re
import sys
from glob import glob

from setuptools import Extension, setup

if not sys.platform.startswith("linux"):
    sys.exit("streamfutures needs Linux (futex, pidfd, memfd): %s is not supported" % sys.platform)


def version():
    """The version, stated once: in the C library's public header."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "include", "streamfutures.h")) as f:
        return re.search(r'#define SF_VERSION_STRING "([^"]+)"', f.read()).group(1)


setup(
    version=version(),
    ext_modules=[
        Extension(
            "streamfutures._engine",
            sources=sorted(glob("src/core/*.c")) + sorted(glob("src/python/*.c")),
            include_dirs=["include", "src/core", "src/python"],
            define_macros=[("SF_NO_EXPORT", "1")],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden"]
            + (["-Werror"] if os.environ.get("STREAMFUTURES_WERROR") == "1" else []),
        )
    ]
)
