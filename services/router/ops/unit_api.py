"""The unit directory over the JSON API (``/api/v1/units``): list the units, add or update one
(``PUT /units/{hsaId}``, the unit as the directory file spells it), deactivate one. Changes
need the admin role and are each an ``admin-action`` entry in the access log naming the API
client, the time and every field before and after (services.router.alerting.unit_store).
Routing reads the table at each batch, so a change addresses the next message; fallback
notices read the directory as it was when the router started."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.router.alerting import unit_store
from services.router.alerting.unit_directory import HSA_ID, Unit
from services.router.ops.api_clients import ApiCaller, as_admin
from services.router.ops.schema_base import ResponseModel

Admin = Annotated[ApiCaller, Depends(as_admin)]
HsaId = Annotated[str, Path(pattern=HSA_ID, description="the unit's HSA-id")]


class UnitOut(ResponseModel):
    hsaId: str
    name: str
    kind: str = Field(description="hospital-ward | home-care | social-services | primary-care")
    municipality: str | None = Field(description="kommunkod (4 digits) of a municipal unit")
    channel: str | None = Field(
        description="the destination system that delivers to it (treserva, primary-care, "
        "takecare); null: a contact for fallback notices only"
    )
    active: bool
    document: Unit = Field(description="the unit as the directory file spells it")


class UnitListOut(ResponseModel):
    items: list[UnitOut]


class UnitChangeOut(ResponseModel):
    changed: bool = Field(description="false: the unit was already so (nothing audited)")
    before: UnitOut | None
    after: UnitOut


def _out(unit: Unit) -> dict[str, Any]:
    return {
        "hsaId": unit.hsa_id,
        "name": unit.name,
        "kind": unit.kind.value,
        "municipality": unit.municipality,
        "channel": unit.channel,
        "active": unit.active,
        "document": unit,
    }


def _change(change: unit_store.UnitChange) -> dict[str, Any]:
    return {
        "changed": change.changed,
        "before": None if change.before is None else _out(change.before),
        "after": _out(change.after),
    }


def unit_routes(
    sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
) -> APIRouter:
    api = APIRouter(tags=["unit directory"])

    @api.get("/units", response_model=UnitListOut)
    async def list_units(active: bool = False) -> dict[str, Any]:
        """Every unit of the directory by HSA-id (``active=true``: only active ones)."""
        async with sessions() as session:
            units = await unit_store.list_units(session, active_only=active)
        return {"items": [_out(u) for u in units]}

    @api.put(
        "/units/{hsa_id}",
        response_model=UnitChangeOut,
        responses={
            409: {"description": "the municipality already has such a receiving unit"},
            422: {"description": "not a valid unit, or its hsaId differs from the path"},
        },
    )
    async def put_unit(hsa_id: HsaId, body: dict[str, Any], caller: Admin) -> dict[str, Any]:
        """Add the unit or replace it: the body is one unit as in the directory file
        (``hsaId`` must match the path). Admin only; audited with before and after. 409: an
        active unit of the same kind already receives the municipality's messages through
        the same channel (deactivate that one first)."""
        try:
            unit = Unit.model_validate(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "unit" for e in exc.errors()})
            raise HTTPException(422, f"not a valid unit: {', '.join(fields)}") from None
        if unit.hsa_id != hsa_id:
            raise HTTPException(422, "hsaId in the body differs from the path")
        async with sessions.begin() as session:
            rivals = await unit_store.rivals(session, unit)
            if rivals:
                raise HTTPException(
                    409,
                    f"municipality {unit.municipality} already receives through {unit.channel} "
                    f"at {', '.join(rivals)}: deactivate it first",
                )
            change = await unit_store.put_unit(
                session,
                unit,
                actor=f"API client {caller.name}",
                role=caller.role.value,
                now=clock(),
            )
        return _change(change)

    @api.post(
        "/units/{hsa_id}/deactivate",
        response_model=UnitChangeOut,
        responses={404: {"description": "no such unit"}},
    )
    async def deactivate(hsa_id: HsaId, caller: Admin) -> dict[str, Any]:
        """Deactivate the unit: it receives nothing more (a notice for it is dead-lettered
        with its reason), and it is kept for history. Admin only; audited."""
        async with sessions.begin() as session:
            change = await unit_store.deactivate_unit(
                session,
                hsa_id,
                actor=f"API client {caller.name}",
                role=caller.role.value,
                now=clock(),
            )
        if change is None:
            raise HTTPException(404, "no such unit")
        return _change(change)

    return api
