"""'down' on the Treserva simulator is a real outage: the port refuses connections."""

import asyncio
import time

import httpx
import pytest

from sandbox.simulators.treserva import TreservaSimSettings, run
from sandbox.stack import free_port

pytestmark = pytest.mark.integration


async def eventually(probe, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await probe():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_down_refuses_connections_and_up_serves_again():
    settings = TreservaSimSettings(port=free_port(), control_port=free_port())
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    api = f"http://127.0.0.1:{settings.port}"
    control = f"http://127.0.0.1:{settings.control_port}"
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:

            async def api_up():
                return (await http.get(f"{api}/health")).status_code == 200

            await eventually(api_up)
            await http.put(f"{control}/_sim/fault", json={"mode": "down"})

            async def refused():
                try:
                    await http.get(f"{api}/health")
                except httpx.ConnectError:
                    return True
                return False

            await eventually(refused)
            await http.put(f"{control}/_sim/fault", json={"mode": "none"})
            await eventually(api_up)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
