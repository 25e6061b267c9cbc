"""corral: run fleets of coding-agent CLIs in parallel or as a dependency graph."""

__version__ = "0.1.0"

__all__ = ["__version__"]
