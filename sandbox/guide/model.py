"""What the guide is made of, as read from the repository: conformance resources, the
Markdown mapping pages and the golden FHIR messages. Plain data; no I/O here.

Errors (one hierarchy)::

    GuideError                  the inputs cannot make a guide
    ├── InvalidResource         a conformance file that is no FHIR resource we can place
    └── DuplicatePage           two inputs would be written to the same page
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class GuideError(Exception):
    """The inputs cannot make a guide."""


class InvalidResource(GuideError):
    """A conformance file that is no FHIR resource the guide can place."""


class DuplicatePage(GuideError):
    """Two inputs would be written to the same page."""


class Kind(enum.Enum):
    """Which section of the guide a conformance resource belongs to: (folder, heading)."""

    PROFILE = ("profiles", "Profiles")
    EXTENSION = ("extensions", "Extensions")
    CODE_SYSTEM = ("codesystems", "Code systems")
    VALUE_SET = ("valuesets", "Value sets")
    NAMING_SYSTEM = ("namingsystems", "Naming systems")
    MESSAGE = ("messages", "Messages")
    CAPABILITY = ("capabilities", "Capability statements")
    OTHER = ("resources", "Other conformance resources")

    @property
    def folder(self) -> str:
        return self.value[0]

    @property
    def heading(self) -> str:
        return self.value[1]


_KIND_OF_TYPE = {
    "CodeSystem": Kind.CODE_SYSTEM,
    "ValueSet": Kind.VALUE_SET,
    "NamingSystem": Kind.NAMING_SYSTEM,
    "MessageDefinition": Kind.MESSAGE,
    "CapabilityStatement": Kind.CAPABILITY,
}


@dataclass(frozen=True)
class Resource:
    """One FHIR conformance resource, as its file holds it (``<ResourceType>-<id>.json``)."""

    document: Mapping[str, Any]
    file_name: str

    @property
    def resource_type(self) -> str:
        return str(self.document["resourceType"])

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def url(self) -> str | None:
        url = self.document.get("url")
        return url if isinstance(url, str) else None

    @property
    def title(self) -> str:
        for key in ("title", "name", "id"):
            value = self.document.get(key)
            if isinstance(value, str) and value:
                return value
        return self.id

    @property
    def kind(self) -> Kind:
        if self.resource_type == "StructureDefinition":
            if self.document.get("type") == "Extension":
                return Kind.EXTENSION
            return Kind.PROFILE
        return _KIND_OF_TYPE.get(self.resource_type, Kind.OTHER)

    def canonicals(self) -> list[str]:
        """Every URI this resource is known by: its ``url``, and a NamingSystem's unique ids
        (an OID written ``urn:oid:…``, as identifiers carry it)."""
        found = [self.url] if self.url else []
        if self.resource_type == "NamingSystem":
            for unique in self.document.get("uniqueId", []):
                value = unique.get("value")
                if not isinstance(value, str):
                    continue
                if unique.get("type") == "oid" and not value.startswith("urn:oid:"):
                    value = f"urn:oid:{value}"
                found.append(value)
        return found


@dataclass(frozen=True)
class MappingPage:
    """One Markdown page of ``contracts/fhir`` (``README.md`` or ``<family>.md``)."""

    file_name: str
    text: str

    @property
    def stem(self) -> str:
        return self.file_name.removesuffix(".md")


@dataclass(frozen=True)
class Example:
    """A golden FHIR message of ``contracts/fixtures/<source>/<family>/<name>.fhir.json``."""

    source: str
    family: str
    name: str
    document: Mapping[str, Any]

    @property
    def fixture_path(self) -> str:
        return f"contracts/fixtures/{self.source}/{self.family}/{self.name}.fhir.json"

    def event(self) -> tuple[str, str] | None:
        """(system, code) of the MessageHeader's eventCoding, if the bundle has one."""
        for entry in self.document.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "MessageHeader":
                coding = resource.get("eventCoding", {})
                system, code = coding.get("system"), coding.get("code")
                if isinstance(system, str) and isinstance(code, str):
                    return system, code
                return None
        return None


@dataclass(frozen=True)
class GuideInputs:
    """Everything the guide is generated from."""

    resources: tuple[Resource, ...] = ()
    mapping: tuple[MappingPage, ...] = ()
    examples: tuple[Example, ...] = ()
