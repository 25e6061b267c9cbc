"""`python -m corral` runs the command line."""

from corral.cli.main import main

if __name__ == "__main__":
    main()
