"""An older version of a versioned document (SIP, medication list) delivered as a FHIR
message after a newer one: how the message says so, and how a reader finds out.

The MessageHeader carries the extension ``superseded-by`` (an Identifier: system
``urn:ietf:rfc:3986``, value ``urn:uuid:<the newer message id>``), and ``Bundle.meta.tag``
carries the plain code ``delivery-tag#superseded`` for receivers that sort by tag. No
``Coding.display`` names an id. Native documents use a field of their own instead
(``services.messaging.delivery.field_marker``).
"""

from __future__ import annotations

from typing import Any

from services.messaging.envelope import MessageHeaderMissing
from services.messaging.vocabulary import SUPERSEDED_BY_URL, SUPERSEDED_TAG_SYSTEM, URI_SYSTEM

SUPERSEDED_TAG = {"system": SUPERSEDED_TAG_SYSTEM, "code": "superseded"}
_URN = "urn:uuid:"


def mark_superseded(bundle: dict[str, Any], newer: str) -> None:
    """Mark the FHIR message ``bundle`` (JSON form, in place) as superseded by the message
    ``newer`` (its message id)."""
    header = _header(bundle)
    extensions = [x for x in header.get("extension") or [] if x.get("url") != SUPERSEDED_BY_URL]
    extensions.append(
        {
            "url": SUPERSEDED_BY_URL,
            "valueIdentifier": {"system": URI_SYSTEM, "value": f"{_URN}{newer}"},
        }
    )
    header["extension"] = extensions
    tags = bundle.setdefault("meta", {}).setdefault("tag", [])
    if SUPERSEDED_TAG not in tags:
        tags.append(dict(SUPERSEDED_TAG))


def superseded_by(bundle: dict[str, Any]) -> str | None:
    """The message id of the newer message that supersedes ``bundle``; None if none does."""
    for x in _header(bundle).get("extension") or []:
        if not isinstance(x, dict) or x.get("url") != SUPERSEDED_BY_URL:
            continue
        ident = x.get("valueIdentifier")
        value = ident.get("value") if isinstance(ident, dict) else None
        if (
            isinstance(ident, dict)
            and ident.get("system") == URI_SYSTEM
            and isinstance(value, str)
            and value.startswith(_URN)
        ):
            return value[len(_URN) :]
    return None


def _header(bundle: dict[str, Any]) -> dict[str, Any]:
    entries = bundle.get("entry") or []
    header = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    if not isinstance(header, dict) or header.get("resourceType") != "MessageHeader":
        raise MessageHeaderMissing()
    return header
