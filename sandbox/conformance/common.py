"""What every generated conformance resource shares: its metadata and the element helpers
of a differential."""

from __future__ import annotations

from html import escape
from typing import Any

from services.messaging.vocabulary import BASE_URL

FHIR_VERSION = "4.0.1"
VERSION = "0.1.0"  # of the conformance resources, raised with a breaking change
DATE = "2026-12-07"  # fixed: the generator is deterministic
PUBLISHER = "carebridge"
JURISDICTION = [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "SE", "display": "Sweden"}]}]
CORE = "http://hl7.org/fhir/StructureDefinition"


def canonical(kind: str, id: str) -> str:
    return f"{BASE_URL}/{kind}/{id}"


def pascal(id: str) -> str:
    """A computable name (``^[A-Z][A-Za-z0-9_]*$``) from a kebab-case id."""
    return "".join(part[:1].upper() + part[1:] for part in id.replace(".", "-").split("-"))


def narrative(title: str, description: str) -> dict[str, str]:
    """A short generated narrative (dom-6: a resource should have one)."""
    body = f"<p><b>{escape(title)}</b></p><p>{escape(description)}</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def metadata(kind: str, id: str, title: str, description: str) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "id": id,
        "text": narrative(title, description),
        "url": canonical(kind, id),
        "version": VERSION,
        "name": pascal(id),
        "title": title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": description,
        "jurisdiction": JURISDICTION,
    }


def element(path: str, id: str | None = None, **rules: Any) -> dict[str, Any]:
    return {"id": id or path, "path": path, **rules}


def url_slicing(path: str, id: str | None = None) -> dict[str, Any]:
    return element(
        path,
        id,
        slicing={"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
    )


def system_slicing(path: str, description: str) -> dict[str, Any]:
    return element(
        path,
        slicing={
            "discriminator": [{"type": "value", "path": "system"}],
            "description": description,
            "rules": "open",
        },
    )


def extension_slice(
    path: str, name: str, url: str, *, min: int = 0, max: str = "1"
) -> dict[str, Any]:
    return element(
        path,
        f"{path}:{name}",
        sliceName=name,
        min=min,
        max=max,
        type=[{"code": "Extension", "profile": [url]}],
    )


def identifier_slice(
    path: str,
    name: str,
    system: str,
    *,
    short: str,
    max: str = "1",
    type_coding: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    sliced = f"{path}:{name}"
    found = [
        element(path, sliced, sliceName=name, short=short, min=0, max=max),
        element(f"{path}.system", f"{sliced}.system", min=1, fixedUri=system),
        element(f"{path}.value", f"{sliced}.value", min=1),
    ]
    if type_coding is not None:
        found.insert(
            1,
            element(
                f"{path}.type",
                f"{sliced}.type",
                min=1,
                patternCodeableConcept={"coding": [type_coding]},
            ),
        )
    return found
