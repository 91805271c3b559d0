"""A stay routed through the router for the payment clock's tests: its admission notice
confirmed with the receiving journal's evidence, a ready notice sent late, and the report."""

import random
from datetime import UTC, date, datetime

from sandbox.contracts_cli import FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from sandbox.simulators.samples.discharge import sample_discharge_readiness
from services.adapter_takecare.families import admission_notice, discharge_readiness
from services.messaging import topics
from services.messaging.envelope import EventCode, ReceiverEvidence, ResponseCode, System, to_json
from services.messaging.kafka import IncomingRecord
from services.router.statistics.payment import MunicipalityDirectory, payment_report
from services.router.statistics.payment_clock import PaymentAgreements
from tests.support.incidents import Sink, make_router
from tests.support.router import message_id, result

PATIENT = "a" * 32
RECEIVED_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # Treserva's own time of the receipt
_offsets = iter(range(10**9))
LAW_EVERYWHERE = PaymentAgreements()


def record(family, doc, now):
    parsed = family.INBOUND.parse(doc, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    bundle = to_json(
        family.INBOUND.to_bundle(parsed, now=now, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID)
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), PATIENT, bundle.encode(), {})


async def answered(router, rec, *, receipt=True, evidence=None):
    """Treserva and primary care accept ``rec``; with ``receipt``, confirm it too."""
    for who in (System.TRESERVA, System.PRIMARY_CARE):
        batch = [result(message_id(rec), ResponseCode.OK, responder=who)]
        if receipt:
            batch.append(
                result(
                    message_id(rec),
                    ResponseCode.OK,
                    responder=who,
                    event=EventCode.RECEIPT,
                    evidence=evidence if who is System.TRESERVA else None,
                )
            )
        await router.handle_batch(batch)


async def a_stay(sessions, clock, *, admission_receipt=True):
    """Admitted on Friday 20 November 2026 (T0), its admission notice confirmed by Treserva
    (record TRS-77), judged ready that morning; Treserva is down until Monday 23 November
    10:00, when the ready notice is sent."""
    router = await make_router(sessions, clock, Sink())
    admission = record(admission_notice, sample_admission(random.Random(1), now=clock()), clock())
    await router.handle_batch([admission])
    await answered(
        router,
        admission,
        receipt=admission_receipt,
        evidence=ReceiverEvidence("TRS-77", RECEIVED_AT),
    )
    clock.advance(3600)
    ready = record(
        discharge_readiness, sample_discharge_readiness(random.Random(2), now=clock()), clock()
    )
    await router.handle_batch([ready])
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 10:00 in Stockholm
    await answered(router, ready, receipt=False)
    return router


async def report(sessions, now, agreements=LAW_EVERYWHERE):
    async with sessions() as s:
        return await payment_report(
            s,
            agreements=agreements,
            directory=MunicipalityDirectory(),
            since=date(2026, 11, 1),
            until=date(2026, 12, 31),
            now=now,
        )
