"""``access-log verify --checkpoints`` (the CLI, against the router's export over the API in
process) and the API's verify against the router's own checkpoint file: a perfect forgery,
a forged checkpoint line and a truncation are reported; an intact log passes. The list
shows security events beside views of patient data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from services.messaging.record_signing import new_signing_key
from services.router.audit.access_log import AccessKind, access_log, record_security_event
from services.router.audit.checkpoint_writer import CheckpointWriter
from services.router.ops import cli
from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.access_log import (
    SIGNER,
    T0,
    checkpoint,
    forge,
    owner_rights,
    write,
)

pytestmark = pytest.mark.security

OPS = {"authorization": "Bearer sandbox-ops-token"}


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.jsonl"


@pytest.fixture
def app(sessions, checkpoint_file):
    settings = RouterSettings(audit_checkpoint_file=str(checkpoint_file))
    return create_app(settings, sessions=sessions)


@pytest.fixture
def writer(checkpoint_file) -> CheckpointWriter:
    settings = RouterSettings(audit_checkpoint_file=str(checkpoint_file))
    return CheckpointWriter(SIGNER, settings.checkpoint_sinks(), every=timedelta(minutes=15))


async def run_cli(app, *args: str, capsys) -> tuple[int, str]:
    """The CLI over HTTP, answered with what the router in process answers (the CLI's
    client is synchronous: it gets the router's real answers through a MockTransport)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=OPS
    ) as api:
        answers = {
            path: await api.get(path)
            for path in ("/api/v1/access-log/verify", "/api/v1/access-log/export.jsonl")
        }

    def handler(request: httpx.Request) -> httpx.Response:
        found = answers[request.url.path]
        return httpx.Response(found.status_code, content=found.content)

    code = cli.main(["access-log", "verify", *args], transport=httpx.MockTransport(handler))
    return code, capsys.readouterr().out


async def logged(sessions, checkpoint_file, writer) -> None:
    """Seven entries, checkpoints at 3, 5 and 7, in the file sink."""
    await write(sessions, 1, 3)
    await checkpoint(sessions, writer, 0)
    await write(sessions, 4, 2)
    await checkpoint(sessions, writer, 900)
    await write(sessions, 6, 2)
    await checkpoint(sessions, writer, 1800)
    assert len(checkpoint_file.read_text().splitlines()) == 3


async def test_an_intact_log_verifies_with_its_checkpoints(
    app, sessions, checkpoint_file, writer, capsys
):
    await logged(sessions, checkpoint_file, writer)
    public = f"{SIGNER.key_id}:{SIGNER.public_key_b64()}"
    code, out = await run_cli(
        app, "--checkpoints", str(checkpoint_file), "--public-key", public, capsys=capsys
    )
    assert code == 0, out
    assert "chain: intact, 7 entries checked" in out and "3 read, 3 match" in out


async def test_a_perfect_forgery_is_reported_naming_the_first_checkpoint(
    app, sessions, checkpoint_file, writer, capsys
):
    await logged(sessions, checkpoint_file, writer)
    await forge(sessions, 4, "routine check")
    code, out = await run_cli(app, "--checkpoints", str(checkpoint_file), capsys=capsys)
    assert code == 1
    assert "chain: intact" in out  # the hash chain alone is fooled
    assert "the first checkpoint that no longer matches is line 2, seq 5" in out
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=OPS
    ) as api:
        found = (await api.get("/api/v1/access-log/verify")).json()
    assert found["ok"] is True  # the chain…
    assert found["checkpoints"]["ok"] is False  # …but not the signed checkpoints
    assert found["checkpoints"]["firstMismatch"]["seq"] == 5
    code, _ = await run_cli(app, capsys=capsys)  # the router's own verify exits 1 too
    assert code == 1
    export = checkpoint_file.with_name("export.jsonl")  # offline, from an auditor's copy
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=OPS
    ) as api:
        export.write_bytes((await api.get("/api/v1/access-log/export.jsonl")).content)
    args = ["access-log", "verify", "--checkpoints", str(checkpoint_file), "--export", str(export)]
    assert cli.main(args) == 1
    assert "no longer matches is line 2, seq 5" in capsys.readouterr().out


async def test_a_forged_checkpoint_line_and_a_truncation_are_reported(
    app, sessions, checkpoint_file, writer, capsys
):
    await logged(sessions, checkpoint_file, writer)
    lines = checkpoint_file.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["hash"] = "f" * 64
    checkpoint_file.write_text("\n".join([json.dumps(edited), *lines[1:]]) + "\n")
    async with sessions.begin() as s:
        await owner_rights(s)
        await s.execute(delete(access_log).where(access_log.c.seq >= 6))
    code, out = await run_cli(app, "--checkpoints", str(checkpoint_file), capsys=capsys)
    assert code == 1
    assert "line 1: bad-signature (seq 3)" in out
    assert "line 3: truncated (seq 7) the chain ends at 5" in out
    assert "no longer matches is line 3, seq 7" in out


async def test_a_bad_public_key_is_a_usage_error(app, checkpoint_file):
    checkpoint_file.write_text("")
    with pytest.raises(SystemExit) as exited:
        cli.main(
            ["access-log", "verify", "--checkpoints", str(checkpoint_file), "--public-key", "x"]
        )
    assert exited.value.code == 2


async def test_the_list_shows_security_events_beside_views(app, sessions):
    await write(sessions, 1, 1)
    async with sessions.begin() as s:
        await record_security_event(
            s, actor="ops", role="admin", kind=AccessKind.KEY_CHANGE, reason="rotation", now=T0
        )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router", headers=OPS
    ) as api:
        every = (await api.get("/api/v1/access-log")).json()["items"]
        security = (await api.get("/api/v1/access-log?category=security")).json()["items"]
        views = (await api.get("/api/v1/access-log?category=patient-data")).json()["items"]
    assert [(i["kind"], i["category"]) for i in every] == [
        ("key-change", "security"),
        ("payload-view", "patient-data"),
    ]
    assert security[0]["pseudonym"] is None and security[0]["message_id"] is None
    assert [i["kind"] for i in security] == ["key-change"]
    assert [i["kind"] for i in views] == ["payload-view"]


async def test_after_a_key_rotation_older_checkpoints_still_verify(
    sessions, checkpoint_file, writer
):
    await write(sessions, 1, 2)
    await checkpoint(sessions, writer, 0)  # under the old (sandbox) key
    new_key = f"audit-2:{new_signing_key()}"
    rotated = RouterSettings(
        audit_checkpoint_file=str(checkpoint_file), audit_checkpoint_key=new_key
    )
    await write(sessions, 3, 1)
    await CheckpointWriter(rotated.checkpoint_signer(), rotated.checkpoint_sinks()).run(
        sessions, now=T0, monotonic=0
    )

    async def verified(settings: RouterSettings) -> dict[str, Any]:
        app = create_app(settings, sessions=sessions)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://router", headers=OPS
        ) as api:
            found: dict[str, Any] = (await api.get("/api/v1/access-log/verify")).json()
        checkpoints: dict[str, Any] = found["checkpoints"]
        return checkpoints

    alone = await verified(rotated)
    assert [f["problem"] for f in alone["findings"]] == ["unknown-key"]
    old = f"{SIGNER.key_id}:{SIGNER.public_key_b64()}"
    both = await verified(rotated.model_copy(update={"audit_checkpoint_public_keys": [old]}))
    assert both["ok"] and both["matched"] == 2
    with pytest.raises(ValueError, match="ROUTER_AUDIT_CHECKPOINT_PUBLIC_KEYS"):
        RouterSettings(audit_checkpoint_public_keys=["no-colon"])
