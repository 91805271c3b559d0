"""What every fault test asserts, read from the running stack over HTTP."""

import time
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx

from services.scenario import IntakeUnavailable, Scenario
from services.simulators.samples.admission_notice import sample_admission


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
