"""kill -9 of a service in the middle of its work; the supervisor starts it again."""

import time
from datetime import datetime

import httpx
import pytest

from sandbox.scenario import IntakeUnavailable
from sandbox.simulators.samples.admission_notice import sample_admission
from tests.support.reliability import assert_promise, post

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def test_router_killed_in_the_middle_of_a_batch(scenario, supervised):
    posted = post(scenario, 20)  # the router is busy with these
    supervised.kill("router")
    killed = time.monotonic()
    posted += post(scenario, 20)  # accepted while the router is down: they wait in Kafka
    assert_promise(scenario, posted, "router killed (kill -9) mid-batch", killed, timeout_s=180)


def test_adapter_killed_between_the_post_and_the_recorded_result(scenario, supervised):
    scenario.set_treserva_fault("slow", slow_s=0.3)  # POSTs are in flight when the kill lands
    posted = post(scenario, 20)
    time.sleep(1.0)
    supervised.kill("adapter_treserva")
    killed = time.monotonic()
    scenario.set_treserva_fault("none")
    posted += post(scenario, 10)
    assert_promise(
        scenario, posted, "adapter_treserva killed (kill -9) during POSTs", killed, timeout_s=180
    )


def test_the_intake_answers_again_before_its_kafka_side_is_back(scenario, supervised):
    """kill -9 of adapter_takecare while TakeCare keeps posting: the restarted intake takes
    POSTs (stored in its outbox) before its Kafka clients have joined, and every accepted
    notice is delivered (issue: the intake stayed closed 12-19 s, 360 failed POSTs)."""
    posted = post(scenario, 5)
    supervised.kill("adapter_takecare")
    killed = time.monotonic()
    health = f"{supervised.takecare_adapter_url}/health"
    first_accepted = kafka_ready = None
    refused = 0
    while time.monotonic() - killed < 90 and (kafka_ready is None or first_accepted is None):
        event = sample_admission(scenario.rng, now=datetime.now().astimezone())
        patient = event["patient"]
        who = patient.get("personalIdentityNumber") or patient["reserveNumber"]
        try:
            posted.append((scenario.post_event("takecare", "admissions", event), who))
            first_accepted = first_accepted or time.monotonic()
        except (httpx.TransportError, IntakeUnavailable):
            refused += 1
        try:
            ready = httpx.get(health, timeout=1).json().get("kafka") == "ready"
        except (httpx.TransportError, ValueError):
            ready = False
        if ready and kafka_ready is None:
            kafka_ready = time.monotonic()
        time.sleep(0.05)
    assert first_accepted is not None and kafka_ready is not None
    assert first_accepted < kafka_ready, (
        f"the intake took its first POST {first_accepted - killed:.1f} s after the kill, "
        f"Kafka was ready after {kafka_ready - killed:.1f} s"
    )
    print(f"intake back {first_accepted - killed:.1f} s after the kill ({refused} refused)")
    assert_promise(
        scenario,
        posted,
        "adapter_takecare killed (kill -9) while TakeCare posts: intake back before Kafka",
        killed,
        timeout_s=120,
    )
