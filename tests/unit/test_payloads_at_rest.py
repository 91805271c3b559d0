"""Payloads at rest: AES-GCM sealed under the current key with the message id as associated
data; legacy plaintext still reads; rotation re-seals under a new key; a wrong key or a
moved ciphertext fails loudly; pruning after the retention period keeps the metadata."""

import base64
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from services.messaging.kafka import InMemoryBus
from services.messaging.outbox import OutboxRelay, outbox
from services.messaging.payload_crypto import (
    Keyring,
    KeyringError,
    UndecryptablePayload,
    UnknownKey,
    encode_keyring,
    new_key,
)
from services.router.audit.access_log import access_log
from services.router.audit.patient_data import open_payload
from services.router.audit.retention import RetentionRules, prune_payloads
from services.router.ops.app import create_app
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery, delivery_transition, message
from services.router.settings import RouterSettings
from tests.support.payloads import routing
from tests.support.router import Clock, inbound, message_id, started

pytestmark = pytest.mark.security

AUTH = {"authorization": "Bearer sandbox-ops-token"}
K1, K2 = new_key(), new_key()
RING_1 = encode_keyring("k1", {"k1": K1})
RING_2 = encode_keyring("k2", {"k1": K1, "k2": K2})  # k2 current, k1 still readable


async def stored(sessions, mid):
    async with sessions() as s:
        return (await s.execute(select(message.c.payload).where(message.c.id == mid))).scalar_one()


@pytest.fixture
def clock():
    return Clock()


async def test_an_admission_is_stored_without_plaintext_and_sent_in_plaintext(sessions, clock):
    router = await started(
        Router(sessions=sessions, rules=routing(Keyring.from_setting(RING_1)), clock=clock)
    )
    rec = inbound(7)
    await router.handle_batch([rec])
    raw = await stored(sessions, message_id(rec))
    assert raw.startswith("enc:v1:k1:")
    for clear in ("Bundle", "personnummer", "rollator", message_id(rec)):
        assert clear in rec.value.decode() and clear not in raw
    async with sessions() as s:
        commands = (await s.execute(select(outbox.c.payload))).scalars().all()
    assert commands and all(c.startswith("enc:v1:") for c in commands)  # the outbox too
    bus = InMemoryBus()
    await OutboxRelay(sessions, bus, "router").publish_pending()
    sent = [r.value for t in bus.topics.values() for r in t]
    assert sent and all(v == rec.value for v in sent)  # Kafka: the original bytes


async def test_the_personnummer_and_family_name_are_not_in_the_column(sessions, clock):
    router = await started(
        Router(sessions=sessions, rules=routing(Keyring.from_setting(RING_1)), clock=clock)
    )
    rec = inbound(3)
    await router.handle_batch([rec])
    body = rec.value.decode()
    pnr = next(
        e["resource"]["identifier"][0]["value"]
        for e in json.loads(body)["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    family = next(
        e["resource"]["name"][0]["family"]
        for e in json.loads(body)["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    assert pnr in body and family in body
    async with sessions() as s:
        column = " ".join((await s.execute(select(message.c.payload))).scalars().all())
    assert pnr not in column and family not in column


def test_a_legacy_plaintext_row_still_reads():
    ring = Keyring.from_setting(RING_1)
    assert ring.open('{"resourceType": "Bundle"}', message_id="m") == '{"resourceType": "Bundle"}'
    assert ring.needs_resealing('{"resourceType": "Bundle"}')


def test_a_wrong_key_or_another_messages_id_fails_loudly():
    sealed = Keyring.from_setting(RING_1).seal("{}", message_id="m-1")
    with pytest.raises(UndecryptablePayload):
        Keyring.from_setting(RING_1).open(sealed, message_id="m-2")  # moved to another row
    impostor = Keyring(current="k1", keys={"k1": base64.b64decode(K2)})
    with pytest.raises(UndecryptablePayload):
        impostor.open(sealed, message_id="m-1")
    with pytest.raises(UnknownKey):
        Keyring(current="k9", keys={"k9": b"\x01" * 32}).open(sealed, message_id="m-1")
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(UndecryptablePayload):
        Keyring.from_setting(RING_1).open(flipped, message_id="m-1")


def test_a_malformed_keyring_is_refused():
    with pytest.raises(KeyringError):
        Keyring.from_setting("not base64 json")
    with pytest.raises(KeyringError):
        Keyring(current="k1", keys={"k1": b"short"})
    with pytest.raises(ValueError, match="payload"):
        RouterSettings(payload_keys=base64.b64encode(b'{"current": "x", "keys": {}}').decode())
    assert "Keyring(current='k1'" in repr(Keyring.from_setting(RING_1))
    assert K1 not in repr(Keyring.from_setting(RING_1))


async def test_rotation_reseals_under_the_new_key_and_old_rows_read_meanwhile(
    sessions, clock, capsys
):
    old = await started(
        Router(sessions=sessions, rules=routing(Keyring.from_setting(RING_1)), clock=clock)
    )
    records = [inbound(seed) for seed in range(5)]
    await old.handle_batch(records)
    async with sessions.begin() as s:  # and one legacy row from before encryption
        await s.execute(
            update(message)
            .where(message.c.id == message_id(records[0]))
            .values(payload=records[0].value.decode())
        )
    settings = RouterSettings(payload_keys=RING_2)
    ring2 = settings.keyring()
    async with sessions.begin() as s:  # k1 rows open under the new ring before rotation
        view = await open_payload(
            s,
            message_id(records[1]),
            keyring=ring2,
            actor="a",
            role="operator",
            reason="before rotation",
            now=clock(),
        )
    assert view.bundle == json.loads(records[1].value)

    from services.router.ops import cli

    app = create_app(settings, sessions=sessions, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r", headers=AUTH) as c:
        before = (await c.get("/api/v1/payload-keys")).json()
        assert before == {
            "current": "k2",
            "keyIds": ["k1", "k2"],
            "stale": 5,
            "staleOutbox": 2,  # the dispatch commands, sealed under the store's (sandbox) ring
        }
        after, done = "", 0
        while True:
            step = (
                await c.post("/api/v1/payload-keys/rotate", json={"after": after, "limit": 2})
            ).json()
            done += step["resealed"]
            if step["next"] is None:
                break
            after = step["next"]
        assert done == 5 and step["stale"] == 0
    assert cli  # the CLI drives the same two endpoints with a progress bar
    only_k2 = Keyring(current="k2", keys={"k2": base64.b64decode(K2)})
    for rec in records:
        raw = await stored(sessions, message_id(rec))
        assert raw.startswith("enc:v1:k2:")
        assert only_k2.open(raw, message_id=message_id(rec)) == rec.value.decode()


async def test_pruning_removes_finished_payloads_and_keeps_metadata(sessions, clock):
    router = await started(
        Router(sessions=sessions, rules=routing(Keyring.from_setting(RING_1)), clock=clock)
    )
    done_rec, open_rec = inbound(11), inbound(12, patient="q" * 32)
    await router.handle_batch([done_rec, open_rec])
    for dest in ("treserva", "primary-care"):
        async with sessions.begin() as s:
            await s.execute(
                update(delivery)
                .where(
                    delivery.c.message_id == message_id(done_rec), delivery.c.destination == dest
                )
                .values(state="confirmed", updated_at=clock())
            )
    clock.advance(91 * 24 * 3600)
    async with sessions.begin() as s:
        assert await prune_payloads(s, clock(), retention=timedelta(days=90)) == 1
    raw = await stored(sessions, message_id(done_rec))
    assert raw.startswith("pruned:v1:")
    assert (await stored(sessions, message_id(open_rec))).startswith("enc:v1:")  # unfinished
    async with sessions() as s:
        kept = (await s.execute(select(message).where(message.c.id == message_id(done_rec)))).one()
        transitions = (
            await s.execute(
                select(delivery_transition)
                .join(delivery, delivery.c.id == delivery_transition.c.delivery_id)
                .where(delivery.c.message_id == message_id(done_rec))
            )
        ).all()
    assert kept.pseudonym and kept.event_code == "admission-notice" and kept.business_key
    assert transitions

    app = create_app(RouterSettings(payload_keys=RING_1), sessions=sessions, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r", headers=AUTH) as c:
        res = await c.post(
            f"/api/v1/messages/{message_id(done_rec)}/payload",
            json={"operator": "Åsa", "reason": "audit question"},
        )
        assert res.status_code == 410 and "pruned" in res.text
        meta = await c.get(f"/api/v1/messages/{message_id(done_rec)}")
        assert meta.status_code == 200 and len(meta.json()["deliveries"]) == 2
    async with sessions() as s:
        (entry,) = (await s.execute(select(access_log))).all()  # the attempt is logged
    assert entry.message_id == message_id(done_rec)


async def test_the_tick_loop_prunes_at_a_low_rate(sessions, clock):
    rules = routing(Keyring.from_setting(RING_1))
    retention = RetentionRules(payload_retention=timedelta(days=90), prune_every=timedelta(hours=1))
    router = await started(Router(sessions=sessions, rules=rules, clock=clock, retention=retention))
    rec = inbound(21)
    await router.handle_batch([rec])
    async with sessions.begin() as s:
        await s.execute(
            update(delivery)
            .where(delivery.c.message_id == message_id(rec))
            .values(state="confirmed", updated_at=clock())
        )
    assert (await router.tick())["pruned"] == 0  # too young
    clock.advance(91 * 24 * 3600)
    assert (await router.tick())["pruned"] == 1
    assert (await stored(sessions, message_id(rec))).startswith("pruned:v1:")


def test_the_cli_rotates_in_batches_with_progress_and_makes_new_keys(capsys):
    from services.router.ops import cli

    steps = iter([("m-2", 2, 1), (None, 1, 0)])
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/payload-keys":
            return httpx.Response(200, json={"current": "k2", "keyIds": ["k1", "k2"], "stale": 3})
        seen.append(json.loads(request.content))
        nxt, resealed, stale = next(steps)
        return httpx.Response(200, json={"resealed": resealed, "next": nxt, "stale": stale})

    code = cli.main(["rotate-payload-keys", "--batch", "2"], transport=httpx.MockTransport(handler))
    out = capsys.readouterr()
    assert code == 0 and "3 payload(s) re-sealed under k2; 0 left" in out.out
    assert "re-sealing" in out.err  # the progress bar
    assert seen == [{"after": "", "limit": 2}, {"after": "m-2", "limit": 2}]

    assert cli.main(["new-payload-key", "--key-id", "k3", "--keep", RING_2]) == 0
    ring = Keyring.from_setting(capsys.readouterr().out.strip())
    assert ring.current == "k3" and sorted(ring.keys) == ["k1", "k2", "k3"]
    assert ring.keys["k1"] == base64.b64decode(K1)
