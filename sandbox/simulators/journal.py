"""The core both journal simulators share: an API that receives the broker's deliveries, and
a control API (always up) with fault switches, statistics and event emitters.

API: ``POST /api/v1/<kind>`` checks the bearer token, the ``Idempotency-Key`` and the
document's contract, stores it once per key, answers 202 and afterwards pushes a receipt to
the broker (unless the journal is set not to push receipts: ``push_receipts``, a journal the
broker confirms by reading back). Versioned documents (SIP, medication list) are kept per
document: the *current* version is the highest one seen, and a document marked superseded (or
simply older) is filed in the history without ever becoming current. ``GET /api/v1/<kind>``
lists what was stored, ``GET /api/v1/<kind>/<key>`` reads one back by its Idempotency-Key (the
broker's message id; 404 while it is not stored, which is what a silent drop leaves),
``GET /api/v1/<kind>/current/<document id>`` reads the current version.

Control: ``PUT /_sim/fault`` switches between ``none``, ``down`` (the API listener is closed:
connection refused), ``error`` (503), ``slow``, ``reject`` (422) and ``silent-drop`` (202,
then nothing: Region Gotland's fault); ``poison`` (with any mode) answers 500 to a document
holding the given text, as an import that chokes on one patient's record.
``GET /_sim/stats``, ``POST /_sim/reset``, and ``POST /_sim/emit`` to make the journal send
its own events to its adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import BackgroundTasks, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, Field, ValidationError

from services.messaging.contracts import Violation, violations, warm_up
from services.messaging.envelope import MalformedMessage, read_envelope
from services.messaging.http import bearer_ok

log = logging.getLogger(__name__)


class FaultMode(enum.StrEnum):
    NONE = "none"
    DOWN = "down"
    ERROR = "error"
    SLOW = "slow"
    REJECT = "reject"
    SILENT_DROP = "silent-drop"


class Fault(BaseModel):
    mode: FaultMode = FaultMode.NONE
    slow_s: float = 2.0
    # whatever the mode: a document holding this text (a patient's personnummer, say) is
    # answered 500, as a journal whose import chokes on one patient's record
    poison: str | None = Field(default=None, min_length=4, max_length=100)


@dataclass(frozen=True)
class Kind:
    """One kind of document the journal receives at ``/api/v1/<path>``."""

    path: str
    schema: str | None  # native contract; None: a FHIR message Bundle (validated with R4B)
    message_id_field: str  # the broker's message id inside the document
    document_id_field: str | None = None  # versioned documents: their id …
    version_field: str = "version"  # … and version
    superseded_field: str | None = None  # set by the broker on an older version
    api_token: str | None = None  # another receiver behind the same simulator
    receipt_url: str | None = None  # … with its own receipt endpoint
    # the receiving unit's HSA-id a document is addressed to (issue 20): one simulator
    # serves the units of several municipalities and files each record under its unit
    receiver: Callable[[dict[str, Any]], str | None] | None = None


@dataclass(frozen=True)
class JournalSpec:
    name: str  # "Treserva"
    kinds: tuple[Kind, ...]
    api_token: str
    receipt_url: str
    receipt_token: str
    # (stored record, journal's own record id) → the journal's native receipt
    receipt: Callable[[dict[str, Any], str], dict[str, Any]]
    record_prefix: str  # "TRS" → record ids TRS-1, TRS-2 …
    receipt_delay_s: float = 0.0
    receipt_give_up_s: float = 120.0
    # False: a journal that never pushes receipts; the broker reads its records back instead
    push_receipts: bool = True
    # called in the background after a record is first stored: a journal that answers some
    # documents by itself (Treserva's answer to an admission notice); None: it answers none
    after_store: Callable[[Kind, dict[str, Any]], Awaitable[None]] | None = None


STAT_NAMES = (
    "received",
    "stored",
    "duplicates",
    "superseded",
    "receipts_sent",
    "receipt_failures",
    "dropped",
    "rejected",
    "errors",
    "poisoned",
    "emitted",
    "read_backs",  # GET of one record by its key that found it …
    "read_back_misses",  # … and that did not (404)
)


@dataclass
class JournalState:
    fault: Fault = field(default_factory=Fault)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key → record
    current: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_NAMES, 0))
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    fault_changed: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.fault = Fault()
        self.records.clear()
        self.current.clear()
        for key in self.stats:
            self.stats[key] = 0
        self.fault_changed.set()

    def file(self, kind: Kind, record: dict[str, Any]) -> bool:
        """Keep a versioned document's current version; True if this one became current."""
        if kind.document_id_field is None:
            return True
        key = (kind.path, str(record[kind.document_id_field]))
        now = self.current.get(key)
        marked = kind.superseded_field is not None and record.get(kind.superseded_field)
        if marked or (now is not None and now[kind.version_field] >= record[kind.version_field]):
            self.stats["superseded"] += 1
            return False
        self.current[key] = record
        return True


def _problem(status: int, title: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


def _contract_violations(kind: Kind, body: Any) -> list[Violation]:
    if kind.schema is not None:
        return violations(kind.schema, body)
    try:
        read_envelope(json.dumps(body))
        Bundle.model_validate(body)
    except (MalformedMessage, ValidationError) as exc:
        return [Violation("", "fhir", f"not a FHIR message Bundle: {type(exc).__name__}")]
    return []


def create_api_app(
    state: JournalState,
    spec: JournalSpec,
    *,
    receipt_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    # one client for every receipt: a client per receipt cost more CPU than the receipt
    clients: list[httpx.AsyncClient] = []

    def receipt_client() -> httpx.AsyncClient:
        if not clients:
            clients.append(
                httpx.AsyncClient(
                    transport=receipt_transport,
                    timeout=5.0,
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
                )
            )
        return clients[0]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warm_up()  # the contracts' validators before the first record, not on it
        try:
            yield
        finally:
            for client in clients:
                await client.aclose()

    app = FastAPI(title=f"{spec.name} simulator", lifespan=lifespan)

    async def push_receipt(record: dict[str, Any], receipt_url: str) -> None:
        if spec.receipt_delay_s:
            await asyncio.sleep(spec.receipt_delay_s)
        receipt = spec.receipt(record, record["recordId"])
        delay, loop = 0.2, asyncio.get_running_loop()
        give_up = loop.time() + spec.receipt_give_up_s
        while True:
            try:
                res = await receipt_client().post(
                    receipt_url,
                    json=receipt,
                    headers={"authorization": f"Bearer {spec.receipt_token}"},
                )
                if res.status_code < 300:
                    state.stats["receipts_sent"] += 1
                    return
                if 400 <= res.status_code < 500:
                    state.stats["receipt_failures"] += 1
                    log.warning("receipt refused", extra={"status": res.status_code})
                    return
            except httpx.HTTPError:
                pass
            state.stats["receipt_failures"] += 1
            if loop.time() > give_up:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    for kind in spec.kinds:
        _add_kind(app, kind, state, spec, push_receipt)
    return app


def _add_kind(
    app: FastAPI,
    kind: Kind,
    state: JournalState,
    spec: JournalSpec,
    push_receipt: Callable[[dict[str, Any], str], Awaitable[None]],
) -> None:
    token = kind.api_token or spec.api_token
    receipt_url = kind.receipt_url or spec.receipt_url

    async def post(
        request: Request,
        background: BackgroundTasks,
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        if not bearer_ok(request, token):
            return _problem(401, "missing or wrong bearer token")
        if not idempotency_key:
            return _problem(400, "Idempotency-Key header is required")
        state.stats["received"] += 1
        mode = state.fault.mode
        if mode is FaultMode.SLOW:
            await asyncio.sleep(state.fault.slow_s)
        if mode is FaultMode.ERROR:
            state.stats["errors"] += 1
            return _problem(503, f"{spec.name} is unavailable (fault switch)")
        if mode is FaultMode.REJECT:
            state.stats["rejected"] += 1
            return _problem(422, "rejected by fault switch")
        raw = await request.body()
        poison = state.fault.poison
        if poison and poison.encode() in raw:
            state.stats["poisoned"] += 1
            return _problem(500, f"{spec.name} could not import the record (fault switch)")
        try:
            body = json.loads(raw)
        except ValueError:
            return _problem(400, "body is not JSON")
        found = _contract_violations(kind, body)
        if found:
            state.stats["rejected"] += 1
            return _problem(
                422,
                "document does not follow the contract",
                errors=[f"{v.path or '$'}: {v.message}" for v in found],
            )
        if mode is FaultMode.SILENT_DROP:
            state.stats["dropped"] += 1
            return JSONResponse(
                {"recordId": f"{spec.record_prefix}-{next(state.ids)}", "status": "received"},
                status_code=202,
            )
        if idempotency_key in state.records:
            state.stats["duplicates"] += 1
            first = state.records[idempotency_key]
            return JSONResponse({"recordId": first["recordId"], "status": "received"})
        record = {
            **body,
            "kind": kind.path,
            "recordId": f"{spec.record_prefix}-{next(state.ids)}",
            "receivedAt": datetime.now(UTC).isoformat(),
        }
        record["current"] = state.file(kind, record)
        if kind.receiver is not None:
            record["receivingUnit"] = kind.receiver(body)
        state.records[idempotency_key] = record
        state.stats["stored"] += 1
        if spec.push_receipts:
            background.add_task(push_receipt, record, receipt_url)
        if spec.after_store is not None:
            background.add_task(spec.after_store, kind, record)
        return JSONResponse({"recordId": record["recordId"], "status": "received"}, 202)

    async def list_records(request: Request) -> JSONResponse:
        if not bearer_ok(request, token):
            return _problem(401, "missing or wrong bearer token")
        unit = request.query_params.get("unit")  # one receiving unit's records (HSA-id)
        items = [
            r
            for r in state.records.values()
            if r["kind"] == kind.path and (unit is None or r.get("receivingUnit") == unit)
        ]
        return JSONResponse({"count": len(items), "items": items})

    async def read_back(request: Request, record_key: str) -> JSONResponse:
        if not bearer_ok(request, token):
            return _problem(401, "missing or wrong bearer token")
        record = state.records.get(record_key)
        if record is None or record["kind"] != kind.path:
            state.stats["read_back_misses"] += 1
            return _problem(404, "no such record")
        state.stats["read_backs"] += 1
        return JSONResponse(record)

    async def read_current(request: Request, document_id: str) -> JSONResponse:
        if not bearer_ok(request, token):
            return _problem(401, "missing or wrong bearer token")
        record = state.current.get((kind.path, document_id))
        if record is None:
            return _problem(404, "no such document")
        return JSONResponse(record)

    base = f"/api/v1/{kind.path}"
    app.add_api_route(base, post, methods=["POST"], name=f"post_{kind.path}")
    app.add_api_route(base, list_records, methods=["GET"], name=f"list_{kind.path}")
    if kind.document_id_field is not None:
        app.add_api_route(
            f"{base}/current/{{document_id}}",
            read_current,
            methods=["GET"],
            name=f"current_{kind.path}",
        )
    app.add_api_route(f"{base}/{{record_key}}", read_back, methods=["GET"], name=f"get_{kind.path}")


class EmitRequest(BaseModel):
    family: str = "admission-notice"
    count: int = Field(default=1, ge=1, le=1000)
    options: dict[str, Any] = Field(default_factory=dict)


Emitter = Callable[[EmitRequest], Awaitable[list[dict[str, Any]]]]


def create_control_app(state: JournalState, *, name: str, emit: Emitter | None = None) -> FastAPI:
    app = FastAPI(title=f"{name} simulator: fault switches and emitters")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/fault")
    async def get_fault() -> Fault:
        return state.fault

    @app.put("/_sim/fault")
    async def put_fault(fault: Fault) -> Fault:
        state.fault = fault
        state.fault_changed.set()
        log.info("fault switched", extra={"mode": fault.mode.value})
        return state.fault

    @app.get("/_sim/stats")
    async def stats() -> dict[str, int]:
        return dict(state.stats)

    @app.get("/_sim/units")
    async def units() -> dict[str, int]:
        """Records stored per receiving unit (HSA-id; "-": addressed to none)."""
        counts: dict[str, int] = {}
        for record in state.records.values():
            unit = record.get("receivingUnit") or "-"
            counts[unit] = counts.get(unit, 0) + 1
        return counts

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    if emit is not None:
        emitter = emit

        @app.post("/_sim/emit")
        async def emit_events(body: EmitRequest) -> JSONResponse:
            try:
                sent = await emitter(body)
            except LookupError as exc:
                return _problem(404, str(exc))
            state.stats["emitted"] += len(sent)
            return JSONResponse({"sent": sent})

    return app
