"""SupportLens benchmarks: `make bench` / `python -m bench.run` (see docs/bench.md)."""
