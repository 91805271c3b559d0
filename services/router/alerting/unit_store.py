"""The unit directory in the router's database (``care_unit``): seeded from the directory file
(:mod:`services.router.alerting.unit_directory`) when the table is empty, then kept by admins
through the ops API and CLI: list, add or update, deactivate. Units are never deleted.

Every change is an ``admin-action`` entry on the access log's chain, in the change's own
transaction, naming who (the API client or person of the token), when, and each field before
and after. A unit's contact details are a care unit's, never patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import serialize
from services.router.alerting.unit_directory import Unit, UnitDirectory
from services.router.audit.admin_actions import record_admin_action
from services.router.routing.tables import care_unit

SEEDED_BY = "seed"


@dataclass(frozen=True, slots=True)
class UnitChange:
    """What an add, update or deactivation did: the unit before (None: added) and after."""

    before: Unit | None
    after: Unit

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _row(unit: Unit, *, now: datetime, by: str) -> dict[str, Any]:
    return dict(
        hsa_id=unit.hsa_id,
        kind=unit.kind.value,
        municipality=unit.municipality,
        channel=unit.channel,
        active=unit.active,
        document=unit.document(),
        updated_at=now,
        updated_by=by[:100],
    )


async def seed_if_empty(session: AsyncSession, directory: UnitDirectory, now: datetime) -> int:
    """Write the file's units when the table holds none; how many were written. A table
    kept through the API is never overwritten by the file again. Replicas starting together
    (two routers on PostgreSQL) take turns: the second finds the first one's rows."""
    await serialize(session, "care_unit:seed")
    count = (await session.execute(select(func.count()).select_from(care_unit))).scalar_one()
    if count:
        return 0
    rows = [_row(u, now=now, by=SEEDED_BY) for u in directory.units.values()]
    await session.execute(care_unit.insert(), rows)
    return len(rows)


async def list_units(session: AsyncSession, *, active_only: bool = False) -> list[Unit]:
    query = select(care_unit.c.document).order_by(care_unit.c.hsa_id)
    if active_only:
        query = query.where(care_unit.c.active.is_(True))
    return [Unit.model_validate(doc) for (doc,) in (await session.execute(query)).all()]


async def get_unit(session: AsyncSession, hsa_id: str) -> Unit | None:
    found = await session.execute(
        select(care_unit.c.document).where(care_unit.c.hsa_id == hsa_id).with_for_update()
    )
    doc = found.scalar_one_or_none()
    return None if doc is None else Unit.model_validate(doc)


async def rivals(session: AsyncSession, unit: Unit) -> list[str]:
    """Other active units that would receive the same municipality's messages through the
    same channel as ``unit`` (a municipality has one receiving home-care unit per journal
    system; two would leave routing unable to choose, and it dead-letters such notices)."""
    if not unit.active or unit.channel is None or unit.municipality is None:
        return []
    if not unit.kind.municipal:
        return []  # vårdcentraler are addressed by their own HSA-id, several per municipality
    found = await session.execute(
        select(care_unit.c.hsa_id).where(
            care_unit.c.active.is_(True),
            care_unit.c.channel == unit.channel,
            care_unit.c.kind == unit.kind.value,
            care_unit.c.municipality == unit.municipality,
            care_unit.c.hsa_id != unit.hsa_id,
        )
    )
    return sorted(found.scalars())


async def put_unit(
    session: AsyncSession, unit: Unit, *, actor: str, role: str, now: datetime
) -> UnitChange:
    """Add ``unit`` or replace the unit of its HSA-id, audited; nothing is written (and
    nothing audited) when it is unchanged."""
    before = await get_unit(session, unit.hsa_id)
    change = UnitChange(before, unit)
    if not change.changed:
        return change
    row = _row(unit, now=now, by=actor)
    if before is None:
        await session.execute(care_unit.insert(), [row])
    else:
        await session.execute(
            update(care_unit).where(care_unit.c.hsa_id == unit.hsa_id).values(**row)
        )
    await _audit(session, change, actor=actor, role=role, now=now)
    return change


async def deactivate_unit(
    session: AsyncSession, hsa_id: str, *, actor: str, role: str, now: datetime
) -> UnitChange | None:
    """Mark the unit inactive (it receives nothing more), audited; None: no such unit."""
    before = await get_unit(session, hsa_id)
    if before is None:
        return None
    return await put_unit(
        session,
        Unit.model_validate({**before.document(), "active": False}),
        actor=actor,
        role=role,
        now=now,
    )


async def load_directory(session: AsyncSession, base: UnitDirectory) -> UnitDirectory:
    """``base`` (the file's region, time zone, switchboard and defaults) with the table's
    units in place of the file's."""
    units = await list_units(session)
    if not units:
        return base
    return replace(base, units={u.hsa_id: u for u in units})


async def _audit(
    session: AsyncSession, change: UnitChange, *, actor: str, role: str, now: datetime
) -> None:
    after = change.after
    if change.before is None:
        what, detail = "unit added", _fields(None, after.document())
    elif change.before.active and not after.active:
        what, detail = "unit deactivated", _fields(change.before.document(), after.document())
    else:
        what, detail = "unit updated", _fields(change.before.document(), after.document())
    await record_admin_action(
        session,
        actor=actor,
        role=role,
        action=what,
        detail=f"{after.hsa_id}: {detail}",
        now=now,
    )


def _fields(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """``field: before → after`` for each field that changed (``-``: absent)."""
    keys = sorted(set(after) | set(before or {}))
    old = before or {}
    parts = [
        f"{k}: {_show(old.get(k))} → {_show(after.get(k))}"
        for k in keys
        if old.get(k) != after.get(k)
    ]
    return "; ".join(parts) or "no change"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
