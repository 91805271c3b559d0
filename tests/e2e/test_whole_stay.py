"""One whole stay over real sockets (issue 20): a Falkenberg patient of the fictive
three-municipality region (contracts/units/halland.json), listed at Vårdcentralen Falkenberg,
goes through the whole process on the real stack (broker, router, adapters, simulators):

admission notice (TakeCare) → the municipality's answer (Treserva → TakeCare) → ready for
discharge (TakeCare) → SIP invitation → medication list → discharge notice → read receipt
(Treserva → TakeCare), and the hospital's read receipt of the municipality's answer.

Every message reaches exactly the right units: Falkenberg's home-care unit at Treserva and
the listed vårdcentral in primary care, and nothing is filed under any other unit of the
directory (the simulators' per-unit stores are read for every unit); the municipality's
messages reach TakeCare. The ready notice was sent and the patient discharged the same day,
so Falkenberg's payment clock stays at 0 days for the month."""

import json
import random
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.scenario import Scenario, wait_for
from sandbox.simulators import treserva as treserva_sim
from sandbox.simulators.samples.admission_answer import answer_to
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.discharge import (
    sample_discharge_notice,
    sample_discharge_readiness,
)
from sandbox.simulators.samples.medication_list import sample_takecare_medication_list
from sandbox.simulators.samples.people import STOCKHOLM, takecare_patient
from sandbox.simulators.samples.read_receipt import (
    read_receipt_for,
    sample_takecare_read_receipt,
)
from sandbox.simulators.samples.sip_update import sample_takecare_sip_update
from tests.support.stacks import e2e_settings, running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.broker_independent]

HALLAND = Path(__file__).resolve().parents[2] / "contracts" / "units" / "halland.json"
UNITS = [unit["hsaId"] for unit in json.loads(HALLAND.read_text(encoding="utf-8"))["units"]]
FALKENBERG = "1382"
HOME_CARE = "SE2120000001-FBGHSV"  # Hemsjukvården Falkenberg: the only one to receive
VARDCENTRAL = "SE2321000115-VCFBG"  # Vårdcentralen Falkenberg, where the patient is listed
PRIMARY_CARE_INBOX = "primary-care/$process-message"
DELIVERED_S = 30.0  # each message confirmed by its receivers within this


@pytest.fixture
def scenario(tmp_path, stack_db):
    settings = e2e_settings(tmp_path, stack_db, router_env={"ALERT_UNIT_DIRECTORY": str(HALLAND)})
    with running(settings) as stack:
        s = Scenario(stack, random.Random(2020))
        try:
            yield s
        finally:
            s.close()


def _now() -> datetime:
    return datetime.now().astimezone(STOCKHOLM).replace(microsecond=0)


def _patient(rng: random.Random) -> dict[str, Any]:
    """A patient of Falkenberg with a personnummer (not a protected identity), listed at
    Vårdcentralen Falkenberg."""
    found = takecare_patient(rng, protected_share=0.0)
    for key in ("reserveNumber", "reserveNumberKind"):
        found.pop(key, None)
    return {
        **found,
        "personalIdentityNumber": found.get("personalIdentityNumber", "191212121212"),
        "municipalityOfResidence": FALKENBERG,
        "listedPrimaryCareUnit": VARDCENTRAL,
    }


def _confirmed(
    scenario: Scenario, message_id: str, destinations: set[str], step: str
) -> dict[str, Any]:
    """The message once its every delivery is confirmed, addressed to the right units."""
    try:
        detail = scenario.wait_for_state(message_id, "confirmed", timeout_s=DELIVERED_S)
    except AssertionError as exc:
        raise AssertionError(f"{step}: {exc}; router: {scenario.message(message_id)}") from exc
    found = {d["destination"]: d.get("receiver_unit_hsa") for d in detail["deliveries"]}
    assert set(found) == destinations, (step, found)
    if "treserva" in found:
        assert found["treserva"] == HOME_CARE, (step, found)
    if "primary-care" in found:
        assert found["primary-care"] == VARDCENTRAL, (step, found)
    return detail


def _at_treserva(scenario: Scenario, kind: str, message_id: str, step: str) -> dict[str, Any]:
    record = scenario.journal("treserva", f"{kind}/{message_id}")
    assert record is not None, f"{step}: Treserva holds no {kind} {message_id}"
    assert record["mottagandeEnhet"] == record["receivingUnit"] == HOME_CARE, step
    return dict(record)


def _in_primary_care(scenario: Scenario, message_id: str, step: str) -> None:
    bundle = scenario.journal("primary-care", f"{PRIMARY_CARE_INBOX}/{message_id}")
    assert bundle is not None, f"{step}: primary care holds no {message_id}"
    assert bundle["resourceType"] == "Bundle" and bundle["receivingUnit"] == VARDCENTRAL, step


def _at_takecare(scenario: Scenario, kind: str, message_id: str, step: str) -> None:
    record = scenario.journal("takecare", f"{kind}/{message_id}")
    assert record is not None, f"{step}: TakeCare holds no {kind} {message_id}"


def _filed_per_unit(scenario: Scenario, system: str, paths: list[str]) -> dict[str, set[str]]:
    """Every unit of the directory → the keys of the records filed under it, all kinds."""
    filed: dict[str, set[str]] = {}
    for unit in UNITS:
        keys: set[str] = set()
        for path in paths:
            listed = scenario.journal(system, f"{path}?unit={unit}")
            for item in listed["items"]:
                header = (item.get("entry") or [{}])[0].get("resource") or {}  # a FHIR message
                keys.add(item.get("meddelandeId") or header.get("id") or item["recordId"])
        filed[unit] = keys
    return filed


def _sim_units(scenario: Scenario, control_url: str) -> dict[str, int]:
    res = scenario.http.get(f"{control_url}/_sim/units")
    res.raise_for_status()
    return dict(res.json())


def _payment(scenario: Scenario, since: date) -> dict[str, Any]:
    until = max(_now().date(), since)
    return dict(scenario.ops(f"/api/v1/statistics/payment?since={since}&until={until}"))


def test_one_stay_reaches_only_its_municipality_and_vardcentral(scenario):
    rng = scenario.rng
    patient = _patient(rng)
    to_municipality = {"treserva", "primary-care"}
    sent_to_municipality: list[str] = []  # TakeCare → Treserva and primary care

    # 1. admission notice (inskrivningsmeddelande), TakeCare
    admission = sample_admission(rng, now=_now()) | {"patient": patient}
    encounter = admission["encounter"]
    admission_id = scenario.post_event("takecare", "admissions", admission)
    _confirmed(scenario, admission_id, to_municipality, "admission notice")
    notice = _at_treserva(scenario, "inskrivningsmeddelanden", admission_id, "admission notice")
    _in_primary_care(scenario, admission_id, "admission notice")
    sent_to_municipality.append(admission_id)
    admitted_on = _now().date()

    # 2. the municipality's answer (svar på inskrivningsmeddelande), Treserva → TakeCare
    answer = answer_to(notice, rng, now=_now())
    answer_id = scenario.post_event("treserva", "svar-inskrivningsmeddelanden", answer)
    _confirmed(scenario, answer_id, {"takecare"}, "admission answer")
    _at_takecare(scenario, "admission-answers", answer_id, "admission answer")

    # 3. ready for discharge (utskrivningsklar), TakeCare
    ready = sample_discharge_readiness(rng, now=_now()) | {
        "patient": patient,
        "encounter": encounter,
    }
    ready_id = scenario.post_event("takecare", "discharge-readiness", ready)
    _confirmed(scenario, ready_id, to_municipality, "ready for discharge")
    _at_treserva(scenario, "utskrivningsklar", ready_id, "ready for discharge")
    _in_primary_care(scenario, ready_id, "ready for discharge")
    sent_to_municipality.append(ready_id)

    # 4. SIP invitation (kallelse), TakeCare's SIP module
    sip = sample_takecare_sip_update(rng, now=_now(), stage="invitation") | {"patient": patient}
    sip_id = scenario.post_event("takecare", "sip-updates", sip)
    _confirmed(scenario, sip_id, to_municipality, "SIP invitation")
    _at_treserva(scenario, "sip", sip_id, "SIP invitation")
    _in_primary_care(scenario, sip_id, "SIP invitation")
    sent_to_municipality.append(sip_id)

    # 5. medication list at discharge, TakeCare
    medication = sample_takecare_medication_list(rng, now=_now()) | {
        "patient": patient,
        "context": "discharge",
        "encounterId": encounter["encounterId"],
    }
    medication_id = scenario.post_event("takecare", "medication-lists", medication)
    _confirmed(scenario, medication_id, to_municipality, "medication list")
    _at_treserva(scenario, "lakemedelslistor", medication_id, "medication list")
    _in_primary_care(scenario, medication_id, "medication list")
    sent_to_municipality.append(medication_id)

    # 6. discharge notice (utskrivningsmeddelande), TakeCare, the day the ready notice went
    now = _now()
    discharge = sample_discharge_notice(rng, now=now) | {
        "patient": patient,
        "encounter": encounter,
        "occurredAt": now.isoformat(),
        "dischargedAt": now.isoformat(),
        "destination": "home-with-home-care",
    }
    discharge_id = scenario.post_event("takecare", "discharges", discharge)
    _confirmed(scenario, discharge_id, to_municipality, "discharge notice")
    stored = _at_treserva(scenario, "utskrivningsmeddelanden", discharge_id, "discharge notice")
    _in_primary_care(scenario, discharge_id, "discharge notice")
    sent_to_municipality.append(discharge_id)

    # 7. read receipt (läskvittens) of the discharge notice, Treserva → TakeCare
    read = read_receipt_for(stored, rng, now=_now())
    read_id = scenario.post_event("treserva", "laskvittenser", read)
    _confirmed(scenario, read_id, {"takecare"}, "read receipt of the discharge notice")
    _at_takecare(scenario, "read-receipts", read_id, "read receipt of the discharge notice")

    # 8. the hospital read the municipality's answer: its read receipt, TakeCare → Treserva
    hospital_read = sample_takecare_read_receipt(rng, now=_now(), read=answer_id) | {
        "patient": patient
    }
    hospital_read_id = scenario.post_event("takecare", "read-receipts", hospital_read)
    _confirmed(scenario, hospital_read_id, {"treserva"}, "read receipt of the answer")
    _at_treserva(scenario, "laskvittenser", hospital_read_id, "read receipt of the answer")

    # Nothing under any other unit: every unit of the directory, every kind of record
    at_treserva = _filed_per_unit(scenario, "treserva", [k.path for k in treserva_sim.KINDS])
    expected = {unit: set() for unit in UNITS} | {
        HOME_CARE: {*sent_to_municipality, hospital_read_id}
    }
    assert at_treserva == expected
    assert _sim_units(scenario, scenario.stack.treserva_sim_control_url) == {
        HOME_CARE: len(sent_to_municipality) + 1
    }
    in_primary_care = _filed_per_unit(scenario, "primary-care", [PRIMARY_CARE_INBOX])
    assert in_primary_care == {unit: set() for unit in UNITS} | {
        VARDCENTRAL: set(sent_to_municipality)
    }
    # TakeCare's own records (the answer and the read receipt) name no receiving unit
    assert _sim_units(scenario, scenario.stack.takecare_sim_control_url) == {
        VARDCENTRAL: len(sent_to_municipality),
        "-": 2,
    }

    # The payment clock: ready notice sent and discharged the same day, so 0 days
    since = admitted_on.replace(day=1)

    def discharged_stay() -> dict[str, Any] | None:
        document = _payment(scenario, since)
        stays = [s for s in document["stays"] if s["municipality"] == FALKENBERG]
        if stays and all(s["dischargedAt"] for s in stays):
            return {"document": document, "stays": stays}
        return None

    found = wait_for("Falkenberg's discharged stay", discharged_stay, timeout_s=DELIVERED_S)
    (stay,) = found["stays"]
    assert stay["clockRuns"] is True, stay  # the admission receipt and the ready notice hold
    assert stay["readySentAt"] and stay["admissionRecordId"], stay
    assert stay["days"] == [] and stay["firstPayableDay"] > stay["dischargedAt"][:10], stay
    months = [m for m in found["document"]["months"] if m["municipality"] == FALKENBERG]
    assert sum(m["days"] for m in months) == 0, months
    assert {s["municipality"] for s in found["document"]["stays"]} == {FALKENBERG}
