"""The payment clock's report as JSON (the API's documented response model) and as CSV for
an invoice check. Pure: a report in, a document or text out.

The CSV has **one row per patient-stay-day**: each row is one bed-day the municipality pays
for, with the evidence behind it, so an invoice's lines can be matched one by one (count the
rows of a stay for its days). A stay ready more than once (interrupted or withdrawn, then
ready again) has rows from each readiness period; each row names its period and the ready
notice (message id) that started its clock, and a day is never in two rows. The period's
columns come after the older ones, so a reader of those keeps working.

Like the other exports: UTF-8 with a byte-order mark, ``;``, CRLF, Swedish headers, times in
Swedish local time with their offset. The patient is a pseudonym, never a personnummer; every
cell goes through :func:`~services.messaging.spreadsheet_cells.formula_safe` (a record id is
the receiving journal's text, and could start a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from pydantic import BaseModel, Field

from services.messaging.spreadsheet_cells import formula_safe
from services.router.deviations.export import BOM, CSV_MEDIA_TYPE, local_time
from services.router.statistics.payment import PaymentReport, StayDays
from services.router.statistics.payment_clock import DayCount, PaymentAgreement

__all__ = ["CSV_MEDIA_TYPE", "PaymentDocument", "file_name", "to_csv", "to_document"]


class AgreementOut(BaseModel):
    days: int = Field(description="the municipality's days before it pays")
    kind: DayCount = Field(description="calendar or working days")


class MonthOut(BaseModel):
    municipality: str = Field(description="municipality code, e.g. 0980 (Gotland)")
    month: str = Field(description="YYYY-MM")
    days: int = Field(description="payable bed-days in the month (inside the report's range)")
    stays: int = Field(description="stays with at least one payable day in the month")


class StayOut(BaseModel):
    stay: int = Field(description="the router's episode id")
    period: int | None = Field(
        default=None, description="the readiness period: one per ready notice of the stay"
    )
    readyMessageId: str | None = Field(
        default=None, description="the ready notice (message id) whose clock this is"
    )
    pseudonym: str = Field(description="the patient's keyed pseudonym, never a personnummer")
    municipality: str
    agreement: AgreementOut
    readySentAt: str | None = Field(description="the router sent the ready notice to it")
    admissionConfirmedAt: str | None = Field(description="the router had its receipt")
    admissionReceivedAt: str | None = Field(description="the receiving journal's own time")
    admissionRecordId: str | None = Field(description="the receiving journal's own record id")
    withdrawnAt: str | None = Field(description="the readiness was withdrawn (återtag)")
    interruptedAt: str | None = Field(
        default=None, description="the discharge process was interrupted (avbrott)"
    )
    deceasedAt: str | None = Field(
        default=None, description="the patient died during the stay: the clock stops"
    )
    supersededAt: str | None = Field(
        default=None, description="a later ready notice of the stay started a new period"
    )
    endedByMessageId: str | None = Field(
        default=None, description="the message that ended this readiness period"
    )
    dischargedAt: str | None
    clockRuns: bool = Field(description="false: no ready notice sent or no admission receipt")
    firstPayableDay: str | None
    days: list[str] = Field(
        description="payable days inside the report's range, YYYY-MM-DD, that no earlier "
        "period of the stay pays"
    )


class PaymentDocument(BaseModel):
    since: str
    until: str
    generatedAt: str
    months: list[MonthOut]
    stays: list[StayOut]


def _agreement(a: PaymentAgreement) -> AgreementOut:
    return AgreementOut(days=a.days, kind=a.kind)


def agreement_text(a: PaymentAgreement) -> str:
    return f"{a.days} {'kalenderdagar' if a.kind is DayCount.CALENDAR else 'vardagar'}"


def _stay(s: StayDays) -> StayOut:
    e = s.stay
    return StayOut(
        stay=e.stay_id,
        period=e.period_id,
        readyMessageId=e.ready_message_id,
        pseudonym=e.pseudonym,
        municipality=e.municipality,
        agreement=_agreement(s.agreement),
        readySentAt=local_time(e.ready_sent_at),
        admissionConfirmedAt=local_time(e.admission_confirmed_at),
        admissionReceivedAt=local_time(e.admission_received_at),
        admissionRecordId=e.admission_record_id,
        withdrawnAt=local_time(e.withdrawn_at),
        interruptedAt=local_time(e.interrupted_at),
        deceasedAt=local_time(e.deceased_at),
        supersededAt=local_time(e.superseded_at),
        endedByMessageId=e.ended_by_message_id,
        dischargedAt=local_time(e.discharged_at),
        clockRuns=s.first_payable is not None,
        firstPayableDay=None if s.first_payable is None else s.first_payable.isoformat(),
        days=[d.isoformat() for d in s.days],
    )


def to_document(report: PaymentReport) -> PaymentDocument:
    return PaymentDocument(
        since=report.since.isoformat(),
        until=report.until.isoformat(),
        generatedAt=local_time(report.generated_at) or "",
        months=[
            MonthOut(municipality=m.municipality, month=m.month, days=m.days, stays=m.stays)
            for m in report.months
        ],
        stays=[_stay(s) for s in report.stays],
    )


Cell = Callable[[StayDays], str | None]

_STAY_COLUMNS: list[tuple[str, Cell]] = [
    ("Pseudonym", lambda s: s.stay.pseudonym),
    ("Vårdtillfälle", lambda s: str(s.stay.stay_id)),
    ("Avtal", lambda s: agreement_text(s.agreement)),
    ("Utskrivningsklar skickad", lambda s: local_time(s.stay.ready_sent_at)),
    (
        "Inskrivningsmeddelande mottaget (mottagarens tid)",
        lambda s: local_time(s.stay.admission_received_at),
    ),
    ("Mottagarens journal-id", lambda s: s.stay.admission_record_id),
    ("Kvittens mottagen av broker", lambda s: local_time(s.stay.admission_confirmed_at)),
    ("Återtagen", lambda s: local_time(s.stay.withdrawn_at)),
    ("Avbruten", lambda s: local_time(s.stay.interrupted_at)),
    ("Avliden", lambda s: local_time(s.stay.deceased_at)),
    ("Utskriven", lambda s: local_time(s.stay.discharged_at)),
    ("Period", lambda s: None if s.stay.period_id is None else str(s.stay.period_id)),
    ("Utskrivningsklar meddelande-id", lambda s: s.stay.ready_message_id),
    ("Ersatt av ny utskrivningsklar", lambda s: local_time(s.stay.superseded_at)),
    ("Perioden avslutad av meddelande-id", lambda s: s.stay.ended_by_message_id),
]
CSV_HEADERS = ["Kommun", "Månad", "Dag", *(header for header, _ in _STAY_COLUMNS)]


def to_csv(report: PaymentReport) -> str:
    """The CSV text, byte-order mark first; encode it as UTF-8. One row per payable day."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    for s in report.stays:
        evidence = [cell(s) or "" for _, cell in _STAY_COLUMNS]
        for day in s.days:
            row = [s.stay.municipality, day.strftime("%Y-%m"), day.isoformat(), *evidence]
            writer.writerow([formula_safe(text) for text in row])
    return out.getvalue()


def file_name(report: PaymentReport) -> str:
    return f"betalningsansvar-{report.since}-{report.until}.csv"
