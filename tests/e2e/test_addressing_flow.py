"""Addressing by unit over real sockets (issue 20), on the sandbox's own region: a stack
started on the defaults runs the fictive three-municipality Region Halland
(contracts/units/halland.json). A notice for a patient of municipality A reaches A's
home-care unit only, never B's or C's, for each of the three municipalities, and the listed
vårdcentral only, never the other; the simulators' own sample patients live in all three
municipalities and are listed at both vårdcentraler, and are routed the same way; a
municipality the directory does not know is dead-lettered with its reason, never sent to
another's. Gotland's one-municipality directory stays available when chosen."""

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.scenario import Scenario
from sandbox.simulators.samples.people import GOTLAND_KOMMUNKOD, HALLAND, takecare_patient
from services.messaging.fhir_parts import listed_unit_of, municipality_of
from services.router.alerting.unit_directory import SANDBOX_PATH, UnitDirectory
from tests.support.stacks import e2e_settings, running

pytestmark = [pytest.mark.e2e, pytest.mark.shared_stack, pytest.mark.broker_independent]

REGION = UnitDirectory.load(SANDBOX_PATH)
HOME_CARE: dict[str, str] = {  # kommunkod → its one home-care unit receiving through Treserva
    u.municipality: u.hsa_id
    for u in REGION.receivers()
    if u.channel == "treserva" and u.municipality is not None
}
VARDCENTRALER = [u.hsa_id for u in REGION.receivers() if u.channel == "primary-care"]
ADMISSIONS = "inskrivningsmeddelanden"
PRIMARY_CARE_INBOX = "primary-care/$process-message"
CONFIRMED_S = 20.0


def patient(scenario: Scenario, municipality: str, listed: str) -> dict[str, Any]:
    found = takecare_patient(scenario.rng)
    return {**found, "municipalityOfResidence": municipality, "listedPrimaryCareUnit": listed}


def held(scenario: Scenario, system: str, path: str, unit: str) -> set[str]:
    """The broker's message ids of the records ``system`` filed under ``unit`` (a FHIR
    message's is its MessageHeader.id: Bundle.id names one send)."""
    listed = scenario.journal(system, f"{path}?unit={unit}")
    return {
        item.get("meddelandeId") or item["entry"][0]["resource"]["id"] for item in listed["items"]
    }


def routed(scenario: Scenario, message_id: str) -> dict[str, str]:
    detail = scenario.wait_for_state(message_id, "confirmed", timeout_s=CONFIRMED_S)
    return {d["destination"]: d["receiver_unit_hsa"] for d in detail["deliveries"]}


def assert_only_at(scenario: Scenario, message_id: str, home_care: str, vardcentral: str):
    """The notice is filed under ``home_care`` in Treserva and ``vardcentral`` in primary
    care, and under no other unit of either."""
    for unit in HOME_CARE.values():
        assert (message_id in held(scenario, "treserva", ADMISSIONS, unit)) is (
            unit == home_care
        ), (message_id, unit)
    for unit in VARDCENTRALER:
        assert (message_id in held(scenario, "primary-care", PRIMARY_CARE_INBOX, unit)) is (
            unit == vardcentral
        ), (message_id, unit)


def test_the_sandbox_runs_three_municipalities_and_two_vardcentraler(scenario):
    assert scenario.stack.settings.region == "halland"
    assert sorted(HOME_CARE) == ["1380", "1382", "1383"] and len(VARDCENTRALER) == 2
    # the router seeded its care_unit table from the sandbox's directory
    units = scenario.ops("/api/v1/units?active=true")["items"]
    assert {u["hsaId"] for u in units if u["channel"]} == set(HOME_CARE.values()) | {
        *VARDCENTRALER,
        REGION.destinations["takecare"],
    }


@pytest.mark.parametrize("vardcentral", VARDCENTRALER)
def test_a_notice_reaches_only_its_own_municipality_and_listed_vardcentral(scenario, vardcentral):
    for municipality, home_care in sorted(HOME_CARE.items()):
        message_id, _ = scenario.post_admission(
            patient=patient(scenario, municipality, vardcentral)
        )
        assert routed(scenario, message_id) == {
            "treserva": home_care,
            "primary-care": vardcentral,
        }, municipality
        stored = scenario.journal("treserva", f"{ADMISSIONS}/{message_id}")
        assert stored["mottagandeEnhet"] == stored["receivingUnit"] == home_care
        assert_only_at(scenario, message_id, home_care, vardcentral)


def test_the_simulators_patients_live_in_every_municipality_and_are_routed_there(scenario):
    # the TakeCare simulator draws its own patients (unseeded): 30 of six people, two per
    # municipality, so each municipality and vårdcentral is all but certain to appear
    sent = scenario.emit("takecare", "admission-notice", count=30)
    seen: set[tuple[str, str]] = set()
    for message_id in sent:
        units = routed(scenario, message_id)
        bundle = scenario.journal("primary-care", f"{PRIMARY_CARE_INBOX}/{message_id}")
        person = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        municipality, listed = municipality_of(person), listed_unit_of(person)
        assert municipality in HOME_CARE and listed in VARDCENTRALER, (municipality, listed)
        assert municipality is not None and listed is not None
        assert units == {"treserva": HOME_CARE[municipality], "primary-care": listed}
        seen.add((municipality, listed))
    assert {m for m, _ in seen} == set(HOME_CARE)
    assert {v for _, v in seen} == set(VARDCENTRALER)
    assert set(HALLAND.residents) >= seen
    for message_id in sent[:6]:  # and filed under no other unit (six suffice: all are read)
        units = routed(scenario, message_id)
        assert_only_at(scenario, message_id, units["treserva"], units["primary-care"])


def test_an_unknown_municipality_is_dead_lettered_not_sent_elsewhere(scenario):
    unknown, _ = scenario.post_admission(patient=patient(scenario, "0180", VARDCENTRALER[0]))
    found = scenario.wait_for_state(
        unknown, "dead_letter", timeout_s=CONFIRMED_S, destination="treserva"
    )
    assert "unaddressable" in scenario.delivery(found, "treserva")["last_error"]
    assert scenario.journal("treserva", f"{ADMISSIONS}/{unknown}") is None


@pytest.fixture
def gotland(tmp_path: Path, stack_db: str | None) -> Iterator[Scenario]:
    with running(e2e_settings(tmp_path, stack_db, region="gotland")) as stack:
        s = Scenario(stack, random.Random(980))
        try:
            yield s
        finally:
            s.close()


@pytest.mark.own_stack
def test_gotland_stays_available_when_chosen(gotland):
    """STACK_REGION=gotland: the router runs contracts/units/gotland.json and the samples'
    patients live in Gotland's one municipality."""
    message_id, _ = gotland.post_admission()
    units = routed(gotland, message_id)
    assert units == {"treserva": "SE2120000803-HSMO", "primary-care": "SE2321000222-VCVI"}
    bundle = gotland.journal("primary-care", f"{PRIMARY_CARE_INBOX}/{message_id}")
    person = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert municipality_of(person) == GOTLAND_KOMMUNKOD
