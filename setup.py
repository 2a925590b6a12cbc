"""Builds streamfutures._engine from the C engine (src/core) and its
CPython binding (src/python).  Metadata lives in pyproject.toml."""
from glob import glob

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streamfutures._engine",
            sources=sorted(glob("src/core/*.c")) + sorted(glob("src/python/*.c")),
            include_dirs=["include", "src/core", "src/python"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Werror",
                                "-O2", "-fvisibility=hidden"],
        )
    ]
)
