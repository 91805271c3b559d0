"""/metrics of the router and the adapters, scraped in process: the names, that a delivery
moves the histograms and counters, that the numbers come from SQL (right after a restart),
and that no label value is patient data."""

import json
import random
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.adapter_treserva.app import OWNER as TRESERVA_OWNER
from services.adapter_treserva.app import create_app as treserva_app
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import topics
from services.messaging.envelope import EventCode, ResponseCode
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.kafka import InMemoryBus, OutgoingRecord
from services.messaging.metrics import InMemoryConsumerLag
from services.router.ops.app import create_app
from services.router.routing.deliveries import RoutingRules
from services.router.routing.domain import RetryPolicy, default_policies
from services.router.routing.handlers import Router
from services.router.settings import RouterSettings
from tests.support.router import Clock, inbound, message_id, result, started


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def router(sessions, clock):
    rules = RoutingRules(
        policies=default_policies(
            admission_confirmation_deadline=timedelta(minutes=15),
            confirmation_deadline=timedelta(minutes=30),
            retry=RetryPolicy(base_s=1, cap_s=10, max_attempts=3),
        ),
        attempt_timeout=timedelta(seconds=30),
        rng=random.Random(1),
    )
    return await started(Router(sessions=sessions, rules=rules, clock=clock))


PSEUDONYM = re.compile(r"[0-9a-f]{32}")
PERSONNUMMER = re.compile(r"(19|20)?\d{6}[-+]?\d{4}")


async def scrape(app) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` of one scrape."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        res = await client.get("/metrics")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(res.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def value(samples, name, **labels):
    """The one sample of ``name`` whose labels include ``labels`` (0 if none)."""
    matching = [
        v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(dict(k).items())
    ]
    assert len(matching) <= 1, (name, labels, matching)
    return matching[0] if matching else 0.0


def assert_no_patient_labels(samples):
    for series in samples.values():
        for labels in series:
            for _, v in labels:
                assert not PSEUDONYM.search(v), v
                assert not PERSONNUMMER.search(v), v


def router_app(sessions, clock):
    return create_app(RouterSettings(), sessions=sessions, clock=clock)


async def test_a_confirmed_delivery_moves_the_latency_histograms_and_attempt_counters(
    router, sessions, clock
):
    rec = inbound()
    await router.handle_batch([rec])
    clock.advance(2)
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    clock.advance(40)
    await router.handle_batch([result(message_id(rec), ResponseCode.OK, event=EventCode.RECEIPT)])
    clock.advance(10)  # past the settle time of the last transition
    app = router_app(sessions, clock)

    samples = await scrape(app)
    treserva = {"destination": "treserva", "family": "admission-notice"}
    hist = "carebridge_delivery_latency_seconds"
    assert value(samples, f"{hist}_count", **treserva, stage="sent") == 1
    assert value(samples, f"{hist}_count", **treserva, stage="confirmed") == 1
    # the sample admission's Bundle.timestamp is T0: sent 2 s later, confirmed 42 s later
    assert value(samples, f"{hist}_sum", **treserva, stage="sent") == 2
    assert value(samples, f"{hist}_bucket", **treserva, stage="confirmed", le="30.0") == 0
    assert value(samples, f"{hist}_bucket", **treserva, stage="confirmed", le="60.0") == 1
    assert value(samples, "carebridge_delivery_attempts_total", **treserva, outcome="ok") == 1
    assert value(samples, "carebridge_deliveries", **treserva, state="confirmed") == 1
    assert value(samples, "carebridge_deliveries", **treserva, state="pending") == 0
    assert value(samples, "carebridge_dead_letter_deliveries", **treserva) == 0
    primary = {"destination": "primary-care", "family": "admission-notice"}
    assert value(samples, "carebridge_deliveries", **primary, state="dispatched") == 1
    assert_no_patient_labels(samples)

    again = await scrape(app)  # past the watermark: nothing is counted twice
    assert value(again, f"{hist}_count", **treserva, stage="confirmed") == 1

    restarted = await scrape(router_app(sessions, clock))  # a new process: read from SQL
    assert value(restarted, f"{hist}_count", **treserva, stage="confirmed") == 1
    assert value(restarted, "carebridge_delivery_attempts_total", **treserva, outcome="ok") == 1


async def test_a_transition_younger_than_the_settle_time_waits_for_the_next_scrape(
    router, sessions, clock
):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.OK)])
    app = router_app(sessions, clock)
    hist = "carebridge_delivery_latency_seconds_count"
    assert value(await scrape(app), hist, destination="treserva", stage="sent") == 0
    clock.advance(6)
    assert value(await scrape(app), hist, destination="treserva", stage="sent") == 1


async def test_a_dead_letter_shows_in_its_gauge_and_as_an_open_critical_incident(
    router, sessions, clock
):
    rec = inbound()
    await router.handle_batch([rec])
    await router.handle_batch([result(message_id(rec), ResponseCode.FATAL_ERROR, why="bad")])
    samples = await scrape(router_app(sessions, clock))
    treserva = {"destination": "treserva", "family": "admission-notice"}
    assert value(samples, "carebridge_dead_letter_deliveries", **treserva) == 1
    assert value(samples, "carebridge_deliveries", **treserva, state="dead_letter") == 1
    assert (
        value(samples, "carebridge_delivery_attempts_total", **treserva, outcome="fatal-error") == 1
    )
    assert (
        value(
            samples,
            "carebridge_alerts_open",
            kind="delivery_failed",
            severity="critical",
            state="open",
        )
        == 1
    )
    # the dead letter and the next commands wait in the router's outbox (no relay here)
    assert value(samples, "carebridge_outbox_pending", topic=topics.DEAD_LETTER) == 1
    assert_no_patient_labels(samples)


async def test_consumer_lag_is_end_offset_minus_committed(sessions, clock):
    bus = InMemoryBus()
    await bus.publish_many(
        [OutgoingRecord(topics.INBOUND, "p" * 32, "{}") for _ in range(3)]
        + [OutgoingRecord(topics.RESULTS, "m", "{}")]
    )
    bus.set_committed(topics.INBOUND, "router", 1)
    app = router_app(sessions, clock)
    app.state.consumer_lag = InMemoryConsumerLag(bus, {"router": [topics.INBOUND, topics.RESULTS]})
    samples = await scrape(app)
    assert value(samples, "carebridge_consumer_lag", group="router", topic=topics.INBOUND) == 2
    assert value(samples, "carebridge_consumer_lag", group="router", topic=topics.RESULTS) == 1


async def test_http_requests_are_counted_by_route_template_not_by_path(sessions, clock):
    app = router_app(sessions, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        await c.get(
            "/api/v1/messages/f17ef11a-5acf-5382-a6cb-f9f0af5b8493",
            headers={"authorization": "Bearer wrong"},
        )
    samples = await scrape(app)
    assert (
        value(
            samples,
            "carebridge_http_requests_total",
            route="/api/v1/messages/{message_id}",
            status="401",
        )
        == 1
    )
    assert_no_patient_labels(samples)


async def test_two_apps_in_one_process_keep_their_own_registries(sessions, clock):
    first, second = router_app(sessions, clock), router_app(sessions, clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://r"
    ) as c:
        await c.get("/health")
    assert value(await scrape(first), "carebridge_http_requests_total", route="/health") == 1
    assert value(await scrape(second), "carebridge_http_requests_total", route="/health") == 0


SIP_UPDATE = json.loads(
    next(
        iter(sorted(Path("contracts/fixtures/treserva/sip-update").glob("*.input.json")))
    ).read_text("utf-8")
)


async def test_an_adapter_counts_intake_outbox_and_requests(sessions, clock):
    app = treserva_app(
        AdapterTreservaSettings(),
        store=GroupedIntakeStore(sessions, TRESERVA_OWNER),
        sessions=sessions,
        clock=clock,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tr",
        headers={"authorization": "Bearer sandbox-treserva-key"},
    ) as c:
        accepted = await c.post("/treserva/v1/sip", json=SIP_UPDATE)
        assert accepted.status_code == 202, accepted.text
        assert (await c.post("/treserva/v1/sip", json={"nope": 1})).status_code == 422
    samples = await scrape(app)
    assert value(samples, "carebridge_intake_events_total", source="treserva") == 1
    assert value(samples, "carebridge_outbox_pending", topic=topics.INBOUND) == 1
    route = {"route": "/treserva/v1/sip", "method": "POST"}
    assert value(samples, "carebridge_http_requests_total", **route, status="202") == 1
    assert value(samples, "carebridge_http_requests_total", **route, status="422") == 1
    assert value(samples, "carebridge_http_request_duration_seconds_count", **route) == 2
    assert_no_patient_labels(samples)
