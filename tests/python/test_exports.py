"""The extension module is one shared object whose only exported symbol is
its init function: the engine's and the binding's names are internal
(-fvisibility=hidden), so they can never clash with another library
loaded into the same process."""
import os
import subprocess

import streamfutures as sf
from streamfutures import _engine

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_extension_exports_only_its_init_function():
    out = subprocess.run(["nm", "-D", "--defined-only", _engine.__file__],
                         capture_output=True, text=True, check=True).stdout
    exported = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert exported == ["PyInit__engine"]


def test_the_version_is_the_c_librarys_stated_once():
    import re

    header = open(os.path.join(ROOT, "include", "streamfutures.h")).read()
    stated = re.search(r'#define SF_VERSION_STRING "([^"]+)"', header).group(1)
    assert sf.__version__ == stated
    pyproject = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert 'dynamic = ["version"]' in pyproject and "\nversion =" not in pyproject
