"""Signed, expiring console sessions in a cookie: ``base64(json).hmac``. The server keeps no
session state; the key (``ROUTER_CONSOLE_SECRET``) signs them. Each session carries its own
CSRF token, which every form posts back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from services.router.ops.console.accounts import Role

COOKIE = "carebridge_console"


@dataclass(frozen=True, slots=True)
class OperatorSession:
    user: str
    role: Role
    expires_at: float  # unix seconds
    csrf: str

    def may(self, needed: Role) -> bool:
        return self.role.may(needed)


def _mac(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def issue(user: str, role: Role, *, now: datetime, ttl_s: float, key: str) -> str:
    doc = {"u": user, "r": role.value, "e": now.timestamp() + ttl_s, "c": secrets.token_hex(16)}
    body = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode())
    return f"{body.decode()}.{_mac(key, body)}"


def read(cookie: str | None, *, now: datetime, key: str) -> OperatorSession | None:
    """The session, or None if absent, tampered with or expired."""
    if not cookie or "." not in cookie:
        return None
    body, mac = cookie.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(key, body.encode())):
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(body.encode()))
        found = OperatorSession(
            user=str(doc["u"]), role=Role(doc["r"]), expires_at=float(doc["e"]), csrf=doc["c"]
        )
    except (ValueError, KeyError, TypeError):
        return None
    return found if found.expires_at > now.timestamp() else None
