"""Command-line entry points (critmin run, ...)."""
