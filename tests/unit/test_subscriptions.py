"""Routing by subscription: a pure function over a list of subscriptions. The journal
adapters' subscriptions, derived from the family catalogue, route exactly as the catalogue
does; the catalogue rows are written at start-up and kept in step."""

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.messaging import topics
from services.messaging.envelope import EventCode, System
from services.messaging.families import FAMILIES, Family
from services.messaging.families import destinations as routes
from services.router.routing.tables import subscription
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import (
    CATALOGUE,
    ROUTABLE_EVENTS,
    CatalogueNotExpressible,
    ChannelType,
    Criteria,
    Subscription,
    SubscriptionStatus,
    catalogue_subscriptions,
    delivery_order,
    route,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SOURCES = [*(s.value for s in System), "flexite", ""]


def hook(sub_id="sub-1", *, events=("admission-notice",), sources=None, status="active"):
    return Subscription(
        id=sub_id,
        name="the region's communication platform",
        criteria=Criteria(frozenset(events), None if sources is None else frozenset(sources)),
        channel_type=ChannelType.REST_HOOK,
        endpoint="https://platform.example.se/hooks/carebridge",
        status=SubscriptionStatus(status),
        created_at=T0,
    )


@pytest.mark.parametrize("event_code", [e.value for e in EventCode] + ["no-such-event"])
@pytest.mark.parametrize("source", SOURCES)
def test_catalogue_subscriptions_route_exactly_like_the_catalogue(event_code, source):
    routed = route(catalogue_subscriptions(), event_code, source)
    assert tuple(s.id for s in routed) == tuple(d.value for d in routes(event_code, source))


def test_the_catalogue_gives_one_kafka_subscription_per_journal_destination():
    subs = {s.id: s for s in catalogue_subscriptions()}
    assert set(subs) == {"treserva", "takecare", "primary-care"}
    for sub in subs.values():
        assert sub.channel_type is ChannelType.KAFKA and sub.managed_by == CATALOGUE
        assert sub.endpoint == topics.outbound(sub.id)
    assert subs["treserva"].criteria.sources == frozenset({"takecare"})
    assert subs["takecare"].criteria.sources == frozenset({"treserva"})
    assert subs["takecare"].criteria.events == {
        "administrative-message",
        "admission-answer",
        "medication-list",
        "message-cancelled",
        "read-receipt",
        "ready-to-receive",
        "sip-invitation",
        "sip-created",
        "sip-updated",
        "sip-completed",
    }
    # every hospital notice; nothing the municipality sends, nor what is between the wards
    # and the municipality only (the administrative message)
    assert subs["primary-care"].criteria.events == ROUTABLE_EVENTS - {
        "administrative-message",
        "admission-answer",
        "read-receipt",
        "ready-to-receive",
    }


def test_a_catalogue_that_is_no_events_by_sources_product_is_refused():
    mixed = (
        Family("a", (EventCode.ADMISSION_NOTICE,), False, ((System.TAKECARE, (System.TRESERVA,)),)),
        Family("b", (EventCode.SIP_CREATED,), False, ((System.PRIMARY_CARE, (System.TRESERVA,)),)),
    )
    with pytest.raises(CatalogueNotExpressible, match="treserva"):
        catalogue_subscriptions(mixed)


def test_a_webhook_gets_what_its_criteria_name_from_any_source_unless_limited():
    anyone, from_takecare = hook("sub-a"), hook("sub-t", sources=["takecare"])
    subs = [*catalogue_subscriptions(), anyone, from_takecare]
    assert [s.id for s in route(subs, "admission-notice", "takecare")] == [
        "treserva",
        "primary-care",
        "sub-a",
        "sub-t",
    ]
    assert [s.id for s in route(subs, "admission-notice", "treserva")] == ["sub-a"]
    assert route(subs, "discharge-notice", "takecare")[-1].id == "primary-care"


def test_a_subscription_that_is_off_gets_nothing():
    assert route([hook(status="off")], "admission-notice", "takecare") == ()


def test_a_message_never_goes_back_to_its_source():
    echo = Subscription(
        id="treserva",
        name="echo",
        criteria=Criteria(frozenset({"medication-list"})),
        channel_type=ChannelType.KAFKA,
        endpoint=topics.outbound("treserva"),
    )
    assert route([echo], "medication-list", "treserva") == ()
    assert route([echo], "medication-list", "takecare") == (echo,)


def test_criteria_survive_their_json_form():
    for criteria in (
        Criteria(frozenset({"sip-created", "medication-list"})),
        Criteria(frozenset({"admission-notice"}), frozenset({"takecare"})),
    ):
        assert Criteria.from_json(criteria.to_json()) == criteria
    assert "sources" not in Criteria(frozenset({"x"})).to_json()


def test_delivery_order_puts_the_catalogue_first_then_the_oldest():
    older = hook("sub-z")
    newer = dataclasses.replace(older, id="sub-a", created_at=T0 + timedelta(1))
    shuffled = [newer, *reversed(catalogue_subscriptions()), older]
    random.Random(3).shuffle(shuffled)
    assert [s.id for s in sorted(shuffled, key=delivery_order)] == [
        "takecare",
        "treserva",
        "primary-care",
        "sub-z",
        "sub-a",
    ]


async def _rows(sessions):
    async with sessions() as s:
        return {r.id: r for r in (await s.execute(select(subscription))).all()}


async def test_start_up_writes_the_catalogue_once_and_keeps_it_in_step(sessions):
    async with sessions.begin() as s:
        assert await subscription_store.sync_catalogue(s, catalogue_subscriptions(), T0) == 3
    async with sessions.begin() as s:  # a second start-up (or a second replica) changes nothing
        assert await subscription_store.sync_catalogue(s, catalogue_subscriptions(), T0) == 0
    rows = await _rows(sessions)
    assert rows["treserva"].criteria == {
        "events": sorted(
            e.value
            for f in FAMILIES
            for e in f.events
            if System.TRESERVA in f.destinations(System.TAKECARE)
        ),
        "sources": ["takecare"],
    }
    assert {r.status for r in rows.values()} == {"active"}
    # the catalogue drops primary care: its subscription is switched off, never deleted
    fewer = [s for s in catalogue_subscriptions() if s.id != "primary-care"]
    later = T0 + timedelta(hours=1)
    async with sessions.begin() as s:
        assert await subscription_store.sync_catalogue(s, fewer, later) == 1
    rows = await _rows(sessions)
    assert rows["primary-care"].status == "off" and rows["primary-care"].updated_at == later
    assert rows["treserva"].updated_at == T0
    async with sessions() as s:
        assert [x.id for x in await subscription_store.load_active(s)] == ["takecare", "treserva"]
