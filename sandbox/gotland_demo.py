"""``make demo SCENARIO=broken-trigger``: the Region Gotland failure, played end to end.

Treserva accepts admission notices and silently drops them. The broker notices the missing
confirmation, opens an incident, sends the signed ops webhook and the ops email, emails the
home care unit a plain-Swedish fallback notice, and counts a deviation, all long before the
24-hour legal deadline. When Treserva works again, the notice is sent again, confirmed, the
incident resolves itself and the deviation is closed with how late it was.

The demo runs its own SMTP server (aiosmtpd) and webhook receiver, so every channel is real.
It runs on Region Gotland's directory (contracts/units/gotland.json, one municipality) and
Gotland's sample patients: sandbox.demo starts its stack with ``region="gotland"``, whatever
the sandbox's default region (Halland).
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from sandbox.scenario import Scenario, wait_for
from sandbox.stack import free_port
from services.messaging.signing import SignatureError, verify

WEBHOOK_SECRET = "sandbox-alert-webhook-secret"  # noqa: S105 (the demo's own receiver)
OPS_MAILBOX = "it-drift@gotland.example.se"
ID = "id"


@dataclass
class Inbox:
    """What the SMTP server received."""

    mails: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.mails.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.mails if address in str(m.get("To", ""))]


@dataclass
class Hooks:
    """What the webhook receiver got, with each signature checked."""

    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0


def webhook_server(hooks: Hooks) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                verify(
                    WEBHOOK_SECRET, body, self.headers.get("x-carebridge-signature"), time.time()
                )
            except SignatureError:
                hooks.refused += 1
                self.send_response(401)
                self.end_headers()
                return
            hooks.received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def channels(
    data_dir: Path,
) -> tuple[Controller, Inbox, ThreadingHTTPServer, Hooks, dict[str, str]]:
    """Start the SMTP server and the webhook receiver; the router settings that use them."""
    inbox, hooks = Inbox(), Hooks()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    receiver = webhook_server(hooks)
    env = {
        "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{receiver.server_port}/alerts",
        "ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ALERT_SMTP_HOST": "127.0.0.1",
        "ALERT_SMTP_PORT": str(smtp.port),
        "ALERT_SMTP_SECURITY": "none",
        "ALERT_OPS_RECIPIENTS": json.dumps([OPS_MAILBOX]),
        "NOTIFICATION_POLL_S": "0.2",
    }
    return smtp, inbox, receiver, hooks, env


def play(s: Scenario, inbox: Inbox, hooks: Hooks, echo: Callable[[str], None] = print) -> int:
    """The scenario; returns 0 when every expectation held (a failure raises)."""
    echo("1) Treserva's import breaks: it answers 202 and stores nothing (silent drop)")
    s.set_treserva_fault("silent-drop")
    echo("2) TakeCare admits a patient; the admission notice goes out")
    message_id, _ = s.post_admission()
    accepted = time.monotonic()
    s.wait_for_state(message_id, "sent", timeout_s=15, destination="treserva")
    echo(f"   accepted and sent to Treserva: message {message_id} (Treserva said 202)")

    alert = s.wait_for_alert("confirmation_overdue", "treserva", timeout_s=60)
    detected_s = time.monotonic() - accepted
    echo(
        f"3) the missing confirmation is caught after {detected_s:.1f} s: incident "
        f"#{alert['id']} [{alert['severity']}] {alert['summary']}"
    )

    hook = wait_for(
        "the signed ops webhook",
        lambda: next((h for h in hooks.received if h.get("alertId") == alert["id"]), None),
        timeout_s=30,
    )
    echo(
        f"4) ops webhook received after {time.monotonic() - accepted:.1f} s, signature "
        f"verified ({hook.get('change')}, {hook.get('severity')}); refused: {hooks.refused}"
    )
    ops_mail = wait_for(
        "the ops email", lambda: next(iter(inbox.to(OPS_MAILBOX)), None), timeout_s=30
    )
    echo(f"   ops email to {OPS_MAILBOX}: {ops_mail['Subject']}")
    fallback = wait_for(
        "the fallback notice to home care",
        lambda: next((m for m in inbox.mails if OPS_MAILBOX not in str(m.get("To", ""))), None),
        timeout_s=30,
    )
    echo(
        f"5) fallback notice to the home care unit ({fallback['To']}) after "
        f"{time.monotonic() - accepted:.1f} s:"
    )
    body = fallback.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    echo(f"   Subject: {fallback['Subject']}")
    for line in text.strip().splitlines():
        echo(f"   | {line}")

    deviation = wait_for(
        "the deviation record",
        lambda: next(
            (
                d
                for d in s.ops("/api/v1/deviations")["items"]
                if d.get("messageId") == message_id and d.get("destinationSystem") == "treserva"
            ),
            None,
        ),
        timeout_s=30,
    )
    legal = _legal_due(s, message_id)
    left_h = (legal - datetime.now().astimezone()).total_seconds() / 3600 if legal else None
    echo(
        f"6) deviation {deviation[ID]} recorded ({deviation['kind']}, detected "
        f"{deviation['detectedAt']})"
        + (f"; the legal deadline is {left_h:.1f} h away" if left_h is not None else "")
    )

    echo("7) Treserva is repaired; the notice is sent again at its next deadline")
    s.set_treserva_fault("none")
    repaired = time.monotonic()
    s.wait_for_state(message_id, "confirmed", timeout_s=60, destination="treserva")
    echo(f"   confirmed by Treserva {time.monotonic() - repaired:.1f} s after the repair")
    resolved = wait_for(
        "the incident to resolve itself",
        lambda: next(
            (
                a
                for a in s.ops("/api/v1/alerts")["items"]
                if a["id"] == alert["id"] and a["state"] == "resolved"
            ),
            None,
        ),
        timeout_s=30,
    )
    closed = wait_for(
        "the deviation to be closed",
        lambda: next(
            (
                d
                for d in s.ops("/api/v1/deviations")["items"]
                if d[ID] == deviation[ID] and d.get("resolvedAt")
            ),
            None,
        ),
        timeout_s=30,
    )
    echo(
        f"8) incident #{resolved['id']} resolved by {resolved['resolved_by']}: "
        f"{resolved['resolution']}; deviation closed, {closed.get('lateMinutes')} min late"
    )
    echo(
        f"\nbroken trigger caught in {detected_s:.1f} s, long before the 24 h legal deadline; "
        "ops, the home care unit and the deviation log all know, and the notice arrived."
    )
    return 0


def _legal_due(s: Scenario, message_id: str) -> datetime | None:
    detail = s.message(message_id) or {}
    for d in detail.get("deliveries", []):
        if d["destination"] == "treserva" and d.get("legal_due_at"):
            return datetime.fromisoformat(d["legal_due_at"])
    return None
