"""An app served by uvicorn on a real socket inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from fastapi import FastAPI

from services.messaging.runtime import Tls, server_config


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the test process keeps its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, tls: Tls | None, *, timeout_s: float = 10, proxies: list[str] | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` on a free port of 127.0.0.1 until the block ends; yields the port."""
    server = QuietServer(server_config(app, host="127.0.0.1", port=0, tls=tls, proxies=proxies))
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not server.started:
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        assert not task.done(), task
        await asyncio.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout_s)
