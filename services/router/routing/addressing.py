"""Addressing by unit (issue 20): which unit of a destination system receives a message.

Receivers are units, not systems. A notice to Treserva goes to the home-care unit of the
patient's municipality of residence (folkbokföringskommun, by its kommunkod); a notice to
primary care goes to the patient's listed vårdcentral (by its HSA-id). The units come from the
unit directory (``care_unit``, services.router.alerting.unit_store), read once per batch.

A patient's data must never reach another municipality, so no message falls back to "some
unit" of the system. When no unit can be named, :meth:`Receivers.address` says why and the
router dead-letters that delivery with the reason (a critical incident; replayable once the
directory is fixed). The only defaults are safe ones:

* a message naming no municipality, in a region whose receiving home-care units all belong to
  one municipality (Gotland, one region and one municipality), goes to that municipality;
* a message naming no listed vårdcentral goes to the region's primary-care reception (the
  directory file's ``destinations["primary-care"]``) only when that unit is in the patient's
  municipality (or the region has one municipality).

Pure except for :func:`load_receivers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.care_facts import CareFacts
from services.messaging.envelope import System
from services.router.alerting.unit_directory import UnitKind
from services.router.routing.tables import care_unit

# destination system → the kind of unit that receives its messages
ADDRESSED: dict[str, UnitKind] = {
    System.TRESERVA.value: UnitKind.HOME_CARE,
    System.PRIMARY_CARE.value: UnitKind.PRIMARY_CARE,
}


@dataclass(frozen=True, slots=True)
class Addressing:
    """Routing's rule to address by unit (``RoutingRules.addressing``; None: deliveries name
    no unit, as before issue 20). ``defaults``: the directory file's ``destinations``."""

    defaults: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receiver:
    """An active unit reached through a destination system (a row of ``care_unit``)."""

    hsa_id: str
    kind: str
    municipality: str | None
    channel: str


@dataclass(frozen=True, slots=True)
class Address:
    """The unit a delivery goes to (None: the destination is not addressed by unit), or
    why none can be named (``refused``: the delivery is dead-lettered with it)."""

    unit_hsa: str | None = None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class Receivers:
    units: tuple[Receiver, ...]
    # destination system → the region's default receiving unit (the directory file's
    # ``destinations``), used only where it cannot reach another municipality
    defaults: dict[str, str] = field(default_factory=dict)

    def address(self, destination: str, facts: CareFacts) -> Address:
        kind = ADDRESSED.get(destination)
        if kind is None:
            return Address()
        own = [u for u in self.units if u.channel == destination and u.kind == kind.value]
        if kind is UnitKind.HOME_CARE:
            return self._home_care(own, facts.municipality)
        return self._primary_care(own, facts)

    def _home_care(self, own: list[Receiver], municipality: str | None) -> Address:
        if municipality is None:
            only = {u.municipality for u in own}
            if len(only) != 1:
                return Address(
                    refused="no municipality of residence in the message, and the region's "
                    "home-care units serve several municipalities"
                )
            municipality = only.pop()
        found = [u for u in own if u.municipality == municipality]
        if not found:
            return Address(
                refused=f"no active home-care unit of municipality {municipality} in the "
                "unit directory"
            )
        if len(found) > 1:
            chosen = [u for u in found if u.hsa_id == self.defaults.get(System.TRESERVA.value)]
            if len(chosen) != 1:
                return Address(
                    refused=f"{len(found)} active home-care units of municipality "
                    f"{municipality} receive from Treserva; the directory must name one"
                )
            found = chosen
        return Address(unit_hsa=found[0].hsa_id)

    def _primary_care(self, own: list[Receiver], facts: CareFacts) -> Address:
        by_id = {u.hsa_id: u for u in own}
        listed = facts.listed_unit_hsa
        if listed is not None:
            if listed not in by_id:
                return Address(
                    refused=f"listed vårdcentral {listed} is not an active primary-care unit "
                    "in the unit directory"
                )
            return Address(unit_hsa=listed)
        default = by_id.get(self.defaults.get(System.PRIMARY_CARE.value, ""))
        municipalities = {u.municipality for u in self.units if u.municipality is not None}
        same = (
            default is not None
            and default.municipality is not None
            and (
                default.municipality == facts.municipality
                or (facts.municipality is None and municipalities == {default.municipality})
            )
        )
        if default is None or not same:
            return Address(refused="no listed vårdcentral in the message")
        return Address(unit_hsa=default.hsa_id)


async def load_receivers(session: AsyncSession, defaults: dict[str, str]) -> Receivers:
    """The directory's active units that some destination system reaches."""
    rows = await session.execute(
        select(care_unit.c.hsa_id, care_unit.c.kind, care_unit.c.municipality, care_unit.c.channel)
        .where(care_unit.c.active.is_(True), care_unit.c.channel.is_not(None))
        .order_by(care_unit.c.hsa_id)
    )
    return Receivers(
        tuple(Receiver(r.hsa_id, r.kind, r.municipality, r.channel) for r in rows),
        dict(defaults),
    )
