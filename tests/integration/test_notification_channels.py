"""Alert notifications over real sockets: a real SMTP server (aiosmtpd) receives the ops email
and the Swedish fallback notice; a real HTTP server checks the webhook's signature."""

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from sandbox.stack import free_port
from services.messaging.db import utcnow
from services.messaging.signing import SIGNATURE_HEADER, SignatureError, verify
from services.router.alerting.notifications import Channels, Notifier
from services.router.alerting.sender import (
    NotificationSender,
    SmtpEmailTransport,
    WebhookPoster,
)
from services.router.alerting.unit_directory import GOTLAND_PATH, UnitDirectory
from services.router.routing.domain import RetryPolicy
from services.router.routing.tables import notification
from tests.support.alert_events import event

pytestmark = pytest.mark.alerts

SECRET = "ops-webhook-secret-0123456789"
UNIT_MAIL = "hemsjukvard.mottagning@example.se"


class Mailbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()


class Receiver:
    """A webhook endpoint on a real socket that verifies each request like a subscriber."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.accepted: list[dict[str, object]] = []
        self.refused: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    verify(receiver.secret, body, self.headers.get(SIGNATURE_HEADER), time.time())
                except SignatureError as exc:
                    receiver.refused.append(type(exc).__name__)
                    self.send_response(401)
                else:
                    assert self.headers["content-type"] == "application/json"
                    receiver.accepted.append(
                        {"body": json.loads(body), "key": self.headers["idempotency-key"]}
                    )
                    self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


async def send_all(sessions, sender, deadline_s=20.0):
    """Run the sender until nothing is pending, within a deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        await sender.send_due()
        async with sessions() as session:
            states = (await session.execute(select(notification.c.state))).scalars().all()
        if states and "pending" not in states:
            return
    pytest.fail("notifications still pending")


async def run_channels(sessions, smtp_port, receiver, webhook_secret):
    notifier = Notifier(
        channels=Channels(
            webhook_url=receiver.url,
            ops_emails=("drift@example.se",),
            email=True,
            fallback_notices=True,
        ),
        directory=UnitDirectory.load(GOTLAND_PATH),
    )
    async with sessions.begin() as session:
        ids = await notifier.enqueue(session, event(), utcnow())
    assert len(ids) == 3
    sender = NotificationSender(
        sessions,
        email=SmtpEmailTransport("127.0.0.1", smtp_port, security="none", timeout_s=5),
        webhook=WebhookPoster(webhook_secret, 5.0),
        email_from="carebridge@example.se",
        retry=RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=3),
    )
    try:
        await send_all(sessions, sender)
    finally:
        await sender.aclose()
    async with sessions() as session:
        return {r.channel: r for r in (await session.execute(select(notification))).all()}


async def test_ops_email_fallback_notice_and_signed_webhook_arrive(sessions, smtp):
    port, mailbox = smtp
    with Receiver(SECRET) as receiver:
        rows = await run_channels(sessions, port, receiver, SECRET)
    assert {c: r.state for c, r in rows.items()} == {
        "webhook": "sent",
        "email": "sent",
        "fallback-email": "sent",
    }
    (hook,) = receiver.accepted
    assert hook["body"]["alertId"] == 12 and hook["body"]["reference"] == "CB-3F9A-27C1"
    assert hook["key"] == f"notification-{rows['webhook'].id}"

    received = {rcpt[0]: raw for rcpt, raw in mailbox.messages}
    assert set(received) == {"drift@example.se", UNIT_MAIL}
    raw = received[UNIT_MAIL]
    assert b"Subject: =?utf-8?" in raw  # a UTF-8 encoded-word, readable by any mail client
    notice = email.message_from_bytes(raw, policy=email.policy.default)
    assert notice["Subject"] == (
        "Brådskande: inskrivningsmeddelande saknas hos er (ärende CB-3F9A-27C1)"
    )
    assert notice["From"] == "carebridge@example.se"
    assert notice.get_content_charset() == "utf-8"
    text = notice.get_content()
    assert (
        "Inskrivningsmeddelandet från Medicinavdelning 3, Visby lasarett, har inte kommit "
        "fram till er i Treserva." in text
    )
    assert "ring avdelningen på 0498-55 13 03 och fråga efter ärende CB-3F9A-27C1" in text
    ops = email.message_from_bytes(received["drift@example.se"], policy=email.policy.default)
    assert ops["Subject"].startswith("[carebridge] CRITICAL opened: delivery_failed")
    assert "Larm 12 öppnat" in ops.get_content()


async def test_a_webhook_with_the_wrong_secret_is_refused_and_shows_failed(sessions, smtp):
    port, _ = smtp
    with Receiver(SECRET) as receiver:
        rows = await run_channels(sessions, port, receiver, "a-different-secret-0123456789")
    assert receiver.refused == ["BadSignature"] and receiver.accepted == []
    assert (rows["webhook"].state, rows["webhook"].last_error) == ("failed", "HTTP 401")
    assert rows["fallback-email"].state == "sent"


async def test_an_smtp_server_that_is_down_is_retried_then_failed(sessions):
    with Receiver(SECRET) as receiver:
        rows = await run_channels(sessions, free_port(), receiver, SECRET)
    assert rows["webhook"].state == "sent"
    assert (rows["fallback-email"].state, rows["fallback-email"].attempts) == ("failed", 3)
    assert rows["fallback-email"].last_error.startswith("SMTP")
