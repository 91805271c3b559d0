"""Running one service process: its HTTP app and its background loops, stopped together.

Every loop is supervised: if one crashes, the whole process exits non-zero, so the supervisor
(or the container runtime) sees it, rather than a half-alive service that silently stops
delivering.
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


def server_config(app: FastAPI, *, host: str, port: int, tls: Tls | None = None) -> uvicorn.Config:
    """uvicorn's configuration of one service's HTTP server."""
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": tls.certfile, "ssl_keyfile": tls.keyfile}
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
) -> int:
    """Serve ``app`` and run ``loops`` until SIGTERM/SIGINT or until one of them fails."""
    server = _Server(server_config(app, host=host, port=port, tls=tls))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = {asyncio.create_task(fn(), name=name): name for name, fn in loops.items()}
    serving = asyncio.create_task(server.serve(), name="http")
    stopping = asyncio.create_task(stop.wait(), name="signal")
    done, _ = await asyncio.wait({*tasks, serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
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
