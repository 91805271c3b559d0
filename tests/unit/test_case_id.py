"""The case id (issue 20): every message of one stay carries one case EpisodeOfCare, the
same for all of them, whichever journal sends it (services.messaging.case)."""

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from services.messaging.case import (
    CASE_ID_SYSTEM,
    case_episodes,
    case_id_for,
    case_id_of,
    is_case_id,
    stay_case_id,
)
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.envelope import System

FIXTURES = CONTRACTS_DIR / "fixtures"
GOLDENS = sorted(FIXTURES.glob("*/*/*.fhir.json"))
# the families whose every document names its stay
STAY_FAMILIES = {
    "admission-notice",
    "discharge-readiness",
    "discharge-notice",
    "consent-withdrawal",
    "admission-answer",
    "ready-to-receive",
}
STAY_KEYS = ("encounterId", "vardtillfalleId")
CASE_KEYS = ("caseId", "arendeId")


def _named(node: Any, keys: tuple[str, ...]) -> str | None:
    """The first value under one of ``keys`` anywhere in a native document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                return value
            found = _named(value, keys)
            if found is not None:
                return found
    if isinstance(node, list):
        for item in node:
            found = _named(item, keys)
            if found is not None:
                return found
    return None


def _input(golden: Path) -> Any:
    return json.loads(golden.with_name(golden.name.replace(".fhir.", ".input.")).read_text())


def _expected_case(golden: Path) -> str | None:
    doc = _input(golden)
    return _named(doc, CASE_KEYS) or stay_case_id(_named(doc, STAY_KEYS))


def test_there_are_goldens():
    assert len(GOLDENS) > 40


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_golden_carries_at_most_one_case_and_the_one_of_its_stay(golden: Path) -> None:
    bundle = json.loads(golden.read_text())
    expected = _expected_case(golden)
    episodes = case_episodes(bundle)
    if golden.parent.name in STAY_FAMILIES:
        assert expected is not None
    if expected is None:
        assert episodes == []
        return
    (episode,) = episodes
    assert episode["identifier"] == [{"system": CASE_ID_SYSTEM, "value": expected}]
    assert case_id_of(bundle) == expected
    entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    (url,) = [u for u, r in entries.items() if r is episode]
    header = bundle["entry"][0]["resource"]
    assert {"reference": url} in header["focus"]
    for encounter in (r for r in entries.values() if r["resourceType"] == "Encounter"):
        assert {"reference": url} in encounter["episodeOfCare"]
    assert entries[episode["patient"]["reference"]]["resourceType"] == "Patient"


def test_the_messages_of_one_stay_share_one_case_across_families_and_journals():
    cases: dict[str, set[str | None]] = defaultdict(set)
    families: dict[str, set[str]] = defaultdict(set)
    for golden in GOLDENS:
        stay = _named(_input(golden), STAY_KEYS)
        if stay is not None:
            cases[stay].add(case_id_of(json.loads(golden.read_text())))
            families[stay].add(f"{golden.parent.parent.name}/{golden.parent.name}")
    assert all(len(found) == 1 and None not in found for found in cases.values()), cases
    # the fixtures do hold one stay told by several families and both journals
    assert max(len(f) for f in families.values()) >= 4
    assert any(
        {f.split("/")[0] for f in fam} == {"takecare", "treserva"} for fam in families.values()
    )


def test_the_case_id_is_stable_pseudonymous_and_per_stay():
    one = case_id_for(System.TAKECARE, "VT-1")
    assert one == stay_case_id("VT-1") == case_id_for("takecare", "VT-1")
    assert is_case_id(one) and "VT-1" not in one
    assert one != stay_case_id("VT-2") != case_id_for(System.TRESERVA, "VT-1")
    assert stay_case_id(None) is None
    assert not is_case_id("VT-1") and not is_case_id(one.upper())


def test_a_case_episode_that_is_malformed_reads_as_no_case():
    bundle = {
        "entry": [
            {
                "resource": {
                    "resourceType": "EpisodeOfCare",
                    "identifier": [{"system": CASE_ID_SYSTEM, "value": "not-a-uuid"}],
                }
            },
            {"resource": "a string"},
        ]
    }
    assert case_id_of(bundle) is None
    assert case_id_of({}) is None


def _delivered() -> list[tuple[Path, Any, str]]:
    from services.adapter_takecare.service import DESTINATION as TAKECARE
    from services.adapter_treserva.service import DESTINATION as TRESERVA

    found = []
    for golden in GOLDENS:
        bundle = json.loads(golden.read_text())
        code = bundle["entry"][0]["resource"]["eventCoding"]["code"]
        for destination, field in ((TRESERVA, "arendeId"), (TAKECARE, "caseId")):
            if destination.family_for(code) is not None and case_id_of(bundle) is not None:
                found.append((golden, destination, field))
    return found


def test_every_native_document_the_broker_delivers_names_the_case_for_the_echo():
    from services.messaging.contracts import violations
    from services.messaging.delivery import translate

    delivered = _delivered()
    assert {field for _, _, field in delivered} == {"arendeId", "caseId"}
    for golden, destination, field in delivered:
        text = golden.read_text()
        _, family, document = translate(text, destination)
        assert document[field] == case_id_of(json.loads(text)), golden
        assert violations(family.schema, document) == [], golden


def test_an_echoed_case_id_that_is_no_uuid_is_refused_by_the_contract():
    from sandbox.contracts_cli import FIXTURE_NOW, inbound_family
    from services.messaging.native import InvalidEvent

    inbound = inbound_family(System.TRESERVA, "sip-update")
    assert inbound is not None
    doc = _input(FIXTURES / "treserva/sip-update/kallelse-nationellt-reservnummer.fhir.json")
    assert doc["arendeId"] == stay_case_id("VT-889123")
    with pytest.raises(InvalidEvent) as refused:
        inbound.parse({**doc, "arendeId": "VT-889123"}, now=FIXTURE_NOW, regional_reserve_oid=None)
    assert {v.path for v in refused.value.violations} == {"arendeId"}
