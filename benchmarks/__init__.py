"""Performance suite: `make bench` (python -m benchmarks)."""
