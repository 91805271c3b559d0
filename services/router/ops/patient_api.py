"""Patient data over the JSON API (``/api/v1``): a message's FHIR payload and the search by
personnummer, each with the operator's name and reason, written to the access log before
anything is returned; and the access log itself. POST keeps a personnummer out of URLs and
access logs of proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.audit import access_log_export
from services.router.audit.access_log import iter_entries, list_access, verify_chain
from services.router.audit.patient_data import (
    InvalidIdentifier,
    NoSuchMessage,
    open_payload,
    pseudonym_search,
)
from services.router.ops import queries
from services.router.ops.api_clients import ApiCaller, as_operator
from services.router.settings import RouterSettings

Operator = Annotated[ApiCaller, Depends(as_operator)]


class Reasoned(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: str = Field(min_length=1, max_length=60)
    reason: str = Field(min_length=3, max_length=500)


class PersonnummerSearch(Reasoned):
    personnummer: str = Field(min_length=10, max_length=20)
    limit: int = Field(default=50, ge=1, le=500)


def patient_routes(
    settings: RouterSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(tags=["patient data (access-logged)"])
    keyring = settings.keyring()

    @api.post(
        "/messages/{message_id}/payload",
        responses={404: {}, 410: {"description": "pruned after the retention period"}},
    )
    async def payload(message_id: str, body: Reasoned, caller: Operator) -> dict[str, Any]:
        """The FHIR message Bundle as accepted. Logged in the access log first. 410 once the
        payload is pruned after the retention period (the metadata stays)."""
        try:
            async with sessions.begin() as session:
                view = await open_payload(
                    session,
                    message_id,
                    keyring=keyring,
                    actor=caller.actor(body.operator),
                    role=caller.role.value,
                    reason=body.reason,
                    now=clock(),
                )
        except NoSuchMessage:
            raise HTTPException(404, "no such message") from None
        if view.bundle is None:  # the access entry is committed: the attempt stays logged
            raise HTTPException(410, f"payload pruned at {view.pruned_at}")
        return view.bundle

    @api.post("/messages/search/personnummer", responses={422: {}})
    async def by_personnummer(body: PersonnummerSearch, caller: Operator) -> dict[str, Any]:
        """Messages of one patient, found by personnummer (or samordningsnummer). The search
        is logged with the patient's pseudonym; the answer names only the pseudonym."""
        try:
            async with sessions.begin() as session:
                found = await pseudonym_search(
                    session,
                    body.personnummer,
                    key=settings.pseudonym_key,
                    actor=caller.actor(body.operator),
                    role=caller.role.value,
                    reason=body.reason,
                    now=clock(),
                )
        except InvalidIdentifier as exc:
            raise HTTPException(422, f"personnummer: {exc}") from None
        async with sessions() as session:
            page = await queries.search_messages(
                session, queries.MessageQuery(pseudonym=found), limit=body.limit
            )
        return {
            "pseudonym": found,
            "count": len(page.items),
            "items": page.items,
            "next": page.next_cursor,
        }

    @api.get("/access-log")
    async def access(
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        pseudonym: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
    ) -> dict[str, Any]:
        """Every view of patient data: who, when, which patient (pseudonym), what, why."""
        async with sessions() as session:
            items = await list_access(session, limit=limit, pseudonym=pseudonym)
        return {"count": len(items), "items": items}

    @api.get("/access-log/verify")
    async def verify() -> dict[str, Any]:
        """Walk the hash chain: ``ok``, how many entries checked, and the first position that
        was changed, removed or reordered (``firstBadSeq``, ``problem``); ``tailHash`` to keep
        and compare with a later run."""
        async with sessions() as session:
            report = await verify_chain(session)
        return {**report.as_dict(), "retentionDays": settings.access_log_retention_days}

    def export(render: Callable[[dict[str, Any]], str], header: str) -> AsyncIterator[bytes]:
        async def lines() -> AsyncIterator[bytes]:
            if header:
                yield header.encode("utf-8")
            async with sessions() as session:
                async for entry in iter_entries(session):
                    yield render(entry).encode("utf-8")

        return lines()

    @api.get(
        "/access-log/export.jsonl",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    async def export_jsonl() -> StreamingResponse:
        """Every entry in chain order with ``seq``, ``prev_hash`` and ``hash``, one JSON
        object a line, to re-verify offline (docs/security.md, Access log)."""
        return StreamingResponse(
            export(access_log_export.jsonl_line, ""),
            media_type="application/x-ndjson",
            headers={"content-disposition": 'attachment; filename="access-log.jsonl"'},
        )

    @api.get(
        "/access-log/export.csv",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def export_csv() -> StreamingResponse:
        """The same entries as CSV (UTF-8, ``,``-separated, a header row)."""
        return StreamingResponse(
            export(access_log_export.csv_line, access_log_export.csv_header()),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="access-log.csv"'},
        )

    return api
