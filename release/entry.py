"""The one-file executable's entry point (PyInstaller runs this script)."""

import sys

from corral.selfexec import run_module_if_asked

run_module_if_asked(sys.argv)  # the run's supervisor or a server worker, started by corral

from corral.cli.main import main  # noqa: E402  # after: a supervisor needs no CLI

main()
