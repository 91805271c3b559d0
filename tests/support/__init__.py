"""Helpers shared by the test suite: one support package, never imported from another
test module (issue 16)."""
