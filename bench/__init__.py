"""Benchmarks: scripts that time the pipeline steps (not tests)."""
