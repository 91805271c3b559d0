"""The cancellation (makulering) of any family, both ways between TakeCare and Treserva: golden
fixtures, the round trip (goldens and a Hypothesis property), the FHIR shape (a Provenance
naming the cancelled message, no Consent), the intake's 422 for a cancellation of a message
it never accepted, and the simulators."""

import copy
import json
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.contracts_cli import (
    FIXTURE_NOW,
    FIXTURE_REGIONAL_RESERVE_OID,
    fixtures_of,
    golden_path,
    refused_of,
    render,
    translate_fixture,
)
from sandbox.simulators import takecare as takecare_sim
from sandbox.simulators import treserva as treserva_sim
from sandbox.simulators.emitters import sample_function
from sandbox.simulators.samples.admission_answer import sample_treserva_admission_answer
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.consent_withdrawal import sample_consent_withdrawal
from sandbox.simulators.samples.medication_list import sample_treserva_medication_list
from sandbox.simulators.samples.message_cancelled import (
    sample_takecare_cancellation,
    sample_treserva_cancellation,
)
from services.adapter_takecare import families as takecare_families
from services.adapter_takecare.app import create_app as create_takecare_app
from services.adapter_takecare.families import admission_notice as takecare_admission
from services.adapter_takecare.families import consent_withdrawal as takecare_withdrawal
from services.adapter_takecare.families import message_cancelled as takecare_cancel
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.app import create_app as create_treserva_app
from services.adapter_treserva.families import admission_answer as treserva_answer
from services.adapter_treserva.families import medication_list as treserva_list
from services.adapter_treserva.families import message_cancelled as treserva_cancel
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.cancellation import cancelled_message_id, read_cancellation
from services.messaging.contracts import violations
from services.messaging.envelope import EventCode, System, read_envelope, to_json
from services.messaging.families import destinations, family_of
from services.messaging.fhir_parts import TranslationError
from services.messaging.intake import FakeIntakeStore, SqlIntakeStore, accept_event
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.native import InvalidEvent
from services.messaging.vocabulary import URI_SYSTEM

FAMILY = "message-cancelled"
TRESERVA = fixtures_of(System.TRESERVA, FAMILY)
TAKECARE = fixtures_of(System.TAKECARE, FAMILY)
FIXTURES = [(System.TRESERVA, p) for p in TRESERVA] + [(System.TAKECARE, p) for p in TAKECARE]
NOW = datetime(2026, 11, 20, 8, 12, 30, tzinfo=UTC)
OID = FIXTURE_REGIONAL_RESERVE_OID


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _bundle(family, doc, now=FIXTURE_NOW):
    event = family.parse(doc, now=now, regional_reserve_oid=OID)
    return json.loads(to_json(family.to_bundle(event, now=now, regional_reserve_oid=OID)))


def _by_type(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


# --- contracts and the FHIR shape ------------------------------------------------------------


def test_fixtures_come_from_both_sides_with_refusals():
    assert len(TRESERVA) >= 2 and len(TAKECARE) >= 2
    assert refused_of(System.TRESERVA, FAMILY) and refused_of(System.TAKECARE, FAMILY)


@pytest.mark.parametrize(
    ("source", "path"), FIXTURES, ids=lambda x: getattr(x, "name", getattr(x, "value", x))
)
def test_fixture_translations_match_their_goldens(source, path):
    outputs = translate_fixture(source, FAMILY, _load(path))
    other = "takecare" if source is System.TRESERVA else "treserva"
    assert set(outputs) == {"fhir", other}
    for suffix, doc in outputs.items():
        assert render(doc) == golden_path(path, suffix).read_text(encoding="utf-8"), suffix


def test_the_message_names_the_cancelled_message_in_a_provenance_and_carries_no_consent():
    doc = _load(next(p for p in TAKECARE if "admission" in p.name))
    bundle = _bundle(takecare_cancel.INBOUND, doc)
    notice = next(
        d
        for d in map(_load, fixtures_of(System.TAKECARE, "admission-notice"))
        if d["encounter"]["encounterId"] == doc["encounterId"]
    )
    original = _bundle(
        takecare_admission.INBOUND,
        notice | {"eventId": doc["cancellation"]["eventId"], "version": 1},
    )
    header = bundle["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "message-cancelled"
    assert header["eventCoding"]["display"] == "Makulering av meddelande"
    (provenance,) = _by_type(bundle, "Provenance")
    assert header["focus"][0]["reference"] == bundle["entry"][1]["fullUrl"]
    # the original MessageHeader's id, as the receivers got it
    assert provenance["target"] == [
        {"identifier": {"system": URI_SYSTEM, "value": original["entry"][0]["fullUrl"]}}
    ]
    assert original["entry"][0]["fullUrl"] == f"urn:uuid:{original['entry'][0]['resource']['id']}"
    assert provenance["activity"]["coding"][0]["code"] == "NULLIFY"
    assert provenance["reason"] == [{"text": doc["cancellation"]["reason"]}]
    assert datetime.fromisoformat(provenance["recorded"]) == datetime.fromisoformat(
        doc["cancellation"]["cancelledAt"]
    )
    (practitioner,) = _by_type(bundle, "Practitioner")
    assert practitioner["identifier"][0]["value"] == doc["cancellation"]["cancelledBy"]["hsaId"]
    assert _by_type(bundle, "Consent") == []  # it shares nothing: no basis of its own
    (patient,) = _by_type(bundle, "Patient")
    assert "address" not in patient  # never sent on, protected or not
    # the case: the stay it named, so the case timeline holds the cancellation too
    assert (
        _by_type(bundle, "EpisodeOfCare")[0]["identifier"]
        == (_by_type(original, "EpisodeOfCare")[0]["identifier"])
    )
    assert cancelled_message_id(bundle) == original["entry"][0]["resource"]["id"]


def test_the_catalogue_lets_both_journals_cancel_and_needs_no_basis():
    family = family_of("message-cancelled")
    assert family is not None and not family.needs_consent
    assert destinations("message-cancelled", "takecare") == (System.TRESERVA, System.PRIMARY_CARE)
    assert destinations("message-cancelled", "treserva") == (System.TAKECARE,)


def test_both_adapters_register_the_family_both_ways():
    for families, route, path in (
        (treserva_families, "makuleringar", "/api/v1/makuleringar"),
        (takecare_families, "cancellations", "/api/v1/cancellations"),
    ):
        (inbound,) = [f for f in families.INBOUND if f.family == FAMILY]
        (outbound,) = [f for f in families.OUTBOUND if f.family == FAMILY]
        assert inbound.route == route and outbound.path == path
        assert outbound.events == (EventCode.MESSAGE_CANCELLED,)


def test_the_round_trip_keeps_what_was_cancelled_why_by_whom_and_when():
    doc = _load(next(p for p in TRESERVA if "svar" in p.name))
    bundle = _bundle(treserva_cancel.INBOUND, doc)
    native = takecare_cancel.to_native(bundle)
    # the case id Treserva echoed back: the cancellation joins the stay's case timeline
    (case,) = _by_type(bundle, "EpisodeOfCare")
    assert case["identifier"][0]["value"] == doc["arendeId"]
    c = native["cancellation"]
    assert c["eventId"] == cancelled_message_id(bundle)  # the id TakeCare got it under
    assert c["reason"] == doc["makulering"]["makuleringsorsak"]
    assert c["cancelledAt"] == doc["makulering"]["makulerad"]  # the offset as given
    assert c["cancelledBy"] == {
        "name": doc["makulering"]["makuleradAv"]["namn"],
        "hsaId": doc["makulering"]["makuleradAv"]["hsaId"],
        "unitHsaId": doc["makulering"]["makuleradAv"]["enhetHsaId"],
    }
    assert native["patient"]["personalIdentityNumber"] == "191212121212"
    assert "registeredAddress" not in native["patient"]
    # and back, as TakeCare's own cancellation of that message: Treserva's form again
    own = copy.deepcopy(native) | {"eventId": "tc-mak-x"}
    own["cancellation"]["eventId"] = "tc-own-1"
    again = treserva_cancel.to_native(_bundle(takecare_cancel.INBOUND, own))
    assert {k: v for k, v in again["makulering"].items() if k != "meddelandeId"} == {
        k: v for k, v in doc["makulering"].items() if k != "meddelandeId"
    }
    assert again["brukare"]["personnummer"] == doc["brukare"]["personnummer"]


_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=120
).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    reason=_text,
    version=st.integers(1, 10**6),
    minutes=st.integers(-600, 600),
)
def test_every_cancellation_survives_the_round_trip_both_ways(seed, reason, version, minutes):
    at = (NOW + timedelta(minutes=minutes)).isoformat()
    for inbound, sample, outbound, block, why, when, version_field in (
        (
            treserva_cancel.INBOUND,
            sample_treserva_cancellation,
            takecare_cancel.OUTBOUND,
            "makulering",
            "makuleringsorsak",
            "makulerad",
            "version",
        ),
        (
            takecare_cancel.INBOUND,
            sample_takecare_cancellation,
            treserva_cancel.OUTBOUND,
            "cancellation",
            "reason",
            "cancelledAt",
            "version",
        ),
    ):
        doc = sample(random.Random(seed), now=NOW)
        doc[block] |= {why: reason, when: at, version_field: version}
        assert violations(inbound.schema, doc) == []
        event = inbound.parse(doc, now=NOW, regional_reserve_oid=OID)
        bundle = _bundle(inbound, doc, now=NOW)
        # required FHIR elements, always
        (provenance,) = _by_type(bundle, "Provenance")
        assert provenance["target"][0]["identifier"]["system"] == URI_SYSTEM
        assert provenance["recorded"] and provenance["agent"][0]["who"]["reference"]
        assert read_envelope(json.dumps(bundle)).event_code == "message-cancelled"
        # what must survive
        assert read_cancellation(bundle) == event.as_cancellation(OID)
        native = outbound.to_native(bundle)
        assert violations(outbound.schema, native) == []


def test_a_message_without_the_cancelled_id_is_a_translation_error():
    bundle = _bundle(treserva_cancel.INBOUND, _load(TRESERVA[0]))
    (provenance,) = _by_type(bundle, "Provenance")
    provenance["target"][0]["identifier"]["value"] = "Tolvansson"
    with pytest.raises(TranslationError) as exc:
        takecare_cancel.to_native(bundle)
    assert "Tolvansson" not in str(exc.value)


# --- the intake: a cancellation of a message it never accepted is refused -----------------------


@pytest.fixture(params=["fake", "one at a time", "grouped"])
def store(request, sessions):
    if request.param == "fake":
        return FakeIntakeStore()
    kind = SqlIntakeStore if request.param == "one at a time" else GroupedIntakeStore
    return kind(sessions, "adapter_treserva")


async def _accept(store, doc, family):
    return await accept_event(
        doc, family, store=store, pseudonym_key="k" * 32, now=NOW, regional_reserve_oid=OID
    )


async def _refused(store, doc, family):
    with pytest.raises(InvalidEvent) as caught:
        await _accept(store, doc, family)
    return [(v.path, v.rule) for v in caught.value.violations]


async def test_a_cancellation_of_an_accepted_message_is_taken(store):
    rng = random.Random(4)
    answer = sample_treserva_admission_answer(rng, now=NOW)
    accepted = await _accept(store, answer, treserva_answer.INBOUND)
    cancel = sample_treserva_cancellation(rng, now=NOW, original=answer)
    taken = await _accept(store, cancel, treserva_cancel.INBOUND)
    assert not taken.duplicate
    bundle = _bundle(treserva_cancel.INBOUND, cancel, now=NOW)
    assert cancelled_message_id(bundle) == accepted.message_id
    # a versioned document is named by its id and version
    listed = sample_treserva_medication_list(rng, now=NOW)
    first = await _accept(store, listed, treserva_list.INBOUND)
    cancel = sample_treserva_cancellation(rng, now=NOW, original=listed)
    assert cancel["makulering"].get("version", 1) == listed["version"]
    await _accept(store, cancel, treserva_cancel.INBOUND)
    assert cancelled_message_id(_bundle(treserva_cancel.INBOUND, cancel, now=NOW)) == (
        first.message_id
    )


async def test_a_cancellation_of_an_unknown_message_is_refused_naming_the_field(store):
    rng = random.Random(5)
    answer = sample_treserva_admission_answer(rng, now=NOW)
    await _accept(store, answer, treserva_answer.INBOUND)
    unknown = sample_treserva_cancellation(rng, now=NOW)  # names a made-up message
    assert await _refused(store, unknown, treserva_cancel.INBOUND) == [
        ("makulering.meddelandeId", "unknown-message")
    ]
    # the right id, the wrong version
    cancel = sample_treserva_cancellation(rng, now=NOW, original=answer)
    cancel["makulering"]["version"] = 2
    assert await _refused(store, cancel, treserva_cancel.INBOUND) == [
        ("makulering.meddelandeId", "unknown-message")
    ]


async def test_a_cancellation_of_another_patients_message_is_refused(store):
    rng = random.Random(6)
    answer = sample_treserva_admission_answer(rng, now=NOW)
    await _accept(store, answer, treserva_answer.INBOUND)
    cancel = sample_treserva_cancellation(rng, now=NOW, original=answer)
    cancel["brukare"] = sample_treserva_cancellation(random.Random(99), now=NOW)["brukare"]
    assert cancel["brukare"] != answer["brukare"]
    assert await _refused(store, cancel, treserva_cancel.INBOUND) == [
        ("makulering.meddelandeId", "unknown-message")
    ]


async def test_a_cancellation_cannot_be_cancelled(store):
    rng = random.Random(7)
    answer = sample_treserva_admission_answer(rng, now=NOW)
    await _accept(store, answer, treserva_answer.INBOUND)
    cancel = sample_treserva_cancellation(rng, now=NOW, original=answer)
    await _accept(store, cancel, treserva_cancel.INBOUND)
    again = sample_treserva_cancellation(rng, now=NOW, original=cancel)
    again["makulering"]["meddelandeId"] = cancel["meddelandeId"]
    assert await _refused(store, again, treserva_cancel.INBOUND) == [
        ("makulering.meddelandeId", "unknown-message")
    ]


@pytest.fixture
async def takecare(sessions):
    store = FakeIntakeStore()
    app = create_takecare_app(
        AdapterTakeCareSettings(), store=store, sessions=sessions, clock=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://a",
        headers={"authorization": "Bearer sandbox-takecare-key"},
    ) as c:
        yield c


async def test_the_adapter_answers_an_unknown_message_with_a_422_that_never_echoes_it(takecare):
    rng = random.Random(8)
    cancel = sample_takecare_cancellation(rng, now=NOW)
    cancel["cancellation"]["eventId"] = "Tolvansson-191212121212"
    res = await takecare.post("/takecare/v1/cancellations", json=cancel)
    assert res.status_code == 422
    assert res.headers["content-type"].startswith("application/fhir+json")
    (issue,) = res.json()["issue"]
    assert issue["expression"] == ["cancellation.eventId"]
    assert "Tolvansson" not in res.text and "191212121212" not in res.text


async def test_a_withdrawal_of_consent_never_stops_a_cancellation(takecare):
    """Cancelling what was sent is what one may have to do after a withdrawal."""
    rng = random.Random(9)
    admission = sample_admission(rng, now=NOW)
    assert (await takecare.post("/takecare/v1/admissions", json=admission)).status_code == 202
    withdrawal = sample_consent_withdrawal(rng, now=NOW)
    withdrawal["patient"] = admission["patient"]
    withdrawal["encounter"] = admission["encounter"]
    res = await takecare.post("/takecare/v1/consent-withdrawals", json=withdrawal)
    assert res.status_code == 202, res.text
    later = copy.deepcopy(admission) | {"eventId": "tc-after-withdrawal"}
    assert (await takecare.post("/takecare/v1/admissions", json=later)).status_code == 422
    cancel = sample_takecare_cancellation(rng, now=NOW, original=admission)
    res = await takecare.post("/takecare/v1/cancellations", json=cancel)
    assert res.status_code == 202, res.text
    assert takecare_withdrawal.INBOUND.family == "consent-withdrawal"


# --- simulators ------------------------------------------------------------------------------


def test_both_simulators_emit_and_receive_the_family():
    for sim, route, path in (
        (takecare_sim, "cancellations", "cancellations"),
        (treserva_sim, "makuleringar", "makuleringar"),
    ):
        emit_route, target = sim.EMITTERS[FAMILY]
        assert emit_route == route
        doc = sample_function(target)(random.Random(1), now=NOW)
        schema = "takecare" if sim is takecare_sim else "treserva"
        assert violations(f"{schema}/message-cancelled.schema.json", doc) == []
        assert any(k.path == path for k in sim.KINDS)


async def test_the_treserva_adapter_takes_the_simulators_cancellation_of_its_answer(sessions):
    store = FakeIntakeStore()
    app = create_treserva_app(
        AdapterTreservaSettings(), store=store, sessions=sessions, clock=lambda: NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://a",
        headers={"authorization": "Bearer sandbox-treserva-key"},
    ) as c:
        answer = sample_treserva_admission_answer(random.Random(2), now=NOW)
        res = await c.post("/treserva/v1/svar-inskrivningsmeddelanden", json=answer)
        assert res.status_code == 202, res.text
        cancel = sample_treserva_cancellation(random.Random(2), now=NOW, original=answer)
        res = await c.post("/treserva/v1/makuleringar", json=cancel)
        assert res.status_code == 202, res.text
