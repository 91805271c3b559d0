"""Addressing by unit (issue 20): a notice goes to the home-care unit of the patient's
municipality of residence and to the listed vårdcentral, named by HSA-id on the delivery and
on its command; a patient of one municipality never reaches another's unit, and a notice no
unit can be named for is dead-lettered with its reason and an incident, never dropped."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.care_facts import CareFacts, read_care_facts
from services.messaging.envelope import RECEIVER_UNIT_HEADER
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import outbox
from services.messaging.vocabulary import KOMMUNKOD_SYSTEM, MUNICIPALITY_EXTENSION
from services.router.alerting import unit_store
from services.router.alerting.unit_directory import UnitDirectory
from services.router.routing.addressing import Addressing, Receiver, Receivers
from services.router.routing.handlers import Router
from services.router.routing.replay import ReplayFilter, replay
from services.router.routing.tables import alert, delivery
from tests.support.router import Clock, inbound, message_id, routing_rules, started

UNITS = Path(__file__).resolve().parents[2] / "contracts" / "units"
HALLAND = UnitDirectory.load(UNITS / "halland.json")
GOTLAND = UnitDirectory.load(UNITS / "gotland.json")

HALMSTAD, FALKENBERG, VARBERG = "1380", "1382", "1383"
HOME_CARE = {
    HALMSTAD: "SE2120000000-HMSHSV",
    FALKENBERG: "SE2120000001-FBGHSV",
    VARBERG: "SE2120000002-VBGHSV",
}
VC_ANDERSBERG, VC_FALKENBERG = "SE2321000115-VCANDE", "SE2321000115-VCFBG"


def receivers(directory):
    return Receivers(
        tuple(
            Receiver(u.hsa_id, u.kind.value, u.municipality, u.channel)
            for u in directory.units.values()
            if u.channel and u.active
        ),
        dict(directory.destinations),
    )


# --- the rule, pure ---------------------------------------------------------------------------


@pytest.mark.parametrize("municipality", [HALMSTAD, FALKENBERG, VARBERG])
def test_treserva_gets_the_home_care_unit_of_the_patients_municipality_only(municipality):
    address = receivers(HALLAND).address("treserva", CareFacts(municipality=municipality))
    assert address.unit_hsa == HOME_CARE[municipality]
    others = set(HOME_CARE.values()) - {HOME_CARE[municipality]}
    assert address.unit_hsa not in others


def test_an_unknown_municipality_is_refused_never_sent_to_another():
    address = receivers(HALLAND).address("treserva", CareFacts(municipality="0180"))
    assert address.unit_hsa is None
    assert address.refused is not None and "0180" in address.refused


def test_no_municipality_is_refused_in_a_region_of_several():
    address = receivers(HALLAND).address("treserva", CareFacts())
    assert address.unit_hsa is None and "no municipality" in (address.refused or "")


def test_no_municipality_in_a_region_of_one_goes_to_its_home_care():
    """Gotland is one region and one municipality: a notice from before the field existed
    still reaches its home-care reception."""
    assert receivers(GOTLAND).address("treserva", CareFacts()).unit_hsa == "SE2120000803-HSMO"


def test_primary_care_gets_the_listed_vardcentral():
    facts = CareFacts(municipality=VARBERG, listed_unit_hsa=VC_FALKENBERG)
    assert receivers(HALLAND).address("primary-care", facts).unit_hsa == VC_FALKENBERG


def test_an_unknown_or_missing_vardcentral_is_refused():
    r = receivers(HALLAND)
    unknown = r.address("primary-care", CareFacts(listed_unit_hsa="SE2321000115-NOPE"))
    assert unknown.unit_hsa is None and "SE2321000115-NOPE" in (unknown.refused or "")
    missing = r.address("primary-care", CareFacts(municipality=HALMSTAD))
    assert missing.unit_hsa is None and missing.refused


def test_the_regions_primary_care_default_serves_only_its_own_municipality():
    r = receivers(GOTLAND)  # destinations: primary-care → Vårdcentralen Visby Norr (0980)
    assert r.address("primary-care", CareFacts()).unit_hsa == "SE2321000222-VCVI"
    assert r.address("primary-care", CareFacts(municipality="0980")).unit_hsa is not None
    assert r.address("primary-care", CareFacts(municipality="1380")).unit_hsa is None


def test_a_deactivated_unit_receives_nothing():
    units = tuple(u for u in receivers(HALLAND).units if u.hsa_id != HOME_CARE[VARBERG])
    address = Receivers(units).address("treserva", CareFacts(municipality=VARBERG))
    assert address.unit_hsa is None and address.refused


def test_takecare_and_webhooks_are_not_addressed_by_unit():
    assert receivers(HALLAND).address("takecare", CareFacts()).refused is None
    assert receivers(HALLAND).address("sub-1234", CareFacts()).unit_hsa is None


# --- the router -------------------------------------------------------------------------------


def addressed(seed, *, municipality=None, listed=None, patient="p" * 32):
    """An admission notice whose Patient names its municipality and listed vårdcentral."""
    rec = inbound(seed, patient=patient)
    doc = json.loads(rec.value)
    for entry in doc["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "Patient":
            continue
        if municipality is not None:
            resource["extension"] = [
                {
                    "url": MUNICIPALITY_EXTENSION,
                    "valueCoding": {
                        "system": KOMMUNKOD_SYSTEM,
                        "code": municipality,
                    },
                }
            ]
        if listed is not None:
            resource["generalPractitioner"] = [
                {
                    "type": "Organization",
                    "identifier": {"system": "urn:oid:1.2.752.29.4.19", "value": listed},
                }
            ]
    facts = read_care_facts(doc)
    assert (facts.municipality, facts.listed_unit_hsa) == (municipality, listed)
    return IncomingRecord(
        rec.topic, rec.partition, rec.offset, rec.key, json.dumps(doc).encode(), {}
    )


@pytest.fixture
async def router(sessions):
    async with sessions.begin() as s:
        await unit_store.seed_if_empty(s, HALLAND, Clock().now)
    rules = routing_rules(addressing=Addressing(dict(HALLAND.destinations)))
    return await started(Router(sessions=sessions, rules=rules, clock=Clock()))


async def rows(sessions):
    async with sessions() as s:
        return (await s.execute(select(delivery).order_by(delivery.c.id))).all()


async def commands(sessions, destination):
    async with sessions() as s:
        found = await s.execute(
            select(outbox).where(outbox.c.topic == topics.outbound(destination))
        )
        return [dict(r.headers) for r in found.all()]


async def test_a_patient_of_municipality_a_never_reaches_municipality_bs_unit(router, sessions):
    await router.handle_batch(
        [
            addressed(1, municipality=HALMSTAD, listed=VC_ANDERSBERG, patient="a" * 32),
            addressed(2, municipality=VARBERG, listed=VC_FALKENBERG, patient="b" * 32),
        ]
    )
    found = {(r.destination, r.receiver_unit_hsa, r.state) for r in await rows(sessions)}
    assert found == {
        ("treserva", HOME_CARE[HALMSTAD], "dispatched"),
        ("treserva", HOME_CARE[VARBERG], "dispatched"),
        ("primary-care", VC_ANDERSBERG, "dispatched"),
        ("primary-care", VC_FALKENBERG, "dispatched"),
    }
    sent = sorted(h[RECEIVER_UNIT_HEADER] for h in await commands(sessions, "treserva"))
    assert sent == sorted([HOME_CARE[HALMSTAD], HOME_CARE[VARBERG]])
    assert HOME_CARE[FALKENBERG] not in sent


async def test_an_unknown_municipality_is_dead_lettered_with_its_reason_and_alerted(
    router, sessions
):
    rec = addressed(3, municipality="0180", listed=VC_ANDERSBERG)
    await router.handle_batch([rec])
    by_destination = {r.destination: r for r in await rows(sessions)}
    treserva = by_destination["treserva"]
    assert treserva.state == "dead_letter" and treserva.receiver_unit_hsa is None
    assert "unaddressable" in treserva.last_error and "0180" in treserva.last_error
    assert by_destination["primary-care"].receiver_unit_hsa == VC_ANDERSBERG
    assert await commands(sessions, "treserva") == []  # sent nowhere, not to a default
    async with sessions() as s:
        (a,) = (await s.execute(select(alert))).all()
    assert (a.kind, a.destination, a.state) == ("delivery_failed", "treserva", "open")
    async with sessions() as s:
        dead = (await s.execute(select(outbox).where(outbox.c.topic == topics.DEAD_LETTER))).all()
    assert [dict(d.headers)["message-id"] for d in dead] == [message_id(rec)]


async def test_a_replay_after_the_directory_is_fixed_addresses_the_new_unit(router, sessions):
    await router.handle_batch([addressed(4, municipality="1384", listed=VC_ANDERSBERG)])
    (dead,) = [r for r in await rows(sessions) if r.destination == "treserva"]
    kungsbacka = HALLAND.units[HOME_CARE[VARBERG]].model_copy(
        update={"hsa_id": "SE2120000003-KBAHSV", "municipality": "1384"}
    )
    async with sessions.begin() as s:
        await unit_store.put_unit(s, kungsbacka, actor="test", role="admin", now=Clock().now)
    async with sessions.begin() as s:
        (outcome,) = await replay(
            s,
            ReplayFilter(message_ids=(dead.message_id,), destination="treserva"),
            actor="test",
            reason="directory fixed",
            force=False,
            now=Clock().now,
        )
    assert outcome.replayed
    await router.tick()
    (again,) = [r for r in await rows(sessions) if r.destination == "treserva"]
    assert (again.state, again.receiver_unit_hsa) == ("dispatched", "SE2120000003-KBAHSV")


def test_the_cli_timeline_names_the_receiving_unit():
    from services.router.ops.cli_output import timeline

    detail = {
        "id": "m-1",
        "event_code": "admission-notice",
        "source": "takecare",
        "received_at": "2026-11-20T08:00:00+00:00",
        "sent_at": "2026-11-20T08:00:00+00:00",
        "pseudonym": None,
        "deliveries": [
            {
                "destination": "treserva",
                "state": "sent",
                "attempts": 1,
                "receiver_unit_hsa": HOME_CARE[VARBERG],
            }
        ],
    }
    assert f"→ treserva (unit {HOME_CARE[VARBERG]}): sent, 1 attempt(s)" in list(timeline(detail))


async def test_a_failed_delivery_names_its_unit_to_the_fallback_notice_and_the_deviation(
    sessions,
):
    from services.messaging.envelope import ResponseCode
    from services.router.routing.tables import deviation
    from tests.support.incidents import Sink
    from tests.support.router import result

    async with sessions.begin() as s:
        await unit_store.seed_if_empty(s, HALLAND, Clock().now)
    sink = Sink()
    rules = routing_rules(addressing=Addressing(dict(HALLAND.destinations)), alert_sinks=(sink,))
    router = await started(Router(sessions=sessions, rules=rules, clock=Clock()))
    rec = addressed(5, municipality=VARBERG, listed=VC_FALKENBERG)
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR)])
    failed = [e for e in sink.events if e.destination == "treserva"]
    assert failed and {e.receiver_unit_hsa for e in failed} == {HOME_CARE[VARBERG]}
    async with sessions() as s:
        (found,) = (await s.execute(select(deviation.c.receiver_unit_hsa))).all()
    assert found.receiver_unit_hsa == HOME_CARE[VARBERG]
