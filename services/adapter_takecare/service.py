"""Composition root of adapter_takecare: wires the SQL store, Kafka publisher, outbox relay
and HTTP app, and runs them as one process."""

from __future__ import annotations

from services.adapter_takecare.app import create_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_takecare.store import OUTBOX_OWNER, SqlIntakeStore
from services.messaging import logs, topics
from services.messaging.db import make_engine, session_factory, utcnow
from services.messaging.kafka import KafkaPublisher, ensure_topics
from services.messaging.outbox import OutboxRelay
from services.messaging.runtime import run_service


async def main(settings: AdapterTakeCareSettings | None = None) -> int:
    settings = settings or AdapterTakeCareSettings()
    logs.configure("adapter_takecare", settings.log_level)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    await ensure_topics(settings.kafka_bootstrap, topics.all_topics(), settings.topic_partitions)
    publisher = KafkaPublisher(settings.kafka_bootstrap)
    await publisher.start()
    relay = OutboxRelay(sessions, publisher, OUTBOX_OWNER)
    app = create_app(
        settings, store=SqlIntakeStore(sessions), clock=utcnow, on_accepted=relay.wake.set
    )

    async def stop() -> None:
        await publisher.stop()
        await engine.dispose()

    return await run_service(
        app, host=settings.host, port=settings.port, loops={"relay": relay.run}, on_stop=stop
    )
