"""Outbox relay: publishes committed rows in order, and keeps them when the broker fails."""

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from services.messaging.db import session_factory, utcnow
from services.messaging.kafka import InMemoryBus, OutgoingRecord, PublishError
from services.messaging.outbox import (
    OutboxRelay,
    add_to_outbox,
    open_value,
    outbox,
    pending_count,
    sealed_with,
)
from services.messaging.payload_crypto import (
    SANDBOX_PAYLOAD_KEYS,
    Keyring,
    UndecryptablePayload,
    encode_keyring,
    new_key,
)


async def stage(sessions, n):
    async with sessions.begin() as s:
        for i in range(n):
            await add_to_outbox(
                s, "svc", OutgoingRecord("t.v1", f"k{i % 2}", f"v{i}", {"i": str(i)})
            )


async def test_relay_publishes_in_order_and_marks_rows(sessions):
    bus = InMemoryBus()
    await stage(sessions, 5)
    relay = OutboxRelay(sessions, bus, "svc", batch_size=3)
    assert await relay.publish_pending() == 3
    assert await relay.publish_pending() == 2
    assert await relay.publish_pending() == 0
    assert [r.value for r in bus.topics["t.v1"]] == [f"v{i}".encode() for i in range(5)]
    assert await pending_count(sessions, "svc") == 0


async def test_a_failed_publish_loses_nothing(sessions):
    bus = InMemoryBus()
    await stage(sessions, 2)
    relay = OutboxRelay(sessions, bus, "svc")
    bus.fail_next_publish = True
    with pytest.raises(PublishError):
        await relay.publish_pending()
    assert await pending_count(sessions, "svc") == 2
    assert await relay.publish_pending() == 2
    assert len(bus.topics["t.v1"]) == 2


async def test_relays_only_publish_their_own_rows(sessions):
    bus = InMemoryBus()
    await stage(sessions, 1)
    assert await OutboxRelay(sessions, bus, "someone-else").publish_pending() == 0
    async with sessions() as s:
        (row,) = (await s.execute(select(outbox))).all()
    assert row.published_at is None


# --- at rest -------------------------------------------------------------------------------

RECORD = OutgoingRecord(
    "carebridge.inbound.v1",
    "p" * 32,
    '{"resourceType": "Bundle", "name": "Andersson", "pnr": "191212121212"}',
    {"message-id": "m-1"},
)


@pytest.mark.security
async def test_a_stored_row_is_sealed_and_publishes_the_original_bytes(sessions):
    async with sessions.begin() as s:
        await add_to_outbox(s, "svc", RECORD)
    async with sessions() as s:
        (raw,) = (await s.execute(select(outbox.c.payload))).scalars().all()
    assert raw.startswith("enc:v1:sandbox-1:")
    for clear in ("Bundle", "Andersson", "191212121212"):
        assert clear not in raw
    bus = InMemoryBus()
    assert await OutboxRelay(sessions, bus, "svc").publish_pending() == 1
    (sent,) = bus.topics[RECORD.topic]
    assert sent.value == RECORD.value.encode() and sent.key == RECORD.key
    assert sent.headers == RECORD.headers


@pytest.mark.security
async def test_a_plain_row_written_before_sealing_still_publishes(sessions):
    async with sessions.begin() as s:
        await s.execute(
            outbox.insert().values(
                owner="svc",
                topic=RECORD.topic,
                key=RECORD.key,
                headers=RECORD.headers,
                payload=RECORD.value,
                created_at=utcnow(),
            )
        )
    bus = InMemoryBus()
    assert await OutboxRelay(sessions, bus, "svc").publish_pending() == 1
    assert bus.topics[RECORD.topic][0].value == RECORD.value.encode()


@pytest.mark.security
async def test_a_sealed_value_moved_to_another_owner_or_key_does_not_open():
    ring = Keyring.from_setting(SANDBOX_PAYLOAD_KEYS)
    sealed = ring.seal("v", message_id=sealed_with("svc", "t.v1", "k"))
    row = SimpleNamespace(payload=sealed, topic="t.v1", key="k")
    assert open_value(ring, row, "svc") == "v"
    with pytest.raises(UndecryptablePayload):
        open_value(ring, row, "other")
    with pytest.raises(UndecryptablePayload):
        open_value(ring, SimpleNamespace(payload=sealed, topic="t.v1", key="k2"), "svc")


@pytest.mark.security
async def test_a_row_whose_key_is_gone_waits_and_the_others_publish(engine, caplog):
    old, new = new_key(), new_key()
    before = session_factory(engine, keyring=Keyring.from_setting(encode_keyring("o", {"o": old})))
    after = session_factory(engine, keyring=Keyring.from_setting(encode_keyring("n", {"n": new})))
    async with before.begin() as s:
        await add_to_outbox(s, "svc", RECORD)
    async with after.begin() as s:
        await add_to_outbox(s, "svc", replace(RECORD, value="second"))
    bus = InMemoryBus()
    relay = OutboxRelay(after, bus, "svc")
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    assert [r.value for r in bus.topics[RECORD.topic]] == [b"second"]
    assert await pending_count(after, "svc") == 1  # kept, not lost: it publishes once restored
    reported = [r for r in caplog.records if "does not open" in r.getMessage()]
    assert len(reported) == 1 and reported[0].key_id == "o"
    both = session_factory(
        engine, keyring=Keyring.from_setting(encode_keyring("n", {"n": new, "o": old}))
    )
    assert await OutboxRelay(both, bus, "svc").publish_pending() == 1
    assert bus.topics[RECORD.topic][-1].value == RECORD.value.encode()
