"""Benchmarks: scripts run by make bench, bench-queries and bench-dispatch (not tests)."""
