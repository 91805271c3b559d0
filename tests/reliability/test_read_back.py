"""Confirmation per destination: by Treserva's pushed receipt, by reading the notice back from
Treserva's API (a journal that never pushes one), or both. In each mode a silent drop (202,
then nothing stored) raises the confirmation-overdue alert within its deadline, a read-back
never mistakes the drop for a record, and once Treserva is repaired the notice is sent again
and confirmed (issue 17: the broker cannot assume a real journal will ever push a receipt)."""

import time
from pathlib import Path

import pytest

from sandbox.scenario import Scenario, wait_for
from sandbox.stack import Stack
from services.messaging.read_back_store import ConfirmationMode
from tests.support.reliability import assert_promise, post
from tests.support.stacks import fault_settings, supervise

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

DEADLINE_S = 5.0  # an admission notice's confirmation deadline (and re-send interval) here
CHECKS_S = 1.0  # how often the router's watchdog looks (ROUTER_CHECKS_S)
WARM_UP_S = 45.0  # a fresh stack's first delivery (consumer groups joining, a cold broker)
MODES = list(ConfirmationMode)


@pytest.fixture(params=MODES, ids=[m.value for m in MODES])
def mode(request: pytest.FixtureRequest) -> ConfirmationMode:
    mode: ConfirmationMode = request.param
    return mode


@pytest.fixture
def supervised(tmp_path: Path, stack_db: str | None, mode: ConfirmationMode):
    settings = fault_settings(
        tmp_path / "stack",
        database_url=stack_db,
        admission_confirmation_deadline_s=DEADLINE_S,
        treserva_confirmation=mode,
        takecare_confirmation=mode,  # primary care's inbox (TakeCare's simulator) too
        router_env={"CHECKS_S": str(CHECKS_S)},
    )
    with supervise(settings) as stack:
        yield stack


def _treserva_state(scenario: Scenario, message_id: str) -> str:
    found = scenario.message(message_id)
    assert found is not None
    return str(scenario.delivery(found, "treserva")["state"])


def _wait_until_no_open_overdue_alert(scenario: Scenario) -> None:
    def quiet() -> bool | None:
        items = scenario.ops("/api/v1/alerts?state=open")["items"]
        return not any(i["kind"] == "confirmation_overdue" for i in items) or None

    wait_for("no open confirmation-overdue alert", quiet, timeout_s=WARM_UP_S, interval_s=0.2)


def test_a_silent_drop_is_caught_and_repaired_whichever_way_treserva_confirms(
    scenario: Scenario, supervised: Stack, mode: ConfirmationMode
):
    # A normal admission is confirmed, by the way this mode confirms. The first confirmation
    # may be slow on a cold stack; if it overran its deadline, the overdue alert it raised
    # must close before the silent drop is tried, so that only the drop can open the alert
    # awaited below.
    (normal,) = post(scenario, 1)
    scenario.wait_for_state(normal[0], "confirmed", timeout_s=WARM_UP_S)
    _wait_until_no_open_overdue_alert(scenario)
    stats = scenario.treserva_stats()
    if mode is ConfirmationMode.READ_BACK:
        assert stats["receipts_sent"] == 0 and stats["read_backs"] >= 1, stats
    elif mode is ConfirmationMode.RECEIPT:
        assert stats["receipts_sent"] >= 1 and stats["read_backs"] == 0, stats
    else:
        assert stats["receipts_sent"] >= 1, stats

    # Treserva answers 202 and stores nothing: the alert comes within the deadline
    scenario.set_treserva_fault("silent-drop")
    posted_at = time.monotonic()
    dropped = post(scenario, 1)
    (message_id, _), misses = dropped[0], stats["read_back_misses"]
    scenario.wait_for_alert(
        "confirmation_overdue", "treserva", timeout_s=DEADLINE_S + 2 * CHECKS_S + 2
    )
    caught_s = time.monotonic() - posted_at
    assert _treserva_state(scenario, message_id) != "confirmed"  # nothing confirmed a drop
    stats = scenario.treserva_stats()
    assert stats["dropped"] >= 1 and stats["stored"] == 1, stats
    if mode.reads_back:
        assert stats["read_back_misses"] > misses, stats  # it looked, and found nothing
    print(f"{mode.value}: silent drop caught {caught_s:.1f} s after the post")

    # repaired: the notice is sent again at the next interval and confirmed
    scenario.set_treserva_fault("none")
    repaired = time.monotonic()
    assert_promise(
        scenario,
        [normal, *dropped],
        f"Treserva drops a notice silently, then is repaired (confirmed by {mode.value})",
        repaired,
        timeout_s=4 * DEADLINE_S + 10,
    )
