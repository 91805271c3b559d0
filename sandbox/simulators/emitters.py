"""Building a simulator's own events from the sample modules, by family name. Sample
functions are named as ``module:function`` and imported when first used."""

from __future__ import annotations

import importlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from sandbox.simulators.journal import EmitRequest
from sandbox.simulators.samples.people import HALLAND, in_region

SANDBOX_REGION = HALLAND.name  # the sandbox's region unless a simulator is told another

log = logging.getLogger(__name__)

Emit = Callable[[EmitRequest], Awaitable[list[dict[str, Any]]]]
Sample = Callable[..., dict[str, Any]]


def sample_function(target: str) -> Sample:
    module, _, name = target.partition(":")
    function: Sample = getattr(importlib.import_module(module), name)
    return function


def build(
    table: dict[str, tuple[str, str]],
    request: EmitRequest,
    rng: random.Random,
    *,
    region: str = SANDBOX_REGION,
) -> tuple[str, list[dict[str, Any]]]:
    """(adapter route, events) for ``request``, drawn from the people and units of the
    sandbox ``region`` (its patients live in its municipalities); LookupError for a family
    not offered."""
    if request.family not in table:
        raise LookupError(f"cannot emit {request.family!r}; try one of {', '.join(table)}")
    route, target = table[request.family]
    sample = sample_function(target)
    now = datetime.now().astimezone()
    with in_region(region):
        return route, [sample(rng, now=now, **request.options) for _ in range(request.count)]


async def post_events(
    client: httpx.AsyncClient, url: str, token: str, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """POST each event to the adapter; report (status, message id) per event."""
    sent = []
    for event in events:
        try:
            res = await client.post(url, json=event, headers={"authorization": f"Bearer {token}"})
            status: int | None = res.status_code
            message_id = res.json().get("messageId") if res.status_code == 202 else None
            problem = None if res.status_code == 202 else res.text[:500]
        except httpx.HTTPError as exc:
            status, message_id, problem = None, None, type(exc).__name__
            log.warning("adapter unreachable", extra={"error": problem})
        sent.append({"status": status, "messageId": message_id, "problem": problem})
    return sent


def make_emitter(
    table: dict[str, tuple[str, str]],
    *,
    intake_url: str,
    token: str,
    rng: random.Random,
    region: str = SANDBOX_REGION,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Emit:
    """An emitter that builds ``request``'s events and POSTs them to ``intake_url/<route>``."""

    async def emit(request: EmitRequest) -> list[dict[str, Any]]:
        route, events = build(table, request, rng, region=region)
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            return await post_events(client, f"{intake_url}/{route}", token, events)

    return emit
