"""Runs inside the zipapp before corral (shiv's preamble): a Python the zipapp carries no
native modules for gets one clear line instead of an ImportError deep in pydantic."""

import platform
import sys

PYTHONS = "@PYTHONS@"  # filled in by the build: the CPython versions inside, e.g. "3.11 3.12"
SUPPORTED = PYTHONS.split()
here = f"{sys.version_info.major}.{sys.version_info.minor}"
if (
    sys.implementation.name != "cpython"
    or here not in SUPPORTED
    or sys.platform != "linux"
    or platform.machine() != "x86_64"
):
    sys.stderr.write(
        f"corral: error: this zipapp runs on CPython {', '.join(SUPPORTED)} on Linux x86-64; "
        f"this is {platform.python_implementation()} {platform.python_version()} on "
        f"{sys.platform} {platform.machine()} (use the single-file executable, which needs "
        "no Python, or `pip install corral`)\n"
    )
    sys.exit(2)
