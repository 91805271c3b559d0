"""A message's journey as one list, oldest first: every state transition and every attempt
of every delivery, with the HTTP status and latency where an attempt has them. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_HTTP = re.compile(r"\bHTTP (\d{3})\b")


@dataclass(frozen=True, slots=True)
class Hop:
    at: datetime
    destination: str
    kind: str  # "transition" | "attempt"
    what: str  # "pending → dispatched", or "attempt 2"
    outcome: str | None
    http_status: int | None
    latency_ms: int | None
    detail: str | None


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def hops(detail: dict[str, Any]) -> list[Hop]:
    """From :func:`services.router.ops.queries.message_detail`. Oldest first; at the same instant
    each attempt follows the transition that dispatched it."""
    found: list[Hop] = []
    for d in detail.get("deliveries", []):
        attempts = iter(a for a in d.get("attempts_log", []) if _when(a["dispatched_at"]))
        for t in d.get("transitions", []):
            at = _when(t["at"])
            if at is None:
                continue
            found.append(
                Hop(
                    at=at,
                    destination=d["destination"],
                    kind="transition",
                    what=f"{t['from_state'] or '–'} → {t['to_state']}",
                    outcome=None,
                    http_status=None,
                    latency_ms=None,
                    detail=t.get("reason"),
                )
            )
            if t["to_state"] == "dispatched" and (a := next(attempts, None)) is not None:
                found.append(_attempt(d["destination"], a))
        found.extend(_attempt(d["destination"], a) for a in attempts)
    found.sort(key=lambda h: h.at)  # stable: the order above holds within an instant
    return found


def _attempt(destination: str, a: dict[str, Any]) -> Hop:
    started, ended = _when(a["dispatched_at"]), _when(a.get("completed_at"))
    assert started is not None
    text = a.get("detail")
    status = _HTTP.search(text) if text else None
    return Hop(
        at=started,
        destination=destination,
        kind="attempt",
        what=f"#{a['attempt_no']}",
        outcome=a.get("outcome") or "in flight",
        http_status=int(status.group(1)) if status else None,
        latency_ms=round((ended - started).total_seconds() * 1000) if ended else None,
        detail=text,
    )
