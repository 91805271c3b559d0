"""The deviation API (``/api/v1/deviations``): deviation records (avvikelser i samverkan)
listed, counted per month and exported as CSV or JSON for a deviation system such as
Flexite. Read-only; the incident rules write them (:mod:`services.router.deviations.records`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.envelope import EventCode
from services.router.deviations import export as deviation_export
from services.router.deviations.records import (
    Deviation,
    Direction,
    InvalidMonth,
    list_deviations,
    month_window,
    monthly_counts,
)
from services.router.ops.schema_base import ResponseModel

Month = Annotated[
    str | None,
    Query(
        description="YYYY-MM: deviations detected in this month, Stockholm time; absent: all",
        examples=["2026-11"],
    ),
]
Kind = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="failure class, e.g. not_confirmed_in_time, delivery_failed, "
        "legal_deadline_breached, episode_gap",
    ),
]
Destination = Annotated[
    str | None, Query(max_length=40, description="destination system or subscription id")
]
Family = Annotated[EventCode | None, Query(description="event code of the message family")]

LocalTime = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 in Stockholm local time with its offset, whole seconds",
    ),
]

_BAD_MONTH: dict[int | str, dict[str, Any]] = {
    422: {"description": "a month that is not YYYY-MM, or another bad filter"}
}


class DeviationOut(ResponseModel):
    """One deviation, as in the JSON export (contracts/deviations/deviation.schema.json)."""

    id: int
    kind: str = Field(description="failure class; an open set, e.g. delivery_failed")
    status: Literal["open", "resolved"]
    occurredAt: LocalTime | None = Field(description="when the care event happened, if known")
    detectedAt: LocalTime
    dueAt: LocalTime | None = Field(description="the deadline that was missed, if any")
    resolvedAt: LocalTime | None
    lateMinutes: int | None = Field(description="against the deadline, rounded up")
    family: str = Field(description="event code of the message family")
    messageId: str | None
    deliveryId: int | None
    direction: Direction
    sourceSystem: str
    destinationSystem: str
    senderUnitHsaId: str | None
    receiverUnitHsaId: str | None
    patientPseudonym: str | None
    alertId: int | None
    description: str = Field(description="plain Swedish, no patient data")


class DeviationListOut(ResponseModel):
    count: int
    items: list[DeviationOut]


class DeviationExportOut(ResponseModel):
    """The JSON export document (contracts/deviations/deviation.schema.json)."""

    schemaVersion: str
    generatedAt: LocalTime
    month: str | None = Field(description="YYYY-MM exported, or null for every month")
    count: int
    deviations: list[DeviationOut]


class MonthCountOut(ResponseModel):
    month: str = Field(description="YYYY-MM, detection time in Stockholm")
    total: int
    resolved: int
    byKind: dict[str, int]
    byDirection: dict[Direction, int]


class MonthlyOut(ResponseModel):
    months: list[MonthCountOut] = Field(description="oldest month first")


def _month(name: str, value: str | None) -> str | None:
    """422 with a message an operator understands, not a regular expression."""
    if value is not None:
        try:
            month_window(value)
        except InvalidMonth as exc:
            raise HTTPException(422, f"{name}: {exc}") from None
    return value


def deviation_routes(
    sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
) -> APIRouter:
    api = APIRouter(prefix="/deviations", tags=["deviations"])

    async def found(
        month: str | None,
        kind: str | None,
        destination: str | None,
        family: EventCode | None,
        limit: int | None = None,
    ) -> list[Deviation]:
        async with sessions() as session:
            return await list_deviations(
                session,
                month=_month("month", month),
                kind=kind,
                destination=destination,
                family=family.value if family else None,
                limit=limit,
            )

    @api.get("", response_model=DeviationListOut, responses=_BAD_MONTH)
    async def deviations(
        month: Month = None,
        kind: Kind = None,
        destination: Destination = None,
        family: Family = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> dict[str, Any]:
        """Deviations in order of detection, with the export's fields (English keys)."""
        items = await found(month, kind, destination, family, limit)
        document = deviation_export.to_json(items, generated_at=clock(), month=month)
        return {"count": document["count"], "items": document["deviations"]}

    @api.get(
        "/export.csv",
        response_class=Response,
        responses={
            200: {
                "content": {"text/csv": {}},
                "description": "UTF-8 with BOM, ';'-separated, Swedish headers",
            },
            **_BAD_MONTH,
        },
    )
    async def export_csv(
        month: Month = None, kind: Kind = None, destination: Destination = None
    ) -> Response:
        """The CSV export for a deviation system (layout: contracts/deviations/README.md)."""
        items = await found(month, kind, destination, None)
        name = deviation_export.file_name(month, "csv")
        return Response(
            content=deviation_export.to_csv(items).encode("utf-8"),
            media_type=deviation_export.CSV_MEDIA_TYPE,
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @api.get(
        "/export.json",
        responses={
            200: {"model": DeviationExportOut, "description": "an attachment"},
            **_BAD_MONTH,
        },
    )
    async def export_json(
        month: Month = None, kind: Kind = None, destination: Destination = None
    ) -> Response:
        """The JSON export (contracts/deviations/deviation.schema.json)."""
        items = await found(month, kind, destination, None)
        name = deviation_export.file_name(month, "json")
        document = deviation_export.to_json(items, generated_at=clock(), month=month)
        return Response(
            content=deviation_export.render_json(document),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @api.get("/monthly", response_model=MonthlyOut, responses=_BAD_MONTH)
    async def monthly(since: Month = None, until: Month = None) -> dict[str, Any]:
        """Deviations per month (detection, Stockholm time), by kind and by direction;
        resolved ones are still counted."""
        async with sessions() as session:
            months = await monthly_counts(
                session, since=_month("since", since), until=_month("until", until)
            )
        return {"months": [m.to_json() for m in months]}

    return api
