"""Consent on every family (OSL 25 and 26 kap.): every native document carries the patient's
consent or a documented legal basis, the adapter refuses one without a basis that covers the
family and every receiver of it (422, nothing in the outbox), every FHIR message carries the
basis as a Consent named in MessageHeader.focus, and the router routes nothing without it."""

import copy
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sandbox.contracts_cli import (
    FIXTURE_NOW,
    FIXTURE_REGIONAL_RESERVE_OID,
    FIXTURES,
    fixture_inputs,
    fixtures_of,
    golden_path,
)
from sandbox.simulators.samples.administrative_message import (
    sample_takecare_administrative_message,
    sample_treserva_administrative_message,
)
from sandbox.simulators.samples.admission_answer import sample_treserva_admission_answer
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.consent_withdrawal import sample_consent_withdrawal
from sandbox.simulators.samples.medication_list import sample_treserva_medication_list
from sandbox.simulators.samples.patient_deceased import sample_patient_deceased
from sandbox.simulators.samples.process_interrupted import sample_process_interrupted
from sandbox.simulators.samples.read_receipt import (
    sample_takecare_read_receipt,
    sample_treserva_read_receipt,
)
from sandbox.simulators.samples.ready_to_receive import sample_treserva_ready_to_receive
from sandbox.simulators.samples.transfer import sample_transfer
from services.adapter_takecare.app import create_app
from services.adapter_takecare.families import INBOUND as TAKECARE_INBOUND
from services.adapter_takecare.families.administrative_message import INBOUND as TAKECARE_ADMIN
from services.adapter_takecare.families.admission_notice import INBOUND as ADMISSIONS
from services.adapter_takecare.families.consent_withdrawal import INBOUND as WITHDRAWALS
from services.adapter_takecare.families.patient_deceased import INBOUND as DEATHS
from services.adapter_takecare.families.process_interrupted import INBOUND as INTERRUPTIONS
from services.adapter_takecare.families.read_receipt import INBOUND as TAKECARE_READ
from services.adapter_takecare.families.transfer import INBOUND as TRANSFERS
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.families import INBOUND as TRESERVA_INBOUND
from services.adapter_treserva.families.administrative_message import INBOUND as TRESERVA_ADMIN
from services.adapter_treserva.families.admission_answer import INBOUND as ANSWERS
from services.adapter_treserva.families.medication_list import INBOUND as LISTS
from services.adapter_treserva.families.read_receipt import INBOUND as TRESERVA_READ
from services.adapter_treserva.families.ready_to_receive import INBOUND as READY
from services.messaging import topics
from services.messaging.consent import FAMILY_CLASS_SYSTEM, read_consent
from services.messaging.envelope import System, to_json
from services.messaging.families import FAMILIES
from services.messaging.intake import FakeIntakeStore, SqlIntakeStore, accept_event
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.intake_tables import consent_withdrawal, intake_record
from services.messaging.kafka import IncomingRecord
from services.messaging.native import InvalidEvent
from services.messaging.outbox import outbox
from services.router.routing.consent import NO_BASIS, routing_hold
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery, message
from tests.support.router import Clock, routing_rules, started

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TOKEN = "sandbox-takecare-key"
ADMISSION = Path("contracts/fixtures/takecare/admission-notice/personnummer-full.input.json")
PATIENT_VALUES = ("19121212", "Tolvan", "Tolvansson", "Strandgatan")


@pytest.fixture
def event():
    return json.loads(ADMISSION.read_text(encoding="utf-8"))


@pytest.fixture
def store():
    return FakeIntakeStore()


@pytest.fixture
async def client(store):
    app = create_app(AdapterTakeCareSettings(), store=store, sessions=None, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tc",
        headers={"authorization": f"Bearer {TOKEN}"},
    ) as c:
        yield c


async def _refused(client, store, event):
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    assert store.outbox == [] and store.entries == {}  # nothing leaves the hospital side
    for value in PATIENT_VALUES:
        assert value not in res.text
    return [(i["expression"][0], i["diagnostics"].split(":")[0]) for i in res.json()["issue"]]


# --- the intake ----------------------------------------------------------------------------


async def test_a_document_without_a_basis_is_422_and_never_stored(client, store, event):
    del event["consentBasis"]
    assert await _refused(client, store, event) == [("consentBasis", "required")]


async def test_a_basis_whose_scope_misses_the_family_is_refused(client, store, event):
    event["consentBasis"]["scope"] = ["medication-list", "sip-update"]
    assert await _refused(client, store, event) == [("consentBasis.scope", "consent-scope")]


@pytest.mark.parametrize("kept", ["municipality", "primary-care"])
async def test_a_basis_that_misses_a_receiver_is_refused(client, store, event, kept):
    """An admission notice goes to the municipality and to primary care: both must be named."""
    event["consentBasis"]["recipients"] = [{"unitKind": kept}]
    assert await _refused(client, store, event) == [
        ("consentBasis.recipients", "consent-recipients")
    ]


async def test_a_basis_recorded_in_the_future_is_refused(client, store, event):
    event["consentBasis"]["recordedAt"] = "2026-11-21T08:00:00+01:00"
    assert await _refused(client, store, event) == [("consentBasis.recordedAt", "consent-recorded")]


@pytest.mark.parametrize("kind", ["samtycke", "menprovning", "nodsituation"])
async def test_each_kind_of_basis_lets_the_document_through(client, store, event, kind):
    event["consentBasis"]["kind"] = kind
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 202
    (record,) = store.outbox
    basis = read_consent(json.loads(record.value))
    assert basis.kind == kind and not basis.withdrawn
    assert "Karin" not in json.dumps(record.headers) and "Karin" not in (record.key or "")


async def test_an_unknown_kind_is_refused_without_repeating_it(client, store, event):
    event["consentBasis"]["kind"] = "muntligt-ok"
    assert await _refused(client, store, event) == [("consentBasis.kind", "enum")]
    res = await client.post("/takecare/v1/admissions", json=event)
    assert "muntligt-ok" not in res.text


# the cancellation (makulering) shares nothing and needs no basis
# (contracts/fhir/message-cancelled.md)
_SHARING = {f.name for f in FAMILIES if f.needs_consent}
_BASIS_FAMILIES = [f for f in FAMILIES if f.needs_consent]


@pytest.mark.parametrize(
    "family",
    [f for f in (*TAKECARE_INBOUND, *TRESERVA_INBOUND) if f.family in _SHARING],
    ids=lambda f: f.schema,
)
def test_every_inbound_family_requires_the_block(family):
    """No family is left without the rule: each one's first fixture, its block removed."""
    source = System.TAKECARE if family.schema.startswith("takecare/") else System.TRESERVA
    (first, *_) = fixtures_of(source, family.family)
    doc = json.loads(first.read_text(encoding="utf-8"))
    block = "consentBasis" if source is System.TAKECARE else "samtyckesgrund"
    del doc[block]
    with pytest.raises(InvalidEvent) as caught:
        family.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    assert (block, "required") in {(v.path, v.rule) for v in caught.value.violations}


# --- the FHIR message ------------------------------------------------------------------------


def _goldens():
    for _source, family, path in fixture_inputs():
        if family in _SHARING and not path.name.startswith("refused-"):
            yield pytest.param(golden_path(path, "fhir"), id=str(path.relative_to(FIXTURES)))


@pytest.mark.parametrize("golden", list(_goldens()))
def test_every_golden_message_carries_its_consent_in_the_focus(golden):
    doc = json.loads(golden.read_text(encoding="utf-8"))
    header = doc["entry"][0]["resource"]
    by_url = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    focused = [by_url[f["reference"]] for f in header["focus"]]
    (consent,) = [r for r in focused if r["resourceType"] == "Consent"]
    withdrawal = header["eventCoding"]["code"] == "consent-withdrawn"
    assert consent["status"] == ("inactive" if withdrawal else "active")
    assert ("end" in consent["provision"]["period"]) is withdrawal
    assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
    assert consent["patient"]["reference"] in by_url
    assert by_url[consent["patient"]["reference"]]["resourceType"] == "Patient"
    assert consent["policyRule"]["coding"][0]["code"] in {"samtycke", "menprovning", "nodsituation"}
    assert consent["provision"]["actor"]
    basis = read_consent(doc)
    family = next(f for f in FAMILIES if header["eventCoding"]["code"] in f.events)
    source = System(header["source"]["endpoint"].rsplit(":", 1)[-1])
    assert basis.covers(family.name, family.destinations(source))


# --- the router ------------------------------------------------------------------------------


def _golden_message(family):
    """A golden FHIR message of ``family`` from its first source."""
    source = family.routes[0][0]
    (first, *_) = fixtures_of(source, family.name)
    return source, json.loads(golden_path(first, "fhir").read_text(encoding="utf-8"))


def _without_consent(doc):
    doc = copy.deepcopy(doc)
    consent = {e["fullUrl"] for e in doc["entry"] if e["resource"]["resourceType"] == "Consent"}
    doc["entry"] = [e for e in doc["entry"] if e["fullUrl"] not in consent]
    header = doc["entry"][0]["resource"]
    header["focus"] = [f for f in header["focus"] if f["reference"] not in consent]
    return doc


def _consent_of(doc):
    return next(e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Consent")


def _broken(doc, how):
    doc = copy.deepcopy(doc)
    consent = _consent_of(doc)
    if how == "withdrawn":
        consent["status"] = "inactive"
        consent["provision"]["period"]["end"] = "2026-11-20T09:00:00+01:00"
    elif how == "inactive-without-end":
        consent["status"] = "inactive"
        consent["provision"]["period"].pop("end", None)
    elif how == "active":
        consent["status"] = "active"
        consent["provision"]["period"].pop("end", None)
    elif how == "scope":
        consent["provision"]["class"] = [{"system": FAMILY_CLASS_SYSTEM, "code": "no-such-family"}]
    elif how == "recipients":
        consent["provision"]["actor"] = consent["provision"]["actor"][:0]
    elif how == "kind":
        consent["policyRule"]["coding"][0]["code"] = "unknown"
    return doc


def test_only_the_cancellation_goes_without_a_basis():
    assert [f.name for f in FAMILIES if not f.needs_consent] == ["message-cancelled"]


@pytest.mark.parametrize("family", _BASIS_FAMILIES, ids=lambda f: f.name)
def test_every_family_needs_a_basis_at_the_router(family):
    assert family.needs_consent
    source, doc = _golden_message(family)
    code = doc["entry"][0]["resource"]["eventCoding"]["code"]
    if family.name == "sip-update" and routing_hold(code, doc, source.value) is not None:
        pytest.skip("this SIP fixture's own consent is not given: held for that already")
    assert routing_hold(code, doc, source.value) is None
    assert routing_hold(code, _without_consent(doc), source.value) == NO_BASIS
    # a withdrawal is routed only as a withdrawal, any other message only while active
    # (and a withdrawal is within the scope of the basis it withdraws, whatever that was)
    withdrawal = family.name == "consent-withdrawal"
    ways = ("active",) if withdrawal else ("withdrawn", "scope")
    for how in (*ways, "inactive-without-end", "recipients", "kind"):
        assert routing_hold(code, _broken(doc, how), source.value) == NO_BASIS, how


_offsets = iter(range(10**9))


@pytest.fixture
async def router(sessions):
    return await started(Router(sessions=sessions, rules=routing_rules(), clock=Clock()))


@pytest.mark.parametrize("family", _BASIS_FAMILIES, ids=lambda f: f.name)
async def test_a_message_without_a_basis_is_delivered_nowhere(router, sessions, family):
    source, doc = _golden_message(family)
    if family.name == "sip-update":
        doc = next(
            d
            for d in (
                json.loads(golden_path(p, "fhir").read_text(encoding="utf-8"))
                for p in fixtures_of(source, family.name)
            )
            if routing_hold(d["entry"][0]["resource"]["eventCoding"]["code"], d, source.value)
            is None
        )
    held = _without_consent(doc)
    record = IncomingRecord(
        topics.INBOUND, 0, next(_offsets), "c" * 32, json.dumps(held).encode(), {}
    )
    await router.handle_batch([record])
    async with sessions() as s:
        rows = (
            await s.execute(
                select(delivery).where(delivery.c.message_id == doc["entry"][0]["resource"]["id"])
            )
        ).all()
        stored = (
            await s.execute(
                select(message).where(message.c.id == doc["entry"][0]["resource"]["id"])
            )
        ).one()
        commands = (await s.execute(select(outbox.c.headers))).scalars().all()
    assert rows == []  # no journal, no primary care, no webhook
    assert stored.unrouted_reason == NO_BASIS
    assert not any(
        c.get("message-id") == doc["entry"][0]["resource"]["id"] for c in commands
    )  # no topic either


def test_a_withdrawn_basis_reads_back_as_withdrawn():
    _, doc = _golden_message(FAMILIES[0])
    assert read_consent(_broken(doc, "withdrawn")).withdrawn


def test_samples_of_every_source_carry_a_basis_that_passes():
    """The simulators' documents keep the demo and the end-to-end stack flowing."""

    sources: list[tuple[Any, Any]] = [
        (ADMISSIONS, sample_admission(random.Random(3), now=NOW)),
        (LISTS, sample_treserva_medication_list(random.Random(3), now=NOW)),
    ]
    for family, doc in sources:
        event = family.parse(doc, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
        bundle = json.loads(to_json(family.to_bundle(event, now=NOW)))
        assert not read_consent(bundle).withdrawn


@pytest.mark.parametrize("seed", [3, 11, 2026])
def test_samples_of_the_process_families_carry_a_basis_that_routes(seed):
    """The answer at admission, kan ta emot, the read receipt and the administrative message
    (both ways), the interrupted process, the transfer and the death are messages of the
    process like any other: the simulators' samples carry the sender's basis, it passes
    the intake and the router routes the message on it."""
    senders: list[tuple[Any, Any]] = [
        (ANSWERS, sample_treserva_admission_answer),
        (READY, sample_treserva_ready_to_receive),
        (TRESERVA_READ, sample_treserva_read_receipt),
        (TAKECARE_READ, sample_takecare_read_receipt),
        (INTERRUPTIONS, sample_process_interrupted),
        (TRANSFERS, sample_transfer),
        (DEATHS, sample_patient_deceased),
        (TAKECARE_ADMIN, sample_takecare_administrative_message),
        (TRESERVA_ADMIN, sample_treserva_administrative_message),
    ]
    for family, sample in senders:
        doc = sample(random.Random(seed), now=NOW)
        event = family.parse(doc, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
        bundle = json.loads(to_json(family.to_bundle(event, now=NOW)))
        assert read_consent(bundle) == event.consent_block().basis()
        header = bundle["entry"][0]["resource"]
        source = event.business_key().source
        assert routing_hold(header["eventCoding"]["code"], bundle, source) is None
        assert routing_hold(header["eventCoding"]["code"], _without_consent(bundle), source) == (
            NO_BASIS
        )


async def test_a_read_receipt_without_the_readers_basis_is_422_and_names_no_patient():
    """A read receipt names the patient, so it needs the full basis: without one the intake
    refuses it, stores nothing and says which field, never a value."""
    doc = sample_takecare_read_receipt(random.Random(5), now=NOW)
    del doc["consentBasis"]
    store = FakeIntakeStore()
    app = create_app(AdapterTakeCareSettings(), store=store, sessions=None, clock=lambda: NOW)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tc",
        headers={"authorization": f"Bearer {TOKEN}"},
    ) as c:
        res = await c.post("/takecare/v1/read-receipts", json=doc)
    assert res.status_code == 422
    assert store.outbox == [] and store.entries == {}
    assert "consentBasis" in res.text
    patient = doc["patient"]
    for value in (patient["familyName"], patient["givenName"], doc["reader"]["name"]):
        assert value not in res.text
    for key in ("personalIdentityNumber", "reserveNumber"):
        if patient.get(key):
            assert patient[key] not in res.text


# --- withdrawal ------------------------------------------------------------------------------

WITHDRAWAL = Path(
    "contracts/fixtures/takecare/consent-withdrawal/withdrawn-personnummer.input.json"
)
STAY = "VT-889123"  # the admission fixture's stay, which the withdrawal fixture withdraws


@pytest.fixture
def withdrawal():
    return json.loads(WITHDRAWAL.read_text(encoding="utf-8"))


def _other_stay(event, n):
    event = copy.deepcopy(event)
    event["eventId"] = f"tc-other-{n}"
    event["encounter"]["encounterId"] = "VT-555000"
    return event


async def test_a_withdrawal_is_forwarded_and_stops_later_messages_of_the_stay(
    client, store, event, withdrawal
):
    assert event["encounter"]["encounterId"] == withdrawal["encounter"]["encounterId"] == STAY
    assert (await client.post("/takecare/v1/admissions", json=event)).status_code == 202
    res = await client.post("/takecare/v1/consent-withdrawals", json=withdrawal)
    assert res.status_code == 202
    # the receivers are told: a message of its own, its Consent inactive
    (_, told) = store.outbox
    assert told.headers["event"] == "consent-withdrawn"
    bundle = json.loads(told.value)
    basis = read_consent(bundle)
    assert basis.withdrawn and basis.withdrawn_at is not None
    assert routing_hold("consent-withdrawn", bundle, "takecare") is None
    (patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert "address" not in patient  # a withdrawal carries as little as it can
    # every later message of the stay is refused, naming the rule; nothing more is stored
    later = copy.deepcopy(event) | {"eventId": "tc-later-1", "eventType": "admission-updated"}
    res = await client.post("/takecare/v1/admissions", json=later)
    assert res.status_code == 422
    (issue,) = res.json()["issue"]
    assert issue["expression"] == ["encounter.encounterId"]
    assert issue["diagnostics"].startswith("consent-withdrawn:")
    assert STAY not in res.text and "Tolvan" not in res.text
    assert len(store.outbox) == 2
    # ...but not another stay's, and not a repeat of what was accepted before
    other = await client.post("/takecare/v1/admissions", json=_other_stay(event, 1))
    assert other.status_code == 202
    again = await client.post("/takecare/v1/admissions", json=event)
    assert again.status_code in (200, 202) and again.json()["duplicate"] is True
    assert (await client.post("/takecare/v1/consent-withdrawals", json=withdrawal)).json()[
        "duplicate"
    ] is True


def _takecare_fixture(name: str) -> Any:
    return json.loads(Path(f"contracts/fixtures/takecare/{name}.input.json").read_text("utf-8"))


@pytest.mark.parametrize(
    ("route", "fixture", "stay_path"),
    [
        ("process-interruptions", "process-interrupted/worsened-personnummer", "encounter"),
        ("transfers", "transfer/other-ward-personnummer", "encounter"),
        ("deaths", "patient-deceased/deceased-personnummer", "encounter"),
        ("administrative-messages", "administrative-message/fraga-om-hjalpmedel", "encounterId"),
    ],
)
async def test_the_whole_process_families_of_a_withdrawn_stay_are_refused(
    client, store, withdrawal, route, fixture, stay_path
):
    """Issue 20, item 4: the process families name their stay, so a withdrawal stops them too."""
    doc = _takecare_fixture(fixture)
    assert (await client.post("/takecare/v1/consent-withdrawals", json=withdrawal)).status_code == (
        202
    )
    res = await client.post(f"/takecare/v1/{route}", json=doc)
    assert res.status_code == 422
    (issue,) = res.json()["issue"]
    expected = "encounter.encounterId" if stay_path == "encounter" else "encounterId"
    assert issue["expression"] == [expected]
    assert issue["diagnostics"].startswith("consent-withdrawn:")
    assert STAY not in res.text and "Tolvan" not in res.text
    assert len(store.outbox) == 1  # the withdrawal only


async def test_a_withdrawal_needs_its_moment_and_nothing_else_may_carry_one(
    client, store, event, withdrawal
):
    del withdrawal["consentBasis"]["withdrawnAt"]
    res = await client.post("/takecare/v1/consent-withdrawals", json=withdrawal)
    assert res.status_code == 422
    event["consentBasis"]["withdrawnAt"] = "2026-11-20T09:00:00+01:00"
    assert await _refused(client, store, event) == [
        ("consentBasis.withdrawnAt", "consent-withdrawal-family")
    ]


@pytest.mark.parametrize("grouped", [False, True], ids=["one at a time", "grouped"])
async def test_the_withdrawn_stay_is_kept_in_the_database_under_a_pseudonym(
    sessions, event, withdrawal, grouped
):

    store = (GroupedIntakeStore if grouped else SqlIntakeStore)(sessions, "adapter_takecare")

    async def accept(doc, family):
        return await accept_event(
            doc,
            family,
            store=store,
            pseudonym_key="k" * 32,
            now=NOW,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )

    await accept(event, ADMISSIONS)
    await accept(withdrawal, WITHDRAWALS)
    await accept(withdrawal, WITHDRAWALS)  # a repeat: answered as one, stored once
    later = copy.deepcopy(event) | {"eventId": "tc-later-2"}
    with pytest.raises(InvalidEvent) as caught:
        await accept(later, ADMISSIONS)
    assert [(v.path, v.rule) for v in caught.value.violations] == [
        ("encounter.encounterId", "consent-withdrawn")
    ]
    await accept(_other_stay(event, 2), ADMISSIONS)
    async with sessions() as s:
        (row,) = (await s.execute(select(consent_withdrawal))).all()
        events = (await s.execute(select(intake_record.c.source_event_id))).scalars().all()
        queued = (await s.execute(select(outbox.c.id))).scalars().all()
    assert STAY not in json.dumps(row._asdict(), default=str) and len(row.stay) == 32
    assert "tc-later-2" not in events and len(events) == len(queued) == 3


async def test_a_withdrawal_reaches_every_receiver_of_the_stay(router, sessions):
    doc = json.loads(golden_path(WITHDRAWAL, "fhir").read_text(encoding="utf-8"))
    record = IncomingRecord(
        topics.INBOUND, 0, next(_offsets), "c" * 32, json.dumps(doc).encode(), {}
    )
    await router.handle_batch([record])
    async with sessions() as s:
        rows = (
            await s.execute(
                select(delivery).where(delivery.c.message_id == doc["entry"][0]["resource"]["id"])
            )
        ).all()
    assert {r.destination for r in rows} == {"treserva", "primary-care"}


async def test_a_withdrawal_recorded_in_the_future_is_refused(client, store, withdrawal):
    withdrawal["consentBasis"]["withdrawnAt"] = "2026-11-21T09:00:00+01:00"
    res = await client.post("/takecare/v1/consent-withdrawals", json=withdrawal)
    assert res.status_code == 422 and store.outbox == []
    (issue,) = res.json()["issue"]
    assert issue["expression"] == ["consentBasis.withdrawnAt"]
    assert issue["diagnostics"].startswith("consent-recorded:")


def test_the_simulated_withdrawal_passes_the_intake_and_is_forwarded():

    doc = sample_consent_withdrawal(random.Random(5), now=NOW, encounter_id=STAY)
    event = WITHDRAWALS.parse(doc, now=NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    bundle = json.loads(to_json(WITHDRAWALS.to_bundle(event, now=NOW)))
    assert read_consent(bundle).withdrawn
    assert routing_hold("consent-withdrawn", bundle, "takecare") is None
