"""Packaged world data (one folder per chain; see docs/data_sources.md)."""
