"""`python -m corral` runs the command line."""

from corral.cli.main import entry

if __name__ == "__main__":
    entry()
