"""The canonical base of every URL this project owns: its CodeSystems, ValueSets, extensions,
NamingSystems, profiles, MessageDefinitions and CapabilityStatements (``contracts/fhir/``).

One setting, ``CAREBRIDGE_CANONICAL_BASE``, read once when this module is imported. Its default,
``https://carebridge.se/fhir``, is a domain the project is to own and serve the conformance
resources from; a deployment that publishes them elsewhere (a region's own FHIR registry) sets
it before the services start, and every URL follows. Translation stays pure: translators read
module constants computed from it at import, never the environment while they run.
"""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CANONICAL_BASE = "https://carebridge.se/fhir"


class CanonicalSettings(BaseSettings):
    """``CAREBRIDGE_CANONICAL_BASE``: an absolute http(s) URL without a trailing slash."""

    model_config = SettingsConfigDict(env_prefix="CAREBRIDGE_", extra="ignore")

    canonical_base: str = DEFAULT_CANONICAL_BASE

    @field_validator("canonical_base")
    @classmethod
    def _absolute(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("https://", "http://")) or " " in value or "|" in value:
            raise ValueError("the canonical base must be an absolute http(s) URL")
        return value


CANONICAL_BASE: str = CanonicalSettings().canonical_base
"""Computed once, at import: every project URL derives from it."""
