"""Fail closed at start-up (issue 19, item 1): a service refuses a database that holds
payload rows in clear, and names the command that seals them; databases and logs are
created readable by their owner only; whatever starts the sandbox says so explicitly."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from sandbox.demo import demo_settings
from sandbox.stack import SERVICES, Stack
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva import service as treserva_service
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.clock import Clock
from services.messaging.db import make_engine, session_factory
from services.messaging.envelope import System
from services.messaging.fail_closed import StartupRefused
from services.messaging.keys import hash_key, new_key
from services.messaging.outbox import outbox, sealed_with
from services.messaging.payload_crypto import is_sealed
from services.messaging.sealing import unsealed_columns
from services.messaging.settings import ServiceSettings
from services.router import service as router_service
from services.router.alerting import unit_store
from services.router.alerting.unit_directory import SANDBOX_PATH, UnitDirectory
from services.router.audit.payload_keys import SEALED_COLUMNS
from services.router.routing.tables import message
from services.router.settings import RouterSettings
from services.seal_payloads import seal
from tests.support.database import backend_name
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security

NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
CLEAR = '{"resourceType": "Bundle", "personnummer": "191212121212"}'


@pytest.fixture(autouse=True)
def _root_logger() -> Iterator[None]:
    """A service's main() configures the root logger for its JSON log; put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def production_router(database_url: str) -> RouterSettings:
    return RouterSettings(
        environment="production",
        database_url=database_url,
        **ROUTER_SECRETS,
        **SECURE_KAFKA,
        **SECURE_HTTP,
    )


def production_treserva(database_url: str) -> AdapterTreservaSettings:
    return AdapterTreservaSettings(
        environment="production",
        database_url=database_url,
        pseudonym_key=ROUTER_SECRETS["pseudonym_key"],
        payload_keys=ROUTER_SECRETS["payload_keys"],
        intake_key_hashes=[hash_key(new_key())],
        peer_key_hashes={System.TAKECARE: [hash_key(new_key())]},
        treserva_token="a-token-treserva-issued",
        treserva_url="https://treserva.example.se",
        **SECURE_KAFKA,
        **SECURE_HTTP,
    )


async def write_in_clear(database_url: str, owner: str) -> None:
    """What a broker wrote before payloads were sealed: a message and an outbox row."""
    engine = make_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            if owner == "router":
                await session.execute(
                    insert(message).values(
                        id="m-clear",
                        event_code="admission-notice",
                        source="takecare",
                        sent_at=NOW,
                        received_at=NOW,
                        payload=CLEAR,
                    )
                )
            await session.execute(
                insert(outbox).values(
                    owner=owner, topic="t", key="k", headers=[], payload=CLEAR, created_at=NOW
                )
            )
    finally:
        await engine.dispose()


# --- payload rows in clear ------------------------------------------------------------------


async def test_the_router_refuses_to_start_on_payload_rows_in_clear(database_url, capsys):
    await write_in_clear(database_url, "router")
    assert await router_service.main(production_router(database_url)) == 2
    err = capsys.readouterr().err
    assert "router refuses to start:" in err
    assert "ROUTER_DATABASE_URL: the database holds payload rows in clear" in err
    assert "(message.payload, outbox.payload)" in err
    assert "python -m services.seal_payloads router" in err
    assert "191212121212" not in err and database_url not in err


async def test_an_adapter_refuses_to_start_on_outbox_rows_in_clear(database_url, capsys):
    await write_in_clear(database_url, "adapter_treserva")
    assert await treserva_service.main(production_treserva(database_url)) == 2
    err = capsys.readouterr().err
    assert "ADAPTER_TRESERVA_DATABASE_URL: the database holds payload rows in clear" in err
    assert "(outbox.payload)" in err
    assert "python -m services.seal_payloads adapter_treserva" in err


async def test_the_seal_command_seals_every_row_in_place_and_the_router_may_start(database_url):
    await write_in_clear(database_url, "router")
    settings = production_router(database_url)
    assert await seal(settings, SEALED_COLUMNS) == {
        "message.payload": 1,
        "subscription.secret": 0,
        "outbox.payload": 1,
    }
    engine = make_engine(database_url)
    keyring = settings.keyring()
    try:
        async with session_factory(engine, keyring=keyring)() as session:
            assert await unsealed_columns(session, SEALED_COLUMNS) == []
            stored = (await session.execute(select(message.c.payload))).scalar_one()
            row = (await session.execute(select(outbox).where(outbox.c.owner == "router"))).one()
    finally:
        await engine.dispose()
    assert is_sealed(stored) and keyring.open(stored, message_id="m-clear") == CLEAR
    assert keyring.open(row.payload, message_id=sealed_with("router", "t", "k")) == CLEAR
    assert await seal(settings, SEALED_COLUMNS) == dict.fromkeys(
        ("message.payload", "subscription.secret", "outbox.payload"), 0
    )  # again: nothing left, nothing sealed twice


async def test_the_sandbox_keeps_reading_rows_in_clear(database_url, sessions):
    from services.messaging.startup import rows_in_clear

    await write_in_clear(database_url, "router")
    sandbox = RouterSettings(database_url=database_url)
    assert await rows_in_clear(sandbox, sessions, SEALED_COLUMNS) is None


@pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite's query plan")
async def test_the_start_up_check_reads_the_partial_indexes_not_the_payloads(engine):
    """A start must not read every payload of a large database: one index probe each."""
    plans = []
    async with engine.connect() as conn:
        for column in SEALED_COLUMNS[::2]:  # message.payload and outbox.payload
            compiled = column.probe().compile(
                engine.sync_engine, compile_kwargs={"literal_binds": True}
            )
            rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            plans.append(" ".join(str(r[-1]) for r in rows))
    # an index of the rows in clear only: empty once all is sealed, its first entry otherwise
    assert "USING INDEX ix_message_unsealed" in plans[0], plans
    assert "USING INDEX ix_outbox_unsealed" in plans[1], plans


# --- files created readable by their owner only ---------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a shell usually has: files 0644 unless the code says so
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
async def test_a_new_database_file_is_created_0600(tmp_path):
    path = tmp_path / "data" / "router.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('patient data')"))
        for file in (path, path.with_name("router.db-wal"), path.with_name("router.db-shm")):
            assert mode(file) == 0o600, (file.name, oct(mode(file)))
        assert mode(path.parent) == 0o700
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_log_file_is_created_0600(tmp_path):
    stack = Stack(demo_settings(tmp_path / "stack"), echo=lambda _: None)
    stack._spawn("router", [sys.executable, "-c", "print('a log line')"], {})
    stack.child("router").process.wait(timeout=30)
    log = stack.child("router").log_path
    assert log.read_text().strip() == "a log line"
    assert mode(log) == 0o600


# --- whatever starts the sandbox says so ----------------------------------------------------


class RecordedStack(Stack):
    """The stack's start with its children recorded instead of started."""

    spawned: dict[str, dict[str, str]]

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.spawned = {**getattr(self, "spawned", {}), name: env}

    def _wait_for_port(self, port: int, name: str) -> None:
        pass

    def _wait_for_health(self, name: str, url: str) -> None:
        pass


def test_the_stack_starts_every_service_in_the_sandbox_explicitly(
    tmp_path, database_url, monkeypatch
):
    stack = RecordedStack(
        demo_settings(tmp_path / "stack", database_url=database_url), echo=lambda _: None
    )
    stack.start()
    classes: dict[str, type[ServiceSettings]] = {
        "router": RouterSettings,
        "adapter_takecare": AdapterTakeCareSettings,
        "adapter_treserva": AdapterTreservaSettings,
    }
    for name in SERVICES:
        env = stack.spawned[name]
        cls = classes[name]
        assert env[cls.env("environment")] == "sandbox", name
        for var in [v for v in os.environ if v.endswith("ENVIRONMENT")]:
            monkeypatch.delenv(var)  # the conftest's choice out of the way: only the stack's
        with monkeypatch.context() as patched:
            for var, value in env.items():
                patched.setenv(var, value)
            settings: Any = cls()
        assert settings.environment == "sandbox" and settings.host == "127.0.0.1", name


# --- the unit directory: no default outside the sandbox, never a sandbox one ----------------


def _region_file(tmp_path: Path, *, receiving: bool = True) -> Path:
    """The region's own directory: Halland's, renamed, without the sandbox mark (and, unless
    ``receiving``, without a unit any destination system delivers to)."""
    data = json.loads(SANDBOX_PATH.read_text(encoding="utf-8"))
    data.pop("sandbox")
    for unit in data["units"]:  # units of its own (the sandbox's are refused)
        unit["hsaId"] += "R"
    data["destinations"] = {d: hsa_id + "R" for d, hsa_id in data["destinations"].items()}
    if not receiving:
        for unit in data["units"]:
            unit.pop("channel", None)
    path = tmp_path / "region.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("region", ["halland", "gotland"])
async def test_the_router_refuses_to_start_on_a_sandbox_unit_directory(
    database_url, sessions, capsys, region
):
    shipped = SANDBOX_PATH.with_name(f"{region}.json")
    settings = production_router(database_url).model_copy(
        update={"alert_unit_directory": str(shipped)}
    )
    assert await router_service.main(settings) == 2
    err = capsys.readouterr().err
    assert "router refuses to start:" in err
    assert f"ROUTER_ALERT_UNIT_DIRECTORY: {shipped} is a sandbox directory" in err
    async with sessions() as session:
        assert await unit_store.list_units(session) == []  # nothing seeded from it


async def test_the_regions_own_directory_is_seeded_and_routes(database_url, sessions, tmp_path):
    settings = production_router(database_url).model_copy(
        update={"alert_unit_directory": str(_region_file(tmp_path))}
    )
    directory = await router_service.unit_directory_at_start(settings, sessions, Clock())
    assert not directory.sandbox
    assert {u.municipality for u in directory.receivers() if u.channel == "treserva"} == {
        "1380",
        "1382",
        "1383",
    }


async def test_a_directory_that_could_address_nothing_is_refused(database_url, sessions, tmp_path):
    settings = production_router(database_url).model_copy(
        update={"alert_unit_directory": str(_region_file(tmp_path, receiving=False))}
    )
    with pytest.raises(StartupRefused, match="names no active unit with a channel"):
        await router_service.unit_directory_at_start(settings, sessions, Clock())


async def test_an_unreadable_directory_is_a_refusal_not_a_traceback(database_url, sessions):
    settings = production_router(database_url).model_copy(
        update={"alert_unit_directory": "/nonexistent/units.json"}
    )
    with pytest.raises(StartupRefused, match="ROUTER_ALERT_UNIT_DIRECTORY: cannot read"):
        await router_service.unit_directory_at_start(settings, sessions, Clock())


async def test_the_sandbox_runs_the_halland_region_by_default(database_url, sessions):
    settings = RouterSettings(database_url=database_url)
    assert settings.unit_directory_path() == SANDBOX_PATH
    directory = await router_service.unit_directory_at_start(settings, sessions, Clock())
    assert directory.sandbox and directory.region.startswith("Region Halland")
    kinds = {(u.kind.value, u.municipality) for u in directory.receivers()}
    assert {m for k, m in kinds if k == "home-care"} == {"1380", "1382", "1383"}
    assert len([u for u in directory.receivers() if u.kind.value == "primary-care"]) == 2


async def test_units_once_seeded_from_a_sandbox_directory_are_refused(
    database_url, sessions, tmp_path
):
    """A table seeded from the old default (Gotland's made-up units) before production had
    to name its own directory: the region's file does not launder it."""
    async with sessions.begin() as session:
        gotland = UnitDirectory.load(SANDBOX_PATH.with_name("gotland.json"))
        await unit_store.seed_if_empty(session, gotland, Clock().now())
    settings = production_router(database_url).model_copy(
        update={"alert_unit_directory": str(_region_file(tmp_path))}
    )
    with pytest.raises(StartupRefused, match="active units of a sandbox directory"):
        await router_service.unit_directory_at_start(settings, sessions, Clock())
