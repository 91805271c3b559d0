"""A notice Treserva drops silently for longer than the re-send budget still arrives once
Treserva is repaired (issue: with 15 attempts 15 minutes apart, a notice dropped overnight
stayed `sent` for good; neither the watchdog nor a replay would send it again)."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.scenario import Scenario, wait_for
from sandbox.stack import Stack
from tests.support.reliability import assert_promise, post
from tests.support.stacks import fault_settings, supervise

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

INTERVAL_S = 3.0  # the confirmation interval: a night of 15-minute intervals, in seconds
BUDGET = 2  # attempts per round


@pytest.fixture
def supervised(tmp_path: Path, stack_db: str | None):
    settings = fault_settings(
        tmp_path / "stack",
        database_url=stack_db,
        admission_confirmation_deadline_s=INTERVAL_S,
        router_env={"FAMILY_TERMS": json.dumps({"admission-notice": {"max_attempts": BUDGET}})},
    )
    with supervise(settings) as stack:
        yield stack


def _treserva_attempts(scenario: Scenario, message_id: str) -> int:
    found = scenario.message(message_id)
    return int(scenario.delivery(found, "treserva")["attempts"]) if found else 0


def _replayable(scenario: Scenario) -> dict[str, Any] | None:
    candidates = scenario.ops("/api/v1/replays/candidates?destination=treserva")
    by_state = candidates["byState"]
    return candidates if by_state["sent"] + by_state["pending"] >= 1 else None


def test_a_notice_dropped_past_its_budget_arrives_once_treserva_is_repaired(
    scenario: Scenario, supervised: Stack
):
    scenario.set_treserva_fault("silent-drop")
    posted = post(scenario, 5)
    # the drop outlasts the budget several times over: each patient's first notice is sent
    # again and again (a patient's later ones wait behind it, unconfirmed as it is)
    firsts = list({who: m for m, who in reversed(posted)}.values())
    wait_for(
        f"each patient's first notice sent {BUDGET * 3} times into the drop",
        lambda: all(_treserva_attempts(scenario, m) >= BUDGET * 3 for m in firsts) or None,
        timeout_s=120,
    )
    assert scenario.treserva_stats()["stored"] == 0
    # every re-send passes through `dispatched` (not replayable: its outcome is on its way),
    # and a slow broker can hold all of them there at one instant; so poll, with a deadline
    candidates = wait_for(
        "a replay candidate for treserva",
        lambda: _replayable(scenario),
        timeout_s=3 * INTERVAL_S,
        interval_s=0.1,
    )
    assert candidates["count"] >= 1, candidates
    overdue = scenario.wait_for_alert("confirmation_overdue", "treserva", timeout_s=10)
    assert overdue["next_step"]["action"] == "send again", overdue
    scenario.set_treserva_fault("none")  # repaired in the morning
    repaired = time.monotonic()
    assert_promise(
        scenario,
        posted,
        "Treserva drops notices silently past the re-send budget, then is repaired",
        repaired,
        timeout_s=120,
    )
