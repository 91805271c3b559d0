"""The access log as the checkpoint tests need it: entries written at known times, the
database owner's way past the append-only triggers, the "perfect" forgery (one entry
changed and every later hash recomputed) and a checkpoint writer run at a given moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update

from services.router.audit.access_log import (
    Access,
    AccessKind,
    access_log,
    canonical_time,
    entry_hash,
    record_access,
)
from services.router.audit.checkpoint_writer import CheckpointWriter
from services.router.audit.checkpoints import CheckpointSigner, sandbox_checkpoint_key
from tests.support.database import backend_name

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SIGNER = CheckpointSigner.from_setting(sandbox_checkpoint_key())


async def write(sessions, first: int, count: int) -> None:
    for n in range(first, first + count):
        async with sessions.begin() as s:
            await record_access(
                s,
                Access(
                    actor=f"Åsa {n}",
                    role="operator",
                    kind=AccessKind.PAYLOAD_VIEW,
                    reason=f"patient phoned, case {n}",
                    pseudonym="a" * 32,
                    message_id=f"m-{n}",
                ),
                now=T0 + timedelta(minutes=n),
            )


async def owner_rights(s) -> None:
    """Past the append-only triggers, as the database's owner can get."""
    if backend_name() == "postgresql":
        await s.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await s.execute(text("DROP TRIGGER IF EXISTS access_log_no_update"))
        await s.execute(text("DROP TRIGGER IF EXISTS access_log_no_delete"))


async def forge(sessions, seq: int, reason: str) -> None:
    """The perfect forgery: change one reason, then recompute every hash and link from it."""
    async with sessions.begin() as s:
        await owner_rights(s)
        rows = (await s.execute(select(access_log).order_by(access_log.c.seq))).all()
        prev = rows[seq - 2].hash if seq > 1 else "0" * 64
        for row in rows[seq - 1 :]:
            fields = dict(row._mapping)
            fields["at"] = canonical_time(fields["at"])
            if row.seq == seq:
                fields["reason"] = reason
            new = entry_hash(fields, prev)
            await s.execute(
                update(access_log)
                .where(access_log.c.seq == row.seq)
                .values(reason=fields["reason"], prev_hash=prev, hash=new)
            )
            prev = new


async def checkpoint(sessions, writer: CheckpointWriter, at: float) -> int:
    return await writer.run(sessions, now=T0 + timedelta(seconds=at), monotonic=at)
