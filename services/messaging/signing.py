"""Signed webhooks: an HMAC-SHA256 over a timestamp and the exact bytes of the body.

The sender puts one header on the request::

    X-Carebridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The receiver recomputes the HMAC over the body *as received* (before any JSON parsing) and
refuses a timestamp outside its tolerance, so a captured request cannot be replayed later.
More than one ``v1=`` may appear (a sender rotating its secret signs with both); one match is
enough. Used for subscriber webhooks and, later, for alert webhooks.

Exceptions (a receiver answers 401 to any of them; the class says why)::

    SignatureError
     ├── MalformedSignature   no header, or not "t=<digits>,v1=<hex>"
     ├── BadSignature         no v1 matches: a wrong secret or a changed body
     └── SignatureTooOld      the timestamp is further from now than the tolerance
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Carebridge-Signature"
DEFAULT_TOLERANCE_S = 300.0


class SignatureError(Exception):
    """A request's signature cannot be trusted."""


class MalformedSignature(SignatureError):
    """The signature header is missing or not in the ``t=…,v1=…`` form."""


class BadSignature(SignatureError):
    """The signature does not match the body under this secret."""


class SignatureTooOld(SignatureError):
    """The signed timestamp is outside the tolerance (old, or from a clock far ahead)."""


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise MalformedSignature("no signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise MalformedSignature("signature parts must be key=value")
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                raise MalformedSignature("t must appear once, as unix seconds")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
        # unknown keys (a future v2) are ignored, so a sender can add a scheme
    if timestamp is None or not candidates:
        raise MalformedSignature("signature needs t= and v1=")
    return timestamp, candidates


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> int:
    """Check ``header`` against ``body``; return the signed timestamp or raise a
    :class:`SignatureError`. ``now`` is unix seconds (the caller's clock)."""
    timestamp, candidates = _parse(header)
    expected = _mac(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise BadSignature("signature does not match")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureTooOld(f"signed {now - timestamp:.0f} s from now")
    return timestamp
