"""Builds streamfutures._engine from the C engine (src/core) and its
CPython binding (src/python).  Metadata lives in pyproject.toml.

Warnings are errors only in development builds (the Makefile sets
STREAMFUTURES_WERROR=1): a user's pip install on a newer compiler, which
may warn about something new, must still build."""
import os
from glob import glob

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streamfutures._engine",
            sources=sorted(glob("src/core/*.c")) + sorted(glob("src/python/*.c")),
            include_dirs=["include", "src/core", "src/python"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-O2", "-fvisibility=hidden"]
            + (["-Werror"] if os.environ.get("STREAMFUTURES_WERROR") == "1" else []),
        )
    ]
)
