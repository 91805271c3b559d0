"""Signed checkpoints of the access log's head, kept outside the database, catch what the
hash chain alone cannot: the database's owner rewriting an entry and recomputing every later
hash (a "perfect" forgery that verify_chain accepts), and the chain cut short at its end. A
forged or edited checkpoint line is refused by its signature."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from services.messaging.record_signing import new_signing_key
from services.router.audit.access_log import (
    AccessKind,
    access_log,
    entry_hash,
    iter_entries,
    record_security_event,
    verify_chain,
)
from services.router.audit.checkpoint_sinks import FakeSink
from services.router.audit.checkpoint_writer import CheckpointWriter
from services.router.audit.checkpoints import (
    CheckpointProblem,
    CheckpointSigner,
    check_against_checkpoints,
    check_stream_against_checkpoints,
    trusted_keys,
)
from tests.support.access_log import SIGNER, T0, checkpoint, forge, owner_rights, write

pytestmark = pytest.mark.security


async def against(sessions, lines, trusted=None):
    async with sessions() as s:
        return await check_stream_against_checkpoints(
            iter_entries(s), lines, trusted or SIGNER.trusted()
        )


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def writer(sink: FakeSink) -> CheckpointWriter:
    return CheckpointWriter(SIGNER, [sink], every=timedelta(minutes=15))


async def test_checkpoints_of_an_untouched_chain_all_match(sessions, sink, writer):
    await write(sessions, 1, 3)
    assert await checkpoint(sessions, writer, 0) == 1
    async with sessions.begin() as s:  # security events share the chain and its checkpoints
        await record_security_event(
            s, actor="asa", role="admin", kind=AccessKind.ADMIN_ACTION, reason="prune", now=T0
        )
    assert await checkpoint(sessions, writer, 900) == 1
    found = await against(sessions, sink.written)
    assert found.ok and (found.checkpoints, found.matched) == (2, 2)
    assert [json.loads(line)["seq"] for line in sink.written] == [3, 4]


async def test_a_checkpoint_is_written_only_when_due_and_when_the_head_moved(
    sessions, sink, writer
):
    await write(sessions, 1, 2)
    assert await checkpoint(sessions, writer, 0) == 1
    await write(sessions, 3, 1)
    assert await checkpoint(sessions, writer, 899) == 0  # not yet due
    assert await checkpoint(sessions, writer, 900) == 1
    assert await checkpoint(sessions, writer, 1800) == 0  # due, but the head did not move
    assert len(sink.written) == 2


async def test_an_empty_log_has_no_checkpoint(sessions, sink, writer):
    assert await checkpoint(sessions, writer, 0) == 0 and sink.written == []


async def test_a_failed_sink_is_tried_again_at_the_next_interval(sessions, sink, writer):
    await write(sessions, 1, 2)
    sink.fail = True
    assert await checkpoint(sessions, writer, 0) == 0
    sink.fail = False
    assert await checkpoint(sessions, writer, 900) == 1  # same head, still written
    assert len(sink.written) == 1


async def test_a_rewritten_chain_with_recomputed_hashes_is_found(sessions, sink, writer):
    await write(sessions, 1, 3)
    await checkpoint(sessions, writer, 0)  # at seq 3
    await write(sessions, 4, 2)
    await checkpoint(sessions, writer, 900)  # at seq 5
    await write(sessions, 6, 2)
    await checkpoint(sessions, writer, 1800)  # at seq 7

    await forge(sessions, 4, "routine check")  # between the first and second checkpoint
    async with sessions() as s:
        plain = await verify_chain(s)
    assert plain.ok and plain.checked == 7  # the hash chain alone accepts the forgery

    found = await against(sessions, sink.written)
    assert not found.ok
    assert found.matched == 1  # the checkpoint at 3 still matches: nothing before 4 changed
    first = found.first_mismatch
    assert first is not None
    assert (first.problem, first.seq, first.line) == (CheckpointProblem.MISMATCH, 5, 2)
    assert [f.seq for f in found.findings] == [5, 7]


async def test_a_truncated_chain_is_found(sessions, sink, writer):
    await write(sessions, 1, 4)
    await checkpoint(sessions, writer, 0)  # at seq 4
    async with sessions.begin() as s:
        await owner_rights(s)
        await s.execute(delete(access_log).where(access_log.c.seq >= 3))
    async with sessions() as s:
        assert (await verify_chain(s)).ok  # a shorter chain is still a chain
    found = await against(sessions, sink.written)
    first = found.first_mismatch
    assert first is not None and (first.problem, first.seq) == (CheckpointProblem.TRUNCATED, 4)
    assert "ends at 2" in first.detail


def signed_chain(count: int) -> list[dict[str, Any]]:
    entries, prev = [], "0" * 64
    for seq in range(1, count + 1):
        entry = {
            "seq": seq,
            "at": "2026-12-01T08:00:00.000000Z",
            "actor": "asa",
            "role": "admin",
            "kind": "admin-action",
            "pseudonym": None,
            "message_id": None,
            "reason": f"step {seq}",
            "prev_hash": prev,
        }
        entry["hash"] = prev = entry_hash(entry, prev)
        entries.append(entry)
    return entries


def test_a_forged_checkpoint_line_is_refused_by_its_signature():
    entries = signed_chain(3)
    good = SIGNER.line(3, entries[2]["hash"], T0)
    forged = json.loads(good)
    forged["seq"], forged["hash"] = 2, entries[1]["hash"]  # moved back, signature kept
    edited = json.dumps(forged)
    found = check_against_checkpoints(entries, [good, edited, "not json"], SIGNER.trusted())
    assert not found.ok and found.matched == 1
    assert [(f.line, f.problem) for f in found.findings] == [
        (2, CheckpointProblem.BAD_SIGNATURE),
        (3, CheckpointProblem.MALFORMED),
    ]
    assert found.first_mismatch is None  # the chain itself matches every valid checkpoint


def test_a_checkpoint_signed_with_another_key_is_not_trusted():
    entries = signed_chain(2)
    stranger = CheckpointSigner.from_setting(f"stranger:{new_signing_key()}")
    found = check_against_checkpoints(
        entries, [stranger.line(2, entries[1]["hash"], T0)], SIGNER.trusted()
    )
    assert [f.problem for f in found.findings] == [CheckpointProblem.UNKNOWN_KEY]


def test_the_public_key_option_reads_key_id_and_base64():
    setting = f"audit-2026:{SIGNER.public_key_b64()}"
    trusted = trusted_keys([setting])
    entries = signed_chain(1)
    line = CheckpointSigner("audit-2026", SIGNER.private_key).line(1, entries[0]["hash"], T0)
    assert check_against_checkpoints(entries, [line], trusted).ok
    with pytest.raises(ValueError, match="key id"):
        trusted_keys(["no-colon"])


async def test_a_removed_checkpointed_entry_is_found_even_past_the_chains_break(
    sessions, sink, writer
):
    await write(sessions, 1, 3)
    await checkpoint(sessions, writer, 0)  # at seq 3
    await write(sessions, 4, 2)
    await checkpoint(sessions, writer, 900)  # at seq 5
    async with sessions.begin() as s:
        await owner_rights(s)
        await s.execute(delete(access_log).where(access_log.c.seq == 3))
    found = await against(sessions, sink.written)
    assert found.chain.first_bad_seq == 3  # the plain chain stops here…
    assert found.matched == 1  # …the walk goes on: the checkpoint at 5 still matches
    (gap,) = found.findings
    assert (gap.problem, gap.seq, gap.detail) == (
        CheckpointProblem.MISMATCH,
        3,
        "no entry at this seq",
    )
