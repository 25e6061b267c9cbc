"""The one-file executable's entry point (PyInstaller runs this script)."""

from corral.cli.main import main

main()
