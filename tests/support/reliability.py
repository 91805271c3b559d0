"""What every fault test asserts, read from the running stack over HTTP, and the figures
it records for the table in docs/guarantees.md (test-output/reliability-results-*.json)."""

import fcntl
import json
import time
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from sandbox.scenario import IntakeUnavailable, Scenario, Timeout
from sandbox.simulators.samples.admission_notice import sample_admission
from tests.support.brokers import stack_broker
from tests.support.run_id import run_id


def post(scenario: Scenario, count: int) -> list[tuple[str, str]]:
    """Post admissions as TakeCare would: a refused connection (the adapter restarting) or
    a 503 (its database restarting) is retried until it is accepted."""
    posted = []
    for _ in range(count):
        event = sample_admission(scenario.rng, now=datetime.now().astimezone())
        patient = event["patient"]
        who = patient.get("personalIdentityNumber") or patient["reserveNumber"]
        deadline = time.monotonic() + 60
        while True:
            try:
                message_id = scenario.post_event("takecare", "admissions", event)
                break
            except (httpx.TransportError, IntakeUnavailable):
                assert time.monotonic() < deadline, "the intake did not come back"
                time.sleep(0.2)
        posted.append((message_id, who))
    return posted


def treserva_notices(scenario: Scenario) -> list[dict[str, Any]]:
    found = scenario.journal("treserva", "inskrivningsmeddelanden")
    items: list[dict[str, Any]] = found["items"]
    return items


def delivered_once(scenario: Scenario, message_ids: list[str]) -> dict[str, int]:
    """Lost and duplicated at the receiver, counted by business key (message id)."""
    held: dict[str, int] = defaultdict(int)
    for record in treserva_notices(scenario):
        held[record["meddelandeId"]] += 1
    return {
        "lost": sum(1 for m in message_ids if held[m] == 0),
        "duplicated": sum(n - 1 for n in held.values() if n > 1),
    }


def order_violations(scenario: Scenario, posted: list[tuple[str, str]]) -> int:
    """``posted`` is (message id, patient number) in posting order; count the patients
    whose notices Treserva stored in another order."""
    stored_at = {r["meddelandeId"]: r["receivedAt"] for r in treserva_notices(scenario)}
    by_patient: dict[str, list[str]] = defaultdict(list)
    for message_id, patient in posted:
        by_patient[patient].append(message_id)
    violations = 0
    for patient, ids in by_patient.items():
        times = [(stored_at[m], m) for m in ids if m in stored_at]
        for (a, ma), (b, mb) in pairwise(times):
            if a > b:
                violations += 1
                print(f"order: {patient[:4]}… {ma} stored {a} after {mb} stored {b}")
    return violations


def stuck(scenario: Scenario) -> dict[str, int]:
    """Deliveries in any state but confirmed."""
    counts: dict[str, int] = scenario.ops("/api/v1/deliveries/states")
    return {state: n for state, n in counts.items() if state != "confirmed" and n}


OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


BROKERS = {"tansu": "Tansu", "apache": "Apache Kafka (SASL_SSL)"}


def results_file(broker: str) -> Path:
    return OUTPUT / f"reliability-results-{broker}.json"


RESULTS = results_file(stack_broker())


def record_result(fault: str, **figures: object) -> None:
    """Keep the figures a test measured (fault → messages, lost, duplicated, …). Figures of
    an earlier run are dropped when this run writes its first, so the table shows this run
    only; workers running side by side write under a lock."""
    RESULTS.parent.mkdir(exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        kept = {k: v for k, v in found.items() if v.get("run") == run_id()}
        kept[fault] = {**figures, "run": run_id()}
        RESULTS.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")


def recorded_this_run() -> bool:
    if not RESULTS.exists():
        return False
    return any(v.get("run") == run_id() for v in json.loads(RESULTS.read_text()).values())


def wait_all_confirmed(scenario: Scenario, message_ids: list[str], timeout_s: float) -> float:
    """Seconds until every message is confirmed everywhere; fails at the deadline."""
    started = time.monotonic()
    for message_id in message_ids:
        remaining = max(1.0, timeout_s - (time.monotonic() - started))
        try:
            scenario.wait_for_state(message_id, "confirmed", timeout_s=remaining)
        except Timeout as exc:
            raise Timeout(f"{exc}\n{timeline(scenario, message_id)}") from None
    return time.monotonic() - started


def timeline(scenario: Scenario, message_id: str) -> str:
    """Where a message's deliveries stand and how they got there (states, attempts and
    reasons from the router's API: ids and states, no patient data), for a failure."""
    found = scenario.message(message_id)
    if found is None:
        return "the router does not know the message (or does not answer)"
    lines = []
    for d in found.get("deliveries", []):
        lines.append(
            f"{d.get('destination')}: {d.get('state')}, attempts {d.get('attempts')}, "
            f"last error {d.get('last_error')!r}"
        )
        for t in d.get("transitions", []):
            lines.append(
                f"  {t.get('at')} {t.get('from_state')} -> {t.get('to_state')}: {t.get('reason')}"
            )
    return "\n".join(lines)


def assert_promise(
    scenario: Scenario,
    posted: list[tuple[str, str]],
    fault: str,
    started: float,
    *,
    timeout_s: float,
    recovered: list[str] | None = None,
    **figures: object,
) -> float:
    """The promise every fault test checks, recorded for the Guarantees table: all posted
    messages confirmed, each held once by the receiver, in per-patient order, nothing stuck;
    recovery counted from ``started`` (the fault, or the destination coming back) until
    the ``recovered`` messages are confirmed (default: all; a test whose earlier messages
    were confirmed before the fault leaves out the time it takes to check them), and
    returned. ``figures``: more the test measured, recorded with them (``republished``, the
    records a broker data loss made the services publish again, shows in the table)."""
    ids = [m for m, _ in posted]
    wait_all_confirmed(scenario, ids if recovered is None else recovered, timeout_s=timeout_s)
    recovery_s = time.monotonic() - started
    wait_all_confirmed(scenario, ids, timeout_s=timeout_s)
    counts = delivered_once(scenario, ids)
    order = order_violations(scenario, posted)
    record_result(
        fault,
        messages=len(ids),
        lost=counts["lost"],
        duplicated=counts["duplicated"],
        order_violations=order,
        recovery_s=round(recovery_s, 1),
        **figures,
    )
    assert counts == {"lost": 0, "duplicated": 0}
    assert order == 0
    assert stuck(scenario) == {}
    return recovery_s


def results_table() -> str:
    """The fault table of docs/guarantees.md, a column per broker, from what the tests recorded
    (each broker's pass writes its own file; a fault not run on a broker shows a dash)."""
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
                + (
                    f"; {f['republished']} records re-published"
                    if f.get("republished") is not None
                    else ""
                )
            )
        lines.append(f"| {fault} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
