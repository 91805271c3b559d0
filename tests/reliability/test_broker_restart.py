"""Tansu keeps nothing on disk: a restart wipes every topic, offset and consumer group. The
services notice the new broker epoch, restart themselves (crash-only), recreate the topics
and re-publish from their outboxes; nothing accepted is lost or applied twice."""

import time

import pytest

from tests.reliability.checks import delivered_once, order_violations, post, stuck
from tests.reliability.conftest import record_result, wait_all_confirmed

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def test_a_broker_restart_loses_nothing_and_duplicates_nothing(scenario, supervised):
    before = post(scenario, 15)
    wait_all_confirmed(scenario, [m for m, _ in before[:5]], timeout_s=30)
    in_flight = post(scenario, 15)  # some of these are still on their way
    supervised.kill("tansu")
    restarted = time.monotonic()
    supervised.restart("tansu")
    after = post(scenario, 15)  # accepted while the services recover: the outbox holds them
    posted = before + in_flight + after
    ids = [m for m, _ in posted]
    wait_all_confirmed(scenario, ids, timeout_s=180)
    recovery_s = time.monotonic() - restarted
    counts = delivered_once(scenario, ids)
    order = order_violations(scenario, posted)
    record_result(
        "Tansu restart (all broker data lost)",
        messages=len(ids),
        lost=counts["lost"],
        duplicated=counts["duplicated"],
        order_violations=order,
        recovery_s=round(recovery_s, 1),
    )
    assert counts == {"lost": 0, "duplicated": 0}
    assert order == 0
    assert stuck(scenario) == {}
