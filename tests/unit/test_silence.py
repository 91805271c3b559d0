"""Silent sources: nothing arrives where something should have, inside active hours."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.router.alerting.events import AlertChange
from services.router.alerting.rules import AlertingRules
from services.router.alerting.silence import SilenceRule, expectation, is_active
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from tests.support.incidents import Sink, admission, alerts
from tests.support.router import Clock

pytestmark = pytest.mark.alerts

MONDAY_NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Stockholm
RULE = SilenceRule(source="takecare", event_code="admission-notice", window_h=4, learn_weeks=2)


def test_active_hours_are_swedish_local_time():
    rule = SilenceRule(source="takecare", event_code="admission-notice", weekdays_only=True)
    assert is_active(rule, MONDAY_NOON)
    assert not is_active(rule, datetime(2026, 11, 23, 5, 30, tzinfo=UTC))  # 06:30 local
    assert not is_active(rule, MONDAY_NOON - timedelta(days=2))  # Saturday


def test_history_raises_the_expectation_only_when_it_is_clear():
    assert expectation(RULE, [0, 1]).expected == 1.0  # the configured floor
    learned = expectation(RULE, [6, 8])
    assert (learned.expected, learned.learned) == (7.0, True)


async def silent_ones(sessions):
    return [a for a in await alerts(sessions) if a.kind == "silent_source"]


@pytest.fixture
def clock():
    c = Clock()
    c.now = MONDAY_NOON
    return c


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
async def router(sessions, clock, sink):
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(hours=48),
            confirmation_deadline=timedelta(hours=48),
            retry=RetryPolicy(),
        ),
        attempt_timeout=timedelta(hours=48),
        rng=random.Random(1),
        alert_sinks=(sink,),
    )
    r = Router(sessions=sessions, rules=rules, clock=clock, alerting=AlertingRules(silence=(RULE,)))
    await r.sync_subscriptions()
    return r


async def test_a_silent_trigger_opens_an_incident_that_closes_when_notices_come_back(
    router, sessions, clock, sink
):
    await router.handle_batch([admission(1, admitted_at=clock(), patient="a" * 32)])
    await router.tick()  # the router starts watching now
    clock.advance(3.5 * 3600)
    await router.tick()
    assert await silent_ones(sessions) == []  # the last notice came 3.5 h ago
    clock.advance(1 * 3600)
    await router.tick()
    (silent,) = [a for a in await alerts(sessions) if a.kind == "silent_source"]
    assert (silent.destination, silent.event_code, silent.state) == (
        "takecare",
        "admission-notice",
        "open",
    )
    clock.advance(120)
    await router.tick()  # still silent: the same incident, no new notice
    assert [e.change for e in sink.events if e.kind == "silent_source"] == [AlertChange.OPENED]
    await router.handle_batch([admission(2, admitted_at=clock(), patient="b" * 32)])
    clock.advance(61)
    await router.tick()
    (silent,) = [a for a in await alerts(sessions) if a.kind == "silent_source"]
    assert silent.state == "resolved" and silent.resolved_by == "router"


async def test_nothing_is_judged_outside_active_hours_or_before_a_full_window(
    router, sessions, clock
):
    await router.tick()
    clock.advance(3 * 3600)  # 15:00 local: watched for 3 h only
    await router.tick()
    assert await silent_ones(sessions) == []
    clock.now = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 local: outside 07–22
    await router.tick()
    assert await silent_ones(sessions) == []
