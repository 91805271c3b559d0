"""Faults at the destination: Treserva answering slower than the broker waits, and Treserva
down while a burst arrives."""

import time

import pytest

from tests.support.brokers import stack_broker
from tests.support.reliability import assert_promise, post

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(400)]


def test_treserva_answering_slower_than_the_attempt_timeout(scenario):
    """Treserva answers in 7 s, the router's attempt timeout is 5 s: every first attempt
    expires while Treserva is still answering, so it is sent again. The retry reaches Treserva,
    which dedupes it on the Idempotency-Key, or, on a loaded machine, reaches the adapter only
    after the first attempt was answered, and the adapter sends a delivered message no second
    time; either way each notice is stored once (the promise: 0 duplicated). (Answering in
    exactly the timeout, 5 s, made the retry a race with the answer, and a loaded CI machine
    lost it.)"""
    scenario.set_treserva_fault("slow", slow_s=7.0)
    started = time.monotonic()
    posted = post(scenario, 10)
    assert_promise(
        scenario, posted, "Treserva answering in 7 s (attempt timeout 5 s)", started, timeout_s=240
    )
    attempts = []
    for message_id, _ in posted:
        found = scenario.message(message_id)
        assert found is not None
        attempts.append(len(scenario.delivery(found, "treserva")["attempts_log"]))
    assert max(attempts) >= 2, attempts  # the first attempts expired and were sent again


def burst_size() -> int:
    """The issue's full-size burst, 1,000, on Tansu (``make test``). On Apache Kafka 300: the
    subject, the circuit keeping a backlog pending without spending its attempts and the
    drain in order afterwards, is the router's and the same on either broker, and the drain
    runs at about 11 messages a second on this 2-core machine (one stack alone; about 3 beside
    another stack), so 1,000 there would take CI's Apache pass 5 minutes more."""
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
