"""A full run of the stack, every family in both directions plus the paths where patient data
meets an error (a refused event, a rejected notice, a personnummer search, a payload view, a
webhook subscriber), leaves logs that hold no test personnummer, name or street address.

Every process's log is read: the broker's own services and the simulated journals alike.
Logs are JSON, so each line is also read decoded (a name with å could hide as ``\\u00e5``)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sandbox.scenario import Scenario
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.people import (
    ALL_ADDRESSES,
    PEOPLE,
    RESERVE_NUMBERS,
    TEST_IDENTIFIERS,
)
from sandbox.stack import Stack
from tests.support import fhir_tap
from tests.support.stacks import e2e_settings, running

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.security,
    pytest.mark.broker_independent,
    pytest.mark.database_independent,
]

FAMILIES = {
    "takecare": (
        "admission-notice",
        "discharge-readiness",
        "discharge-notice",
        "medication-list",
        "sip-update",
    ),
    "treserva": ("medication-list", "sip-update"),
}
OPS = {"authorization": "Bearer sandbox-ops-token"}


def patient_data() -> set[str]:
    """Every form in which a test patient's identity could be written down."""
    found: set[str] = set()
    for number in (*TEST_IDENTIFIERS, *RESERVE_NUMBERS):
        found.add(number)
        if number.isdigit():
            found |= {f"{number[:8]}-{number[8:]}", number[2:], f"{number[2:8]}-{number[8:]}"}
    for family, given in PEOPLE:
        found |= {family, given}
    for street, _postal, _city in ALL_ADDRESSES:  # every sandbox region's
        found.add(street)
    return found


def readings(line: str) -> list[str]:
    """The line as written, and (for JSON) every string in it decoded."""
    out = [line]
    try:
        doc = json.loads(line)
    except ValueError:
        return out
    out.append(json.dumps(doc, ensure_ascii=False))
    return out


def leaks(log_dir: Path, secrets: set[str]) -> list[str]:
    hits = []
    for path in sorted(log_dir.glob("*.log")):
        for number, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
            for text in readings(line):
                for secret in secrets:
                    if secret in text:
                        hits.append(f"{path.name}:{number}: {secret!r}")
    return sorted(set(hits))


def test_the_check_finds_a_name_however_it_was_written(tmp_path: Path):
    (tmp_path / "a.log").write_text(
        json.dumps({"msg": "intake", "family": "Öberg"})
        + "\n"  # ensure_ascii: \u00d6berg
        + "plain 19121212-1212\n"
        + json.dumps({"msg": "ok", "pseudonym": "p-3f9a"})
        + "\n",
        "utf-8",
    )
    assert leaks(tmp_path, patient_data()) == [
        "a.log:1: 'Öberg'",
        "a.log:2: '121212-1212'",
        "a.log:2: '19121212-1212'",
    ]


@pytest.fixture
def debug_stack(tmp_path: Path, stack_db: str | None) -> Iterator[Stack]:
    """A stack whose router logs at DEBUG, so even its chattiest lines are checked."""
    with running(e2e_settings(tmp_path, stack_db, router_env={"LOG_LEVEL": "DEBUG"})) as s:
        yield s


def test_the_logs_of_a_full_run_hold_no_personnummer_name_or_address(debug_stack: Stack):
    stack = debug_stack
    scenario = Scenario(stack, random.Random(11))
    try:
        scenario.subscribe(["admission-notice", "discharge-notice"])
        confirmed = [
            message_id
            for source, families in FAMILIES.items()
            for family in families
            for message_id in scenario.emit(source, family, count=3)
        ]

        # an event with a real test personnummer and a broken field: refused, named, not echoed
        broken = sample_admission(random.Random(3), now=datetime.now().astimezone())
        broken["patient"].pop("reserveNumber", None)
        broken["patient"].pop("reserveNumberKind", None)
        broken["patient"]["personalIdentityNumber"] = TEST_IDENTIFIERS[1]
        broken["encounter"]["admittedAt"] = "yesterday, around lunch"
        res = httpx.post(
            f"{stack.takecare_adapter_url}/takecare/v1/admissions",
            json=broken,
            headers={"authorization": "Bearer sandbox-takecare-key"},
        )
        assert res.status_code == 422, res.text
        # the same body with the wrong key, and with a personnummer whose check digit is wrong
        res = httpx.post(
            f"{stack.takecare_adapter_url}/takecare/v1/admissions",
            json=broken,
            headers={"authorization": "Bearer not-a-key"},
        )
        assert res.status_code == 401
        broken["patient"]["personalIdentityNumber"] = TEST_IDENTIFIERS[1][:-1] + "3"
        res = httpx.post(
            f"{stack.takecare_adapter_url}/takecare/v1/admissions",
            json=broken,
            headers={"authorization": "Bearer sandbox-takecare-key"},
        )
        assert res.status_code == 422, res.text

        for message_id in confirmed:
            scenario.wait_for_state(message_id, "confirmed", timeout_s=60)

        # a notice Treserva rejects: dead-lettered, alerted
        scenario.set_treserva_fault("reject")
        rejected = scenario.emit("takecare", "admission-notice")[0]
        scenario.wait_for_state(rejected, "dead_letter", timeout_s=30, destination="treserva")
        scenario.wait_for_alert("delivery_failed", "treserva", timeout_s=10)
        scenario.set_treserva_fault("none")

        # an operator searches by personnummer and opens a payload, with reasons
        for number in TEST_IDENTIFIERS:
            res = httpx.post(
                f"{stack.router_url}/api/v1/messages/search/personnummer",
                json={"personnummer": number, "operator": "asa", "reason": "uppföljning"},
                headers=OPS,
            )
            assert res.status_code == 200, res.text
        res = httpx.post(
            f"{stack.router_url}/api/v1/messages/{confirmed[0]}/payload",
            json={"operator": "asa", "reason": "avvikelseutredning"},
            headers=OPS,
        )
        assert res.status_code == 200, res.text
        assert any(secret in res.text for secret in patient_data())  # the payload does hold it
        assert scenario.subscriber_stats()["stored"] >= 3
    finally:
        scenario.close()
    fhir_tap.drain(stack)  # read Kafka for the module's FHIR check while it still runs
    stack.stop()  # flush every process's log

    log_dir = stack.settings.data_dir / "logs"
    written = {path.name: path.stat().st_size for path in log_dir.glob("*.log")}
    for name in ("router.log", "adapter_takecare.log", "adapter_treserva.log"):
        assert written.get(name, 0) > 0, f"{name} is empty: the check would prove nothing"
    assert leaks(log_dir, patient_data()) == []
