"""Extension StructureDefinitions, one per :data:`services.messaging.vocabulary.EXTENSIONS`
entry: its contexts, and its value types or its parts."""

from __future__ import annotations

from typing import Any

from sandbox.conformance.common import CORE, FHIR_VERSION, element, metadata, url_slicing
from services.messaging.vocabulary import CODE_SYSTEMS, ExtensionDecl, ExtensionPart


def _value(
    path: str,
    id: str,
    types: tuple[str, ...],
    *,
    binding: str | None,
    target: str | None,
    min: int = 0,
) -> dict[str, Any]:
    found = element(
        path,
        id,
        min=min,
        type=[
            {"code": t, "targetProfile": [f"{CORE}/{target}"]}
            if t == "Reference" and target
            else {"code": t}
            for t in types
        ],
    )
    if binding is not None:
        bound = CODE_SYSTEMS[binding]  # a list the project does not copy cannot be required
        strength = "required" if bound.complete else "example"
        found["binding"] = {"strength": strength, "valueSet": bound.value_set}
    return found


def _part(part: ExtensionPart) -> list[dict[str, Any]]:
    sliced = f"Extension.extension:{part.name}"
    return [
        element(
            "Extension.extension",
            sliced,
            sliceName=part.name,
            short=part.description,
            min=part.min,
            max="1",
        ),
        element("Extension.extension.extension", f"{sliced}.extension", max="0"),
        element("Extension.extension.url", f"{sliced}.url", fixedUri=part.name),
        _value(
            "Extension.extension.value[x]",
            f"{sliced}.value[x]",
            part.types,
            binding=part.binding,
            target=part.target,
            min=1,
        ),
    ]


def extension_definition(decl: ExtensionDecl) -> dict[str, Any]:
    root = element("Extension", short=decl.title, definition=decl.description)
    if decl.parts:
        differential = [
            root,
            url_slicing("Extension.extension"),
            *(e for part in decl.parts for e in _part(part)),
            element("Extension.url", fixedUri=decl.url),
            element("Extension.value[x]", max="0"),
        ]
    else:
        differential = [
            root,
            element("Extension.extension", max="0"),
            element("Extension.url", fixedUri=decl.url),
            _value(
                "Extension.value[x]",
                "Extension.value[x]",
                decl.types,
                binding=decl.binding,
                target=None,
                min=1,
            ),
        ]
    return {
        **metadata("StructureDefinition", decl.id, decl.title, decl.description),
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": c} for c in decl.contexts],
        "type": "Extension",
        "baseDefinition": f"{CORE}/Extension",
        "derivation": "constraint",
        "differential": {"element": differential},
    }
