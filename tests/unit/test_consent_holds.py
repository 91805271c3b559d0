"""Consent against the unit the router addresses, and consent withdrawn for a stay whichever
side writes about it: such a message is held (stored, never delivered) with a
``consent_hold`` incident for IT operations (services.router.routing.consent)."""

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_answer import sample_treserva_admission_answer
from sandbox.simulators.samples.consent_withdrawal import sample_consent_withdrawal
from sandbox.simulators.samples.ready_to_receive import sample_treserva_ready_to_receive
from services.adapter_takecare.families import consent_withdrawal
from services.adapter_treserva.families import admission_answer, ready_to_receive
from services.messaging import topics
from services.messaging.consent import ConsentBasis, Recipient
from services.messaging.envelope import System, to_json
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.kafka import IncomingRecord
from services.messaging.vocabulary import KOMMUNKOD_SYSTEM, MUNICIPALITY_EXTENSION
from services.router.alerting import unit_store
from services.router.alerting.unit_directory import UnitDirectory
from services.router.routing.addressing import Addressing
from services.router.routing.consent import STAY_WITHDRAWN, UNIT_NOT_COVERED, unit_hold
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, delivery, message
from tests.support.incidents import Sink
from tests.support.router import Clock, inbound, message_id, routing_rules, started

UNITS = Path(__file__).resolve().parents[2] / "contracts" / "units"
HALLAND = UnitDirectory.load(UNITS / "halland.json")
HALMSTAD, VARBERG = "1380", "1383"
HALMSTAD_HOME_CARE, VARBERG_HOME_CARE = "SE2120000000-HMSHSV", "SE2120000002-VBGHSV"
VC_ANDERSBERG = "SE2321000115-VCANDE"
MUNICIPALITY_URL, KOMMUNKOD = MUNICIPALITY_EXTENSION, KOMMUNKOD_SYSTEM
_offsets = iter(range(10**9))


# --- which unit a basis covers, pure --------------------------------------------------------


def basis(kind, *recipients):
    return ConsentBasis(
        kind=kind,
        recorded_by_name="Ann Ek",
        recorded_by_hsa_id="SE2321000222-ANNE",
        recorded_at=datetime(2026, 11, 1, tzinfo=UTC),
        scope=("admission-notice",),
        recipients=recipients,
    )


def test_a_consent_naming_a_unit_covers_that_unit_only():
    named = basis("samtycke", Recipient("municipality", HALMSTAD_HOME_CARE))
    assert named.covers_unit(System.TRESERVA, HALMSTAD_HOME_CARE)
    assert not named.covers_unit(System.TRESERVA, VARBERG_HOME_CARE)
    assert not named.covers_unit(System.PRIMARY_CARE, VC_ANDERSBERG)  # no such kind named


def test_a_consent_naming_a_kind_covers_every_unit_of_it():
    kind_wide = basis("samtycke", Recipient("municipality"))
    assert kind_wide.covers_unit(System.TRESERVA, VARBERG_HOME_CARE)


@pytest.mark.parametrize("legal", ["menprovning", "nodsituation"])
def test_a_legal_basis_covers_any_unit_of_the_kind_it_names(legal):
    found = basis(legal, Recipient("municipality", HALMSTAD_HOME_CARE))
    assert found.covers_unit(System.TRESERVA, VARBERG_HOME_CARE)
    assert not found.covers_unit(System.PRIMARY_CARE, VC_ANDERSBERG)


def test_an_unreadable_basis_holds_the_addressed_unit():
    assert unit_hold("admission-notice", None, "treserva", VARBERG_HOME_CARE) == UNIT_NOT_COVERED
    assert (
        unit_hold("admission-notice", None, "treserva", None) is None
    )  # not addressed: routing_hold's business


# --- the router -------------------------------------------------------------------------------


def admission(seed, *, municipality, consent_unit=None, kind="samtycke"):
    """An admission notice of a patient of ``municipality`` listed at Andersberg, whose
    consent names ``consent_unit`` as its municipal recipient (None: every unit of the kind)."""
    rec = inbound(seed)
    doc = json.loads(rec.value)
    for entry in doc["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["extension"] = [
                {
                    "url": MUNICIPALITY_URL,
                    "valueCoding": {"system": KOMMUNKOD, "code": municipality},
                }
            ]
            resource["generalPractitioner"] = [
                {
                    "type": "Organization",
                    "identifier": {"system": HSA_ID_SYSTEM, "value": VC_ANDERSBERG},
                }
            ]
        if resource["resourceType"] == "Consent":
            for coding in (resource["policyRule"]["coding"], resource["category"][1]["coding"]):
                coding[0]["code"] = kind
            for actor in resource["provision"]["actor"]:
                if actor["reference"]["display"] == "municipality" and consent_unit is not None:
                    actor["reference"]["identifier"] = {
                        "system": HSA_ID_SYSTEM,
                        "value": consent_unit,
                    }
    return IncomingRecord(rec.topic, 0, next(_offsets), rec.key, json.dumps(doc).encode(), {})


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
async def router(sessions, sink):
    async with sessions.begin() as s:
        await unit_store.seed_if_empty(s, HALLAND, Clock().now)
    rules = routing_rules(addressing=Addressing(dict(HALLAND.destinations)), alert_sinks=(sink,))
    return await started(Router(sessions=sessions, rules=rules, clock=Clock()))


async def stored(sessions, rec):
    async with sessions() as s:
        held = (
            await s.execute(
                select(message.c.unrouted_reason).where(message.c.id == message_id(rec))
            )
        ).scalar_one()
        sent = (
            await s.execute(
                select(delivery.c.destination).where(delivery.c.message_id == message_id(rec))
            )
        ).all()
    return held, sorted(r.destination for r in sent)


async def incidents(sessions):
    async with sessions() as s:
        rows = await s.execute(select(alert.c.kind, alert.c.destination, alert.c.event_code))
        return [tuple(r) for r in rows if r.kind == "consent_hold"]


async def test_a_consent_for_another_unit_holds_the_message_with_an_incident(
    router, sessions, sink
):
    rec = admission(1, municipality=VARBERG, consent_unit=HALMSTAD_HOME_CARE)
    await router.handle_batch([rec])
    assert await stored(sessions, rec) == (UNIT_NOT_COVERED, [])  # to nobody, not even VC
    assert await incidents(sessions) == [("consent_hold", "treserva", "admission-notice")]
    (told,) = [e for e in sink.events if e.kind == "consent_hold"]
    assert told.receiver_unit_hsa is None  # the unit the consent does not cover hears nothing


async def test_a_consent_for_the_addressed_unit_is_routed(router, sessions):
    rec = admission(2, municipality=HALMSTAD, consent_unit=HALMSTAD_HOME_CARE)
    await router.handle_batch([rec])
    assert await stored(sessions, rec) == (None, ["primary-care", "treserva"])
    assert await incidents(sessions) == []


async def test_a_legal_basis_reaches_any_unit_of_its_kind(router, sessions):
    rec = admission(3, municipality=VARBERG, consent_unit=HALMSTAD_HOME_CARE, kind="nodsituation")
    await router.handle_batch([rec])
    assert await stored(sessions, rec) == (None, ["primary-care", "treserva"])


def takecare_withdrawal(stay, now):
    doc = sample_consent_withdrawal(random.Random(4), now=now, encounter_id=stay)
    parsed = consent_withdrawal.INBOUND.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = consent_withdrawal.INBOUND.to_bundle(
        parsed, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), "p" * 32, to_json(bundle).encode(), {})


def treserva(family, doc, now):
    parsed = family.INBOUND.parse(
        doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    bundle = family.INBOUND.to_bundle(
        parsed, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), "p" * 32, to_json(bundle).encode(), {})


def answer(stay, now, seed=5):
    doc = sample_treserva_admission_answer(random.Random(seed), now=now, stay=stay)
    return treserva(admission_answer, doc, now)


async def test_treserva_messages_of_a_withdrawn_stay_are_held_like_takecares(sessions, sink):
    router = await started(
        Router(sessions=sessions, rules=routing_rules(alert_sinks=(sink,)), clock=Clock())
    )
    now = Clock().now
    withdrawal = takecare_withdrawal("VT-424242", now)
    await router.handle_batch([withdrawal])
    assert (await stored(sessions, withdrawal))[1] != []  # the receivers are told
    late = answer("VT-424242", now)
    other_stay = answer("VT-555555", now, seed=6)
    await router.handle_batch([late, other_stay])
    assert await stored(sessions, late) == (STAY_WITHDRAWN, [])
    assert (await stored(sessions, other_stay))[0] is None
    assert await incidents(sessions) == [("consent_hold", "treserva", "admission-answer")]


async def test_a_withdrawal_earlier_in_the_batch_holds_what_follows_it(sessions):
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=Clock()))
    now = Clock().now
    doc = sample_treserva_ready_to_receive(random.Random(7), now=now)
    doc["vardtillfalleId"] = "VT-777777"
    ready = treserva(ready_to_receive, doc, now)
    withdrawal = takecare_withdrawal("VT-777777", now)
    await router.handle_batch([withdrawal, ready])
    assert await stored(sessions, ready) == (STAY_WITHDRAWN, [])
