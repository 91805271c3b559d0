"""The stack's wall clock jumps two hours forward while notices are in flight, then two hours
back while Treserva drops one silently (issue: after a forward jump every in-flight attempt
timed out, the circuit opened, and 8 notices confirmed 8–16 s later raised a critical
incident, 8 deviations and 8 urgent emails to the home-care unit; a backward jump would
delay the silent-drop alert by two hours).

The clock moves from outside, through the stack's clock seam (a file every service reads,
services.messaging.clock), as an NTP step moves a host's; the simulated journals keep the
true time, as other hosts would."""

import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from sandbox.gotland_demo import OPS_MAILBOX, Inbox
from sandbox.scenario import Scenario, wait_for
from sandbox.stack import Stack
from tests.support.reliability import assert_promise, post
from tests.support.stacks import fault_settings, supervise

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

INTERVAL_S = 20.0  # every family's confirmation interval, and so the alert hold
SLOW_S = 6.0  # Treserva takes this long to answer: attempts are in flight at the jump
TWO_HOURS = 2 * 3600


@pytest.fixture
def supervised(tmp_path: Path, stack_db: str | None, mail):
    _inbox, env = mail
    settings = fault_settings(
        tmp_path / "stack",
        database_url=stack_db,
        admission_confirmation_deadline_s=INTERVAL_S,
        confirmation_deadline_s=INTERVAL_S,
        attempt_timeout_s=SLOW_S * 2,
        router_env={**env, "ALERT_FALLBACK_INTERVAL_S": "5"},
    )
    with supervise(settings) as stack:
        yield stack


def _unit_mails(inbox: Inbox) -> list[EmailMessage]:
    with inbox.lock:
        return [m for m in inbox.mails if OPS_MAILBOX not in str(m["To"])]


def _treserva_state(scenario: Scenario, message_id: str) -> str | None:
    found = scenario.message(message_id)
    return None if found is None else scenario.delivery(found, "treserva")["state"]


def _treserva_attempts(scenario: Scenario, message_id: str) -> int:
    found = scenario.message(message_id)
    assert found is not None
    return int(scenario.delivery(found, "treserva")["attempts"])


def _jumps(scenario: Scenario) -> list[dict[str, Any]]:
    return list(scenario.ops("/api/v1/dashboard")["clockJumps"])


def test_a_clock_jump_either_way_neither_fires_nor_delays_the_watchdog(
    scenario: Scenario, supervised: Stack, mail
):
    inbox, _env = mail
    scenario.set_treserva_fault("slow", slow_s=SLOW_S)
    posted = post(scenario, 8)
    wait_for(
        "attempts in flight at Treserva",
        lambda: (
            any(
                scenario.delivery(d, "treserva")["state"] == "dispatched"
                for d in (scenario.message(m) for m, _ in posted)
                if d is not None
            )
            or None
        ),
        timeout_s=30,
    )
    supervised.set_clock_skew(TWO_HOURS)
    jumped = time.monotonic()
    wait_for("the forward jump detected", lambda: _jumps(scenario) or None, timeout_s=10)
    scenario.set_treserva_fault("none")
    assert_promise(
        scenario,
        posted,
        "the wall clock jumps 2 h forward with 8 notices in flight",
        jumped,
        timeout_s=120,
    )
    alerts = scenario.ops("/api/v1/alerts")["items"]
    assert [a["kind"] for a in alerts] == [], "a false alarm from the jump"
    assert scenario.ops("/api/v1/deviations")["count"] == 0
    assert _unit_mails(inbox) == []
    (forward,) = _jumps(scenario)
    assert forward["seconds"] == pytest.approx(TWO_HOURS, abs=5)
    circuits = {
        d["destination"]: d["circuit"] for d in scenario.ops("/api/v1/destinations")["items"]
    }
    assert circuits.get("treserva", "closed") == "closed"
    attempts = [_treserva_attempts(scenario, m) for m, _ in posted]
    assert attempts == [1] * len(posted), "an attempt in flight counted as timed out"

    # two hours back (NTP puts the clock right again) while Treserva drops a notice
    scenario.set_treserva_fault("silent-drop")
    (dropped,) = post(scenario, 1)
    wait_for(
        "the notice accepted by Treserva, and dropped",
        lambda: _treserva_state(scenario, dropped[0]) == "sent" or None,
        timeout_s=30,
    )
    supervised.set_clock_skew(0)
    went_back = time.monotonic()
    alert = scenario.wait_for_alert(
        "confirmation_overdue", "treserva", timeout_s=INTERVAL_S * 2 + 30
    )
    detected_s = time.monotonic() - went_back
    backward = _jumps(scenario)[0]
    assert backward["seconds"] == pytest.approx(-TWO_HOURS, abs=5)
    assert alert["kind"] == "confirmation_overdue"
    # its deadline, then the hold after the jump: never the two hours the clock went back
    assert detected_s < INTERVAL_S * 2 + 15, detected_s
    scenario.set_treserva_fault("none")
    assert_promise(
        scenario,
        [dropped],
        "the wall clock jumps 2 h back during a silent drop: alerted at deadline + hold",
        went_back,
        timeout_s=120,
    )
