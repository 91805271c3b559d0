"""Decrypt once per hop (issue 18): the router seals each payload once when it stores the
message, and a batch that routes and dispatches it builds its delivery commands from the
record it has in clear, instead of decrypting the stored payload again for each delivery."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from services.messaging.payload_crypto import Keyring
from services.router.routing.handlers import Router
from services.router.routing.tables import delivery
from tests.support.router import Clock, inbound, routing_rules, started


@pytest.fixture
def crypto_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    seal, open_ = Keyring.seal, Keyring.open

    def counted_seal(self: Keyring, *args: Any, **kwargs: Any) -> str:
        calls["seal"] += 1
        return seal(self, *args, **kwargs)

    def counted_open(self: Keyring, *args: Any, **kwargs: Any) -> str:
        calls["open"] += 1
        return open_(self, *args, **kwargs)

    monkeypatch.setattr(Keyring, "seal", counted_seal)
    monkeypatch.setattr(Keyring, "open", counted_open)
    return calls


async def test_a_batch_routes_and_dispatches_without_decrypting_what_it_stored(
    sessions, crypto_calls: Counter[str]
) -> None:
    router = await started(Router(sessions=sessions, rules=routing_rules(), clock=Clock()))
    crypto_calls.clear()
    await router.handle_batch([inbound(i, patient=f"{i:032x}") for i in range(5)])
    async with sessions() as s:
        dispatched = await s.scalar(
            select(func.count()).select_from(delivery).where(delivery.c.state == "dispatched")
        )
    assert dispatched == 10  # Treserva and primary care for each
    assert crypto_calls["open"] == 0, crypto_calls
    # each payload sealed once at rest, each delivery command once in the outbox
    assert crypto_calls["seal"] == 5 + 10, crypto_calls


async def test_a_later_dispatch_decrypts_each_payload_once(sessions, crypto_calls) -> None:
    """The tick's dispatch (a retry, a circuit that closed) opens a message once for all
    its deliveries."""
    from services.router.routing.deliveries import dispatch_due

    rules = routing_rules()
    router = await started(Router(sessions=sessions, rules=rules, clock=Clock()))
    await router.handle_batch([inbound(1, patient="a" * 32)])
    async with sessions.begin() as s:  # both deliveries back to pending, as after a timeout
        await s.execute(delivery.update().values(state="pending"))
    crypto_calls.clear()
    async with sessions.begin() as s:
        assert await dispatch_due(s, rules, Clock()()) == 2
    assert crypto_calls["open"] == 1, crypto_calls
