"""The unit directory: who to tell when a care-transition message does not arrive.

Keyed by HSA-id (the national id of a care unit, ``urn:oid:1.2.752.29.4.19``), each unit has a
name, a phone number, an email address, the hours it answers the phone (telefontid: "dygnet
runt" or windows such as weekdays 07–21) and, optionally, an on-call contact (beredskap) for
the hours outside them. For each destination system the directory also names the unit that
receives a message when the message itself names none (Treserva → the home care reception).

Addressing by unit (issue 20): a unit may also carry its municipality (kommunkod, the four
digits of SCB's code; required for home-care and social-services units) and its ``channel``,
the destination system through which messages reach it (``treserva``, ``primary-care``,
``takecare``); a unit without a channel is only a contact for fallback notices. The router
keeps the directory in its ``care_unit`` table, seeded from this file when the table is empty
(services.router.alerting.unit_store) and kept through the ops API and CLI afterwards.

The data lives in ``contracts/units/<region>.json`` and is validated when loaded; a directory
that does not validate stops the router at start-up rather than losing a notice later. Public
holidays are not modelled: a holiday counts as the weekday it falls on.

The shipped directories are the sandbox's (made-up HSA-ids, phone numbers and addresses) and
say so (``"sandbox": true``): ``halland.json``, a fictive region of three municipalities and
two vårdcentraler, is the sandbox's default (:data:`SANDBOX_PATH`); ``gotland.json`` (one
region that is also one municipality) is chosen explicitly. Outside the sandbox the router has
no default directory and refuses one marked sandbox (services.router.settings and
services.router.service): a patient's data is never routed on made-up units.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

UNITS_DIR = Path(__file__).resolve().parents[3] / "contracts" / "units"
SANDBOX_REGIONS = ("halland", "gotland")  # the shipped directories, the sandbox's default first
SANDBOX_PATH = UNITS_DIR / "halland.json"
GOTLAND_PATH = UNITS_DIR / "gotland.json"


def sandbox_directory(region: str) -> Path:
    """The shipped (sandbox) directory of ``region``: ``halland`` or ``gotland``."""
    if region not in SANDBOX_REGIONS:
        raise ValueError(f"no sandbox region {region!r}: {' or '.join(SANDBOX_REGIONS)}")
    return UNITS_DIR / f"{region}.json"


HSA_ID = r"^SE[0-9]{10}-[0-9A-Z]{1,20}$"
KOMMUNKOD = r"^[0-9]{4}$"  # SCB's municipality code, e.g. 0980 Gotland, 1380 Halmstad
PHONE = r"^0[1-9][0-9]{1,3}-[0-9]{2}( [0-9]{2}){1,3}$"  # Swedish style, e.g. 0498-55 13 03
EMAIL = r"^[^@\s]+@[a-z0-9.-]+\.[a-z]{2,}$"

Days = Literal["vardagar", "helger", "alla dagar"]
_WEEKDAYS: dict[str, frozenset[int]] = {
    "vardagar": frozenset(range(5)),
    "helger": frozenset({5, 6}),
    "alla dagar": frozenset(range(7)),
}
AROUND_THE_CLOCK = "dygnet runt"


class UnitDirectoryError(ValueError):
    """The directory file is missing, not JSON, or does not validate."""


class UnitKind(enum.StrEnum):
    HOSPITAL_WARD = "hospital-ward"  # vårdavdelning (TakeCare)
    HOME_CARE = "home-care"  # hemsjukvård / hemtjänst (Treserva)
    PRIMARY_CARE = "primary-care"  # vårdcentral
    SOCIAL_SERVICES = "social-services"  # socialtjänst, biståndshandläggning (Treserva)

    @property
    def called(self) -> str:
        """What staff call such a unit on the phone ("ring avdelningen")."""
        return {
            UnitKind.HOSPITAL_WARD: "avdelningen",
            UnitKind.HOME_CARE: "enheten",
            UnitKind.PRIMARY_CARE: "vårdcentralen",
            UnitKind.SOCIAL_SERVICES: "enheten",
        }[self]

    @property
    def municipal(self) -> bool:
        """A unit of a municipality (kommun), which must name its kommunkod."""
        return self in (UnitKind.HOME_CARE, UnitKind.SOCIAL_SERVICES)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Window(_Model):
    """One stretch of telefontid on the given days, local time (Europe/Stockholm)."""

    days: Days
    start: time = Field(alias="from")
    end: time = Field(alias="to")

    @model_validator(mode="after")
    def _forward(self) -> Window:
        if self.end <= self.start:
            raise ValueError("a window ends after it starts (use 'dygnet runt' for all day)")
        return self

    def covers(self, local: datetime) -> bool:
        return local.weekday() in _WEEKDAYS[self.days] and self.start <= local.time() < self.end

    def text(self) -> str:
        return f"{self.days} {_hhmm(self.start)}–{_hhmm(self.end)}"


class Contact(_Model):
    phone: str = Field(pattern=PHONE)
    email: str | None = Field(default=None, pattern=EMAIL)
    description: str = Field(min_length=1, max_length=100)  # e.g. "sjuksköterska i beredskap"


class Unit(_Model):
    hsa_id: str = Field(alias="hsaId", pattern=HSA_ID)
    name: str = Field(min_length=1, max_length=120)
    kind: UnitKind
    phone: str = Field(pattern=PHONE)
    email: str = Field(pattern=EMAIL)
    hours: Literal["dygnet runt"] | list[Window]
    on_call: Contact | None = Field(default=None, alias="onCall")
    # addressing (issue 20): the kommunkod of a municipal unit; the destination system that
    # delivers to it (None: a contact for fallback notices only); a deactivated unit
    # receives nothing and is kept for history
    municipality: str | None = Field(default=None, pattern=KOMMUNKOD)
    channel: Literal["treserva", "primary-care", "takecare"] | None = None
    active: bool = True

    @model_validator(mode="after")
    def _some_hours(self) -> Unit:
        if not self.hours:
            raise ValueError("hours: 'dygnet runt' or at least one window")
        if self.kind.municipal and self.municipality is None:
            raise ValueError(f"a {self.kind.value} unit names its municipality (kommunkod)")
        return self

    def document(self) -> dict[str, object]:
        """The unit as the directory file spells it (aliases, no unset defaults)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def always_open(self) -> bool:
        return self.hours == AROUND_THE_CLOCK

    def is_open(self, at: datetime, tz: ZoneInfo) -> bool:
        if isinstance(self.hours, str):
            return True
        local = at.astimezone(tz)
        return any(w.covers(local) for w in self.hours)

    def next_opening(self, at: datetime, tz: ZoneInfo) -> datetime:
        """``at`` if the unit answers now, else the start of its next window."""
        if self.is_open(at, tz) or isinstance(self.hours, str):
            return at
        local = at.astimezone(tz)
        starts = [
            datetime.combine(local.date() + timedelta(days=d), w.start, tz)
            for d in range(8)
            for w in self.hours
            if (local.weekday() + d) % 7 in _WEEKDAYS[w.days]
        ]
        return min(s for s in starts if s > local)

    def hours_text(self) -> str:
        if isinstance(self.hours, str):
            return AROUND_THE_CLOCK
        return ", ".join(w.text() for w in self.hours)


class _DirectoryFile(_Model):
    region: str
    comment: str | None = Field(default=None, alias="_comment")
    sandbox: bool = False  # made-up units: refused outside the sandbox
    timezone: str = "Europe/Stockholm"
    switchboard: Contact
    units: list[Unit] = Field(min_length=1)
    destinations: dict[str, str]  # destination system → HSA-id of its default receiving unit

    @model_validator(mode="after")
    def _consistent(self) -> _DirectoryFile:
        ids = [u.hsa_id for u in self.units]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"HSA-ids listed twice: {', '.join(duplicates)}")
        unknown = sorted(h for h in self.destinations.values() if h not in ids)
        if unknown:
            raise ValueError(f"destinations name units not in the directory: {', '.join(unknown)}")
        ZoneInfo(self.timezone)  # raises on an unknown zone
        return self


@dataclass(frozen=True, slots=True)
class UnitDirectory:
    region: str
    tz: ZoneInfo
    switchboard: Contact
    units: dict[str, Unit]
    destinations: dict[str, str]
    sandbox: bool = False  # the file's made-up units (refused outside the sandbox)

    @classmethod
    def from_json(cls, data: object) -> UnitDirectory:
        try:
            parsed = _DirectoryFile.model_validate(data)
        except ValidationError as exc:
            raise UnitDirectoryError(f"unit directory does not validate: {exc}") from None
        return cls(
            region=parsed.region,
            tz=ZoneInfo(parsed.timezone),
            switchboard=parsed.switchboard,
            units={u.hsa_id: u for u in parsed.units},
            destinations=dict(parsed.destinations),
            sandbox=parsed.sandbox,
        )

    @classmethod
    def load(cls, path: Path | str) -> UnitDirectory:
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UnitDirectoryError(f"cannot read unit directory {file}: {exc}") from None
        return cls.from_json(data)

    def receivers(self) -> list[Unit]:
        """The active units some destination system delivers to."""
        return [u for u in self.units.values() if u.active and u.channel is not None]

    def unit(self, hsa_id: str | None) -> Unit | None:
        return self.units.get(hsa_id) if hsa_id else None

    def receiving_unit(self, destination: str, receiver_hsa: str | None = None) -> Unit | None:
        """The unit the message names, else the destination's default receiving unit."""
        return self.unit(receiver_hsa) or self.unit(self.destinations.get(destination))

    def unit_with_email(self, email: str) -> Unit | None:
        """The unit a fallback email went to: its own address or its on-call's."""
        for unit in self.units.values():
            if email in (unit.email, unit.on_call.email if unit.on_call else None):
                return unit
        return None


def _hhmm(t: time) -> str:
    return f"{t.hour:02d}" if t.minute == 0 else f"{t.hour:02d}.{t.minute:02d}"
