"""A real stack under a supervisor (as `make run` has), for fault injection.

Each test injects one fault and then checks the promise: every accepted message is confirmed
once at the simulated journal (by business key), per-patient order holds, nothing is stuck,
and the recovery time is reported (test-output/reliability-results.json, README Guarantees)."""

import contextlib
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.demo import demo_settings
from services.scenario import Scenario
from services.stack import Stack, StackSettings
from tests.reliability.checks import delivered_once, order_violations, stuck
from tests.reliability.postgres import EphemeralPostgres
from tests.support.brokers import stack_broker

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
BROKERS = {"tansu": "Tansu", "apache": "Apache Kafka (SASL_SSL)"}


def results_file(broker: str) -> Path:
    return OUTPUT / f"reliability-results-{broker}.json"


RESULTS = results_file(stack_broker())
_recorded: list[str] = []  # faults recorded in this run


@contextlib.contextmanager
def supervise(settings: StackSettings) -> Iterator[Stack]:
    """A started stack whose exited children are restarted, as `make run` does."""
    stack = Stack(settings, echo=lambda _: None)
    stop = threading.Event()
    failure: list[BaseException] = []

    def revive() -> None:
        while not stop.wait(0.2):
            try:
                stack.revive()
            except BaseException as exc:  # reported by the test, not lost in a thread
                failure.append(exc)
                return

    try:
        stack.start()
        thread = threading.Thread(target=revive, daemon=True)
        thread.start()
        yield stack
    finally:
        stop.set()
        stack.stop()
    assert not failure, failure


def fault_settings(data_dir: Path, **overrides: object) -> StackSettings:
    return demo_settings(
        data_dir,
        kafka=stack_broker(),
        admission_confirmation_deadline_s=900,
        confirmation_deadline_s=900,
        attempt_timeout_s=5.0,
        retry_base_s=0.2,
        **overrides,
    )


@pytest.fixture
def supervised(tmp_path: Path, stack_db: str | None) -> Iterator[Stack]:
    with supervise(fault_settings(tmp_path / "stack", database_url=stack_db)) as stack:
        yield stack


@pytest.fixture
def scenario(supervised: Stack) -> Iterator[Scenario]:
    s = Scenario(supervised, random.Random(7))
    yield s
    s.close()


@pytest.fixture
def postgres() -> Iterator[EphemeralPostgres]:
    """A private PostgreSQL server the test may restart (never the machine's shared one)."""
    server = EphemeralPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def record_result(fault: str, **figures: object) -> None:
    """Keep the figures a test measured (fault → messages, lost, duplicated, …); the first
    record of a run starts the file afresh, so the table shows this run's figures only."""
    RESULTS.parent.mkdir(exist_ok=True)
    if not _recorded:
        RESULTS.unlink(missing_ok=True)
    _recorded.append(fault)
    found = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    found[fault] = figures
    RESULTS.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")


def wait_all_confirmed(scenario: Scenario, message_ids: list[str], timeout_s: float) -> float:
    """Seconds until every message is confirmed everywhere; fails at the deadline."""
    started = time.monotonic()
    for message_id in message_ids:
        remaining = max(1.0, timeout_s - (time.monotonic() - started))
        scenario.wait_for_state(message_id, "confirmed", timeout_s=remaining)
    return time.monotonic() - started


def assert_promise(
    scenario: Scenario,
    posted: list[tuple[str, str]],
    fault: str,
    started: float,
    *,
    timeout_s: float,
) -> None:
    """The promise every fault test checks, recorded for the Guarantees table: all posted
    messages confirmed, each held once by the receiver, in per-patient order, nothing stuck;
    recovery counted from ``started`` (the fault, or the destination coming back)."""
    ids = [m for m, _ in posted]
    wait_all_confirmed(scenario, ids, timeout_s=timeout_s)
    recovery_s = time.monotonic() - started
    counts = delivered_once(scenario, ids)
    order = order_violations(scenario, posted)
    record_result(
        fault,
        messages=len(ids),
        lost=counts["lost"],
        duplicated=counts["duplicated"],
        order_violations=order,
        recovery_s=round(recovery_s, 1),
    )
    assert counts == {"lost": 0, "duplicated": 0}
    assert order == 0
    assert stuck(scenario) == {}


def results_table() -> str:
    """The README's Guarantees table, a column per broker, from what the tests recorded (each
    broker's pass writes its own file; a fault not run on a broker shows a dash)."""
    found = {
        broker: json.loads(results_file(broker).read_text())
        for broker in BROKERS
        if results_file(broker).exists()
    }
    faults = sorted({fault for figures in found.values() for fault in figures})
    lines = [
        "| fault | " + " | ".join(BROKERS[b] for b in found) + " |",
        "|---|" + "---|" * len(found),
    ]
    for fault in faults:
        cells = []
        for broker in found:
            f = found[broker].get(fault)
            cells.append(
                "–"
                if f is None
                else f"{f['messages']} msgs: {f['lost']} lost, {f['duplicated']} duplicated, "
                f"{f['order_violations']} out of order; recovered in {f['recovery_s']} s"
            )
        lines.append(f"| {fault} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _recorded and RESULTS.exists():
        terminalreporter.write_sep("-", "fault injection results")
        terminalreporter.write_line(results_table())
