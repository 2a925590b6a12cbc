"""The extension module is one shared object whose only exported symbol is
its init function: the engine's and the binding's names are internal
(-fvisibility=hidden), so they can never clash with another library
loaded into the same process."""
import subprocess

from streamfutures import _engine


def test_the_extension_exports_only_its_init_function():
    out = subprocess.run(["nm", "-D", "--defined-only", _engine.__file__],
                         capture_output=True, text=True, check=True).stdout
    exported = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert exported == ["PyInit__engine"]
