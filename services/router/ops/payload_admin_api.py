"""Payload housekeeping over the JSON API (``/api/v1``), for the CLI: re-seal stored
payloads under the current key (key rotation, in batches) and prune finished payloads past
the retention period. Neither returns or logs any payload."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.audit.access_log import AccessKind
from services.router.audit.admin_actions import record_admin_action
from services.router.audit.payload_keys import count_stale, count_stale_outbox, reseal_batch
from services.router.audit.retention import prune_payloads
from services.router.ops.api_clients import ApiCaller, as_admin
from services.router.ops.schema_base import ResponseModel
from services.router.routing.deliveries import OUTBOX_OWNER
from services.router.settings import RouterSettings

Admin = Annotated[ApiCaller, Depends(as_admin)]


class RotateStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str = Field(default="", max_length=36)  # the last id of the previous step
    limit: int = Field(default=200, ge=1, le=1000)


class PruneStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=500, ge=1, le=5000)


class KeyStatusOut(ResponseModel):
    current: str = Field(description="the id of the key new payloads are sealed under")
    keyIds: list[str] = Field(description="every key id in the ring (never a key)")
    stale: int = Field(description="payloads and subscription secrets under another key")
    staleOutbox: int = Field(description="the router's outbox rows under another key")


class RotateStepOut(ResponseModel):
    resealed: int
    next: str | None = Field(description="pass back as after; null: done")
    stale: int = Field(description="left under another key")


class PruneStepOut(ResponseModel):
    pruned: int


def payload_admin_routes(
    settings: RouterSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter(tags=["payloads at rest"], dependencies=[Depends(as_admin)])
    keyring = settings.keyring()

    @api.get("/payload-keys", response_model=KeyStatusOut)
    async def key_status() -> dict[str, Any]:
        """The current key id, the ids in the ring (never a key), how many payloads and
        subscription secrets are not yet under the current key (``stale``), and how many of
        the router's outbox rows (kept for the re-publish window) are not (``staleOutbox``)."""
        async with sessions() as session:
            stale = await count_stale(session, keyring)
            outbox_rows = await count_stale_outbox(session, keyring, OUTBOX_OWNER)
        return {
            "current": keyring.current,
            "keyIds": sorted(keyring.keys),
            "stale": stale,
            "staleOutbox": outbox_rows,
        }

    @api.post("/payload-keys/rotate", response_model=RotateStepOut)
    async def rotate(body: RotateStep, caller: Admin) -> dict[str, Any]:
        """One batch of re-sealing under the current key; call again with ``after`` = ``next``
        until ``next`` is null. Each batch is a ``key-change`` entry in the access log."""
        async with sessions.begin() as session:
            step = await reseal_batch(session, keyring, after=body.after, limit=body.limit)
            await record_admin_action(
                session,
                actor=f"API client {caller.name}",
                role=caller.role.value,
                kind=AccessKind.KEY_CHANGE,
                action="payload-key rotation",
                detail=f"{step.resealed} re-sealed under key {keyring.current}, after "
                f"{body.after or 'the start'}",
                now=clock(),
            )
        async with sessions() as session:
            stale = await count_stale(session, keyring)
        return {"resealed": step.resealed, "next": step.last_id, "stale": stale}

    @api.post("/payloads/prune", response_model=PruneStepOut)
    async def prune(body: PruneStep, caller: Admin) -> dict[str, Any]:
        """Prune one batch of finished payloads older than ``ROUTER_PAYLOAD_RETENTION_DAYS``;
        an ``admin-action`` entry in the access log."""
        async with sessions.begin() as session:
            now = clock()
            pruned = await prune_payloads(
                session,
                now,
                retention=timedelta(days=settings.payload_retention_days),
                limit=body.limit,
            )
            await record_admin_action(
                session,
                actor=f"API client {caller.name}",
                role=caller.role.value,
                action="payload pruning",
                detail=f"{pruned} payload(s) pruned (batch of at most {body.limit})",
                now=now,
            )
        return {"pruned": pruned}

    return api
