"""A small, realistic delivery log for the console tests (in process and in the browser): the
router driven in process with time moved by the test.

- patient A's admission notice: delivered and confirmed by Treserva and primary care;
- patient B's admission notice: refused by Treserva (a dead letter and a critical incident);
- patient C's admission notice: accepted by Treserva, never confirmed (the Gotland fault);
  16 minutes later the confirmation is overdue and its incident opens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.families.admission_notice import INBOUND, to_bundle
from services.messaging import topics
from services.messaging.envelope import EventCode, ResponseCode, System, to_json
from services.messaging.identifiers import parse_patient_identifier, pseudonym
from services.messaging.kafka import IncomingRecord
from services.messaging.settings import SANDBOX_PSEUDONYM_KEY
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from tests.support.router import Clock, message_id, result

_offsets = iter(range(10**9))


@dataclass(frozen=True)
class Seeded:
    confirmed: str  # message ids
    dead: str
    unconfirmed: str
    personnummer: str  # patient B's, a Skatteverket test number
    pseudonym_b: str
    business_key_a: str
    received_at: datetime  # when the router took the three admission notices


def admission(seed: int, clock: Clock) -> tuple[IncomingRecord, str, str]:
    doc = sample_admission(random.Random(seed), now=clock())
    raw = doc["patient"]["personalIdentityNumber"]
    key = pseudonym(SANDBOX_PSEUDONYM_KEY, parse_patient_identifier(raw))
    bundle = to_json(
        to_bundle(
            INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID),
            now=clock(),
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )
    )
    record = IncomingRecord(topics.INBOUND, 0, next(_offsets), key, bundle.encode(), {})
    return record, raw, f"takecare|{doc['eventId']}|{doc['version']}"


async def seed(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> Seeded:
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(hours=6),
        rng=random.Random(1),
    )
    router = Router(sessions=sessions, rules=rules, clock=clock)
    await router.sync_subscriptions()
    a, _, key_a = admission(1, clock)
    b, raw_b, _ = admission(4, clock)
    c, _, _ = admission(5, clock)
    received_at = clock()
    await router.handle_batch([a, b, c])
    await router.tick()  # dispatched
    ok = ResponseCode.OK
    for who in (System.TRESERVA, System.PRIMARY_CARE):
        await router.handle_batch(
            [
                result(message_id(a), ok, responder=who),
                result(message_id(a), ok, responder=who, event=EventCode.RECEIPT),
            ]
        )
    await router.handle_batch(
        [
            result(message_id(b), ResponseCode.FATAL_ERROR, why="HTTP 400: unknown unit"),
            result(message_id(b), ok, responder=System.PRIMARY_CARE),
            result(message_id(c), ok),  # accepted by Treserva, then silently dropped
        ]
    )
    clock.advance(16 * 60)
    await router.tick()
    return Seeded(
        confirmed=message_id(a),
        dead=message_id(b),
        unconfirmed=message_id(c),
        personnummer=raw_b,
        pseudonym_b=b.key or "",
        business_key_a=key_a,
        received_at=received_at,
    )
