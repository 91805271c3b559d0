"""Composition root of the router."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging import broker_epoch, logs, topics
from services.messaging.clock import Clock
from services.messaging.db import make_engine, session_factory
from services.messaging.fail_closed import StartupRefused
from services.messaging.kafka import (
    KafkaConsumer,
    KafkaPublisher,
    consume_forever,
    ensure_topics,
)
from services.messaging.metrics import KafkaConsumerLag
from services.messaging.outbox import OutboxRelay
from services.messaging.publish_watermarks import Confirmations
from services.messaging.runtime import Loop, run_service, tls_from
from services.messaging.startup import rows_in_clear, settings_or_exit
from services.messaging.webhook_client import HttpWebhookSender
from services.router.alerting import unit_store
from services.router.alerting.events import AlertEvent
from services.router.alerting.notifications import Channels, Notifier
from services.router.alerting.rules import AlertingRules
from services.router.alerting.sender import (
    NotificationSender,
    SmtpEmailTransport,
    WebhookPoster,
)
from services.router.alerting.unit_directory import (
    SANDBOX_REGIONS,
    UnitDirectory,
    UnitDirectoryError,
    sandbox_directory,
)
from services.router.audit.checkpoint_writer import CheckpointWriter
from services.router.audit.payload_keys import SEALED_COLUMNS
from services.router.audit.retention import RetentionRules
from services.router.ops.app import create_app
from services.router.ops.console.identity import ensure_first_admin
from services.router.routing.addressing import Addressing
from services.router.routing.deliveries import OUTBOX_OWNER, RoutingRules
from services.router.routing.domain import RetryPolicy
from services.router.routing.handlers import Router
from services.router.settings import RouterSettings
from services.router.subscriptions import webhooks
from services.router.subscriptions.endpoints import SystemResolver
from services.router.subscriptions.guard import GuardedWebhookSender
from services.router.subscriptions.webhooks import WebhookDispatcher


def _directory_file(settings: RouterSettings) -> UnitDirectory:
    path = settings.unit_directory_path()
    if path is None:
        raise StartupRefused(settings.SERVICE, [f"{settings.env('alert_unit_directory')}: unset"])
    return UnitDirectory.load(path)


def notification_channels(
    settings: RouterSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    directory: UnitDirectory | None = None,
) -> tuple[Notifier, NotificationSender]:
    """The alert notifier (the incident rules call ``notifier.enqueue`` in their transaction)
    and the loop that sends what it queued, from the ``ROUTER_ALERT_*`` settings.
    ``directory``: the unit directory as the database holds it (default: the file's)."""
    notifier = Notifier(
        channels=Channels.from_settings(settings),
        directory=directory or _directory_file(settings),
    )
    email = (
        SmtpEmailTransport(
            settings.alert_smtp_host,
            settings.alert_smtp_port,
            security=settings.alert_smtp_security,
            username=settings.alert_smtp_username,
            password=settings.alert_smtp_password,
            timeout_s=settings.notification_timeout_s,
        )
        if settings.alert_smtp_host
        else None
    )
    webhook = (
        WebhookPoster(settings.alert_webhook_secret, settings.notification_timeout_s)
        if settings.alert_webhook_url and settings.alert_webhook_secret
        else None
    )
    sender = NotificationSender(
        sessions,
        email=email,
        webhook=webhook,
        email_from=settings.alert_email_from,
        retry=RetryPolicy(
            settings.notification_retry_base_s,
            settings.notification_retry_cap_s,
            settings.notification_max_attempts,
        ),
        poll_s=settings.notification_poll_s,
        fallback_interval=timedelta(seconds=settings.alert_fallback_interval_s),
        digest_over=settings.alert_fallback_digest_over,
        clock=clock.now,
    )
    return notifier, sender


log = logging.getLogger(__name__)


def _sandbox_units(directory: UnitDirectory) -> list[str]:
    """The active units of ``directory`` that a shipped sandbox directory lists (made up)."""
    made_up = {
        hsa_id
        for region in SANDBOX_REGIONS
        for hsa_id in UnitDirectory.load(sandbox_directory(region)).units
    }
    return sorted(u.hsa_id for u in directory.units.values() if u.active and u.hsa_id in made_up)


async def unit_directory_at_start(
    settings: RouterSettings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> UnitDirectory:
    """The unit directory file (``ROUTER_ALERT_UNIT_DIRECTORY``; in the sandbox by default
    Halland's), seeded into ``care_unit`` when the table is empty; then the directory with the
    table's units (kept through the ops API since).

    Fails closed (:class:`StartupRefused`): a file that cannot be read or does not validate;
    outside the sandbox also a file marked ``"sandbox"`` (made-up units), a table that still
    holds active units of a sandbox directory (seeded from the old default before production
    had to name its own), and a directory whose table names no active receiving unit, which
    could address no notice at all."""
    setting = settings.env("alert_unit_directory")
    path = settings.unit_directory_path()
    if path is None:  # the settings refuse this already outside the sandbox
        raise StartupRefused(settings.SERVICE, [f"{setting}: no unit directory configured"])
    try:
        from_file = UnitDirectory.load(path)
    except UnitDirectoryError as exc:
        raise StartupRefused(settings.SERVICE, [f"{setting}: {exc}"]) from None
    if from_file.sandbox and not settings.in_sandbox:
        raise StartupRefused(
            settings.SERVICE,
            [
                f'{setting}: {path} is a sandbox directory (made-up units, "sandbox": '
                "true); outside the sandbox name the region's own"
            ],
        )
    async with sessions.begin() as session:
        seeded = await unit_store.seed_if_empty(session, from_file, clock.now())
    if seeded:
        log.info("unit directory seeded from its file", extra={"units": seeded})
    async with sessions() as session:
        directory = await unit_store.load_directory(session, from_file)
    left = [] if settings.in_sandbox else _sandbox_units(directory)
    if left:  # seeded from a sandbox directory before production named its own
        raise StartupRefused(
            settings.SERVICE,
            [
                f"{setting}: the care_unit table holds active units of a sandbox directory "
                f"({', '.join(left[:5])}{', …' if len(left) > 5 else ''}); deactivate them "
                "(units deactivate) and add the region's own"
            ],
        )
    if not directory.receivers():
        if not settings.in_sandbox:
            raise StartupRefused(
                settings.SERVICE,
                [
                    f"{setting}: the unit directory (table care_unit, seeded from {path}) "
                    "names no active unit with a channel: no notice could be addressed"
                ],
            )
        log.warning("the unit directory names no receiving unit")
    return directory


async def main(settings: RouterSettings | None = None) -> int:
    settings = settings or settings_or_exit(RouterSettings)
    logs.configure("router", settings.log_level)
    clock = settings.clock()
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine, keyring=settings.keyring())
    refused = await rows_in_clear(settings, sessions, SEALED_COLUMNS)
    if refused is not None:
        print(refused, file=sys.stderr, flush=True)
        await engine.dispose()
        return 2
    try:
        directory = await unit_directory_at_start(settings, sessions, clock)
    except StartupRefused as refusal:
        print(refusal, file=sys.stderr, flush=True)
        await engine.dispose()
        return 2
    kafka = settings.kafka()
    publisher = KafkaPublisher(kafka, settings.record_signer())
    verifier = settings.record_verifier(topics.WRITERS)
    fence = broker_epoch.Fence()
    relay = OutboxRelay(sessions, publisher, OUTBOX_OWNER, guard=fence.check)
    notifier, notifications = notification_channels(settings, sessions, clock, directory)

    async def notify(session: AsyncSession, event: AlertEvent) -> None:
        await notifier.enqueue(session, event, event.at)
        notifications.wake.set()  # polled anyway: a wake before the commit costs one pass

    rules = RoutingRules(
        policies=settings.policies(),
        attempt_timeout=timedelta(seconds=settings.attempt_timeout_s),
        rng=random.Random(),
        circuit=settings.circuit(),
        instance=settings.instance,
        alert_sinks=(notify,),
        sip_in_working_days=settings.sip_in_working_days,
        keyring=settings.keyring(),
        max_in_flight=settings.max_in_flight,
        addressing=Addressing(defaults=dict(directory.destinations)),
    )
    router = Router(
        sessions=sessions,
        rules=rules,
        clock=clock.now,
        monotonic=clock.monotonic,
        relay_wake=relay.wake,
        lease_s=settings.watchdog_lease_s,
        alerting=AlertingRules(
            reminders=settings.reminder_policy(),
            silence=tuple(settings.silence_rules),
            silence_every=timedelta(seconds=settings.silence_check_s),
            destination_down_after=timedelta(seconds=settings.destination_down_after_s),
            alert_hold=settings.alert_hold(),
        ),
        retention=RetentionRules(
            payload_retention=timedelta(days=settings.payload_retention_days),
            prune_every=timedelta(seconds=settings.payload_prune_every_s),
        ),
        checks_every=timedelta(seconds=settings.checks_s),
        checkpoints=CheckpointWriter(
            settings.checkpoint_signer(),
            settings.checkpoint_sinks(),
            every=timedelta(seconds=settings.audit_checkpoint_every_s),
        ),
    )
    await ensure_first_admin(
        sessions,
        configured=settings.console_users,
        password_login=settings.password_login,
        now=clock.now(),
        out=sys.stdout,  # never the JSON log on stderr: see console/identity.py
    )
    await router.sync_subscriptions()
    swept = time.monotonic()
    await router.sweep()
    log.info("start-up: swept", extra={"seconds": round(time.monotonic() - swept, 2)})
    consumer = KafkaConsumer(kafka, [topics.INBOUND, topics.RESULTS], group_id=topics.ROUTER_GROUP)
    # every POST vetted and pinned to the address that passed (DNS rebinding)
    http_sender = HttpWebhookSender(settings.webhook_timeout())
    sender = GuardedWebhookSender(http_sender, settings.endpoint_policy(), SystemResolver())
    dispatcher = WebhookDispatcher(
        sessions=sessions, rules=rules, sender=sender, clock=clock.now, relay_wake=relay.wake
    )
    webhook_consumer = KafkaConsumer(kafka, [topics.WEBHOOKS], group_id=webhooks.CONSUMER)

    async def consume() -> None:
        await consume_forever(
            consumer, router.handle_batch, name="router", verifier=verifier, admit=fence.admit
        )

    async def deliver_webhooks() -> None:
        await consume_forever(
            webhook_consumer,
            dispatcher.handle_batch,
            name=webhooks.CONSUMER,
            verifier=verifier,
            admit=fence.admit,
        )

    async def ticks() -> None:
        await router.run_ticks(settings.tick_s)

    # the ops API and the console serve at once (the database is open); Kafka comes after
    app = create_app(settings, sessions=sessions, alert_sinks=rules.alert_sinks, clock=clock.now)
    lags: list[KafkaConsumerLag] = []
    # by the adapters' delivery groups and the webhook dispatcher's
    confirmations = Confirmations.from_kafka(sessions, OUTBOX_OWNER, kafka)

    async def prepare() -> dict[str, Loop]:
        await ensure_topics(kafka, topics.all_topics(), settings.topic_partitions)
        known = await broker_epoch.known_epoch(sessions, OUTBOX_OWNER)
        epoch = await broker_epoch.recover(
            sessions,
            OUTBOX_OWNER,
            kafka,
            replay_window=timedelta(seconds=settings.replay_window_s),
            now=clock.now(),
        )
        await publisher.start()
        await fence.arm(kafka, epoch)
        # Together: each start waits for its group's first assignment (about 5 s on Tansu).
        joining = time.monotonic()
        log.info("start-up: consumers joining their groups")
        lost = broker_epoch.lost_since(known, epoch)
        await asyncio.gather(
            consumer.start(after_loss=lost), webhook_consumer.start(after_loss=lost)
        )
        log.info(
            "start-up: consumers joined",
            extra={"seconds": round(time.monotonic() - joining, 2)},
        )
        lags.append(
            KafkaConsumerLag(
                kafka,
                {
                    "router": [topics.INBOUND, topics.RESULTS],
                    webhooks.CONSUMER: [topics.WEBHOOKS],
                    # the adapters' delivery consumers: each destination's backlog on Kafka
                    **{
                        topics.delivery_group(adapter, dest): [topics.outbound(dest)]
                        for dest, adapter in topics.DELIVERED_BY.items()
                    },
                },
            )
        )
        app.state.consumer_lag = lags[0]  # read by /metrics and the console's dashboard
        return {
            "relay": relay.run,
            "consumer": consume,
            "webhooks": deliver_webhooks,
            "ticks": ticks,
            "broker watch": lambda: broker_epoch.watch(
                kafka, epoch, interval_s=settings.broker_watch_s, confirmations=confirmations
            ),
        }

    async def stop() -> None:
        for lag in lags:
            await lag.aclose()
        await confirmations.aclose()
        for started in (consumer, webhook_consumer):
            with contextlib.suppress(Exception):  # one that never started
                await started.stop()
        await http_sender.aclose()
        await notifications.aclose()
        await fence.close()
        with contextlib.suppress(Exception):
            await publisher.stop()
        await engine.dispose()

    return await run_service(
        app,
        host=settings.host,
        port=settings.port,
        loops={"notifications": notifications.run},
        prepare=prepare,
        on_stop=stop,
        tls=tls_from(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_ca_certs),
        proxies=settings.trusted_proxies(),
    )
