"""A SIP is shared between region and municipality only with the patient's consent: a SIP
message without it is stored (metadata, sealed payload) but routed nowhere, and the reason
is recorded on the message and logged, naming no patient."""

import json
import logging
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.sip_update import (
    sample_takecare_sip_update,
    sample_treserva_sip_update,
)
from services.adapter_takecare.families.sip_update import INBOUND as TAKECARE_SIP
from services.adapter_treserva.families.sip_update import INBOUND as TRESERVA_SIP
from services.messaging import topics
from services.messaging.envelope import to_json
from services.messaging.kafka import IncomingRecord
from services.messaging.outbox import outbox
from services.router.routing.consent import NO_BASIS, NO_CONSENT, routing_hold
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery, message
from tests.support.router import Clock, routing_rules, started

pytestmark = pytest.mark.security

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
_offsets = iter(range(10**9))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    return await started(Router(sessions=sessions, rules=routing_rules(), clock=clock))


def sip_record(seed, *, consent, treserva=False):
    rng = random.Random(seed)
    if treserva:
        doc = sample_treserva_sip_update(rng, now=NOW, stage="created", consent=consent)
        bundle = to_json(
            TRESERVA_SIP.to_bundle(
                TRESERVA_SIP.parse(
                    doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=NOW,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    else:
        doc = sample_takecare_sip_update(rng, now=NOW, stage="created", consent=consent)
        bundle = to_json(
            TAKECARE_SIP.to_bundle(
                TAKECARE_SIP.parse(
                    doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=NOW,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    key = "c" * 31 + str(seed % 10)
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), key, bundle.encode(), {}), doc


@pytest.mark.parametrize("treserva", [False, True], ids=["from TakeCare", "from Treserva"])
async def test_a_sip_without_consent_is_not_delivered_and_says_why(
    router,
    sessions,
    caplog,
    treserva,
):
    refused, doc = sip_record(1, consent=False, treserva=treserva)
    given, _ = sip_record(2, consent=True, treserva=treserva)
    caplog.set_level(logging.INFO)
    await router.handle_batch([refused, given])
    refused_id, given_id = (
        json.loads(r.value)["entry"][0]["resource"]["id"] for r in (refused, given)
    )
    async with sessions() as s:
        by_message = {
            m: [d.destination for d in rows]
            for m in (refused_id, given_id)
            for rows in [
                (await s.execute(select(delivery).where(delivery.c.message_id == m))).all()
            ]
        }
        held = (await s.execute(select(message).where(message.c.id == refused_id))).one()
        commands = (await s.execute(select(outbox.c.headers))).scalars().all()
    assert by_message[refused_id] == []  # no journal, no primary care, no webhook
    assert by_message[given_id]  # the control: the consented SIP goes out
    assert held.unrouted_reason == NO_CONSENT
    assert not any(c.get("message-id") == refused_id for c in commands)
    (line,) = [r for r in caplog.records if r.getMessage() == "message not routed"]
    assert line.message_id == refused_id and line.reason == NO_CONSENT
    logged = " ".join(
        f"{r.getMessage()} {json.dumps(r.__dict__, default=str, ensure_ascii=False)}"
        for r in caplog.records
    )
    patient = doc.get("patient") or doc.get("brukare")
    for value in patient.values():
        if isinstance(value, str):
            assert value not in logged


def test_an_unreadable_message_of_any_family_counts_as_without_a_basis():
    assert routing_hold("sip-created", None, "takecare") == NO_BASIS
    assert routing_hold("sip-created", {"resourceType": "Bundle", "entry": []}, "takecare") in (
        NO_CONSENT,
        NO_BASIS,
    )
    assert routing_hold("admission-notice", None, "takecare") == NO_BASIS
