"""What the OpenAPI fuzz tests attack: the three apps built as in production (real, migrated
databases), served by uvicorn on real sockets from a thread of their own, and each app's
OpenAPI document with the native contracts filled in as request bodies.

The intake routes read their body themselves (limits first, then the contract), so FastAPI's
OpenAPI document says nothing about it; schemathesis would send them nothing. Here each
intake operation gets its contract (``contracts/<system>/<family>.schema.json``, with the
shared parts of ``common.schema.json`` copied into ``components``) as an ``application/json``
body, so the fuzzer sends documents of the right shape as well as broken ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.adapter_takecare import families as takecare_families
from services.adapter_takecare import primary_care
from services.adapter_takecare.app import OWNER as TAKECARE_OWNER
from services.adapter_takecare.app import PREFIX as TAKECARE_PREFIX
from services.adapter_takecare.app import create_app as create_takecare
from services.adapter_takecare.families import receipt as takecare_receipt
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva import families as treserva_families
from services.adapter_treserva.app import OWNER as TRESERVA_OWNER
from services.adapter_treserva.app import PREFIX as TRESERVA_PREFIX
from services.adapter_treserva.app import create_app as create_treserva
from services.adapter_treserva.families import receipt as treserva_receipt
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.db import make_engine, session_factory
from services.messaging.intake_group import GroupedIntakeStore
from services.router.ops.app import create_app as create_router
from services.router.settings import RouterSettings
from services.router.subscriptions.endpoints import FakeResolver
from tests.support.servers import QuietServer

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
BuildApp = Callable[[async_sessionmaker[AsyncSession]], FastAPI]

# The sandbox, said explicitly (the fuzzer's apps run with the environment cleared), and the
# rate limit off: thousands of fuzzed requests from one client would otherwise be answered
# 429 after the burst, and the fuzzer would stop reaching the code behind it (the limit
# itself has its own tests in test_hostile_input.py).
_NO_RATE_LIMIT: dict[str, Any] = {"environment": "sandbox", "rate_limit_per_s": 0}


def build_takecare(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_takecare(
        AdapterTakeCareSettings(**_NO_RATE_LIMIT),
        store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )


def build_treserva(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_treserva(
        AdapterTreservaSettings(**_NO_RATE_LIMIT),
        store=GroupedIntakeStore(sessions, TRESERVA_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )


def build_router(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    # no name resolves: a fuzzed subscription is refused before anything asks DNS
    return create_router(
        RouterSettings(**_NO_RATE_LIMIT),
        sessions=sessions,
        clock=lambda: NOW,
        resolver=FakeResolver(),
    )


def contract_bodies() -> dict[str, dict[str, str]]:
    """app name → {intake path → contract path under contracts/}."""
    takecare = {f"{TAKECARE_PREFIX}/{f.route}": f.schema for f in takecare_families.INBOUND}
    takecare |= {f"{path}/$validate": schema for path, schema in takecare.items()}
    takecare[f"{TAKECARE_PREFIX}/{takecare_receipt.ROUTE}"] = takecare_receipt.SCHEMA
    takecare[f"{primary_care.RECEIPT_PREFIX}/{takecare_receipt.ROUTE}"] = takecare_receipt.SCHEMA
    treserva = {f"{TRESERVA_PREFIX}/{f.route}": f.schema for f in treserva_families.INBOUND}
    treserva |= {f"{path}/$validate": schema for path, schema in treserva.items()}
    treserva[f"{TRESERVA_PREFIX}/{treserva_receipt.ROUTE}"] = treserva_receipt.SCHEMA
    return {"adapter_takecare": takecare, "adapter_treserva": treserva, "router": {}}


def _component(contract: str, name: str) -> str:
    return f"{contract.removesuffix('.schema.json').replace('/', '.')}.{name}"


def _inline(node: Any, contract: str, components: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` pointing into ``components``, where the referenced
    ``$defs`` (of this contract or of ``common.schema.json``) are copied once."""
    if isinstance(node, list):
        return [_inline(item, contract, components) for item in node]
    if not isinstance(node, dict):
        return node
    found: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs", "$comment"):
            continue
        if key == "$ref":
            file, _, pointer = value.partition("#")
            owner = f"{PurePosixPath(contract).parent}/{file}" if file else contract
            name = pointer.removeprefix("/$defs/")
            found[key] = f"#/components/schemas/{_component(owner, name)}"
            _add_def(owner, name, components)
            continue
        found[key] = _inline(value, contract, components)
    return found


def _add_def(contract: str, name: str, components: dict[str, Any]) -> None:
    key = _component(contract, name)
    if key in components:
        return
    components[key] = {}  # placeholder: a recursive definition stops here
    schema = json.loads((CONTRACTS_DIR / contract).read_text(encoding="utf-8"))
    components[key] = _inline(schema["$defs"][name], contract, components)


def with_contract_bodies(openapi: dict[str, Any], bodies: dict[str, str]) -> dict[str, Any]:
    """A copy of ``openapi`` whose intake operations take their contract as JSON body."""
    spec: dict[str, Any] = json.loads(json.dumps(openapi))
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for path, contract in bodies.items():
        schema = json.loads((CONTRACTS_DIR / contract).read_text(encoding="utf-8"))
        spec["paths"][path]["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, contract, components)}},
        }
    return spec


@dataclass
class ServedApp:
    base_url: str
    openapi: dict[str, Any]


@contextlib.contextmanager
def serve(build: BuildApp, database_url: str, *, timeout_s: float = 10) -> Iterator[ServedApp]:
    """The app on 127.0.0.1 (a free port) in a thread with its own event loop; the engine is
    created in that loop, so its connections never cross loops."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def run() -> None:
        engine = make_engine(database_url)
        try:
            app = build(session_factory(engine))
            server = QuietServer(
                uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
            )
            box["server"], box["openapi"] = server, app.openapi()
            task = asyncio.create_task(server.serve())
            deadline = asyncio.get_running_loop().time() + timeout_s
            while not server.started and not task.done():
                if asyncio.get_running_loop().time() > deadline:
                    break  # the caller's wait fails and says so
                await asyncio.sleep(0.01)
            ready.set()
            await task
        finally:
            ready.set()
            await engine.dispose()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(timeout_s), "uvicorn did not start"
    server: uvicorn.Server = box["server"]
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield ServedApp(f"http://127.0.0.1:{port}", box["openapi"])
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        assert not thread.is_alive(), "uvicorn did not stop"
