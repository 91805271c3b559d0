"""The statistics report as SVG charts for the ops console: :func:`render_charts` gives each
chart by name. Pure: a report in, markup out (drawn by :mod:`services.router.statistics.svg`).

| name | chart |
|---|---|
| ``notices`` | accepted messages per period, stacked by family group |
| ``on-time`` | share confirmed within the legal deadline, 0–100 % |
| ``admission-to-confirmed`` | median admission → confirmed per destination (minutes or hours) |
| ``same-day-discharge`` | share discharged on the day declared ready, 0–100 % |
| ``sip`` | SIP messages per period |
"""

from __future__ import annotations

from services.messaging.envelope import EventCode, System
from services.router.statistics.periods import Period
from services.router.statistics.report import StatisticsReport
from services.router.statistics.svg import PALETTE, Series, bar_chart, line_chart, percent, plain

CHART_NAMES = ("notices", "on-time", "admission-to-confirmed", "same-day-discharge", "sip")

# Eleven families are too many colours for one stack: the chart groups them as staff do.
FAMILY_GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "Inskrivning",
        frozenset(
            {
                EventCode.ADMISSION_NOTICE,
                EventCode.ADMISSION_NOTICE_UPDATED,
                EventCode.ADMISSION_NOTICE_CANCELLED,
            }
        ),
    ),
    (
        "Utskrivningsklar",
        frozenset({EventCode.READY_FOR_DISCHARGE, EventCode.READY_FOR_DISCHARGE_WITHDRAWN}),
    ),
    ("Utskrivning", frozenset({EventCode.DISCHARGE_NOTICE})),
    ("Läkemedelslista", frozenset({EventCode.MEDICATION_LIST})),
    (
        "SIP",
        frozenset(
            {
                EventCode.SIP_INVITATION,
                EventCode.SIP_CREATED,
                EventCode.SIP_UPDATED,
                EventCode.SIP_COMPLETED,
            }
        ),
    ),
)


def label(period: Period, key: str) -> str:
    """A short axis label: ``03-29`` for a day, ``v. 13`` for an ISO week."""
    return key[5:] if period is Period.DAY else f"v. {int(key[-2:])}"


def _system_text(dest: str) -> str:
    return next((s.display for s in System if s.value == dest), dest)


def _share(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def render_charts(report: StatisticsReport) -> dict[str, str]:
    """Chart name → SVG markup, for every name in :data:`CHART_NAMES`."""
    labels = [label(report.period, p.key) for p in report.periods]
    unit = "dag" if report.period is Period.DAY else "vecka"
    span = (
        f"{report.since.isoformat()} till {report.until.isoformat()}, "
        f"{len(report.periods)} perioder (per {unit}, svensk tid)."
    )

    def series(name: str, values: list[float | None], i: int = 0) -> Series:
        return Series(name, values, PALETTE[i % len(PALETTE)])

    groups = [
        series(name, [sum(p.notices[c] for c in codes) for p in report.periods], i)
        for i, (name, codes) in enumerate(FAMILY_GROUPS)
    ]
    total = sum(p.notices_total for p in report.periods)
    sip = series("SIP-meddelanden", [p.sip for p in report.periods])
    medians = {
        dest: [p.admission_to_confirmed[dest].median_seconds for p in report.periods]
        for dest in report.destinations
    }
    longest = max((v for vs in medians.values() for v in vs if v is not None), default=0.0)
    per, unit_name = (3600, "timmar") if longest >= 2 * 3600 else (60, "minuter")
    waits = [
        series(_system_text(dest), [None if v is None else v / per for v in values], i)
        for i, (dest, values) in enumerate(medians.items())
    ]
    on_time = [_share(p.on_time.ratio) for p in report.periods]
    same_day = [_share(p.same_day_discharge.ratio) for p in report.periods]
    return {
        "notices": bar_chart(
            chart_id="chart-notices",
            title=f"Mottagna meddelanden per {unit}",
            desc=f"Staplar per meddelandetyp. {span} Totalt {total} meddelanden.",
            labels=labels,
            series=groups,
            y_title="Meddelanden",
        ),
        "on-time": line_chart(
            chart_id="chart-on-time",
            title="Andel bekräftade inom lagstadgad tid",
            desc=f"Räknas i perioden då fristen går ut, när utfallet är känt. {span} "
            "Perioder utan data saknar punkt.",
            labels=labels,
            series=[series("Inom frist", on_time)],
            y_title="Andel (%)",
            y_max=100,
            fmt=percent,
        ),
        "admission-to-confirmed": line_chart(
            chart_id="chart-admission-to-confirmed",
            title=f"Median från inskrivning till bekräftat inskrivningsmeddelande ({unit_name})",
            desc=f"En linje per mottagare, per inskrivningsdag. {span} "
            "Perioder utan bekräftelser saknar punkt.",
            labels=labels,
            series=waits,
            y_title=unit_name.capitalize(),
        ),
        "same-day-discharge": line_chart(
            chart_id="chart-same-day-discharge",
            title="Andel utskrivna samma dag som utskrivningsklar",
            desc=f"Av utskrivna som förklarats utskrivningsklara. {span} "
            "Perioder utan utskrivningar saknar punkt.",
            labels=labels,
            series=[series("Samma dag", same_day)],
            y_title="Andel (%)",
            y_max=100,
            fmt=percent,
        ),
        "sip": bar_chart(
            chart_id="chart-sip",
            title=f"SIP-meddelanden per {unit}",
            desc=f"Kallelser, upprättade, uppdaterade och avslutade SIP. {span} "
            f"Totalt {sum(p.sip for p in report.periods)}.",
            labels=labels,
            series=[sip],
            y_title="Meddelanden",
            fmt=plain,
        ),
    }
