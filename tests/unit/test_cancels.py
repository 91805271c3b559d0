"""The router's cancels relation (services.router.routing.cancels): a cancellation (makulering)
reaches exactly the receivers of the message it cancels; an original not delivered yet stops
and never raises a missing-confirmation alert; an original already delivered keeps its
delivery and the cancellation is delivered like any message; a cancellation the router
cannot tie to a message it holds is dead-lettered with its reason and an incident."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.cancellation import Cancellation, Canceller, cancellation_bundle
from services.messaging.envelope import BusinessKey, EventCode, ResponseCode, System, to_json
from services.messaging.fhir_parts import PatientInfo
from services.messaging.identifiers import parse_patient_identifier
from services.messaging.kafka import IncomingRecord
from services.router.routing import cancels
from services.router.routing.domain import (
    DeliveryState,
    IllegalTransition,
    check_delivery_transition,
)
from services.router.routing.episodes import episode
from services.router.routing.handlers import Router
from services.router.routing.tables import alert, delivery, delivery_transition, message
from tests.support.router import (
    T0,
    Clock,
    deliveries,
    inbound,
    message_id,
    result,
    routing_rules,
    started,
)

_offsets = iter(range(10**6, 10**9))
PATIENT = "p" * 32


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    return await started(Router(sessions=sessions, rules=routing_rules(), clock=clock))


def cancellation(cancelled_id, *, patient=PATIENT, source=System.TAKECARE, event_id="tc-mak-1"):
    """A cancellation record of the message ``cancelled_id`` (keyed by ``patient``)."""
    bundle = cancellation_bundle(
        Cancellation(
            cancelled_message_id=cancelled_id,
            cancelled_at=T0,
            reason="Skickat i misstag",
            patient=PatientInfo(
                identifier=parse_patient_identifier("191212121212"),
                family_name="Tolvansson",
                given_name="Tolvan",
                address=None,
                protected=False,
            ),
            cancelled_by=Canceller("Karin Lindqvist", "SE2321000222-P4711", "SE2321000222-AKUT"),
        ),
        key=BusinessKey(source.value, event_id, 1),
        source=source,
        now=T0,
    )
    return IncomingRecord(topics.INBOUND, 0, next(_offsets), patient, to_json(bundle).encode(), {})


async def rows_of(sessions, message_id_):
    async with sessions() as s:
        return (
            await s.execute(
                select(delivery)
                .where(delivery.c.message_id == message_id_)
                .order_by(delivery.c.destination)
            )
        ).all()


async def alerts(sessions):
    async with sessions() as s:
        return (await s.execute(select(alert).order_by(alert.c.id))).all()


def test_cancelled_is_final_and_reached_only_before_delivery():
    for state in (DeliveryState.PENDING, DeliveryState.DISPATCHED, DeliveryState.DEAD_LETTER):
        check_delivery_transition(state, DeliveryState.CANCELLED)
    for state in (DeliveryState.SENT, DeliveryState.CONFIRMED):
        with pytest.raises(IllegalTransition):
            check_delivery_transition(state, DeliveryState.CANCELLED)
    for target in DeliveryState:
        with pytest.raises(IllegalTransition):
            check_delivery_transition(DeliveryState.CANCELLED, target)


async def test_a_cancellation_reaches_exactly_the_originals_receivers(router, sessions):
    original = inbound()
    await router.handle_batch([original])
    # the original went to Treserva and primary care; a webhook switched on later does not
    # hear of it, and neither does it of the cancellation
    before = {
        (r.destination, r.receiver_unit_hsa) for r in await rows_of(sessions, message_id(original))
    }
    assert {d for d, _ in before} == {"treserva", "primary-care"}
    await router.handle_batch([result(message_id(original), ResponseCode.OK)])
    cancel = cancellation(message_id(original))
    await router.handle_batch([cancel])
    after = {
        (r.destination, r.receiver_unit_hsa) for r in await rows_of(sessions, message_id(cancel))
    }
    assert after == before


async def test_a_cancellation_goes_only_where_the_original_went_not_where_its_family_would(
    router, sessions
):
    """A read receipt from TakeCare went to Treserva alone; the catalogue would send a
    TakeCare cancellation to primary care too."""
    original = inbound()
    doc = json.loads(original.value)
    doc["entry"][0]["resource"]["eventCoding"]["code"] = EventCode.READ_RECEIPT.value
    doc["identifier"]["value"] = "takecare|tc-read-1|1"
    doc["entry"][0]["resource"]["id"] = "0b0e6bd8-4d4e-5c3a-9a7e-000000000001"
    (consent,) = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Consent"]
    consent["provision"]["class"].append(
        {"system": "urn:carebridge:message-family", "code": "read-receipt"}
    )
    receipt = IncomingRecord(
        topics.INBOUND, 0, next(_offsets), PATIENT, json.dumps(doc).encode(), {}
    )
    await router.handle_batch([receipt])
    assert [r.destination for r in await rows_of(sessions, doc["entry"][0]["resource"]["id"])] == [
        "treserva"
    ]
    cancel = cancellation(doc["entry"][0]["resource"]["id"])
    await router.handle_batch([cancel])
    assert [r.destination for r in await rows_of(sessions, message_id(cancel))] == ["treserva"]


async def test_an_undelivered_original_stops_and_never_raises_a_missing_confirmation_alert(
    router, sessions, clock
):
    original = inbound()
    await router.handle_batch([original])
    # Treserva is down: the original waits to be retried (pending); primary care's attempt
    # is still in flight (dispatched)
    await router.handle_batch(
        [result(message_id(original), ResponseCode.TRANSIENT_ERROR, why="HTTP 503")]
    )
    assert {r.destination: r.state for r in await rows_of(sessions, message_id(original))} == {
        "primary-care": "dispatched",
        "treserva": "pending",
    }
    cancel = cancellation(message_id(original))
    await router.handle_batch([cancel])
    stopped = await rows_of(sessions, message_id(original))
    assert {r.state for r in stopped} == {"cancelled"}
    assert all(r.next_attempt_at is None and r.legal_check_at is None for r in stopped)
    async with sessions() as s:
        reasons = (
            await s.execute(
                select(delivery_transition.c.from_state, delivery_transition.c.reason).where(
                    delivery_transition.c.to_state == "cancelled"
                )
            )
        ).all()
    assert sorted(f for f, _ in reasons) == ["dispatched", "pending"]  # each one recorded
    assert all(message_id(cancel) in why for _, why in reasons)
    # the late ok of the attempt in flight, and a receipt, change nothing
    await router.handle_batch(
        [result(message_id(original), ResponseCode.OK, responder=System.PRIMARY_CARE)]
    )
    await router.handle_batch(
        [
            result(
                message_id(original),
                ResponseCode.OK,
                event=EventCode.RECEIPT,
                responder=System.PRIMARY_CARE,
            )
        ]
    )
    # long past every deadline: nothing is sent again, no alert names the original
    for _ in range(4):
        clock.advance(timedelta(hours=6).total_seconds())
        await router.tick()
    assert {r.state for r in await rows_of(sessions, message_id(original))} == {"cancelled"}
    assert all(r.attempts == 1 for r in await rows_of(sessions, message_id(original)))
    overdue = [a for a in await alerts(sessions) if a.kind == "confirmation_overdue"]
    assert all(a.event_code != "admission-notice" for a in overdue)
    assert not [a for a in await alerts(sessions) if a.event_code == "admission-notice"]
    # the cancellation itself goes to both, like any message
    assert {r.destination for r in await rows_of(sessions, message_id(cancel))} == {
        "treserva",
        "primary-care",
    }


async def test_an_already_delivered_original_keeps_its_delivery_and_the_cancellation_is_delivered(
    router, sessions
):
    original = inbound()
    await router.handle_batch([original])
    for responder in (System.TRESERVA, System.PRIMARY_CARE):
        await router.handle_batch(
            [
                result(
                    message_id(original),
                    ResponseCode.OK,
                    event=EventCode.RECEIPT,
                    responder=responder,
                )
            ]
        )
    cancel = cancellation(message_id(original))
    await router.handle_batch([cancel])
    assert {r.state for r in await rows_of(sessions, message_id(original))} == {"confirmed"}
    sent = await rows_of(sessions, message_id(cancel))
    assert {(r.destination, r.state) for r in sent} == {
        ("treserva", "dispatched"),
        ("primary-care", "dispatched"),
    }
    await router.handle_batch([result(message_id(cancel), ResponseCode.OK)])
    (to_treserva,) = [r for r in await deliveries(sessions) if r.message_id == message_id(cancel)]
    assert to_treserva.state == "sent"


async def test_an_original_and_its_cancellation_in_one_batch(router, sessions):
    original = inbound()
    cancel = cancellation(message_id(original))
    await router.handle_batch([original, cancel])
    assert {r.state for r in await rows_of(sessions, message_id(original))} == {"cancelled"}
    assert {r.destination for r in await rows_of(sessions, message_id(cancel))} == {
        "treserva",
        "primary-care",
    }


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("unknown", cancels.UNKNOWN),
        ("other patient", cancels.OTHER_PATIENT),
        ("other sender", cancels.OTHER_SENDER),
    ],
)
async def test_a_cancellation_the_router_cannot_tie_to_a_message_is_dead_lettered(
    router, sessions, how, reason
):
    original = inbound()
    await router.handle_batch([original])
    if how == "unknown":
        cancel = cancellation("0b0e6bd8-4d4e-5c3a-9a7e-00000000dead")
    elif how == "other patient":
        cancel = cancellation(message_id(original), patient="q" * 32)
    else:
        cancel = cancellation(message_id(original), source=System.TRESERVA, event_id="trs-1")
    await router.handle_batch([cancel])
    dead = await rows_of(sessions, message_id(cancel))
    assert dead and {r.state for r in dead} == {"dead_letter"}
    assert {r.last_error for r in dead} == {reason}
    assert "delivery_failed" in {a.kind for a in await alerts(sessions)}
    # the original is untouched
    assert "cancelled" not in {r.state for r in await rows_of(sessions, message_id(original))}


async def test_a_cancellation_of_the_admission_notice_ends_the_episode(router, sessions):
    original = inbound()
    await router.handle_batch([original])
    await router.handle_batch([cancellation(message_id(original))])
    async with sessions() as s:
        (row,) = (await s.execute(select(episode))).all()
        stored = (await s.execute(select(message.c.event_code))).scalars().all()
    assert row.state == "cancelled"
    assert sorted(stored) == ["admission-notice", "message-cancelled"]


async def test_an_original_delivered_nowhere_takes_its_cancellation_nowhere(router, sessions):
    """A message held for want of a basis reached no one: neither does its cancellation."""
    original = inbound()
    doc = json.loads(original.value)
    consent = {e["fullUrl"] for e in doc["entry"] if e["resource"]["resourceType"] == "Consent"}
    doc["entry"] = [e for e in doc["entry"] if e["fullUrl"] not in consent]
    header = doc["entry"][0]["resource"]
    header["focus"] = [f for f in header["focus"] if f["reference"] not in consent]
    held = IncomingRecord(topics.INBOUND, 0, next(_offsets), PATIENT, json.dumps(doc).encode(), {})
    await router.handle_batch([held])
    assert await rows_of(sessions, doc["entry"][0]["resource"]["id"]) == []
    cancel = cancellation(doc["entry"][0]["resource"]["id"])
    await router.handle_batch([cancel])
    assert await rows_of(sessions, message_id(cancel)) == []
    async with sessions() as s:
        reason = await s.scalar(
            select(message.c.unrouted_reason).where(message.c.id == message_id(cancel))
        )
    assert reason == cancels.NOWHERE
    assert await alerts(sessions) == []
