"""The subscription API (``/api/v1/subscriptions``), in the spirit of FHIR Subscription:
criteria as event codes, a rest-hook channel with an endpoint, and a secret to sign with.

The journal adapters' subscriptions are listed too, but they follow the family catalogue
(``managedBy: "catalogue"``) and the API refuses to change them (409). A subscription is
never deleted: DELETE switches it off and keeps the row, so the delivery log can still say
where a message went. The secret is write-only: no response ever carries it.

**Two admins.** A new subscription is ``pending`` and receives nothing until a *different*
admin activates it (``POST /subscriptions/{id}/activate``); the admin who created it is
refused (403). Who an admin is comes from the API key that authenticated the request,
never from the body. Creation, activation and every status change are written to the
access log (``subscription-change``) in the transaction that makes them.

**Where it may point.** The callback passes :mod:`services.router.subscriptions.endpoints`
at registration (https outside the sandbox, a host on ``ROUTER_SUBSCRIPTION_ALLOWED_HOSTS``,
public addresses only) and again before every POST. A refusal is a 422 naming
``body.channel.endpoint`` and the rule, never the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.envelope import EventCode, System
from services.router.audit.access_log import AccessKind, record_security_event
from services.router.ops.api_clients import ApiCaller, as_admin
from services.router.subscriptions import store as subscription_store
from services.router.subscriptions.endpoints import (
    EndpointPolicy,
    EndpointRefused,
    Resolver,
    Unresolvable,
    vet,
)
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

    # pending → active goes through /activate only (a second admin)
    status: Literal[SubscriptionStatus.ACTIVE, SubscriptionStatus.OFF]


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
    created_by: str | None = Field(default=None, alias="createdBy")
    activated_by: str | None = Field(default=None, alias="activatedBy")

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
            created_by=sub.created_by,
            activated_by=sub.activated_by,
        )


class SubscriptionList(BaseModel):
    count: int
    items: list[SubscriptionOut]


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such subscription"}}
_MANAGED: dict[int | str, dict[str, Any]] = {
    409: {"description": "a journal adapter's subscription: it follows the family catalogue"}
}
_ENDPOINT_FIELD = ("body", "channel", "endpoint")

Admin = Annotated[ApiCaller, Depends(as_admin)]


def _who(caller: ApiCaller) -> str:
    """An admin as the subscription and the access log name them: the authenticated API
    client (one key per person or job), never a name from the body."""
    return caller.name


async def _audit(session: AsyncSession, caller: ApiCaller, what: str, now: datetime) -> None:
    await record_security_event(
        session,
        actor=f"API client {_who(caller)}",
        role=caller.role.value,
        kind=AccessKind.SUBSCRIPTION_CHANGE,
        reason=what,
        now=now,
    )


async def _check_endpoint(url: str, policy: EndpointPolicy, resolver: Resolver) -> None:
    """422 naming ``body.channel.endpoint`` and the rule (never the URL) if refused."""
    try:
        await vet(url, policy, resolver)
    except (EndpointRefused, Unresolvable) as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": _ENDPOINT_FIELD, "msg": exc.reason, "input": url}]
        ) from None


def subscription_routes(
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    *,
    policy: EndpointPolicy,
    resolver: Resolver,
) -> APIRouter:
    api = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

    @api.post(
        "",
        status_code=201,
        response_model_by_alias=True,
        responses={422: {"description": "invalid, or the endpoint is not allowed"}},
    )
    async def create(body: SubscriptionIn, caller: Admin) -> SubscriptionOut:
        """Subscribe a webhook to message families. The subscription is created
        ``pending``: it receives nothing until a different admin activates it. The FHIR
        message is POSTed as it is, signed (``X-Carebridge-Signature: t=…,v1=…``), with
        ``Idempotency-Key`` = message id; retried with back-off until a 2xx, dead-lettered
        with an alert if it never comes. The secret is stored, never returned. The
        endpoint must be https outside the sandbox, on ROUTER_SUBSCRIPTION_ALLOWED_HOSTS,
        and resolve to public addresses only."""
        endpoint = str(body.channel.endpoint)
        await _check_endpoint(endpoint, policy, resolver)
        criteria = Criteria(
            events=frozenset(e.value for e in body.criteria.events),
            sources=(
                None
                if body.criteria.sources is None
                else frozenset(s.value for s in body.criteria.sources)
            ),
        )
        now = clock()
        async with sessions.begin() as session:
            created = await subscription_store.create_rest_hook(
                session,
                name=body.name,
                criteria=criteria,
                endpoint=endpoint,
                secret=body.secret,
                created_by=_who(caller),
                now=now,
            )
            await _audit(session, caller, f"created {created.id} (pending)", now)
        return SubscriptionOut.of(created)

    @api.post(
        "/{subscription_id}/activate",
        response_model_by_alias=True,
        responses={
            **_NOT_FOUND,
            403: {"description": "the admin who created it may not activate it"},
            409: {"description": "not pending"},
            422: {"description": "its endpoint is no longer allowed"},
        },
    )
    async def activate(subscription_id: str, caller: Admin) -> SubscriptionOut:
        """The second admin's approval: a ``pending`` subscription becomes ``active`` and
        receives messages from now on. The admin who created it is refused (403)."""
        async with sessions() as session:
            found = await subscription_store.get(session, subscription_id)
        if found is None:
            raise HTTPException(404, "no such subscription")
        if found.status is not SubscriptionStatus.PENDING:
            raise HTTPException(409, f"the subscription is {found.status.value}, not pending")
        if found.created_by is None or found.created_by == _who(caller):
            raise HTTPException(
                403,
                "a subscription is activated by a different admin than the one who created it",
            )
        await _check_endpoint(found.endpoint, policy, resolver)  # the allowlist may have changed
        now = clock()
        async with sessions.begin() as session:
            if not await subscription_store.activate(session, subscription_id, _who(caller), now):
                raise HTTPException(409, "the subscription is no longer pending")
            await _audit(
                session, caller, f"activated {subscription_id} (created by {found.created_by})", now
            )
            changed = await subscription_store.get(session, subscription_id)
        assert changed is not None
        return SubscriptionOut.of(changed)

    @api.get("")
    async def list_subscriptions() -> SubscriptionList:
        """Every subscription, the journal adapters' included: pending, active or off."""
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

    async def change_status(
        subscription_id: str, status: SubscriptionStatus, caller: ApiCaller
    ) -> SubscriptionOut:
        now = clock()
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
            # never approved by a second admin: only /activate may switch it on (a row from
            # before two-admin activation has no creator and was active already)
            unapproved = found.status is SubscriptionStatus.PENDING or (
                found.created_by is not None and found.activated_by is None
            )
            if status is SubscriptionStatus.ACTIVE and unapproved:
                raise HTTPException(
                    409,
                    "no second admin has activated this subscription; while it is pending, "
                    f"a second admin does with POST /api/v1/subscriptions/{subscription_id}"
                    "/activate",
                )
            if found.status is not status:
                await subscription_store.set_status(session, subscription_id, status, now)
                await _audit(
                    session, caller, f"{subscription_id}: {found.status.value} → {status}", now
                )
            changed = await subscription_store.get(session, subscription_id)
        assert changed is not None
        return SubscriptionOut.of(changed)

    @api.patch("/{subscription_id}", responses={**_NOT_FOUND, **_MANAGED})
    async def patch(subscription_id: str, body: StatusIn, caller: Admin) -> SubscriptionOut:
        """Switch a subscription ``off``, or ``active`` again once a second admin has
        activated it before (a pending one: 409, see ``/activate``). While off it gets no
        new deliveries; one already under way is dead-lettered as "subscription ended"."""
        return await change_status(subscription_id, SubscriptionStatus(body.status), caller)

    @api.delete("/{subscription_id}", responses={**_NOT_FOUND, **_MANAGED})
    async def delete(subscription_id: str, caller: Admin) -> SubscriptionOut:
        """Switch the subscription off. The row is kept, for the delivery log's history."""
        return await change_status(subscription_id, SubscriptionStatus.OFF, caller)

    return api
