"""Revisions, oldest first: 0001 initial tables, 0002 per-model usage and indexes."""
