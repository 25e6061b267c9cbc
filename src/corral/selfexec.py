"""Starting one of corral's own modules in a new process, however corral was shipped.

The run's supervisor and a server's run workers are separate processes. From a wheel or a
checkout they are `python -m MODULE`; a PyInstaller one-file executable has no `-m` (its
`sys.executable` is the executable itself), so it is asked with a flag its entry point
understands (`run_module_if_asked`); a shiv zipapp extracts corral to a folder the new
interpreter does not know, so that folder goes first on its PYTHONPATH.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

MODULE_FLAG = "--corral-run-module"
# only these may be started by the flag: it is an entry into corral, not a general runner
MODULES = frozenset({"corral.execute.supervisor", "corral.server.worker"})


def module_argv(module: str) -> list[str]:
    """The argv that runs `module` as `__main__` in a new process."""
    if module not in MODULES:
        raise ValueError(f"{module} is not one of corral's process entry points")
    if getattr(sys, "frozen", False):
        return [sys.executable, MODULE_FLAG, module]
    return [sys.executable, "-m", module]


def module_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the folder holding the corral
    package first on PYTHONPATH, so a new interpreter imports this same corral."""
    env = dict(os.environ if base is None else base)
    here = str(Path(__file__).resolve().parent.parent)
    paths = [here, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != here)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_module_if_asked(argv: Sequence[str]) -> None:
    """In a one-file executable's entry point: run the module `module_argv` asked for and
    exit; anything else returns and the CLI runs."""
    if len(argv) < 3 or argv[1] != MODULE_FLAG:
        return
    module = argv[2]
    if module not in MODULES:
        sys.exit(f"corral: {module} is not one of corral's process entry points")
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    sys.exit(0)
