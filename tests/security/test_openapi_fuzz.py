"""schemathesis against every operation of each app's OpenAPI (router, adapter_takecare,
adapter_treserva), over real sockets, with the right key, with no key and with a wrong one.

Each app runs as in production: uvicorn, a migrated SQLite (or PostgreSQL) database of its
own, the SQL intake store. The intake operations get their native contract as request body
(see :mod:`tests.support.fuzz_apps`), so schemathesis sends contract-shaped documents,
documents that break the contract (its negative mode) and everything in between.

Checks on every response:

- ``not_a_server_error``: no 5xx. No operation needs Kafka to answer (the adapters write to
  the outbox table and the relay publishes later; the dashboard reports lag "unknown" when
  no probe is set), so no operation is excluded and a 503 would fail here too;
- ``status_code_conformance``: only the statuses the operation documents;
- ``content_type_conformance`` and ``response_headers_conformance``;
- ``response_schema_conformance`` where the OpenAPI gives a response schema.

Bounded and reproducible: a fixed ``max_examples`` per operation and ``derandomize=True``;
the database accumulates what earlier examples stored, which is how a real intake lives.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.messaging.db import make_engine, session_factory
from services.messaging.db import migrate_async as _migrate
from tests.support.database import PG_URL, create_pg_database, drop_pg_database
from tests.support.environment import SERVICE_PREFIXES
from tests.support.fuzz_apps import (
    BuildApp,
    ServedApp,
    build_router,
    build_takecare,
    build_treserva,
    contract_bodies,
    serve,
    with_contract_bodies,
)

pytestmark = pytest.mark.security

BUILDERS: dict[str, BuildApp] = {
    "adapter_takecare": build_takecare,
    "adapter_treserva": build_treserva,
    "router": build_router,
}
# The right credential for each app, and a wrong one (another system's key, a guess).
KEYS = {
    "adapter_takecare": ("sandbox-takecare-key", "sandbox-treserva-key"),
    "adapter_treserva": ("sandbox-treserva-key", "sandbox-takecare-key"),
    "router": ("sandbox-ops-token", "sandbox-takecare-key"),
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Generous on a shared 2-core machine (CI once waited 10 s for a 401 while the other worker
# was busy); a hang still fails, with every thread's stack to show where it hung.
ANSWER_S = 30
_BOUNDED: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,  # a shared 2-core machine: timing is not what is tested here
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
# With the right key every example reaches the contract, the translator and the store.
FUZZ = settings(max_examples=20, **_BOUNDED)
# Without it the guard answers before the body is read, so a few examples per operation
# (besides schemathesis' own coverage cases: other methods, missing and odd parameters)
# show that nothing gets past it.
REFUSED = settings(max_examples=4, **_BOUNDED)


def _schema(name: str) -> schemathesis.BaseSchema:
    # Built from an app that never connects: the OpenAPI does not depend on the database.
    app = BUILDERS[name](session_factory(make_engine("sqlite+aiosqlite://")))
    spec = with_contract_bodies(app.openapi(), contract_bodies()[name])
    return schemathesis.openapi.from_dict(spec)


takecare_schema = _schema("adapter_takecare")
treserva_schema = _schema("adapter_treserva")
router_schema = _schema("router")


async def _database(tmp: Path, name: str) -> str:
    url = await create_pg_database(PG_URL) if PG_URL else f"sqlite+aiosqlite:///{tmp}/{name}.db"
    await _migrate(url)
    return url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServedApp]]:
    """Each app on its own socket and database, for the whole module."""
    tmp = tmp_path_factory.mktemp("fuzz")
    urls = {name: asyncio.run(_database(tmp, name)) for name in BUILDERS}
    with pytest.MonkeyPatch.context() as env:
        for variable in list(os.environ):
            if variable.startswith(SERVICE_PREFIXES):
                env.delenv(variable)
        with (
            serve(build_takecare, urls["adapter_takecare"]) as takecare,
            serve(build_treserva, urls["adapter_treserva"]) as treserva,
            serve(build_router, urls["router"]) as router,
        ):
            yield {"adapter_takecare": takecare, "adapter_treserva": treserva, "router": router}
    if PG_URL:
        for url in urls.values():
            asyncio.run(drop_pg_database(PG_URL, url))


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _headers(name: str, who: str) -> dict[str, str]:
    right, wrong = KEYS[name]
    token = {"right": right, "wrong": wrong, "none": None}[who]
    return {"authorization": f"Bearer {token}"} if token else {}


def _attack(name: str, who: str, case: Any, served: dict[str, ServedApp], http: Any) -> None:
    headers = {**(case.headers or {}), **_headers(name, who)}
    if who == "none":
        headers.pop("authorization", None)
    case.headers = headers
    try:
        response = case.call(base_url=served[name].base_url, session=http, timeout=ANSWER_S)
    except requests.exceptions.Timeout:
        pytest.fail(f"no answer in {ANSWER_S} s; where each thread was:\n{_threads()}")
    case.validate_response(response, checks=CHECKS)
    # Only the operation's own method: schemathesis also tries others, answered 405.
    if who != "right" and case.path != "/health" and case.method == case.operation.method:
        assert response.status_code in (401, 403), (response.status_code, response.text[:300])


def _threads() -> str:
    """Every thread's stack (the apps serve in this process): what held up an answer."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return "\n".join(
        f"--- {names.get(ident, ident)}\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in sys._current_frames().items()
    )


WHO = pytest.mark.parametrize("who", ["wrong", "none"])


@takecare_schema.parametrize()
@FUZZ
def test_adapter_takecare(case, served, http):
    _attack("adapter_takecare", "right", case, served, http)


@WHO
@takecare_schema.parametrize()
@REFUSED
def test_adapter_takecare_refuses(case, who, served, http):
    _attack("adapter_takecare", who, case, served, http)


@treserva_schema.parametrize()
@FUZZ
def test_adapter_treserva(case, served, http):
    _attack("adapter_treserva", "right", case, served, http)


@WHO
@treserva_schema.parametrize()
@REFUSED
def test_adapter_treserva_refuses(case, who, served, http):
    _attack("adapter_treserva", who, case, served, http)


@router_schema.parametrize()
@FUZZ
def test_router(case, served, http):
    _attack("router", "right", case, served, http)


@WHO
@router_schema.parametrize()
@REFUSED
def test_router_refuses(case, who, served, http):
    _attack("router", who, case, served, http)
