"""Serving a simulated journal: the control server always, the API server only while the
fault mode is not ``down`` (then its port refuses connections, a real outage)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from sandbox.simulators.journal import FaultMode, JournalState


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    state: JournalState,
    api_app: FastAPI,
    control_app: FastAPI,
    *,
    host: str,
    port: int,
    control_port: int,
    stop: asyncio.Event,
) -> None:
    """Run the control server and the API server; the API server is closed while the
    fault mode is ``down`` and opened again on the same port when it leaves it."""
    control = _Server(
        uvicorn.Config(control_app, host=host, port=control_port, log_config=None, access_log=False)
    )
    control_task = asyncio.create_task(control.serve())
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            want_up = state.fault.mode is not FaultMode.DOWN
            api = _Server(
                uvicorn.Config(
                    api_app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
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


def run_until_signalled(
    name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> None:
    """A simulator's ``main``: JSON logs as ``name``, then ``run(stop)`` until SIGTERM or
    SIGINT sets ``stop``."""
    from services.messaging import logs

    logs.configure(name)
    stop = asyncio.Event()

    async def start() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(start())
