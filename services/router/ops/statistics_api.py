"""The statistics API (``/api/v1/statistics``): figures per Stockholm day or ISO week as JSON,
as CSV for Excel, and as SVG charts. Read-only; what each figure counts is documented in
:mod:`services.router.statistics.report` and docs/operations.md (Statistics)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.statistics import export as statistics_export
from services.router.statistics import payment_export
from services.router.statistics.charts import CHART_NAMES, render_charts
from services.router.statistics.export import StatisticsDocument
from services.router.statistics.payment import (
    MunicipalityDirectory,
    PaymentReport,
    payment_report,
)
from services.router.statistics.payment_clock import PaymentAgreements
from services.router.statistics.payment_export import PaymentDocument
from services.router.statistics.periods import InvalidRange, Period
from services.router.statistics.report import StatisticsReport, statistics

PeriodParam = Annotated[
    Period, Query(description="day (Stockholm calendar day) or week (ISO week)")
]
Since = Annotated[
    date | None,
    Query(description="first day, YYYY-MM-DD; default: 30 days or 12 weeks before until"),
]
Until = Annotated[date | None, Query(description="last day, YYYY-MM-DD; default: today")]

_BAD_RANGE: dict[int | str, dict[str, Any]] = {
    422: {"description": "a period other than day or week, a bad date, since after until"}
}
SVG_MEDIA_TYPE = "image/svg+xml"


PaymentSince = Annotated[
    date | None, Query(description="first day, YYYY-MM-DD; default: the first of until's month")
]


def statistics_routes(
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    *,
    agreements: PaymentAgreements | None = None,
    directory: MunicipalityDirectory | None = None,
) -> APIRouter:
    api = APIRouter(prefix="/statistics", tags=["statistics"])
    agreements = agreements or PaymentAgreements()
    directory = directory or MunicipalityDirectory()

    async def payment(since: date | None, until: date | None) -> PaymentReport:
        async with sessions() as session:
            try:
                return await payment_report(
                    session,
                    agreements=agreements,
                    directory=directory,
                    since=since,
                    until=until,
                    now=clock(),
                )
            except InvalidRange as exc:
                raise HTTPException(422, str(exc)) from None

    @api.get("/payment", response_model=PaymentDocument, responses=_BAD_RANGE)
    async def payment_days(since: PaymentSince = None, until: Until = None) -> PaymentDocument:
        """The payment clock (betalningsansvar): payable bed-days per municipality and
        month, and every stay's evidence (ready notice sent, admission receipt's time and
        record id, discharge). Patients by pseudonym only."""
        return payment_export.to_document(await payment(since, until))

    @api.get(
        "/payment.csv",
        response_class=Response,
        responses={
            200: {
                "content": {"text/csv": {}},
                "description": "one row per patient-stay-day, UTF-8 with BOM, ';'-separated",
            },
            **_BAD_RANGE,
        },
    )
    async def payment_csv(since: PaymentSince = None, until: Until = None) -> Response:
        """The payable days for an invoice check, one row per patient-stay-day with its
        evidence."""
        found = await payment(since, until)
        return Response(
            content=payment_export.to_csv(found).encode("utf-8"),
            media_type=payment_export.CSV_MEDIA_TYPE,
            headers={
                "content-disposition": f'attachment; filename="{payment_export.file_name(found)}"'
            },
        )

    async def report(period: Period, since: date | None, until: date | None) -> StatisticsReport:
        async with sessions() as session:
            try:
                return await statistics(
                    session, period=period, since=since, until=until, now=clock()
                )
            except InvalidRange as exc:
                raise HTTPException(422, str(exc)) from None

    @api.get("", response_model=StatisticsDocument, responses=_BAD_RANGE)
    async def figures(
        period: PeriodParam = Period.DAY, since: Since = None, until: Until = None
    ) -> StatisticsDocument:
        """Every figure, one row per period (empty periods too; null where no data)."""
        return statistics_export.to_document(await report(period, since, until))

    @api.get(
        "/export.csv",
        response_class=Response,
        responses={
            200: {
                "content": {"text/csv": {}},
                "description": "UTF-8 with BOM, ';'-separated, Swedish headers, decimal comma",
            },
            **_BAD_RANGE,
        },
    )
    async def export_csv(
        period: PeriodParam = Period.DAY, since: Since = None, until: Until = None
    ) -> Response:
        """The same figures as the JSON, one row per period."""
        found = await report(period, since, until)
        name = statistics_export.file_name(found)
        return Response(
            content=statistics_export.to_csv(found).encode("utf-8"),
            media_type=statistics_export.CSV_MEDIA_TYPE,
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @api.get(
        "/chart/{name}.svg",
        response_class=Response,
        responses={
            200: {"content": {SVG_MEDIA_TYPE: {}}, "description": "an accessible SVG chart"},
            404: {"description": f"no such chart; known: {', '.join(CHART_NAMES)}"},
            **_BAD_RANGE,
        },
    )
    async def chart(
        name: str, period: PeriodParam = Period.DAY, since: Since = None, until: Until = None
    ) -> Response:
        """One chart: notices, on-time, admission-to-confirmed, same-day-discharge or sip."""
        if name not in CHART_NAMES:
            raise HTTPException(404, f"no such chart; known: {', '.join(CHART_NAMES)}")
        svg = render_charts(await report(period, since, until))[name]
        return Response(content=svg.encode("utf-8"), media_type=SVG_MEDIA_TYPE)

    return api
