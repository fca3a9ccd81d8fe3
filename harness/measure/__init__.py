"""Measurement scripts behind docs/BENCHMARKS.md (run with `.venv/bin/python -m harness.measure.<name>`)."""
