"""The composition every journal adapter shares: SQL store, Kafka publisher and outbox relay,
the HTTP intake app, and the consumer that delivers the router's commands to the journal.
Each adapter's ``service.py`` passes what differs (its destination, app and client)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import logs, topics
from services.messaging.db import make_engine, session_factory, utcnow
from services.messaging.delivery import DeliveryDeps, Destination, handle_delivery_batch
from services.messaging.intake import IntakeStore, SqlIntakeStore
from services.messaging.journal_client import HttpJournalClient
from services.messaging.kafka import (
    IncomingRecord,
    KafkaConsumer,
    KafkaPublisher,
    consume_forever,
    ensure_topics,
)
from services.messaging.outbox import OutboxRelay
from services.messaging.runtime import run_service
from services.messaging.settings import ServiceSettings

AppFactory = Callable[[IntakeStore, async_sessionmaker[AsyncSession], asyncio.Event], FastAPI]


async def run_adapter(
    settings: ServiceSettings,
    *,
    destination: Destination,
    journal_url: str,
    journal_token: str,
    request_timeout_s: float,
    create_app: AppFactory,
) -> int:
    name = destination.owner
    logs.configure(name, settings.log_level)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    await ensure_topics(settings.kafka_bootstrap, topics.all_topics(), settings.topic_partitions)
    publisher = KafkaPublisher(settings.kafka_bootstrap)
    await publisher.start()
    relay = OutboxRelay(sessions, publisher, name)
    client = HttpJournalClient(journal_url, journal_token, request_timeout_s)
    deps = DeliveryDeps(
        sessions=sessions,
        client=client,
        clock=utcnow,
        destination=destination,
        relay_wake=relay.wake,
    )
    consumer = KafkaConsumer(
        settings.kafka_bootstrap, [topics.outbound(destination.system.value)], group_id=name
    )
    await consumer.start()

    async def handle(batch: list[IncomingRecord]) -> None:
        await handle_delivery_batch(batch, deps=deps)

    async def deliveries() -> None:
        await consume_forever(consumer, handle, name="deliveries")

    async def stop() -> None:
        await consumer.stop()
        await client.aclose()
        await publisher.stop()
        await engine.dispose()

    app = create_app(SqlIntakeStore(sessions, name), sessions, relay.wake)
    return await run_service(
        app,
        host=settings.host,
        port=settings.port,
        loops={"relay": relay.run, "deliveries": deliveries},
        on_stop=stop,
    )
