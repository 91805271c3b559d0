"""A runnable fake of Treserva's API (the municipal home-care journal), with fault switches.

API (port 8101): ``POST /api/v1/inskrivningsmeddelanden`` stores a notice, deduped on its
``Idempotency-Key``, answers 202 and afterwards pushes a receipt (kvittens) to the broker.
``GET`` reads a notice back. Control (port 8111, always up): ``PUT /_sim/fault`` switches
between ``none``, ``down`` (the API listener is closed: connection refused), ``error`` (503),
``slow``, ``reject`` (422) and ``silent-drop`` (202, then nothing: Region Gotland's fault).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import BackgroundTasks, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messaging.contracts import violations
from services.messaging.http import bearer_ok

log = logging.getLogger(__name__)

SCHEMA = "treserva/admission-notice.schema.json"


class TreservaSimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIM_TRESERVA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8101
    control_port: int = 8111
    receipt_url: str = "http://127.0.0.1:8002/treserva/v1/kvittenser"
    receipt_token: str = "sandbox-treserva-receipt-key"  # noqa: S105 (sandbox simulator)
    api_token: str = "sandbox-treserva-api-key"  # noqa: S105
    receipt_delay_s: float = 0.0
    receipt_give_up_s: float = 120.0


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


@dataclass
class SimState:
    fault: Fault = field(default_factory=Fault)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "received",
                "stored",
                "duplicates",
                "receipts_sent",
                "receipt_failures",
                "dropped",
                "rejected",
                "errors",
            ),
            0,
        )
    )
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    fault_changed: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.fault = Fault()
        self.records.clear()
        for key in self.stats:
            self.stats[key] = 0
        self.fault_changed.set()


def _problem(status: int, title: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


def create_api_app(
    state: SimState,
    settings: TreservaSimSettings,
    *,
    receipt_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    app = FastAPI(title="Treserva simulator")

    async def push_receipt(record: dict[str, Any]) -> None:
        if settings.receipt_delay_s:
            await asyncio.sleep(settings.receipt_delay_s)
        receipt = {
            "kvittensId": f"KV-{record['treservaId']}",
            "meddelandeId": record["meddelandeId"],
            "treservaId": record["treservaId"],
            "status": "registrerad",
            "tidpunkt": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        delay, loop = 0.2, asyncio.get_running_loop()
        give_up = loop.time() + settings.receipt_give_up_s
        while True:
            try:
                async with httpx.AsyncClient(transport=receipt_transport, timeout=5.0) as client:
                    res = await client.post(
                        settings.receipt_url,
                        json=receipt,
                        headers={"authorization": f"Bearer {settings.receipt_token}"},
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

    @app.post("/api/v1/inskrivningsmeddelanden")
    async def post_notice(
        request: Request,
        background: BackgroundTasks,
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        if not bearer_ok(request, settings.api_token):
            return _problem(401, "missing or wrong bearer token")
        if not idempotency_key:
            return _problem(400, "Idempotency-Key header is required")
        state.stats["received"] += 1
        mode = state.fault.mode
        if mode is FaultMode.SLOW:
            await asyncio.sleep(state.fault.slow_s)
        if mode is FaultMode.ERROR:
            state.stats["errors"] += 1
            return _problem(503, "Treserva is unavailable (fault switch)")
        if mode is FaultMode.REJECT:
            state.stats["rejected"] += 1
            return _problem(422, "rejected by fault switch")
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "body is not JSON")
        found = violations(SCHEMA, body)
        if found:
            state.stats["rejected"] += 1
            return _problem(
                422,
                "notice does not follow the contract",
                errors=[f"{v.path or '$'}: {v.message}" for v in found],
            )
        if mode is FaultMode.SILENT_DROP:
            state.stats["dropped"] += 1
            return JSONResponse(
                {"treservaId": f"TRS-{next(state.ids)}", "status": "mottagen"}, status_code=202
            )
        if idempotency_key in state.records:
            state.stats["duplicates"] += 1
            first = state.records[idempotency_key]
            return JSONResponse(
                {"treservaId": first["treservaId"], "status": "mottagen"}, status_code=200
            )
        record = {
            **body,
            "treservaId": f"TRS-{next(state.ids)}",
            "mottaget": datetime.now(UTC).isoformat(),
        }
        state.records[idempotency_key] = record
        state.stats["stored"] += 1
        background.add_task(push_receipt, record)
        return JSONResponse(
            {"treservaId": record["treservaId"], "status": "mottagen"}, status_code=202
        )

    @app.get("/api/v1/inskrivningsmeddelanden/{meddelande_id}")
    async def read_back(request: Request, meddelande_id: str) -> JSONResponse:
        if not bearer_ok(request, settings.api_token):
            return _problem(401, "missing or wrong bearer token")
        record = state.records.get(meddelande_id)
        if record is None:
            return _problem(404, "no such notice")
        return JSONResponse(record)

    @app.get("/api/v1/inskrivningsmeddelanden")
    async def list_notices(request: Request) -> JSONResponse:
        if not bearer_ok(request, settings.api_token):
            return _problem(401, "missing or wrong bearer token")
        return JSONResponse({"count": len(state.records), "items": list(state.records.values())})

    return app


def create_control_app(state: SimState) -> FastAPI:
    app = FastAPI(title="Treserva simulator: fault switches")

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

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: TreservaSimSettings, stop: asyncio.Event | None = None) -> None:
    """Run the control server and the API server; the API server is closed while the
    fault mode is ``down`` and opened again on the same port when it leaves it."""
    state = SimState()
    stop = stop or asyncio.Event()
    api_app = create_api_app(state, settings)
    control = _Server(
        uvicorn.Config(
            create_control_app(state),
            host=settings.host,
            port=settings.control_port,
            log_config=None,
            access_log=False,
        )
    )
    control_task = asyncio.create_task(control.serve())
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            want_up = state.fault.mode is not FaultMode.DOWN
            api = _Server(
                uvicorn.Config(
                    api_app,
                    host=settings.host,
                    port=settings.port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                )
            )
            api_task = asyncio.create_task(api.serve()) if want_up else None
            while True:
                state.fault_changed.clear()  # clear first, then look: no change is missed
                if stop.is_set() or control_task.done():
                    stop.set()
                    break
                if (state.fault.mode is not FaultMode.DOWN) != want_up:
                    break
                changed = asyncio.create_task(state.fault_changed.wait())
                await asyncio.wait(
                    {changed, stopping, control_task}, return_when=asyncio.FIRST_COMPLETED
                )
                changed.cancel()
            if api_task is not None:
                api.should_exit = True
                await api_task
    finally:
        control.should_exit = True
        stopping.cancel()
        with contextlib.suppress(Exception):
            await control_task


def main() -> None:
    from services.messaging import logs

    logs.configure("sim_treserva")
    settings = TreservaSimSettings()
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
