"""Sending the notification queue: a loop in the router that claims due rows, sends each
on its channel and records the outcome, retrying with capped exponential back-off.

::

    notification (pending, due) ──claim──▶ leased ──send──▶ sent
                                    │                 └─▶ pending again, later (transient)
                                    │                 └─▶ failed (permanent, or attempts spent)
                                    └─ a lease not finished (process died) is due again later

A claim counts an attempt and moves ``next_attempt_at`` past a lease, in one short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so router replicas never claim the same
row); the send happens outside any transaction; the outcome is written only if the row still
holds that claim. A notification is therefore sent at least once; a webhook receiver dedupes
on ``Idempotency-Key``.

Webhook: ``POST`` of the JSON payload (``application/json``) with ``X-Carebridge-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` (the timestamp is inside the
signature, see :mod:`services.messaging.signing`), ``Idempotency-Key: notification-<id>`` and
``X-Carebridge-Alert-Change``. TLS certificates are verified; redirects are not followed.
Email: SMTP (STARTTLS, implicit TLS, or plain only in the sandbox), UTF-8 text.

Exceptions (the class decides between retry and failed, never the text)::

    NotificationError
     ├── TransientNotificationError   timeout, connection, HTTP 408/425/429/5xx, SMTP 4xx
     └── PermanentNotificationError   other HTTP answers, SMTP 5xx, channel not configured

Logs carry ids, channel and the error class; never a subject or body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Literal, Protocol

import aiosmtplib
import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import store_unavailable, utcnow
from services.messaging.journal_client import is_transient_status
from services.messaging.signing import SIGNATURE_HEADER, sign
from services.router.alerting.notices import Queued, grouped_notice
from services.router.alerting.notifications import (
    Channel,
    NotificationState,
    check_notification_transition,
)
from services.router.routing.domain import RetryPolicy
from services.router.routing.tables import notification

log = logging.getLogger(__name__)

CHANGE_HEADER = "X-Carebridge-Alert-Change"


class NotificationError(Exception):
    """A notification could not be sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


class TransientNotificationError(NotificationError):
    """Worth trying again later."""


class PermanentNotificationError(NotificationError):
    """Trying again will not help: the notification fails now."""


# --- email ----------------------------------------------------------------------------------


class EmailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpEmailTransport:
    """SMTP through aiosmtplib; one connection per message (alerts are few)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Literal["starttls", "tls", "none"] = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port, self._security = host, port, security
        self._username, self._password, self._timeout_s = username, password, timeout_s

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                use_tls=self._security == "tls",
                start_tls=self._security == "starttls",
                username=self._username,
                password=self._password,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = f"SMTP recipients refused ({', '.join(map(str, codes))})"
            if all(code >= 500 for code in codes):
                raise PermanentNotificationError(reason) from None
            raise TransientNotificationError(reason) from None
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code}"
            if exc.code >= 500:
                raise PermanentNotificationError(reason) from None
            raise TransientNotificationError(reason) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientNotificationError(f"SMTP: {type(exc).__name__}") from None


class FakeEmailTransport:
    """Keeps what it is given; raises the scripted errors first, one per send."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.errors: list[NotificationError] = []

    async def send(self, message: EmailMessage) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)


# --- webhook --------------------------------------------------------------------------------


class WebhookPoster:
    """Signed JSON POSTs to the ops webhook."""

    def __init__(
        self,
        secret: str,
        timeout_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._secret, self._clock = secret, clock
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            verify=True,
            follow_redirects=False,
            headers={"user-agent": "carebridge-alerts/1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, body: bytes, *, idempotency_key: str, change: str) -> None:
        headers = {
            "content-type": "application/json",
            "idempotency-key": idempotency_key,
            CHANGE_HEADER: change,
            SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
        }
        try:
            res = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise TransientNotificationError("timeout") from None
        except httpx.TransportError as exc:
            raise TransientNotificationError(f"transport: {type(exc).__name__}") from None
        if 200 <= res.status_code < 300:
            return
        reason = f"HTTP {res.status_code}"
        if is_transient_status(res.status_code):
            raise TransientNotificationError(reason)
        raise PermanentNotificationError(reason)


def webhook_body(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# --- the loop -------------------------------------------------------------------------------


class NotificationSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        email: EmailTransport | None,
        webhook: WebhookPoster | None,
        email_from: str,
        retry: RetryPolicy,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 20,
        concurrency: int = 4,
        poll_s: float = 1.0,
        fallback_interval: timedelta = timedelta(minutes=15),
        digest_over: int = 10,
    ) -> None:
        self._sessions = sessions
        self._email, self._webhook, self._from = email, webhook, email_from
        self._retry, self._clock, self._rng = retry, clock, rng or random.Random()
        self._lease, self._batch_size, self._poll_s = lease, batch_size, poll_s
        self._limit = asyncio.Semaphore(concurrency)
        self._fallback_interval, self._digest_over = fallback_interval, digest_over
        self.wake = asyncio.Event()  # set after committing an enqueue to send at once

    async def aclose(self) -> None:
        if self._webhook is not None:
            await self._webhook.aclose()

    async def send_due(self) -> int:
        """One pass: claim, send and record up to a batch; return how many were claimed.
        A care unit's fallback notices go as one email per recipient (see
        :meth:`_claim_fallback`)."""
        rows = await self._claim()
        groups = await self._claim_fallback()
        await asyncio.gather(
            *(self._send_one(row) for row in rows),
            *(self._send_group(group) for group in groups),
        )
        return len(rows) + sum(len(g) for g in groups)

    async def run(self) -> None:
        """Send forever; ride out database outages; wake early when :attr:`wake` is set."""
        failures = 0
        while True:
            try:
                claimed = await self.send_due()
                failures = 0
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                failures += 1
                delay = min(0.2 * 2**failures, 5.0)
                log.warning(
                    "notification pass failed, retrying",
                    extra={"error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                continue
            if claimed:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._poll_s)

    async def _claim(self) -> list[Any]:
        now = self._clock()
        async with self._sessions.begin() as session:
            query = (
                select(notification)
                .where(
                    notification.c.state == NotificationState.PENDING.value,
                    notification.c.next_attempt_at <= now,
                    notification.c.channel != Channel.FALLBACK_EMAIL.value,
                )
                .order_by(notification.c.next_attempt_at, notification.c.id)
                .limit(self._batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.execute(query)).all())
            if rows:
                await self._lease_rows(session, [r.id for r in rows], now)
        return rows

    async def _lease_rows(self, session: AsyncSession, ids: list[int], now: datetime) -> None:
        """Claim rows: an attempt counted, due again only after the lease."""
        await session.execute(
            update(notification)
            .where(notification.c.id.in_(ids))
            .values(attempts=notification.c.attempts + 1, next_attempt_at=now + self._lease)
        )

    async def _claim_fallback(self) -> list[list[Any]]:
        """The due fallback notices, grouped per recipient: a care unit gets at most one
        email per ``fallback_interval``. A recipient emailed less than that ago keeps its
        notices until the interval has passed (unclaimed, no attempt spent); then everything
        waiting for it goes in one email, each notice under its own case reference, so a
        backlog never becomes an email storm to a home-care unit."""
        now = self._clock()
        async with self._sessions.begin() as session:
            query = (
                select(notification)
                .where(
                    notification.c.state == NotificationState.PENDING.value,
                    notification.c.next_attempt_at <= now,
                    notification.c.channel == Channel.FALLBACK_EMAIL.value,
                )
                .order_by(notification.c.id)
                .limit(MAX_GROUPED)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            by_recipient: dict[str, list[Any]] = {}
            for row in (await session.execute(query)).all():
                by_recipient.setdefault(row.recipient, []).append(row)
            if not by_recipient:
                return []
            last_sent: dict[str, datetime] = dict(
                (
                    await session.execute(
                        select(notification.c.recipient, func.max(notification.c.sent_at))
                        .where(
                            notification.c.channel == Channel.FALLBACK_EMAIL.value,
                            notification.c.recipient.in_(sorted(by_recipient)),
                            notification.c.sent_at.is_not(None),
                        )
                        .group_by(notification.c.recipient)
                    )
                ).all()
            )
            groups = []
            for recipient, rows in by_recipient.items():
                # a last email "in the future" was sent before the wall clock went back:
                # the wait is one interval from now, never the size of the jump
                last = last_sent.get(recipient)
                last = None if last is None else min(last, now)
                ids = [r.id for r in rows]
                if last is not None and now < last + self._fallback_interval:
                    await session.execute(  # wait for the interval: not an attempt
                        update(notification)
                        .where(notification.c.id.in_(ids))
                        .values(next_attempt_at=last + self._fallback_interval)
                    )
                    continue
                await self._lease_rows(session, ids, now)
                groups.append(rows)
        return groups

    async def _send_group(self, rows: list[Any]) -> None:
        notice = grouped_notice([_queued(row) for row in rows], digest_over=self._digest_over)
        first = rows[0]
        async with self._limit:
            try:
                if self._email is None:
                    raise PermanentNotificationError("email channel not configured")
                await self._email.send(
                    self._compose(first.id, first.recipient, notice.subject, notice.body)
                )
            except NotificationError as exc:
                for row in rows:
                    await self._failed(row, row.attempts + 1, exc)
                return
        sent_at = self._clock()
        for row in rows:
            await self._record(row, row.attempts + 1, state=NotificationState.SENT, sent_at=sent_at)
        log.info(
            "fallback notices sent in one email",
            extra={"notification_ids": [r.id for r in rows], "channel": first.channel},
        )

    async def _send_one(self, row: Any) -> None:
        attempt = row.attempts + 1
        async with self._limit:
            try:
                await self._deliver(row)
            except NotificationError as exc:
                await self._failed(row, attempt, exc)
                return
        await self._record(row, attempt, state=NotificationState.SENT, sent_at=self._clock())
        log.info("notification sent", extra=_ids(row, attempt))

    async def _deliver(self, row: Any) -> None:
        if row.channel == Channel.WEBHOOK.value:
            if self._webhook is None:
                raise PermanentNotificationError("webhook channel not configured")
            await self._webhook.post(
                row.recipient,
                webhook_body(row.payload),
                idempotency_key=f"notification-{row.id}",
                change=row.change,
            )
        elif row.channel in (Channel.EMAIL.value, Channel.FALLBACK_EMAIL.value):
            if self._email is None:
                raise PermanentNotificationError("email channel not configured")
            await self._email.send(self._message(row))
        else:
            raise PermanentNotificationError(f"unknown channel {row.channel[:40]}")

    def _message(self, row: Any) -> EmailMessage:
        return self._compose(row.id, row.recipient, row.subject, row.body)

    def _compose(self, row_id: int, recipient: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = format_datetime(self._clock())
        domain = self._from.rpartition("@")[2] or "carebridge.invalid"
        message["Message-ID"] = make_msgid(f"notification-{row_id}", domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(body, charset="utf-8")
        return message

    async def _failed(self, row: Any, attempt: int, exc: NotificationError) -> None:
        extra = {**_ids(row, attempt), "error": type(exc).__name__, "reason": exc.reason}
        if isinstance(exc, TransientNotificationError) and not self._retry.exhausted(attempt):
            retry_at = self._clock() + self._retry.delay(attempt, self._rng)
            await self._record(
                row,
                attempt,
                state=NotificationState.PENDING,
                next_attempt_at=retry_at,
                last_error=exc.reason,
            )
            log.warning("notification not sent, retrying", extra={**extra, "retry_at": retry_at})
            return
        await self._record(row, attempt, state=NotificationState.FAILED, last_error=exc.reason)
        log.error("notification failed", extra=extra)

    async def _record(
        self, row: Any, attempt: int, *, state: NotificationState, **values: Any
    ) -> None:
        """Write the outcome, if the row still holds this claim (its lease not taken over)."""
        check_notification_transition(NotificationState.PENDING, state)
        async with self._sessions.begin() as session:
            await session.execute(
                update(notification)
                .where(
                    notification.c.id == row.id,
                    notification.c.state == NotificationState.PENDING.value,
                    notification.c.attempts == attempt,
                )
                .values(state=state.value, **values)
            )


MAX_GROUPED = 1000  # fallback rows read per pass (a digest lists them a line each)


def _queued(row: Any) -> Queued:
    payload = row.payload if isinstance(row.payload, dict) else {}
    return Queued(
        subject=row.subject,
        body=row.body,
        references=tuple(str(r) for r in payload.get("references", ())),
        all_clear=bool(payload.get("allClear", False)),
    )


def _ids(row: Any, attempt: int) -> dict[str, Any]:
    """What may be logged about a notification: ids and the channel, never its text."""
    return {
        "notification_id": row.id,
        "alert_id": row.alert_id,
        "change": row.change,
        "channel": row.channel,
        "attempt": attempt,
    }
