"""One id per test run, shared by its pytest-xdist workers (set by tests/conftest.py before
they start), so figures written by this run are told from those of an earlier one."""

import os

RUN_ENV = "CAREBRIDGE_TEST_RUN"


def run_id() -> str:
    return os.environ.get(RUN_ENV, "")
