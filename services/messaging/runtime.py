"""Running one service process: its HTTP app and its background loops, stopped together.

Every loop is supervised: if one crashes, the whole process exits non-zero, so the supervisor
(or the container runtime) sees it, rather than a half-alive service that silently stops
delivering.

Intake first: HTTP is served as soon as the process has its database; the Kafka side (topics,
the broker epoch, the producer, the consumer groups: 5-15 s after a restart) is prepared
meanwhile, and its loops start once it is. A journal's POST is stored in the outbox and
answered while Kafka is still joining or away; ``/health`` says which (:func:`health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]
Prepare = Callable[[], Coroutine[Any, Any, dict[str, Loop]]]
"""Connects a service to Kafka after its HTTP is up; returns the loops to run then."""


def health(app: FastAPI) -> dict[str, str]:
    """``/health``: the process answers (its database is open); ``kafka`` is ``ready`` once
    its producer and consumer groups are up, ``starting`` before (intake is open already)."""
    ready = getattr(app.state, "kafka_ready", True)
    return {"status": "ok", "kafka": "ready" if ready else "starting"}


@dataclass(frozen=True)
class Tls:
    """The server's certificate and key; with ``client_ca`` every client must present a
    certificate signed by it (mutual TLS), and a client without one is refused."""

    certfile: str
    keyfile: str
    client_ca: str | None = None


def tls_from(certfile: str | None, keyfile: str | None, client_ca: str | None) -> Tls | None:
    """TLS from a service's ``ssl_*`` settings; None (plain HTTP) when no certificate."""
    if certfile is None:
        if client_ca is not None:
            raise ValueError("ssl_ca_certs needs ssl_certfile and ssl_keyfile")
        return None
    if keyfile is None:
        raise ValueError("ssl_certfile needs ssl_keyfile")
    return Tls(certfile, keyfile, client_ca)


def server_config(
    app: FastAPI,
    *,
    host: str,
    port: int,
    tls: Tls | None = None,
    proxies: list[str] | None = None,
) -> uvicorn.Config:
    """uvicorn's configuration of one service's HTTP server. ``proxies``: the TLS proxy's
    addresses, the only peers whose ``X-Forwarded-*`` headers count; without them none do
    (uvicorn would otherwise believe any process on the loopback)."""
    options: dict[str, Any] = {"proxy_headers": proxies is not None}
    if proxies is not None:
        options["forwarded_allow_ips"] = proxies
    if tls is not None:
        options |= {"ssl_certfile": tls.certfile, "ssl_keyfile": tls.keyfile}
        if tls.client_ca is not None:
            options |= {"ssl_ca_certs": tls.client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on", **options
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: :func:`run_service` owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_service(
    app: FastAPI,
    *,
    host: str,
    port: int,
    loops: dict[str, Loop],
    on_stop: Callable[[], Awaitable[None]] | None = None,
    tls: Tls | None = None,
    proxies: list[str] | None = None,
    prepare: Prepare | None = None,
) -> int:
    """Serve ``app`` and run ``loops`` until SIGTERM/SIGINT or until one of them fails;
    ``prepare`` runs while HTTP is already served, and the loops it returns start when it
    is done (a failure of it ends the process like a failed loop)."""
    server = _Server(server_config(app, host=host, port=port, tls=tls, proxies=proxies))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    app.state.kafka_ready = prepare is None
    tasks = {asyncio.create_task(fn(), name=name): name for name, fn in loops.items()}
    serving = asyncio.create_task(server.serve(), name="http")
    stopping = asyncio.create_task(stop.wait(), name="signal")
    preparing: asyncio.Task[dict[str, Loop]] | None = (
        asyncio.create_task(prepare(), name="kafka start-up") if prepare else None
    )
    watched: set[asyncio.Task[Any]] = {*tasks, serving, stopping}
    if preparing is not None:
        watched.add(preparing)
    while True:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if preparing is None or preparing not in done or preparing.exception() is not None:
            break
        started = {asyncio.create_task(fn(), name=n): n for n, fn in preparing.result().items()}
        tasks |= started
        watched = (watched - {preparing}) | set(started)
        app.state.kafka_ready = True
        log.info("start-up: Kafka ready, loops running", extra={"loops": sorted(started.values())})
        preparing = None
    if preparing is not None and not preparing.done():
        preparing.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await preparing
    exit_code = 0
    for task in done:
        if task is stopping:
            log.info("stopping on signal")
        elif task.exception() is not None:
            exit_code = 1
            log.error(
                "background task failed", exc_info=task.exception(), extra={"task": task.get_name()}
            )
        else:
            exit_code = exit_code or (0 if task is serving else 1)
            log.error("task ended unexpectedly", extra={"task": task.get_name()})
    server.should_exit = True
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    with contextlib.suppress(Exception):
        await serving
    if on_stop is not None:
        await on_stop()
    stopping.cancel()
    return exit_code
