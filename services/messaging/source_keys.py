"""Settings fields every adapter has: for its source systems' keys, its own system's active
key hashes, and the other known systems' (so a key posted to the wrong intake is recognised
and answered 403, not 401). Both are JSON in the environment, for example
``ADAPTER_TAKECARE_INTAKE_KEY_HASHES='["<sha256 hex>", "<sha256 hex>"]'`` and
``ADAPTER_TAKECARE_PEER_KEY_HASHES='{"treserva": ["<sha256 hex>"]}'``. And the timing of
confirmation by read-back, for those of its destinations set to it (each destination's mode is
a field of the adapter's own settings, beside its URL). And the OID of the region whose own
reserve numbers the source system uses (``ADAPTER_TAKECARE_REGIONAL_RESERVE_OID``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from services.messaging.envelope import System
from services.messaging.identifiers import EXAMPLE_REGIONAL_RESERVE_OID, is_oid
from services.messaging.keys import SystemKeys, check_hashes
from services.messaging.read_back_store import ReadBackTerms
from services.messaging.settings import ServiceSettings


class SourceKeySettings(ServiceSettings):
    """A base for adapter settings; subclasses set ``SOURCE`` and the sandbox defaults."""

    SOURCE: ClassVar[System]  # the system whose intake this adapter is (a class constant)
    intake_key_hashes: list[str]
    peer_key_hashes: dict[System, list[str]]
    # A destination confirmed by read-back: its record is read back this long after it was
    # accepted, then every interval, until the delivery's confirmation deadline (the router
    # names it in the command; the window when it does not)
    read_back_first_s: float = Field(default=2.0, gt=0)
    read_back_interval_s: float = Field(default=30.0, gt=0)
    read_back_window_s: float = Field(default=900.0, gt=0)
    # The OID of the region whose own reserve numbers (regionala reservnummer) the source
    # system gives, from Inera's OID register, e.g. 1.2.752.97.3.1.3 for Region Stockholm's.
    # A regional number is sent under urn:oid:<this>. Unset: the sandbox uses the example
    # OID EXAMPLE_REGIONAL_RESERVE_OID; anywhere else a regional number is refused with a
    # 422, never labelled as the national reserve number.
    regional_reserve_oid: str | None = None
    # The reference FHIR validator (tools/fhir-validator served on loopback or an internal
    # network) that `$validate` asks about the FHIR side of a message. Unset: the FHIR side
    # is not checked and the answer says so; set but unreachable: 503, never a false "valid".
    fhir_validator_url: str | None = None
    fhir_validator_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("regional_reserve_oid")
    @classmethod
    def _an_oid(cls, value: str | None) -> str | None:
        if value is not None and not is_oid(value):
            raise ValueError("regional_reserve_oid must be an OID such as 1.2.752.97.3.1.3")
        return value

    def region_reserve_oid(self) -> str | None:
        """The region OID translation labels regional reserve numbers with (None: refuse)."""
        if self.regional_reserve_oid is None and self.in_sandbox:
            return EXAMPLE_REGIONAL_RESERVE_OID
        return self.regional_reserve_oid

    def refusals(self) -> list[str]:
        refusals = super().refusals()
        if self.regional_reserve_oid == EXAMPLE_REGIONAL_RESERVE_OID:
            refusals.append(
                f"{self.env('regional_reserve_oid')}: the sandbox's example OID; set the "
                "region's own OID, or leave it unset to refuse regional reserve numbers"
            )
        return refusals

    @field_validator("intake_key_hashes")
    @classmethod
    def _own_hashes(cls, value: list[str]) -> list[str]:
        return check_hashes(value)

    @field_validator("peer_key_hashes")
    @classmethod
    def _peer_hashes(cls, value: dict[System, list[str]]) -> dict[System, list[str]]:
        return {system: check_hashes(hashes) for system, hashes in value.items()}

    @model_validator(mode="after")
    def _one_system_per_key(self) -> SourceKeySettings:
        # A hash under two systems would let one pass as the other.
        held = [*self.intake_key_hashes, *(h for v in self.peer_key_hashes.values() for h in v)]
        if len(set(held)) != len(held) or self.SOURCE in self.peer_key_hashes:
            raise ValueError("each key hash belongs to exactly one system")
        return self

    def read_back_terms(self) -> ReadBackTerms:
        return ReadBackTerms(
            first_check_s=self.read_back_first_s,
            interval_s=self.read_back_interval_s,
            window_s=self.read_back_window_s,
        )

    def system_keys(self) -> SystemKeys:
        return SystemKeys({**self.peer_key_hashes, self.SOURCE: self.intake_key_hashes})

    def sandbox_key_hashes(self) -> dict[str, Iterable[str]]:
        return {
            **super().sandbox_key_hashes(),
            "intake_key_hashes": self.intake_key_hashes,
            "peer_key_hashes": [h for hashes in self.peer_key_hashes.values() for h in hashes],
        }
