"""The subscription API (``/api/v1/subscriptions``), in the spirit of FHIR Subscription:
criteria as event codes, a rest-hook channel with an endpoint, and a secret to sign with.

The journal adapters' subscriptions are listed too, but they follow the family catalogue
(``managedBy: "catalogue"``) and the API refuses to change them (409). A subscription is
never deleted: DELETE switches it off and keeps the row, so the delivery log can still say
where a message went. The secret is write-only: no response ever carries it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.envelope import EventCode, System
from services.router.ops.api_clients import as_admin
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.matching import (
    CATALOGUE,
    ROUTABLE_EVENTS,
    Criteria,
    Subscription,
    SubscriptionStatus,
)

_MAX_ENDPOINT = 500


class CriteriaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventCode] = Field(
        min_length=1, max_length=50, description="event codes of the message families wanted"
    )
    sources: list[System] | None = Field(
        default=None, min_length=1, description="only from these systems; absent: from any"
    )

    @field_validator("events")
    @classmethod
    def _only_families(cls, events: list[EventCode]) -> list[EventCode]:
        responses = [e.value for e in events if e.value not in ROUTABLE_EVENTS]
        if responses:
            raise ValueError(
                f"{', '.join(responses)}: a response, not a message family one can subscribe to"
            )
        return events


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["rest-hook"] = Field(description="only rest-hook may be created here")
    endpoint: HttpUrl = Field(description="http(s) URL the signed POST goes to")

    @field_validator("endpoint")
    @classmethod
    def _plain_url(cls, url: HttpUrl) -> HttpUrl:
        if url.username or url.password:
            raise ValueError("no credentials in the URL: requests are signed with the secret")
        if len(str(url)) > _MAX_ENDPOINT:
            raise ValueError(f"at most {_MAX_ENDPOINT} characters")
        return url


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    criteria: CriteriaIn
    channel: ChannelIn
    secret: str = Field(
        min_length=16,
        max_length=200,
        repr=False,
        description="HMAC-SHA256 key of X-Carebridge-Signature; write-only",
        json_schema_extra={"format": "password", "writeOnly": True},
    )


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SubscriptionStatus


class CriteriaOut(BaseModel):
    events: list[str]
    sources: list[str] | None = None


class ChannelOut(BaseModel):
    type: str
    endpoint: str


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    status: SubscriptionStatus
    criteria: CriteriaOut
    channel: ChannelOut
    managed_by: str | None = Field(alias="managedBy")
    created_at: datetime | None = Field(alias="createdAt")
    updated_at: datetime | None = Field(alias="updatedAt")

    @classmethod
    def of(cls, sub: Subscription) -> SubscriptionOut:
        criteria = sub.criteria.to_json()
        return cls(
            id=sub.id,
            name=sub.name,
            status=sub.status,
            criteria=CriteriaOut(events=criteria["events"], sources=criteria.get("sources")),
            channel=ChannelOut(type=sub.channel_type.value, endpoint=sub.endpoint),
            managed_by=sub.managed_by,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
        )


class SubscriptionList(BaseModel):
    count: int
    items: list[SubscriptionOut]


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such subscription"}}
_MANAGED: dict[int | str, dict[str, Any]] = {
    409: {"description": "a journal adapter's subscription: it follows the family catalogue"}
}


def subscription_routes(
    sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
) -> APIRouter:
    api = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

    @api.post("", status_code=201, response_model_by_alias=True, dependencies=[Depends(as_admin)])
    async def create(body: SubscriptionIn) -> SubscriptionOut:
        """Subscribe a webhook to message families. The FHIR message is POSTed as it is,
        signed (``X-Carebridge-Signature: t=…,v1=…``), with ``Idempotency-Key`` = message
        id; retried with back-off until a 2xx, dead-lettered with an alert if it never
        comes. The secret is stored, never returned."""
        criteria = Criteria(
            events=frozenset(e.value for e in body.criteria.events),
            sources=(
                None
                if body.criteria.sources is None
                else frozenset(s.value for s in body.criteria.sources)
            ),
        )
        async with sessions.begin() as session:
            created = await subscription_store.create_rest_hook(
                session,
                name=body.name,
                criteria=criteria,
                endpoint=str(body.channel.endpoint),
                secret=body.secret,
                now=clock(),
            )
        return SubscriptionOut.of(created)

    @api.get("")
    async def list_subscriptions() -> SubscriptionList:
        """Every subscription, the journal adapters' included, active or off."""
        async with sessions() as session:
            found = await subscription_store.list_all(session)
        return SubscriptionList(count=len(found), items=[SubscriptionOut.of(s) for s in found])

    @api.get("/{subscription_id}", responses=_NOT_FOUND)
    async def read(subscription_id: str) -> SubscriptionOut:
        async with sessions() as session:
            found = await subscription_store.get(session, subscription_id)
        if found is None:
            raise HTTPException(404, "no such subscription")
        return SubscriptionOut.of(found)

    async def change_status(subscription_id: str, status: SubscriptionStatus) -> SubscriptionOut:
        async with sessions.begin() as session:
            found = await subscription_store.get(session, subscription_id)
            if found is None:
                raise HTTPException(404, "no such subscription")
            if found.managed_by == CATALOGUE:
                raise HTTPException(
                    409,
                    f"{subscription_id} is a journal adapter's subscription; it follows the "
                    "family catalogue (services/messaging/families.py) and cannot be changed "
                    "through the API",
                )
            await subscription_store.set_status(session, subscription_id, status, clock())
            changed = await subscription_store.get(session, subscription_id)
        assert changed is not None
        return SubscriptionOut.of(changed)

    @api.patch(
        "/{subscription_id}",
        responses={**_NOT_FOUND, **_MANAGED},
        dependencies=[Depends(as_admin)],
    )
    async def patch(subscription_id: str, body: StatusIn) -> SubscriptionOut:
        """Switch a subscription ``off`` or ``active`` again. While off it gets no new
        deliveries; one already under way is dead-lettered as "subscription ended"."""
        return await change_status(subscription_id, body.status)

    @api.delete(
        "/{subscription_id}",
        responses={**_NOT_FOUND, **_MANAGED},
        dependencies=[Depends(as_admin)],
    )
    async def delete(subscription_id: str) -> SubscriptionOut:
        """Switch the subscription off. The row is kept, for the delivery log's history."""
        return await change_status(subscription_id, SubscriptionStatus.OFF)

    return api
