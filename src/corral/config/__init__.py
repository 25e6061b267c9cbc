"""The flow file: its pydantic schema, loading with precise locations, and legacy import."""
