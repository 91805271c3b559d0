"""Composition root of adapter_treserva."""

from __future__ import annotations

from services.adapter_treserva.app import create_app
from services.adapter_treserva.client import HttpTreservaClient
from services.adapter_treserva.delivery import OUTBOX_OWNER, DeliveryDeps, handle_delivery_batch
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import logs, topics
from services.messaging.db import make_engine, session_factory, utcnow
from services.messaging.kafka import (
    IncomingRecord,
    KafkaConsumer,
    KafkaPublisher,
    consume_forever,
    ensure_topics,
)
from services.messaging.outbox import OutboxRelay
from services.messaging.runtime import run_service


async def main(settings: AdapterTreservaSettings | None = None) -> int:
    settings = settings or AdapterTreservaSettings()
    logs.configure("adapter_treserva", settings.log_level)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    await ensure_topics(settings.kafka_bootstrap, topics.all_topics(), settings.topic_partitions)
    publisher = KafkaPublisher(settings.kafka_bootstrap)
    await publisher.start()
    relay = OutboxRelay(sessions, publisher, OUTBOX_OWNER)
    client = HttpTreservaClient(
        settings.treserva_url, settings.treserva_token, settings.request_timeout_s
    )
    deps = DeliveryDeps(sessions=sessions, client=client, clock=utcnow, relay_wake=relay.wake)
    consumer = KafkaConsumer(
        settings.kafka_bootstrap, [topics.outbound("treserva")], group_id="adapter_treserva"
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

    app = create_app(settings, sessions=sessions, relay_wake=relay.wake)
    return await run_service(
        app,
        host=settings.host,
        port=settings.port,
        loops={"relay": relay.run, "deliveries": deliveries},
        on_stop=stop,
    )
