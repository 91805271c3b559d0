"""Faults of the production shape: every service on PostgreSQL, and two router replicas that
share the work through the Kafka consumer group and row locks (FOR UPDATE SKIP LOCKED).

Each test runs its own PostgreSQL server (tests/support/postgres.py), so restarting it
touches nothing else on the machine."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.scenario import Scenario
from sandbox.stack import Stack
from tests.support.postgres import EphemeralPostgres
from tests.support.reliability import (
    assert_promise,
    delivered_once,
    order_violations,
    post,
    wait_all_confirmed,
)
from tests.support.stacks import fault_settings, supervise

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(400)]


@pytest.fixture
def pg_stack(tmp_path: Path, postgres: EphemeralPostgres) -> Iterator[Stack]:
    settings = fault_settings(tmp_path / "stack", database_url=postgres.url, routers=2)
    with supervise(settings) as stack:
        yield stack


@pytest.fixture
def pg_scenario(pg_stack: Stack) -> Iterator[Scenario]:
    import random

    s = Scenario(pg_stack, random.Random(11))
    yield s
    s.close()


def _dispatchers(scenario: Scenario, message_ids: list[str]) -> dict[str, int]:
    """Which replica dispatched each attempt, read from the delivery timelines."""
    found: dict[str, int] = {}
    for message_id in message_ids:
        detail = scenario.message(message_id)
        assert detail is not None
        for d in detail["deliveries"]:
            for t in d["transitions"]:
                if t["to_state"] == "dispatched":
                    by = t["reason"].rsplit(" by ", 1)[-1]
                    found[by] = found.get(by, 0) + 1
    return found


RETRIED_AFTER = {"timeout", "transient-error", "swept"}


def _each_attempt_once(scenario: Scenario, message_ids: list[str]) -> list[str]:
    """What breaks "nothing sent twice": an attempt number dispatched more than once, or an
    attempt that followed one which had not failed. (On a loaded machine an attempt may time
    out and be retried: that is a new attempt after a failed one, not a double dispatch.)"""
    found = []
    for message_id in message_ids:
        detail = scenario.message(message_id)
        assert detail is not None
        for d in detail["deliveries"]:
            numbers = [a["attempt_no"] for a in d["attempts_log"]]
            if numbers != list(range(1, len(numbers) + 1)):
                found.append(f"{message_id} → {d['destination']}: attempts {numbers}")
            for a in d["attempts_log"][:-1]:
                if a["outcome"] not in RETRIED_AFTER:
                    found.append(f"{message_id} → {d['destination']}: retried after {a}")
    return found


def test_two_routers_share_the_work_without_double_delivery(pg_scenario: Scenario) -> None:
    posted = post(pg_scenario, 60)
    ids = [m for m, _ in posted]
    wait_all_confirmed(pg_scenario, ids, timeout_s=120)
    by = _dispatchers(pg_scenario, ids)
    assert set(by) == {"router", "router_2"}, by  # both replicas worked
    assert _each_attempt_once(pg_scenario, ids) == []  # no attempt sent by both replicas
    assert pg_scenario.treserva_stats()["duplicates"] == 0
    assert delivered_once(pg_scenario, ids) == {"lost": 0, "duplicated": 0}
    assert order_violations(pg_scenario, posted) == 0


def test_one_of_two_routers_killed(pg_scenario: Scenario, pg_stack: Stack) -> None:
    posted = post(pg_scenario, 20)  # both routers are busy with these
    pg_stack.kill("router_2", stay_down=True)  # gone for good: the other must take over
    killed = time.monotonic()
    posted += post(pg_scenario, 20)
    assert_promise(
        pg_scenario,
        posted,
        "one of two routers killed (kill -9, stays down)",
        killed,
        timeout_s=240,
    )


def test_postgres_restart(
    pg_scenario: Scenario, pg_stack: Stack, postgres: EphemeralPostgres
) -> None:
    posted = post(pg_scenario, 20)
    restarted = time.monotonic()
    postgres.restart(mode="immediate")  # as after a crash: no shutdown checkpoint
    posted += post(pg_scenario, 20)  # a 503 while it is down is sent again, as a source would
    assert_promise(
        pg_scenario,
        posted,
        "PostgreSQL restart (immediate stop, as a crash)",
        restarted,
        timeout_s=240,
    )
