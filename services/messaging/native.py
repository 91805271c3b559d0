"""Native journal-system events and how an adapter takes them in or hands them out.

An adapter has one module per message family. Each inbound module offers an
:class:`InboundFamily` (native event → FHIR message) and each outbound module an
:class:`OutboundFamily` (FHIR message → the destination's native document). The contract
of every native document is a JSON Schema in ``contracts/<system>/``.

Exceptions::

    InvalidEvent      the document breaks its contract, or its consent block does not cover
                      it (``services.messaging.consent``); ``violations`` name path and rule
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, ConfigDict, ValidationError

from services.messaging.consent import ConsentBasis, basis_violations
from services.messaging.contracts import Violation, violations
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.families import FAMILIES
from services.messaging.identifiers import (
    RESERVE_KINDS,
    InvalidIdentifier,
    PatientIdentifier,
    check_identifier,
    parse_patient_identifier,
    refuse_future_birth,
)


class NativeModel(BaseModel):
    """Base of every native document model: immutable, aliases as in the contract."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class ConsentBlock(Protocol):
    """A native document's consent block (``services.messaging.consent``)."""

    def basis(self) -> ConsentBasis: ...

    def path(self, field: str) -> str:
        """The native path of the neutral ``field`` (``scope``, ``recipients``, …)."""
        ...


class NativeEvent(NativeModel):
    """A whole native document: it knows its business key, event, patient and the consent
    or legal basis it is shared on."""

    def consent_block(self) -> ConsentBlock:
        raise NotImplementedError

    def stay(self) -> tuple[str, str] | None:
        """The native path and value of the stay (vårdtillfälle) the document is about, or
        None: a withdrawal of consent for a stay stops every later document of it."""
        return None

    def cancels(self) -> tuple[str, BusinessKey] | None:
        """The native path and business key of the message of its own sender this document
        cancels (makulering), or None: the intake refuses a cancellation of a message it
        never accepted from the sender for the same patient."""
        return None

    def business_key(self) -> BusinessKey:
        raise NotImplementedError

    def event_code(self) -> EventCode:
        raise NotImplementedError

    def patient_identifier(self) -> PatientIdentifier:
        """Raise :class:`InvalidIdentifier` if the number is not valid. A regional reserve
        number comes without its region: the adapter's setting adds it."""
        raise NotImplementedError


E = TypeVar("E", bound=NativeEvent)
E_contra = TypeVar("E_contra", contravariant=True)


class ToBundle(Protocol[E_contra]):
    """Pure translation. ``now`` is the event's clock; ``regional_reserve_oid`` the OID of
    the region whose reserve numbers the source uses (None: it may send none)."""

    def __call__(
        self, event: E_contra, *, now: datetime, regional_reserve_oid: str | None = None
    ) -> Bundle: ...


class InvalidEvent(ValueError):
    """The document breaks its contract; ``violations`` say where, without patient data."""

    def __init__(self, found: list[Violation]) -> None:
        super().__init__(f"{len(found)} contract violation(s)")
        self.violations = found


@dataclass(frozen=True)
class InboundFamily(Generic[E]):
    """A native event type a journal system pushes to its adapter."""

    family: str  # the catalogue name (services.messaging.families)
    route: str  # URL segment: POST /<system>/v1/<route>
    schema: str  # contract path under contracts/
    model: type[E]
    to_bundle: ToBundle[E]
    identifier_path: str  # where the patient's personnummer sits, for error messages
    reserve_number_path: str  # and where a reserve number sits

    def parse(self, document: Any, *, now: datetime, regional_reserve_oid: str | None) -> E:
        """The event, or :class:`InvalidEvent`; ``now`` and the region's OID as for
        :func:`parse_event`. A consent block that does not cover this family and every
        receiver of it is refused too."""
        event = parse_event(
            self.model,
            self.schema,
            document,
            identifier_path=self.identifier_path,
            reserve_number_path=self.reserve_number_path,
            now=now,
            regional_reserve_oid=regional_reserve_oid,
        )
        catalogue = next(f for f in FAMILIES if f.name == self.family)
        if not catalogue.needs_consent:
            return event
        block = event.consent_block()
        source = System(event.business_key().source)
        found = basis_violations(
            block.basis(),
            family=self.family,
            destinations=catalogue.destinations(source),
            now=now,
        )
        if found:
            raise InvalidEvent([Violation(block.path(v.field), v.rule, v.message) for v in found])
        return event


FHIR_MESSAGE = "fhir-message"
"""An outbound family's ``schema`` when the receiver takes the FHIR message as it is."""


@dataclass(frozen=True)
class OutboundFamily:
    """A FHIR message family a destination journal receives in its native format."""

    family: str
    events: tuple[EventCode, ...]
    path: str  # the destination API path it is POSTed to
    schema: str  # contract of the native document, or FHIR_MESSAGE
    to_native: Callable[[dict[str, Any]], dict[str, Any]]  # pure: Bundle JSON → native


def parse_event(
    model: type[E],
    schema: str,
    document: Any,
    *,
    identifier_path: str,
    reserve_number_path: str,
    now: datetime,
    regional_reserve_oid: str | None,
) -> E:
    """Schema first, then the model, then what a schema cannot check: Luhn, calendar dates,
    a date of birth after ``now`` (the event's clock), and a regional reserve number where
    the adapter has no region OID (``regional_reserve_oid`` None) to label it with."""
    found = violations(schema, document)
    if found:
        # Report a bad check digit or date together with the schema's findings, so a
        # vendor sees every problem at once.
        raise InvalidEvent(
            found + _identifier_violations(document, identifier_path, found, now=now)
        )
    try:
        event = model.model_validate(document)
    except ValidationError as exc:
        raise InvalidEvent(
            [
                Violation(".".join(str(p) for p in err["loc"]), err["type"], err["msg"])
                for err in exc.errors(include_input=False)
            ]
        ) from None
    ident: PatientIdentifier | None = None
    try:
        ident = event.patient_identifier()
        check_identifier(ident, now=now, regional_reserve_oid=regional_reserve_oid)
    except InvalidIdentifier as exc:
        reserve = ident is not None and ident.kind in RESERVE_KINDS
        path = exc.field or (reserve_number_path if reserve else identifier_path)
        raise InvalidEvent([Violation(path, "identifier", str(exc))]) from None
    return event


def _identifier_violations(
    document: Any, identifier_path: str, found: list[Violation], *, now: datetime
) -> list[Violation]:
    if any(v.path == identifier_path for v in found):
        return []
    value: Any = document
    for part in identifier_path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str):
        return []
    try:
        refuse_future_birth(parse_patient_identifier(value), now=now)
    except InvalidIdentifier as exc:
        return [Violation(identifier_path, "identifier", str(exc))]
    return []
