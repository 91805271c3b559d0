"""Intake first (issue 17): a restarted service answers HTTP as soon as its database is open,
before its Kafka side (topics, producer, consumer groups) is ready, and ``/health`` says
``"kafka": "starting"`` until it is (services.messaging.runtime).

The router and adapter_treserva run their real composition roots here, in-process, against a
"broker" that takes the connection and never answers: their Kafka start-up never completes.
adapter_takecare is shown with a real broker and a kill -9 in
tests/reliability/test_process_kills.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from services.adapter_treserva import service as treserva_service
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.router import service as router_service
from services.router.settings import RouterSettings
from tests.support.adapters import TRESERVA_KEY, bearer

KAFKA_STARTING = {"status": "ok", "kafka": "starting"}


@contextlib.asynccontextmanager
async def silent_broker() -> AsyncIterator[str]:
    """A port that accepts Kafka's connections and never answers a request."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running(
    main: Callable[[], Awaitable[int]], port: int
) -> AsyncIterator[httpx.AsyncClient]:
    """The service's ``main`` in this process until the block ends (stopped as by SIGTERM);
    yields a client of its HTTP side once that answers."""
    service = asyncio.ensure_future(main())
    answered = False
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                assert not service.done(), f"the service ended: {service.result()}"
                assert asyncio.get_running_loop().time() < deadline, "HTTP never answered"
                with contextlib.suppress(httpx.TransportError):
                    await client.get("/health")
                    answered = True
                    break
                await asyncio.sleep(0.05)
            yield client
        finally:
            if service.done():
                pass
            elif answered:  # run_service handles SIGTERM (a clean stop) once it serves
                signal.raise_signal(signal.SIGTERM)
            else:  # never served: no handler of its own yet
                service.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await service
        assert await asyncio.wait_for(service, 30) == 0


@pytest.mark.timeout(90)
async def test_the_router_answers_before_its_kafka_side_is_ready(database_url: str) -> None:
    async with silent_broker() as bootstrap:
        settings = RouterSettings(
            database_url=database_url, port=free_port(), kafka_bootstrap=bootstrap
        )
        async with running(lambda: router_service.main(settings), settings.port) as router:
            for _ in range(2):  # and stays so: nothing of Kafka has answered
                health = await router.get("/health")
                assert (health.status_code, health.json()) == (200, KAFKA_STARTING)
                await asyncio.sleep(0.5)


@pytest.mark.timeout(90)
async def test_adapter_treserva_takes_a_receipt_before_its_kafka_side_is_ready(
    database_url: str,
) -> None:
    async with silent_broker() as bootstrap:
        settings = AdapterTreservaSettings(
            database_url=database_url, port=free_port(), kafka_bootstrap=bootstrap
        )
        async with running(lambda: treserva_service.main(settings), settings.port) as adapter:
            health = await adapter.get("/health")
            assert (health.status_code, health.json()) == (200, KAFKA_STARTING)
            receipt = {
                "kvittensId": "KV-1",
                "meddelandeId": "f17ef11a-5acf-5382-a6cb-f9f0af5b8493",
                "treservaId": "TRS-1",
                "status": "registrerad",
                "tidpunkt": "2026-11-20T09:00:01+01:00",
            }
            taken = await adapter.post(
                "/treserva/v1/kvittenser", json=receipt, headers=bearer(TRESERVA_KEY)
            )
            assert taken.status_code == 202, taken.text  # in the outbox, for Kafka later
            health = await adapter.get("/health")
            assert health.json() == KAFKA_STARTING
