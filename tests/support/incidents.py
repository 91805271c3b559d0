"""The router with its incident machinery: a sink for what it tells its channels,
admissions with a chosen admission time, and the alerts it stores."""

import random
from datetime import timedelta

from sqlalchemy import select

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.families.admission_notice import INBOUND, to_bundle
from services.messaging import topics
from services.messaging.envelope import to_json
from services.messaging.kafka import IncomingRecord
from services.router.alerting.events import AlertEvent
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.routing.tables import alert
from tests.support.router import T0


class Sink:
    """Collects what the incident machinery tells its channels."""

    def __init__(self):
        self.events: list[AlertEvent] = []

    async def __call__(self, session, event):
        self.events.append(event)

    def changes(self):
        return [(e.kind, e.change, e.severity) for e in self.events]


async def make_router(sessions, clock, sink):
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(hours=6),
        rng=random.Random(1),
        alert_sinks=(sink,),
    )
    r = Router(sessions=sessions, rules=rules, clock=clock)
    await r.sync_subscriptions()
    return r


_offsets = iter(range(10**9))


def admission(seed, *, admitted_at, patient):
    doc = sample_admission(random.Random(seed), now=admitted_at)
    doc["encounter"]["admittedAt"] = admitted_at.isoformat()
    bundle = to_json(
        to_bundle(
            INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID),
            now=T0,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), patient, bundle.encode(), {})


async def alerts(sessions):
    async with sessions() as s:
        return (await s.execute(select(alert).order_by(alert.c.id))).all()
