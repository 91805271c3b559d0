"""Patient data over the JSON API (``/api/v1``): a message's FHIR payload, the search by
personnummer and a case's timeline, each with the caller's name and reason, written to the
access log before anything is returned; and the access log itself. POST keeps a personnummer
out of URLs and access logs of proxies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.case import is_case_id
from services.router.audit import access_log_export
from services.router.audit.access_log import (
    AccessKind,
    ChainProblem,
    iter_entries,
    list_access,
    verify_chain,
)
from services.router.audit.checkpoints import CheckpointProblem, check_stream_against_checkpoints
from services.router.audit.patient_data import (
    InvalidIdentifier,
    NoSuchCase,
    NoSuchMessage,
    open_case,
    open_payload,
    pseudonym_search,
)
from services.router.ops import queries
from services.router.ops.api_clients import ApiCaller, as_operator, needs
from services.router.ops.console.accounts import Role
from services.router.ops.message_schemas import CaseOut, MessagePageOut
from services.router.ops.schema_base import ResponseModel, Timestamp
from services.router.settings import RouterSettings

Operator = Annotated[ApiCaller, Depends(as_operator)]
# a case's timeline is metadata (states, times, pseudonyms): a viewer's, like the message
# detail; but it shows the whole stay of one patient, so each view is access-logged
Viewer = Annotated[ApiCaller, Depends(needs(Role.VIEWER))]


class Reasoned(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # accepted from older scripts and ignored: who acts is who the key or token names
    operator: str | None = Field(default=None, max_length=60)
    reason: str = Field(min_length=3, max_length=500)


class PersonnummerSearch(Reasoned):
    personnummer: str = Field(min_length=10, max_length=20)
    limit: int = Field(default=50, ge=1, le=500)


class FhirMessageOut(BaseModel):
    """A FHIR R4 Bundle of type ``message`` as the router accepted it (every stored message
    passed :func:`services.messaging.envelope.read_envelope`). Only the envelope is typed:
    the entries are FHIR resources whose shape each message family's profile gives, and
    other Bundle elements (``identifier``, ``meta``) are passed through as stored."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    id: str
    type: Literal["message"]
    timestamp: str = Field(description="FHIR instant: accepted at the source")
    entry: list[dict[str, Any]] = Field(
        description="FHIR resources, the MessageHeader first; free-form FHIR JSON"
    )


class PersonnummerPageOut(MessagePageOut):
    pseudonym: str = Field(description="the patient's keyed pseudonym: the only identity named")


class AccessEntryOut(ResponseModel):
    """One view of patient data, or a security event (log-in, a refused token, an admin
    action, a key change: ``category`` says which; it names no patient, so ``pseudonym`` and
    ``message_id`` are null), with its place in the hash chain."""

    id: int
    at: Timestamp
    actor: str
    role: str = Field(description="the API client's or console user's role")
    kind: AccessKind
    pseudonym: str | None
    message_id: str | None
    reason: str
    category: Literal["patient-data", "security"]
    seq: int
    prev_hash: str
    hash: str


class AccessListOut(ResponseModel):
    count: int
    items: list[AccessEntryOut]


class CheckpointFindingOut(ResponseModel):
    line: int = Field(description="the line of the checkpoint file")
    problem: CheckpointProblem
    seq: int | None
    at: str | None = Field(description="when the checkpoint was signed")
    detail: str


class CheckpointVerificationOut(ResponseModel):
    """The chain against the router's own checkpoint file (ROUTER_AUDIT_CHECKPOINT_FILE):
    a rewrite with every hash recomputed, or a truncation, shows here and not in ``ok``
    above. An auditor checks against a copy out of the router's reach with
    ``cli access-log verify --checkpoints``."""

    ok: bool
    checkpoints: int = Field(description="lines read")
    matched: int = Field(description="validly signed checkpoints the chain matches")
    firstMismatch: CheckpointFindingOut | None = Field(
        description="the earliest checkpoint the chain no longer matches or reaches"
    )
    findings: list[CheckpointFindingOut]


class ChainVerificationOut(ResponseModel):
    ok: bool
    checked: int = Field(description="entries checked")
    firstBadSeq: int | None = Field(description="the first position that breaks; null: intact")
    problem: ChainProblem | None
    tailSeq: int
    tailHash: str = Field(description="the last good hash: keep it to compare with a later run")
    retentionDays: int
    checkpoints: CheckpointVerificationOut | None = Field(
        default=None, description="null: the router writes no checkpoint file"
    )


def _category(kind: AccessKind) -> str:
    return "security" if kind.is_security_event else "patient-data"


def patient_routes(
    settings: RouterSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(tags=["patient data (access-logged)"])
    keyring = settings.keyring()
    trusted = settings.checkpoint_trusted()

    @api.post(
        "/messages/{message_id}/payload",
        response_model=FhirMessageOut,
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
                    actor=caller.actor(),
                    role=caller.role.value,
                    reason=body.reason,
                    now=clock(),
                )
        except NoSuchMessage:
            raise HTTPException(404, "no such message") from None
        if view.bundle is None:  # the access entry is committed: the attempt stays logged
            raise HTTPException(410, f"payload pruned at {view.pruned_at}")
        return view.bundle

    @api.post(
        "/messages/search/personnummer", response_model=PersonnummerPageOut, responses={422: {}}
    )
    async def by_personnummer(body: PersonnummerSearch, caller: Operator) -> dict[str, Any]:
        """Messages of one patient, found by personnummer (or samordningsnummer). The search
        is logged with the patient's pseudonym; the answer names only the pseudonym."""
        try:
            async with sessions.begin() as session:
                found = await pseudonym_search(
                    session,
                    body.personnummer,
                    key=settings.pseudonym_key,
                    actor=caller.actor(),
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

    @api.get(
        "/cases/{case_id}",
        response_model=CaseOut,
        responses={404: {"description": "no message carries this case id"}, 422: {}},
    )
    async def case(
        case_id: Annotated[str, Path(min_length=36, max_length=36)],
        caller: Viewer,
        reason: Annotated[str, Query(min_length=3, max_length=200)] = "case timeline",
    ) -> dict[str, Any]:
        """Every message of one stay (the case id every message of it carries, an
        EpisodeOfCare: services.messaging.case) oldest first, with its deliveries' states,
        receiving units and deadlines. Logged in the access log first (kind ``case-view``,
        the patient's pseudonym, the case id in the reason)."""
        if not is_case_id(case_id):
            raise HTTPException(422, "case_id: not a case id (a UUID)")
        try:
            async with sessions.begin() as session:
                await open_case(
                    session,
                    case_id,
                    actor=caller.actor(),
                    role=caller.role.value,
                    reason=reason,
                    now=clock(),
                )
                items = await queries.case_timeline(
                    session,
                    case_id,
                    agreements=settings.payment_agreements_of(),
                    directory=settings.municipality_directory(),
                )
        except NoSuchCase:
            raise HTTPException(404, "no such case") from None
        return {"case_id": case_id, "count": len(items), "items": items}

    @api.get("/access-log", response_model=AccessListOut)
    async def access(
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        pseudonym: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
        category: Literal["patient-data", "security"] | None = None,
    ) -> dict[str, Any]:
        """Every view of patient data (who, when, which patient by pseudonym, what, why)
        and every security event, newest first; ``category`` keeps one of the two."""
        kinds = None if category is None else [k for k in AccessKind if _category(k) == category]
        async with sessions() as session:
            items = await list_access(session, limit=limit, pseudonym=pseudonym, kinds=kinds)
        return {
            "count": len(items),
            "items": [{**i, "category": _category(AccessKind(i["kind"]))} for i in items],
        }

    @api.get("/access-log/verify", response_model=ChainVerificationOut)
    async def verify() -> dict[str, Any]:
        """Walk the hash chain: ``ok``, how many entries checked, and the first position that
        was changed, removed or reordered (``firstBadSeq``, ``problem``); ``tailHash`` to keep
        and compare with a later run. With a checkpoint file (``ROUTER_AUDIT_CHECKPOINT_FILE``),
        ``checkpoints`` says whether the chain still matches every signed checkpoint in it."""
        sink = settings.checkpoint_file()
        lines = [] if sink is None else await asyncio.to_thread(lambda: list(sink.lines()))
        async with sessions() as session:
            if sink is None:
                report = await verify_chain(session)
                return {**report.as_dict(), "retentionDays": settings.access_log_retention_days}
            async with aclosing(iter_entries(session)) as entries:
                checked = await check_stream_against_checkpoints(entries, lines, trusted)
        return {
            **checked.chain.as_dict(),
            "retentionDays": settings.access_log_retention_days,
            "checkpoints": checked.as_dict(),
        }

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
