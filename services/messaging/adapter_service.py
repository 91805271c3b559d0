"""The composition every journal adapter shares: SQL store, Kafka publisher and outbox relay,
the HTTP intake app, one consumer per destination it delivers to (its journal, and for
adapter_takecare also primary care), and the read-back poller when a destination is confirmed
by read-back. Each adapter's ``service.py`` passes what differs."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import broker_epoch, contracts, logs, topics
from services.messaging.db import make_engine, session_factory
from services.messaging.delivery import DeliveryDeps, Destination, handle_delivery_batch
from services.messaging.envelope import System
from services.messaging.intake import IntakeStore
from services.messaging.intake_first import IntakeFirst, ServingIntake
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.journal_client import HttpJournalClient
from services.messaging.kafka import (
    Admission,
    IncomingRecord,
    KafkaConsumer,
    KafkaPublisher,
    consume_forever,
    ensure_topics,
)
from services.messaging.metrics import KafkaConsumerLag
from services.messaging.outbox import OutboxRelay, sealed_column
from services.messaging.publish_watermarks import Confirmations
from services.messaging.read_back import ReadBackPoller
from services.messaging.read_back_store import ConfirmationMode, ReadBackTerms
from services.messaging.record_signing import RecordVerifier
from services.messaging.runtime import Loop, run_service, tls_from
from services.messaging.settings import ServiceSettings
from services.messaging.startup import rows_in_clear

AppFactory = Callable[[IntakeStore, async_sessionmaker[AsyncSession], asyncio.Event], FastAPI]


@dataclass(frozen=True)
class Endpoint:
    """Where one destination's API is, the broker's credential toward it, and how the
    destination confirms what it stored."""

    destination: Destination
    url: str
    token: str
    timeout_s: float
    confirmation: ConfirmationMode = field(default=ConfirmationMode.RECEIPT, kw_only=True)


async def run_adapter(
    settings: ServiceSettings,
    *,
    name: str,
    endpoints: list[Endpoint],
    create_app: AppFactory,
    read_back: ReadBackTerms | None = None,
) -> int:
    """Intake first: the HTTP app serves (and stores POSTs to the outbox) as soon as the
    database is open; Kafka is prepared meanwhile (:func:`run_service`'s ``prepare``). The
    read-back poller starts with HTTP too: what it finds waits in the outbox for Kafka.
    ``read_back``: the timing of read-backs, for the endpoints confirmed by them."""
    logs.configure(name, settings.log_level)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine, keyring=settings.keyring())
    refused = await rows_in_clear(settings, sessions, [sealed_column(name)])
    if refused is not None:
        print(refused, file=sys.stderr, flush=True)
        await engine.dispose()
        return 2
    kafka = settings.kafka()
    publisher = KafkaPublisher(kafka, settings.record_signer())
    verifier = settings.record_verifier(topics.WRITERS)
    fence = broker_epoch.Fence()
    relay = OutboxRelay(sessions, publisher, name, guard=fence.check)
    clients: list[HttpJournalClient] = []
    consumers: list[KafkaConsumer] = []
    deliveries: list[DeliveryDeps] = []
    groups: dict[str, list[str]] = {}
    delivery_loops: dict[str, Loop] = {}
    intake_first = IntakeFirst()  # the journals' POSTs before the deliveries
    terms = read_back or ReadBackTerms()
    clock = settings.clock()
    readers: dict[System, HttpJournalClient] = {}
    poller: ReadBackPoller | None = None
    for endpoint in endpoints:
        system = endpoint.destination.system.value
        client = HttpJournalClient(endpoint.url, endpoint.token, endpoint.timeout_s)
        if endpoint.confirmation.reads_back:
            readers[endpoint.destination.system] = client  # reads back as it posts
        group = topics.delivery_group(name, system)
        groups[group] = [topics.outbound(system)]
        consumer = KafkaConsumer(kafka, [topics.outbound(system)], group_id=group)
        clients.append(client)
        consumers.append(consumer)
        deps = DeliveryDeps(
            sessions=sessions,
            client=client,
            clock=clock.now,
            monotonic=clock.monotonic,
            destination=endpoint.destination,
            relay_wake=relay.wake,
            intake=intake_first,
        )
        delivery_loops[f"deliveries to {system}"] = _delivery_loop(
            consumer, deps, system, verifier, fence.admit
        )
        deliveries.append(deps)
    if readers:
        poller = ReadBackPoller(
            sessions=sessions,
            owner=name,
            readers=readers,
            terms=dict.fromkeys(readers, terms),
            clock=clock.now,  # the deliveries' clock: deadlines are on its scale
            monotonic=clock.monotonic,
            relay_wake=relay.wake,
        )
        for deps in deliveries:
            if deps.destination.system in readers:
                deps.read_back, deps.read_back_wake = terms, poller.wake
    contracts.warm_up()  # not on the first event (services.messaging.contracts)
    app = create_app(GroupedIntakeStore(sessions, name), sessions, relay.wake)
    app.add_middleware(ServingIntake, gate=intake_first)  # POSTs go before deliveries
    lags: list[KafkaConsumerLag] = []
    confirmations = Confirmations.from_kafka(sessions, name, kafka)  # by the router's group

    async def prepare() -> dict[str, Loop]:
        # only its own topics: on a secured broker it may not even see the others (ACLs)
        own = [topics.outbound(e.destination.system.value) for e in endpoints]
        await ensure_topics(
            kafka, [topics.INBOUND, topics.RESULTS, *own], settings.topic_partitions
        )
        known = await broker_epoch.known_epoch(sessions, name)
        epoch = await broker_epoch.recover(
            sessions,
            name,
            kafka,
            replay_window=timedelta(seconds=settings.replay_window_s),
            now=settings.clock().now(),
        )
        await publisher.start()
        await fence.arm(kafka, epoch)
        # Together: each start waits for its group's first assignment (about 5 s on Tansu).
        lost = broker_epoch.lost_since(known, epoch)
        await asyncio.gather(*(consumer.start(after_loss=lost) for consumer in consumers))
        lags.append(KafkaConsumerLag(kafka, groups))
        app.state.consumer_lag = lags[0]  # read by /metrics
        return {
            "relay": relay.run,
            "broker watch": lambda: broker_epoch.watch(
                kafka, epoch, interval_s=settings.broker_watch_s, confirmations=confirmations
            ),
            **delivery_loops,
        }

    async def stop() -> None:
        for lag in lags:
            await lag.aclose()
        await confirmations.aclose()
        for consumer in consumers:
            with contextlib.suppress(Exception):  # one that never started
                await consumer.stop()
        for client in clients:
            await client.aclose()
        await fence.close()
        with contextlib.suppress(Exception):
            await publisher.stop()
        await engine.dispose()

    return await run_service(
        app,
        host=settings.host,
        port=settings.port,
        loops={"read-back": poller.run} if poller is not None else {},
        prepare=prepare,
        on_stop=stop,
        tls=tls_from(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_ca_certs),
        proxies=settings.trusted_proxies(),
    )


def _delivery_loop(
    consumer: KafkaConsumer,
    deps: DeliveryDeps,
    system: str,
    verifier: RecordVerifier,
    admit: Admission,
) -> Loop:
    async def handle(batch: list[IncomingRecord]) -> None:
        await handle_delivery_batch(batch, deps=deps)

    async def deliveries() -> None:
        await consume_forever(
            consumer, handle, name=f"deliveries to {system}", verifier=verifier, admit=admit
        )

    return deliveries
