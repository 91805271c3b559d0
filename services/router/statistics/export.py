"""A statistics report as JSON (the API's documented response model) and as CSV for Excel.
Pure: a report in, a document or text out.

Both hold the same figures, one row per period:

* **JSON**: English camelCase keys, family codes and destination ids as map keys, shares as
  fractions 0–1 (4 decimals), medians in minutes (1 decimal), ``null`` where there is no
  data.
* **CSV**: like the deviation export (:mod:`services.router.deviations.export`): UTF-8 with a
  byte-order mark, ``;`` as separator, CRLF, Swedish headers, and a decimal *comma* (Swedish
  Excel reads ``75,0`` as a number); shares in percent (1 decimal), an empty cell where
  there is no data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date

from pydantic import BaseModel, Field

from services.messaging.envelope import EVENT_DISPLAY, System
from services.router.deviations.export import BOM, CSV_MEDIA_TYPE, local_time
from services.router.statistics.periods import Period
from services.router.statistics.report import PeriodFigures, Share, StatisticsReport

__all__ = ["CSV_MEDIA_TYPE", "StatisticsDocument", "file_name", "to_csv", "to_document"]


def share(s: Share) -> float | None:
    return None if s.ratio is None else round(s.ratio, 4)


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


class OnTimeOut(BaseModel):
    onTime: int = Field(description="confirmed at or before the legal deadline")
    counted: int = Field(description="deadline in the period and outcome known")
    share: float | None = Field(description="onTime / counted (0–1); null when none counted")
    pending: int = Field(description="deadline in the period, not passed, not yet confirmed")


class LatencyOut(BaseModel):
    confirmed: int = Field(description="admission notices admitted in the period, confirmed")
    medianMinutes: float | None = Field(description="median admission → confirmed; null: none")


class SameDayOut(BaseModel):
    sameDay: int = Field(description="discharged on the day declared ready for discharge")
    discharged: int = Field(description="discharged in the period after a ready notice")
    share: float | None = Field(description="sameDay / discharged (0–1); null when none")
    withoutReadyNotice: int = Field(description="discharged with no ready notice seen")


class PeriodOut(BaseModel):
    key: str = Field(description="2026-03-29 (day) or 2026-W13 (ISO week)")
    firstDay: date
    lastDay: date
    notices: dict[str, int] = Field(description="accepted messages per family (event code)")
    noticesTotal: int
    onTime: OnTimeOut
    admissionToConfirmed: dict[str, LatencyOut] = Field(description="per destination")
    sameDayDischarge: SameDayOut
    sip: int = Field(description="SIP invitations, created, updated and completed")


class StatisticsDocument(BaseModel):
    """Statistics per Stockholm calendar day or ISO week (see docs/operations.md, Statistics)."""

    period: Period
    since: date
    until: date
    generatedAt: str = Field(description="Stockholm local time with its offset")
    timeZone: str = "Europe/Stockholm"
    families: list[str]
    destinations: list[str]
    periods: list[PeriodOut]


def _period(p: PeriodFigures) -> PeriodOut:
    return PeriodOut(
        key=p.key,
        firstDay=p.span.first_day,
        lastDay=p.span.last_day,
        notices=dict(p.notices),
        noticesTotal=p.notices_total,
        onTime=OnTimeOut(
            onTime=p.on_time.part,
            counted=p.on_time.whole,
            share=share(p.on_time),
            pending=p.legal_pending,
        ),
        admissionToConfirmed={
            dest: LatencyOut(confirmed=lat.confirmed, medianMinutes=minutes(lat.median_seconds))
            for dest, lat in p.admission_to_confirmed.items()
        },
        sameDayDischarge=SameDayOut(
            sameDay=p.same_day_discharge.part,
            discharged=p.same_day_discharge.whole,
            share=share(p.same_day_discharge),
            withoutReadyNotice=p.discharged_without_ready,
        ),
        sip=p.sip,
    )


def to_document(report: StatisticsReport) -> StatisticsDocument:
    return StatisticsDocument(
        period=report.period,
        since=report.since,
        until=report.until,
        generatedAt=local_time(report.generated_at) or "",
        families=list(report.families),
        destinations=list(report.destinations),
        periods=[_period(p) for p in report.periods],
    )


# --- CSV -------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}".replace(".", ",")


def _percent(s: Share) -> str:
    return "" if s.ratio is None else _number(round(s.ratio * 100, 1))


def _family_text(code: str) -> str:
    return next((text for e, text in EVENT_DISPLAY.items() if e.value == code), code)


def _system_text(dest: str) -> str:
    return next((s.display for s in System if s.value == dest), dest)


Cell = Callable[[PeriodFigures], str]
Column = tuple[str, Cell]


def _family_count(code: str) -> Cell:
    return lambda p: str(p.notices[code])


def _confirmed(dest: str) -> Cell:
    return lambda p: str(p.admission_to_confirmed[dest].confirmed)


def _median_minutes(dest: str) -> Cell:
    return lambda p: _number(minutes(p.admission_to_confirmed[dest].median_seconds))


def columns(report: StatisticsReport) -> list[Column]:
    """(Swedish header, cell) of every CSV column; one per family and two per destination."""
    found: list[Column] = [
        ("Period", lambda p: p.key),
        ("Första dag", lambda p: p.span.first_day.isoformat()),
        ("Sista dag", lambda p: p.span.last_day.isoformat()),
        ("Meddelanden totalt", lambda p: str(p.notices_total)),
    ]
    for code in report.families:
        found.append((f"Meddelanden: {_family_text(code)}", _family_count(code)))
    found += [
        ("Frister med känt utfall", lambda p: str(p.on_time.whole)),
        ("Bekräftade i tid", lambda p: str(p.on_time.part)),
        ("Andel i tid (%)", lambda p: _percent(p.on_time)),
        ("Frister ej passerade", lambda p: str(p.legal_pending)),
    ]
    for dest in report.destinations:
        name = _system_text(dest)
        found += [
            (f"Bekräftade inskrivningsmeddelanden: {name}", _confirmed(dest)),
            (f"Median inskrivning till bekräftad (minuter): {name}", _median_minutes(dest)),
        ]
    found += [
        ("Utskrivna efter utskrivningsklar", lambda p: str(p.same_day_discharge.whole)),
        ("Utskrivna samma dag som utskrivningsklar", lambda p: str(p.same_day_discharge.part)),
        ("Andel samma dag (%)", lambda p: _percent(p.same_day_discharge)),
        ("Utskrivna utan utskrivningsklar", lambda p: str(p.discharged_without_ready)),
        ("SIP-meddelanden", lambda p: str(p.sip)),
    ]
    return found


def to_csv(report: StatisticsReport) -> str:
    """The CSV text, byte-order mark first; encode it as UTF-8. No cell can start a formula:
    every cell is a number, a date, a period key or empty."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    cols = columns(report)
    writer.writerow([header for header, _ in cols])
    for p in report.periods:
        writer.writerow([cell(p) for _, cell in cols])
    return out.getvalue()


def file_name(report: StatisticsReport) -> str:
    return f"statistik-{report.period.value}-{report.since}-{report.until}.csv"
