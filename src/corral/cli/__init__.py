"""The command line: thin commands that parse, call a use case in `corral.app`, render."""
