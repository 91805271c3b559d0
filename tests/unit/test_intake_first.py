"""Intake first: a service answers HTTP while its Kafka side is still being prepared, says so
on /health, and starts its loops once Kafka is ready; a failed preparation ends the process
like a failed loop (issue: after a kill -9 the TakeCare intake stayed closed 12-19 s while the
consumer group joined, and the journals saw 360 failed POSTs)."""

import asyncio
import os
import signal

import httpx
from fastapi import FastAPI, Request

from sandbox.stack import free_port
from services.messaging.runtime import health, run_service


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def get_health(request: Request) -> dict[str, str]:
        return health(request.app)

    return app


async def _get(url: str) -> httpx.Response | None:
    async with httpx.AsyncClient(timeout=1) as client:
        try:
            return await client.get(url)
        except httpx.TransportError:
            return None


async def _wait(url: str, want: dict[str, str], timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        res = await _get(url)
        if res is not None and res.json() == want:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url} never answered {want}")


async def test_http_answers_while_kafka_is_prepared_and_the_loops_start_after():
    port = free_port()
    kafka_up = asyncio.Event()
    ran: list[str] = []

    async def relay() -> None:
        ran.append("relay")
        await asyncio.Event().wait()

    async def prepare():
        await kafka_up.wait()  # the consumer group still joining
        return {"relay": relay}

    service = asyncio.create_task(
        run_service(_app(), host="127.0.0.1", port=port, loops={}, prepare=prepare)
    )
    url = f"http://127.0.0.1:{port}/health"
    await _wait(url, {"status": "ok", "kafka": "starting"})
    assert ran == []  # nothing that needs Kafka runs before it is ready
    kafka_up.set()
    await _wait(url, {"status": "ok", "kafka": "ready"})
    assert ran == ["relay"]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(service, 10) == 0


async def test_a_failed_preparation_ends_the_process_non_zero():
    async def prepare():
        raise ConnectionError("no broker")

    code = await asyncio.wait_for(
        run_service(_app(), host="127.0.0.1", port=free_port(), loops={}, prepare=prepare), 10
    )
    assert code == 1
