"""The sandbox's region (issue 20): the simulators' sample patients live in the three
municipalities of the fictive Region Halland and are listed at its two vårdcentraler, as
contracts/units/halland.json lists them; Gotland's when chosen. The simulators' automatic
answers echo the case id the broker set on a document (arendeId, caseId)."""

import json
import random
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.simulators import takecare as takecare_sim
from sandbox.simulators import treserva as treserva_sim
from sandbox.simulators.emitters import build
from sandbox.simulators.journal import EmitRequest, JournalState
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.people import (
    GOTLAND,
    HALLAND,
    REGIONS,
    current_region,
    in_region,
    takecare_patient,
    treserva_brukare,
)
from sandbox.simulators.samples.read_receipt import read_receipt_for, takecare_read_receipt_for
from sandbox.stack import StackSettings
from services.messaging.contracts import violations
from services.router.alerting.unit_directory import (
    SANDBOX_PATH,
    UnitDirectory,
    UnitKind,
    sandbox_directory,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CASE_ID = "0b8f4c7e-2f7d-5c1a-9d3e-6a1b2c3d4e5f"


def test_the_sandbox_region_is_halland_by_default():
    assert current_region() is HALLAND
    assert StackSettings().region == "halland"
    assert sandbox_directory("halland") == SANDBOX_PATH
    with pytest.raises(ValueError, match="no sandbox region"):
        sandbox_directory("atlantis")


@pytest.mark.parametrize("region", REGIONS.values(), ids=list(REGIONS))
def test_every_sample_resident_has_a_receiving_unit_in_the_regions_directory(region):
    directory = UnitDirectory.load(sandbox_directory(region.name))
    home_care = {u.municipality for u in directory.receivers() if u.kind is UnitKind.HOME_CARE}
    vardcentraler = {u.hsa_id for u in directory.receivers() if u.channel == "primary-care"}
    for municipality, listed in region.residents:
        assert municipality in home_care and listed in vardcentraler
        assert region.addresses[municipality]
    for hsa_id, name in region.hospital_units + region.municipal_units:
        unit = directory.unit(hsa_id)
        assert unit is not None and unit.name == name, hsa_id
    assert set(region.municipalities()) == home_care  # every municipality has residents
    assert {listed for _, listed in region.residents} == vardcentraler


def test_halland_patients_spread_over_three_municipalities_and_both_vardcentraler():
    rng = random.Random(20)
    patients = [takecare_patient(rng) for _ in range(60)]
    assert {p["municipalityOfResidence"] for p in patients} == {"1380", "1382", "1383"}
    assert {p["listedPrimaryCareUnit"] for p in patients} == {
        "SE2321000115-VCANDE",
        "SE2321000115-VCFBG",
    }
    for p in patients:  # the registered address lies in the municipality of residence
        if "registeredAddress" in p:
            place = tuple(p["registeredAddress"].values())
            assert place in HALLAND.addresses[p["municipalityOfResidence"]]
    brukare = [treserva_brukare(rng) for _ in range(20)]
    towns = {b["folkbokforingsadress"]["postort"] for b in brukare if "folkbokforingsadress" in b}
    assert towns and towns <= {t for places in HALLAND.addresses.values() for *_, t in places}


def test_gotland_when_chosen_and_draws_as_before():
    with in_region("gotland"):
        gotland = [takecare_patient(random.Random(seed)) for seed in range(30)]
        admission = sample_admission(random.Random(1), now=NOW)
    assert current_region() is HALLAND  # the choice ends with the block
    assert {p["municipalityOfResidence"] for p in gotland} == {"0980"}
    assert {p["listedPrimaryCareUnit"] for p in gotland} == {"SE2321000222-VCVI"}
    assert admission["encounter"]["unit"]["hsaId"] in {h for h, _ in GOTLAND.hospital_units}
    # the region decides where a person lives, not who is drawn: the same people either way
    halland = [takecare_patient(random.Random(seed)) for seed in range(30)]
    assert [(p["familyName"], p["givenName"]) for p in halland] == [
        (p["familyName"], p["givenName"]) for p in gotland
    ]


def test_a_simulator_emits_the_patients_of_its_region():
    request = EmitRequest(family="admission-notice", count=12)
    _, halland = build(takecare_sim.EMITTERS, request, random.Random(4))
    _, gotland = build(takecare_sim.EMITTERS, request, random.Random(4), region="gotland")
    assert {e["patient"]["municipalityOfResidence"] for e in halland} <= {"1380", "1382", "1383"}
    assert {e["patient"]["municipalityOfResidence"] for e in gotland} == {"0980"}
    for event in halland + gotland:
        assert violations("takecare/admission-notice.schema.json", event) == []


def _treserva_document(arende_id: str | None) -> dict[str, object]:
    doc: dict[str, object] = {
        "meddelandeId": "e5d2a974-583e-5a64-bfeb-59d4f86badc7",
        "brukare": treserva_brukare(random.Random(1), protected_share=0.0),
    }
    if arende_id is not None:
        doc["arendeId"] = arende_id
    return doc


def test_treservas_read_receipt_echoes_the_case_id():
    receipt = read_receipt_for(_treserva_document(CASE_ID), random.Random(2), now=NOW)
    assert receipt["arendeId"] == CASE_ID
    assert violations("treserva/read-receipt.schema.json", receipt) == []
    without = read_receipt_for(_treserva_document(None), random.Random(2), now=NOW)
    assert "arendeId" not in without  # a document delivered before the case id: none


def test_takecares_read_receipt_echoes_the_case_id():
    answer = {
        "eventId": "1f0c6a52-8a43-5a37-b0a5-3c0d5a7e9b11",
        "caseId": CASE_ID,
        "patient": takecare_patient(random.Random(3)),
    }
    receipt = takecare_read_receipt_for(answer, random.Random(2), now=NOW)
    assert receipt["caseId"] == CASE_ID and receipt["readMessageId"] == answer["eventId"]
    assert violations("takecare/read-receipt.schema.json", receipt) == []


async def test_the_takecare_simulator_answers_with_its_read_receipt_when_asked_to():
    posted: list[tuple[str, dict[str, object]]] = []

    def intake(request: httpx.Request) -> httpx.Response:
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(202, json={"messageId": "m"})

    settings = takecare_sim.TakeCareSimSettings(read_receipts=True, read_delay_s=0)
    state = JournalState()
    after_store = takecare_sim.reading(
        settings, state, rng=random.Random(5), transport=httpx.MockTransport(intake)
    )
    kinds = {k.path: k for k in takecare_sim.spec(settings).kinds}
    stored = {
        "eventId": "1f0c6a52-8a43-5a37-b0a5-3c0d5a7e9b11",
        "caseId": CASE_ID,
        "patient": takecare_patient(random.Random(3)),
    }
    await after_store(kinds["admission-answers"], stored)
    await after_store(kinds["read-receipts"], stored)  # never a receipt of a receipt
    await after_store(kinds["primary-care/$process-message"], stored)  # nor primary care's
    ((path, doc),) = posted
    assert path == "/takecare/v1/read-receipts"
    assert doc["caseId"] == CASE_ID and doc["readMessageId"] == stored["eventId"]
    assert state.stats["emitted"] == 1
    assert takecare_sim.spec(takecare_sim.TakeCareSimSettings()).after_store is None


async def test_the_treserva_simulators_read_receipt_echoes_the_arende_id():
    posted: list[dict[str, object]] = []

    def intake(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(202, json={"messageId": "m"})

    settings = treserva_sim.TreservaSimSettings(read_receipts=True, read_delay_s=0)
    after_store = treserva_sim.answering(
        settings, JournalState(), rng=random.Random(5), transport=httpx.MockTransport(intake)
    )
    kinds = {k.path: k for k in treserva_sim.KINDS}
    await after_store(kinds["inskrivningsmeddelanden"], _treserva_document(CASE_ID))
    (doc,) = posted
    assert doc["arendeId"] == CASE_ID
