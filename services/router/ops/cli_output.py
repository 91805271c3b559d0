"""How the operator CLI prints what the API answers: a message table and a message's
timeline. Pure functions of the API's JSON, so they are tested without a router."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import typer


def message_rows(page: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per message of a ``GET /api/v1/messages`` page."""
    return [
        (
            str(m["received_at"]),
            str(m["id"]),
            str(m["event_code"]),
            str(m["source"]),
            " ".join(f"{d['destination']}:{d['state']}" for d in m["deliveries"]) or "-",
        )
        for m in page["items"]
    ]


def case_rows(case: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per message of a ``GET /api/v1/cases/{id}`` answer, oldest first: when its
    source sent it, the family, and each delivery's receiving unit, state and deadline."""

    def delivery(d: dict[str, Any]) -> str:
        unit = f"@{d['receiver_unit_hsa']}" if d.get("receiver_unit_hsa") else ""
        due = f" due {d['legal_due_at']}" if d.get("legal_due_at") else ""
        return f"{d['destination']}{unit}:{d['state']}{due}"

    return [
        (
            str(m["sent_at"]),
            str(m["event_code"]),
            str(m["id"]),
            "; ".join(delivery(d) for d in m["deliveries"]) or "-",
        )
        for m in case["items"]
    ]


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = list(rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for line in (header, *rows):
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if not rows:
        typer.echo("(no messages)")


def timeline(detail: dict[str, Any]) -> Iterator[str]:
    """A ``GET /api/v1/messages/{id}`` answer as lines: the message, then per delivery its
    transitions and attempts merged in time order."""
    yield f"message   {detail['id']}"
    yield f"family    {detail['event_code']} from {detail['source']}"
    yield f"received  {detail['received_at']} (sent {detail['sent_at']})"
    yield f"patient   {detail['pseudonym'] or '-'} (pseudonym)"
    if detail.get("business_key"):
        yield f"key       {detail['business_key']}"
    if detail.get("superseded_by"):
        yield f"superseded by {detail['superseded_by']}"
    for d in detail["deliveries"]:
        yield ""
        unit = f" (unit {d['receiver_unit_hsa']})" if d.get("receiver_unit_hsa") else ""
        yield f"→ {d['destination']}{unit}: {d['state']}, {d['attempts']} attempt(s)"
        events: list[tuple[str, str]] = []
        for t in d.get("transitions", []):
            step = f"{t['from_state'] or '·'} → {t['to_state']}"
            events.append((str(t["at"]), f"{step}  {t['reason']}"))
        for a in d.get("attempts_log", []):
            events.append((str(a["dispatched_at"]), f"attempt {a['attempt_no']} dispatched"))
            if a["completed_at"]:
                detail_text = f": {a['detail']}" if a["detail"] else ""
                outcome = f"attempt {a['attempt_no']} {a['outcome']}{detail_text}"
                events.append((str(a["completed_at"]), outcome))
        for at, text in sorted(events, key=lambda e: e[0]):
            yield f"  {at}  {text}"
        if d.get("last_error"):
            yield f"  last error: {d['last_error']}"
