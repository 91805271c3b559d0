"""W3C Trace Context (https://www.w3.org/TR/trace-context/) for the ``traceparent`` header,
pure: parse, format, and make the next hop's span. No I/O.

An adapter's intake starts a trace (or continues the caller's ``traceparent``), and every
Kafka record published for that message carries ``traceparent`` with the same trace id and a
new span id per hop. A trace id is random: it carries no patient data, so it may go into Kafka
headers and logs. A malformed incoming value is never an error: it is ignored and a new trace
starts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

HEADER = "traceparent"

_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})"
    r"(?P<rest>-.*)?"
)
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16
SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One hop of a trace: the trace id shared by every hop, this hop's span id, flags."""

    trace_id: str  # 32 lowercase hex, not all zero
    span_id: str  # 16 lowercase hex, not all zero
    flags: int = SAMPLED

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def child(self) -> TraceContext:
        """The next hop: same trace, a new span id."""
        return TraceContext(self.trace_id, new_span_id(), self.flags)

    def log_fields(self) -> dict[str, str]:
        """What a log line carries to be found by trace."""
        return {"trace_id": self.trace_id, "span_id": self.span_id}


def new_span_id() -> str:
    span = _INVALID_SPAN
    while span == _INVALID_SPAN:
        span = secrets.token_hex(8)
    return span


def new_trace() -> TraceContext:
    trace = _INVALID_TRACE
    while trace == _INVALID_TRACE:
        trace = secrets.token_hex(16)
    return TraceContext(trace, new_span_id())


def parse(value: str | None) -> TraceContext | None:
    """The context of a ``traceparent`` value, or None if it is absent or malformed.

    Version ``ff`` is invalid; version ``00`` must have exactly four fields; a later
    version may add fields after the flags (the spec asks parsers to accept them)."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, rest = match["version"], match["rest"]
    if version == "ff" or (version == "00" and rest):
        return None
    if match["trace"] == _INVALID_TRACE or match["span"] == _INVALID_SPAN:
        return None
    return TraceContext(match["trace"], match["span"], int(match["flags"], 16))


def continue_or_start(value: str | None) -> TraceContext:
    """This hop's context: a child of a valid incoming ``traceparent``, else a new trace."""
    incoming = parse(value)
    return incoming.child() if incoming is not None else new_trace()


def from_headers(headers: Mapping[str, str]) -> TraceContext:
    """This hop's context for a Kafka record's headers (see :func:`continue_or_start`)."""
    return continue_or_start(headers.get(HEADER))


def trace_id_of(value: str | None) -> str | None:
    """The trace id in a ``traceparent`` value (for logs), or None."""
    context = parse(value)
    return context.trace_id if context is not None else None
