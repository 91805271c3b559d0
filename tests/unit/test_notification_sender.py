"""The sender loop with fakes: webhook through httpx.MockTransport, email through the fake
transport; retries with back-off, failure after the attempt budget, and the API listing."""

import json
import logging
import random
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from services.messaging.signing import verify
from services.router.alerting.events import AlertChange
from services.router.alerting.notifications import Channels
from services.router.alerting.sender import (
    FakeEmailTransport,
    NotificationSender,
    TransientNotificationError,
    WebhookPoster,
)
from services.router.ops.app import create_app
from services.router.routing.domain import RetryPolicy
from services.router.routing.tables import notification
from services.router.settings import RouterSettings
from tests.support.alert_events import TUESDAY_1430, event
from tests.support.notifications import ALL_ON, HOOK, UNIT_MAIL, notifier

pytestmark = pytest.mark.alerts

SECRET = "ops-webhook-secret-0123456789"
RETRY = RetryPolicy(base_s=10, cap_s=40, max_attempts=4)
FALLBACK_ONLY = Channels(email=True, fallback_notices=True)


class Clock:
    def __init__(self):
        self.now = TUESDAY_1430

    def __call__(self):
        return self.now


class Hook:
    def __init__(self):
        self.requests: list[httpx.Request] = []
        self.answers: list[int | Exception] = []

    def __call__(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def hook():
    return Hook()


@pytest.fixture
def mail():
    return FakeEmailTransport()


@pytest.fixture
async def sender(sessions, clock, hook, mail):
    poster = WebhookPoster(
        SECRET, clock=lambda: clock().timestamp(), transport=httpx.MockTransport(hook)
    )
    yield NotificationSender(
        sessions,
        email=mail,
        webhook=poster,
        email_from="carebridge@example.se",
        retry=RETRY,
        clock=clock,
        rng=random.Random(7),
    )
    await poster.aclose()


async def queue(sessions, alert=None, channels=ALL_ON):
    async with sessions.begin() as session:
        return await notifier(channels).enqueue(session, alert or event(), TUESDAY_1430)


async def rows(sessions):
    async with sessions() as session:
        result = await session.execute(select(notification).order_by(notification.c.id))
        return {r.recipient: r for r in result.all()}


async def test_every_channel_is_sent_and_marked(sessions, sender, hook, mail, clock):
    await queue(sessions)
    assert await sender.send_due() == 4
    got = await rows(sessions)
    assert {r.state for r in got.values()} == {"sent"}
    assert all(r.sent_at == clock.now and r.attempts == 1 for r in got.values())
    (request,) = hook.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == f"notification-{got[HOOK].id}"
    signed = verify(
        SECRET, request.content, request.headers["x-carebridge-signature"], clock.now.timestamp()
    )
    assert signed == int(clock.now.timestamp())
    assert json.loads(request.content)["reference"] == "CB-3F9A-27C1"
    by_to = {m["To"]: m for m in mail.sent}
    assert set(by_to) == {"drift@example.se", "jour@example.se", UNIT_MAIL}
    unit_mail = by_to[UNIT_MAIL]
    assert unit_mail["Subject"].startswith("Brådskande:")
    assert unit_mail["Auto-Submitted"] == "auto-generated"
    assert "Medicinavdelning 3, Visby lasarett" in unit_mail.get_content()
    assert await sender.send_due() == 0  # nothing is sent twice


async def test_transient_failures_back_off_then_succeed(sessions, sender, hook, clock):
    await queue(sessions, channels=Channels(webhook_url=HOOK))
    hook.answers = [503, httpx.ConnectError("refused")]
    delays = []
    for expected_attempts in (1, 2):
        await sender.send_due()
        row = (await rows(sessions))[HOOK]
        assert (row.state, row.attempts) == ("pending", expected_attempts)
        delays.append(row.next_attempt_at - clock.now)
        assert await sender.send_due() == 0  # not due yet
        clock.now = row.next_attempt_at
    assert row.last_error == "transport: ConnectError"
    # capped exponential back-off with jitter: (5..10] s after the first, (10..20] after the second
    assert timedelta(seconds=5) <= delays[0] <= timedelta(seconds=10)
    assert timedelta(seconds=10) <= delays[1] <= timedelta(seconds=20)
    await sender.send_due()
    row = (await rows(sessions))[HOOK]
    assert (row.state, row.attempts) == ("sent", 3)


async def test_attempts_spent_mark_it_failed_and_log_no_text(sessions, sender, mail, clock, caplog):
    await queue(sessions, channels=Channels(email=True, fallback_notices=True))
    mail.errors = [TransientNotificationError("SMTP 451")] * RETRY.max_attempts
    caplog.set_level(logging.INFO)
    for _ in range(RETRY.max_attempts):
        assert await sender.send_due() == 1
        clock.now += timedelta(seconds=RETRY.cap_s)
    row = (await rows(sessions))[UNIT_MAIL]
    assert (row.state, row.attempts, row.last_error) == ("failed", 4, "SMTP 451")
    assert await sender.send_due() == 0
    failed = [r for r in caplog.records if r.getMessage() == "notification failed"]
    assert [(r.notification_id, r.channel) for r in failed] == [(row.id, "fallback-email")]
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert "Medicinavdelning" not in logged and "Brådskande" not in logged


async def test_a_permanent_failure_is_not_retried(sessions, sender, hook):
    await queue(sessions, channels=Channels(webhook_url=HOOK))
    hook.answers = [404]
    await sender.send_due()
    row = (await rows(sessions))[HOOK]
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "HTTP 404")


async def test_a_channel_switched_off_after_queueing_fails_the_row(sessions, clock):
    await queue(sessions)
    bare = NotificationSender(
        sessions, email=None, webhook=None, email_from="x@example.se", retry=RETRY, clock=clock
    )
    assert await bare.send_due() == 4
    assert {r.last_error for r in (await rows(sessions)).values()} == {
        "webhook channel not configured",
        "email channel not configured",
    }


async def test_a_claim_lasts_a_lease_so_a_crash_is_retried_later(sessions, sender, clock, mail):
    await queue(sessions, channels=Channels(email=True, ops_emails=("drift@example.se",)))
    claimed = await sender._claim()  # the process dies before sending
    assert len(claimed) == 1
    assert await sender.send_due() == 0
    clock.now += timedelta(minutes=5)
    assert await sender.send_due() == 1
    row = (await rows(sessions))["drift@example.se"]
    assert (row.state, row.attempts) == ("sent", 2)
    assert len(mail.sent) == 1


async def test_the_api_lists_the_queue_with_failures(sessions, sender, hook):
    await queue(sessions, channels=Channels(webhook_url=HOOK))
    hook.answers = [410]
    await sender.send_due()
    await queue(sessions, event(alert_id=13), channels=Channels(webhook_url=HOOK))
    await sender.send_due()
    app = create_app(RouterSettings(), sessions=sessions)
    auth = {"authorization": "Bearer sandbox-ops-token"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        assert (await c.get("/api/v1/notifications")).status_code == 401
        everything = (await c.get("/api/v1/notifications", headers=auth)).json()
        failed = (await c.get("/api/v1/notifications?state=failed", headers=auth)).json()
        of_13 = (await c.get("/api/v1/notifications?alert_id=13", headers=auth)).json()
        bad = await c.get("/api/v1/notifications?state=lost", headers=auth)
    assert everything["count"] == 2
    assert [(i["alertId"], i["lastError"]) for i in failed["items"]] == [(12, "HTTP 410")]
    assert [i["alertId"] for i in of_13["items"]] == [13]
    assert of_13["items"][0]["state"] == "sent"
    assert of_13["items"][0]["subject"].startswith("[carebridge] CRITICAL opened")
    assert bad.status_code == 422


def _message_ids(n):
    return [f"{i:08x}-1111-4111-8111-111111111111" for i in range(0x3F9A0000, 0x3F9A0000 + n)]


async def _alarms(sessions, n, first=0):
    """A backlog: ``n`` notices of one incident, each its own message (own reference)."""
    from dataclasses import replace

    base = event(kind="confirmation_overdue")
    for i, mid in enumerate(_message_ids(first + n)[first:]):
        change = AlertChange.OPENED if first + i == 0 else AlertChange.AFFECTED
        await queue(sessions, replace(base, change=change, message_id=mid), FALLBACK_ONLY)


def _refs(n):
    from services.router.alerting.notices import reference_code

    return [reference_code(event(message_id=mid)) for mid in _message_ids(n)]


async def test_a_backlog_is_one_email_per_unit_per_interval_each_under_its_reference(
    sessions, sender, mail, clock
):
    await _alarms(sessions, 1)
    await sender.send_due()
    assert [m["To"] for m in mail.sent] == [UNIT_MAIL]  # the first goes at once
    await _alarms(sessions, 4, first=1)
    clock.now += timedelta(minutes=5)
    assert await sender.send_due() == 0  # within the interval: the unit is not mailed again
    assert len(mail.sent) == 1
    clock.now += timedelta(minutes=10, seconds=1)
    assert await sender.send_due() == 4
    (first, grouped) = mail.sent
    text = grouped.get_content()
    refs = _refs(5)
    assert refs[0] in first["Subject"]
    assert all(f"--- {ref} ---" in text for ref in refs[1:])  # each its own case reference
    assert grouped["Subject"].startswith("Brådskande: 4 meddelanden saknas hos er")
    assert {r.state for r in (await rows_all(sessions))} == {"sent"}


async def test_more_than_the_digest_limit_is_one_digest_with_a_line_per_notice(
    sessions, sender, mail
):
    await _alarms(sessions, 12)
    assert await sender.send_due() == 12
    (digest,) = mail.sent
    text = digest.get_content()
    assert digest["Subject"].startswith("Sammanställning: Brådskande: 12 meddelanden")
    assert all(ref in text for ref in _refs(12))
    assert "---" not in text and len(text.splitlines()) < 30


async def test_the_all_clear_names_the_references_the_alarms_gave(sessions, sender, mail, clock):
    from dataclasses import replace

    await _alarms(sessions, 3)
    await sender.send_due()
    resolved = replace(event(kind="confirmation_overdue"), change=AlertChange.RESOLVED)
    await queue(sessions, resolved, FALLBACK_ONLY)
    clock.now += timedelta(minutes=16)
    await sender.send_due()
    all_clear = mail.sent[-1]
    assert all_clear["Subject"].startswith("Klart: 3 ")
    refs = _refs(3)
    assert all(ref in all_clear.get_content() for ref in refs)
    assert f"CB-L{resolved.alert_id}" not in all_clear.get_content()


async def rows_all(sessions):
    async with sessions() as session:
        return (await session.execute(select(notification))).all()


async def test_alarms_still_waiting_when_the_alert_resolves_are_never_sent(
    sessions, sender, mail, clock
):
    """Under load an alert resolved while a unit's later alarms waited for its email
    interval; they went out after the all-clear, in the same email, so the unit saw neither
    the all-clear nor the end. Now they are superseded: the unit's next email is the
    all-clear alone, naming what it was told."""
    from dataclasses import replace

    await _alarms(sessions, 1)
    await sender.send_due()  # the first alarm goes at once
    await _alarms(sessions, 3, first=1)  # these wait for the interval …
    clock.now += timedelta(minutes=1)
    assert await sender.send_due() == 0
    resolved = replace(event(kind="confirmation_overdue"), change=AlertChange.RESOLVED)
    await queue(sessions, resolved, FALLBACK_ONLY)  # … and the alert resolves meanwhile
    clock.now += timedelta(minutes=15)
    await sender.send_due()
    (alarm, all_clear) = mail.sent
    assert _refs(1)[0] in alarm["Subject"]
    assert all_clear["Subject"].startswith("Klart: ")
    assert _refs(1)[0] in all_clear.get_content()
    assert not any(ref in all_clear.get_content() for ref in _refs(4)[1:])
    states = sorted(r.state for r in await rows_all(sessions))
    assert states == ["sent", "sent", "superseded", "superseded", "superseded"]
