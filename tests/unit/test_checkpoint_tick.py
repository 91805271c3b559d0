"""The router's tick writes signed checkpoints of the access log's head, on the replica
that holds the watchdog's lease only (services/router/audit/checkpoint_writer.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.router.audit.access_log import AccessKind, record_security_event
from services.router.audit.checkpoint_sinks import FakeSink
from services.router.audit.checkpoint_writer import CheckpointWriter
from services.router.audit.checkpoints import CheckpointSigner, sandbox_checkpoint_key
from services.router.routing.handlers import Router
from tests.support.database import backend_name
from tests.support.router import T0, Clock, routing_rules, started

SIGNER = CheckpointSigner.from_setting(sandbox_checkpoint_key())


async def replica(sessions, instance: str, sink: FakeSink) -> Router:
    router: Router = await started(
        Router(
            sessions=sessions,
            rules=routing_rules(instance=instance),
            clock=Clock(),
            lease_s=30.0,
            checkpoints=CheckpointWriter(SIGNER, [sink], every=timedelta(minutes=15)),
        )
    )
    return router


async def event(sessions, reason: str) -> None:
    async with sessions.begin() as s:
        await record_security_event(
            s, actor="ops", role="admin", kind=AccessKind.ADMIN_ACTION, reason=reason, now=T0
        )


async def test_the_tick_writes_a_checkpoint_of_the_head(sessions):
    sink = FakeSink()
    router = await replica(sessions, "router", sink)
    await event(sessions, "prune payloads")
    done = await router.tick()
    assert done["checkpoint"] == 1
    assert [json.loads(line)["seq"] for line in sink.written] == [1]
    await event(sessions, "rotate keys")
    assert (await router.tick())["checkpoint"] == 0  # moved, but not due for 15 minutes


async def test_only_the_lease_holder_writes_checkpoints(sessions):
    if backend_name() != "postgresql":
        pytest.skip("replicas share a database on PostgreSQL only")
    held, elsewhere = FakeSink(), FakeSink()
    first = await replica(sessions, "router", held)
    second = await replica(sessions, "router_2", elsewhere)
    await event(sessions, "prune payloads")
    assert (await first.tick())["checkpoint"] == 1
    assert "checkpoint" not in await second.tick()
    assert len(held.written) == 1 and elsewhere.written == []
