"""Alembic migrations of the run history, run programmatically (no alembic.ini)."""
