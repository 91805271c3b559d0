"""Faults at the destination: Treserva answering slower than the broker waits, and Treserva
down while a burst arrives."""

import time

import pytest

from tests.support.brokers import stack_broker
from tests.support.reliability import assert_promise, post

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(400)]


def test_treserva_answering_slower_than_the_attempt_timeout(scenario):
    """Treserva answers in 7 s, the router's attempt timeout is 5 s: every first attempt
    expires while Treserva is still answering. Each expiry counts against Treserva's circuit,
    so after five the circuit opens and the remaining retries wait for its probe; meanwhile
    Treserva stores each notice late and pushes its receipt, which confirms the delivery
    whether or not it was sent again. A retry that does reach Treserva is deduped on the
    Idempotency-Key, so each notice is stored once (the promise: 0 duplicated). How many are
    sent a second time is a race between the retries and the circuit (a loaded CI machine
    expired all ten in one tick and opened the circuit before any retry left), so the test
    asserts the expiries, not the retries. (Answering in exactly the timeout, 5 s, made even
    the expiry a race with the answer.)"""
    scenario.set_treserva_fault("slow", slow_s=7.0)
    started = time.monotonic()
    posted = post(scenario, 10)
    assert_promise(
        scenario, posted, "Treserva answering in 7 s (attempt timeout 5 s)", started, timeout_s=240
    )
    first_outcomes = []
    for message_id, _ in posted:
        found = scenario.message(message_id)
        assert found is not None
        attempts = scenario.delivery(found, "treserva")["attempts_log"]
        first_outcomes.append(attempts[0]["outcome"])
    # every first attempt expired: the router stopped waiting for Treserva after 5 s
    assert first_outcomes == ["timeout"] * len(posted), first_outcomes


def burst_size() -> int:
    """The issue's full-size burst, 1,000, on Tansu (``make reliability``). On Apache Kafka
    (``make test``, which runs the fault-injection suite on production's pair) 300: the
    subject, the circuit keeping a backlog pending without spending its attempts and the
    drain in order afterwards, is the router's and the same on either broker, and the drain
    runs at about 11 messages a second on this 2-core machine (one stack alone; about 3 beside
    another stack), so 1,000 there would take CI 5 minutes more."""
    return 1000 if stack_broker() == "tansu" else 300


@pytest.mark.timeout(900)
def test_treserva_down_two_minutes_during_a_burst(scenario):
    """The issue's outage: the circuit opens, deliveries wait in pending without spending
    their attempts, and after Treserva returns the backlog drains in order."""
    size = burst_size()
    scenario.set_treserva_fault("down")
    outage_ends = time.monotonic() + 120.0
    posted = post(scenario, size)
    time.sleep(max(0.0, outage_ends - time.monotonic()))  # the fault itself: 2 min down
    scenario.set_treserva_fault("none")
    up = time.monotonic()
    assert_promise(scenario, posted, "Treserva down 2 min during a burst", up, timeout_s=600)
