"""The JSON log set-up: database drivers and HTTP clients never log at the service's level."""

import logging

import pytest

from services.messaging import logs

pytestmark = pytest.mark.security


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("driver", ["aiosqlite", "asyncpg", "sqlalchemy.engine", "httpx"])
def test_drivers_that_log_statement_parameters_stay_quiet_at_debug(restore_logging, driver):
    logs.configure("router", "DEBUG")
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(driver).isEnabledFor(logging.INFO)
