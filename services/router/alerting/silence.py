"""Silent sources: the alert for a source that stops sending, such as TakeCare's admission
trigger breaking on a Friday night. The broker cannot see a message that was never sent, so
it watches the rate: inside a source's active hours, a family that should have brought
messages in the last window and brought none raises an incident, which resolves itself when
a message of that family arrives again.

What "should have" means is configured (at least ``min_expected`` per window) or learned:
the same hours of the same weekday over the past weeks; when history shows enough traffic,
the learned expectation counts, so a quiet night in a quiet region stays quiet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.alerting.events import Severity
from services.router.alerting.incidents import AlertSink, raise_alert
from services.router.routing.domain import AlertKind, AlertState
from services.router.routing.tables import alert, message

log = logging.getLogger(__name__)

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class SilenceRule(BaseModel):
    """When one source's family is expected, and how much of it (ROUTER_SILENCE_RULES)."""

    model_config = ConfigDict(extra="forbid")

    source: str
    event_code: str
    active_from_hour: int = Field(default=7, ge=0, le=23)  # Swedish local time
    active_to_hour: int = Field(default=22, ge=1, le=24)
    weekdays_only: bool = False
    window_h: float = Field(default=4.0, gt=0)
    min_expected: int = Field(default=1, ge=0)  # configured floor per window
    learn_weeks: int = Field(default=4, ge=0)  # 0: configured only
    learned_threshold: float = Field(default=3.0, gt=0)  # learned mean per window that counts


@dataclass(frozen=True, slots=True)
class Expectation:
    expected: float
    learned: bool


def is_active(rule: SilenceRule, now: datetime) -> bool:
    local = now.astimezone(STOCKHOLM)
    if rule.weekdays_only and local.weekday() >= 5:
        return False
    return rule.active_from_hour <= local.hour < rule.active_to_hour


def expectation(rule: SilenceRule, history: Sequence[int]) -> Expectation:
    """``history``: counts in the same window of the same weekday, one per past week."""
    if history:
        mean = sum(history) / len(history)
        if mean >= rule.learned_threshold:
            return Expectation(mean, learned=True)
    return Expectation(float(rule.min_expected), learned=False)


async def check_silent_sources(
    session: AsyncSession,
    rules: Sequence[SilenceRule],
    now: datetime,
    *,
    sinks: Sequence[AlertSink] = (),
) -> int:
    """Raise an incident per rule that is silent now; return how many are silent."""
    silent = 0
    for rule in rules:
        if not is_active(rule, now):
            continue
        window = timedelta(hours=rule.window_h)
        # a window that began outside the active hours is not judged yet
        if not is_active(rule, now - window):
            continue
        seen = await _count(session, rule, now - window, now)
        history = [
            await _count(session, rule, now - window - timedelta(weeks=w), now - timedelta(weeks=w))
            for w in range(1, rule.learn_weeks + 1)
        ]
        expected = expectation(rule, history)
        if seen > 0 or expected.expected < 1:
            continue
        silent += 1
        if await _already_open(session, rule):
            continue
        log.warning(
            "source silent",
            extra={
                "source": rule.source,
                "family": rule.event_code,
                "window_h": rule.window_h,
                "expected": round(expected.expected, 1),
                "learned": expected.learned,
            },
        )
        await raise_alert(
            session,
            kind=AlertKind.SILENT_SOURCE,
            destination=rule.source,
            event_code=rule.event_code,
            affected=None,
            now=now,
            severity=Severity.CRITICAL,
            sinks=sinks,
        )
    return silent


async def resolve_spoken_sources(
    session: AsyncSession, now: datetime, *, sinks: Sequence[AlertSink] = ()
) -> int:
    """A silent-source incident resolves itself once its family arrives again."""
    from services.router.alerting.incidents import resolve

    open_ = (
        await session.execute(
            select(alert.c.id, alert.c.destination, alert.c.event_code, alert.c.opened_at).where(
                alert.c.kind == AlertKind.SILENT_SOURCE.value,
                alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
            )
        )
    ).all()
    resolved = 0
    for row in open_:
        arrived = await session.scalar(
            select(func.count())
            .select_from(message)
            .where(
                message.c.source == row.destination,
                message.c.event_code == row.event_code,
                message.c.received_at > row.opened_at,
            )
        )
        if arrived:
            resolved += await resolve(
                session,
                int(row.id),
                actor="router",
                note=f"cause cleared: {arrived} message(s) arrived again",
                now=now,
                sinks=sinks,
            )
    return resolved


async def _count(session: AsyncSession, rule: SilenceRule, since: datetime, until: datetime) -> int:
    found = await session.scalar(
        select(func.count())
        .select_from(message)
        .where(
            message.c.source == rule.source,
            message.c.event_code == rule.event_code,
            message.c.received_at > since,
            message.c.received_at <= until,
        )
    )
    return int(found or 0)


async def _already_open(session: AsyncSession, rule: SilenceRule) -> bool:
    found = await session.scalar(
        select(alert.c.id).where(
            alert.c.kind == AlertKind.SILENT_SOURCE.value,
            alert.c.destination == rule.source,
            alert.c.event_code == rule.event_code,
            alert.c.state.in_([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value]),
        )
    )
    return found is not None
