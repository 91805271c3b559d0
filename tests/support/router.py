"""The router service driven by a controllable clock: the clock, the rules the router tests
route by, and builders of the records it consumes (inbound messages, results, versioned
documents)."""

import copy
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from sandbox.simulators.samples.admission_notice import sample_admission
from services.adapter_takecare.families.admission_notice import INBOUND, to_bundle
from services.messaging import topics
from services.messaging.envelope import EventCode, System, response_message, to_json
from services.messaging.kafka import IncomingRecord
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.tables import (
    delivery,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


async def started(router):
    """The router as its service starts it: subscriptions written from the catalogue."""
    await router.sync_subscriptions()
    return router


def routing_rules(**overrides):
    """The rules these tests route by: 15 min to confirm an admission, 3 attempts."""
    return RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
        **overrides,
    )


_offsets = iter(range(10**9))


def inbound(seed=1, *, patient="p" * 32, event_id=None):
    doc = sample_admission(random.Random(seed), now=T0, event_id=event_id)
    bundle = to_json(
        to_bundle(
            INBOUND.parse(doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID),
            now=T0,
            regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
        )
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), patient, bundle.encode(), {})


def result(
    message_id,
    code,
    *,
    event=EventCode.DELIVERY_OUTCOME,
    attempt=1,
    why=None,
    responder=System.TRESERVA,
    failure=None,
    evidence=None,
):
    """An adapter's outcome or receipt record; ``failure`` is a transient outcome's
    FailureKind header (none: as an adapter from before it was sent)."""
    bundle = response_message(
        request_message_id=message_id,
        event=event,
        responder=responder,
        code=code,
        diagnostics=why,
        response_id=str(uuid.uuid4()),
        now=T0,
        evidence=evidence,
    )
    return IncomingRecord(
        topics.RESULTS,
        0,
        next(_offsets),
        message_id,
        to_json(bundle).encode(),
        {"attempt": str(attempt), **({"failure": str(failure)} if failure else {})},
    )


def message_id(record):
    return json.loads(record.value)["entry"][0]["resource"]["id"]


async def deliveries(sessions, destination="treserva"):
    """The deliveries to one destination (these tests follow Treserva's)."""
    async with sessions() as s:
        return (
            await s.execute(
                select(delivery)
                .where(delivery.c.destination == destination)
                .order_by(delivery.c.id)
            )
        ).all()


def versioned(version, *, document="list-1", event="medication-list", source="takecare"):
    """A versioned message (only the envelope matters to the router)."""
    doc = json.loads(inbound(seed=version).value)
    key = f"{source}|{document}|{version}"
    doc["identifier"]["value"] = key
    doc["entry"][0]["resource"]["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    header = doc["entry"][0]["resource"]
    header["eventCoding"]["code"] = event
    header["source"]["endpoint"] = f"urn:carebridge:system:{source}"
    _consent_covers_every_unit_kind(doc)
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), "p" * 32, json.dumps(doc).encode(), {})


def _consent_covers_every_unit_kind(doc):
    """The admission's Consent (every family, to the municipality and primary care) made to
    cover the hospital too, so a message recast as another source's still has a basis that
    the router accepts (services.router.routing.consent)."""
    (consent,) = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Consent"]
    actor = copy.deepcopy(consent["provision"]["actor"][0])
    actor["role"]["coding"][-1]["code"] = actor["reference"]["display"] = "hospital"
    consent["provision"]["actor"].append(actor)
