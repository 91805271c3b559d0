"""What each conformance resource's page shows, as plain data for its template: the
differential of a profile or extension, the concepts of a code system, the includes of a
value set, a message's event, focus and responses, a capability statement's REST and
messaging parts. Every reference is a :class:`~sandbox.guide.site.Link` already written for
the page it is on. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.guide.model import Resource
from sandbox.guide.site import FHIR_R4, Link, Linker, core_spec_url

Json = Mapping[str, Any]


def _list(document: Json, key: str) -> list[Json]:
    value = document.get(key, [])
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class TypeRef:
    code: Link
    profiles: list[Link] = field(default_factory=list)


@dataclass(frozen=True)
class ElementRow:
    """One element of a StructureDefinition's differential."""

    path: str
    depth: int
    slice_name: str | None
    cardinality: str
    types: list[TypeRef]
    values: list[tuple[str, str]]  # fixed[x] / pattern[x]: (element name, value)
    binding: tuple[str, Link | None] | None  # (strength, value set)
    slicing: str | None
    must_support: bool
    short: str


_DATATYPES = {
    "Address", "Age", "Annotation", "Attachment", "CodeableConcept", "Coding", "ContactPoint",
    "Count", "Distance", "Duration", "HumanName", "Identifier", "Money", "Period", "Quantity",
    "Range", "Ratio", "SampledData", "Signature", "Timing",
}  # fmt: skip
_ELSEWHERE = {
    "Reference": "references.html#Reference",
    "Extension": "extensibility.html#Extension",
    "Meta": "resource.html#Meta",
    "Narrative": "narrative.html#Narrative",
    "Dosage": "dosage.html#Dosage",
}


def type_link(code: str) -> Link:
    """A datatype or resource type, linked to its definition in the R4 specification."""
    if code in _ELSEWHERE:
        return Link(text=code, href=f"{FHIR_R4}/{_ELSEWHERE[code]}", external=True)
    if code[:1].islower() or code in _DATATYPES:
        return Link(text=code, href=f"{FHIR_R4}/datatypes.html#{code}", external=True)
    return Link(text=code, href=core_spec_url(code), external=True)


def element_rows(resource: Resource, to: Linker) -> list[ElementRow]:
    differential = resource.document.get("differential", {})
    rows = []
    for element in _list(differential, "element"):
        path = str(element.get("id") or element.get("path", ""))
        minimum, maximum = element.get("min"), element.get("max")
        cardinality = (
            f"{'' if minimum is None else minimum}..{'' if maximum is None else maximum}"
            if minimum is not None or maximum is not None
            else ""
        )
        types = [
            TypeRef(
                code=type_link(str(t.get("code", ""))),
                profiles=to.canonicals([*t.get("profile", []), *t.get("targetProfile", [])]),
            )
            for t in _list(element, "type")
        ]
        values = [
            (k, _compact(v)) for k, v in element.items() if k.startswith(("fixed", "pattern"))
        ]
        binding = element.get("binding")
        bound = None
        if isinstance(binding, dict):
            value_set = binding.get("valueSet")
            bound = (
                str(binding.get("strength", "")),
                to.canonical(value_set) if isinstance(value_set, str) else None,
            )
        rows.append(
            ElementRow(
                path=path,
                depth=str(element.get("path", "")).count("."),
                slice_name=element.get("sliceName"),
                cardinality=cardinality,
                types=types,
                values=values,
                binding=bound,
                slicing=_slicing(element.get("slicing")),
                must_support=element.get("mustSupport") is True,
                short=str(element.get("short", "")),
            )
        )
    return rows


def _slicing(slicing: Any) -> str | None:
    if not isinstance(slicing, dict):
        return None
    discriminators = ", ".join(
        f"{d.get('type')}:{d.get('path')}" for d in _list(slicing, "discriminator")
    )
    rules = slicing.get("rules", "")
    ordered = " ordered" if slicing.get("ordered") else ""
    return f"by {discriminators or '—'}; {rules}{ordered}"


def base_link(resource: Resource, to: Linker) -> Link | None:
    base = resource.document.get("baseDefinition")
    return to.canonical(base) if isinstance(base, str) else None


def contexts(resource: Resource) -> list[str]:
    return [f"{c.get('type')}: {c.get('expression')}" for c in _list(resource.document, "context")]


@dataclass(frozen=True)
class Concept:
    code: str
    display: str
    definition: str
    depth: int


def concepts(document: Json, depth: int = 0) -> Iterator[Concept]:
    for concept in _list(document, "concept"):
        yield Concept(
            code=str(concept.get("code", "")),
            display=str(concept.get("display", "")),
            definition=str(concept.get("definition", "")),
            depth=depth,
        )
        yield from concepts(concept, depth + 1)


@dataclass(frozen=True)
class Include:
    system: Link | None
    version: str
    concepts: list[tuple[str, str]]  # (code, display)
    filters: list[str]
    value_sets: list[Link]


def includes(resource: Resource, to: Linker, key: str = "include") -> list[Include]:
    compose = resource.document.get("compose", {})
    found = []
    for include in _list(compose, key):
        system = include.get("system")
        found.append(
            Include(
                system=to.canonical(system) if isinstance(system, str) else None,
                version=str(include.get("version", "")),
                concepts=[
                    (str(c.get("code", "")), str(c.get("display", "")))
                    for c in _list(include, "concept")
                ],
                filters=[
                    f"{f.get('property')} {f.get('op')} {f.get('value')}"
                    for f in _list(include, "filter")
                ],
                value_sets=to.canonicals(include.get("valueSet", [])),
            )
        )
    return found


@dataclass(frozen=True)
class Focus:
    code: Link
    profile: Link | None
    cardinality: str


@dataclass(frozen=True)
class MessageView:
    event: list[tuple[str, Link]]  # (label, link): the event's system, and its code
    category: str
    focus: list[Focus]
    response_required: str
    responses: list[tuple[Link, str]]  # (message definition, situation)


def message_view(resource: Resource, to: Linker) -> MessageView:
    doc = resource.document
    event: list[tuple[str, Link]] = []
    coding = doc.get("eventCoding")
    if isinstance(coding, dict):
        event.append(("system", to.canonical(str(coding.get("system", "")))))
        event.append(("code", Link(text=str(coding.get("code", "")))))
    elif isinstance(doc.get("eventUri"), str):
        event.append(("uri", to.canonical(doc["eventUri"])))
    focus = [
        Focus(
            code=type_link(str(f.get("code"))),
            profile=to.canonical(f["profile"]) if isinstance(f.get("profile"), str) else None,
            cardinality=f"{f.get('min', 0)}..{f.get('max', '*')}",
        )
        for f in _list(doc, "focus")
    ]
    responses = [
        (to.canonical(str(r.get("message", ""))), str(r.get("situation", "")))
        for r in _list(doc, "allowedResponse")
    ]
    return MessageView(
        event=event,
        category=str(doc.get("category", "")),
        focus=focus,
        response_required=str(doc.get("responseRequired", "")),
        responses=responses,
    )


@dataclass(frozen=True)
class RestResource:
    type: Link
    profile: Link | None
    supported: list[Link]
    interactions: str


@dataclass(frozen=True)
class CapabilityView:
    summary: list[tuple[str, str]]
    rest: list[tuple[str, list[RestResource], list[tuple[str, Link]]]]  # mode, resources, ops
    messaging: list[tuple[list[str], list[tuple[str, Link]]]]  # endpoints, (mode, definition)


def capability_view(resource: Resource, to: Linker) -> CapabilityView:
    doc = resource.document
    software = doc.get("software", {})
    summary = [
        ("kind", str(doc.get("kind", ""))),
        ("FHIR version", str(doc.get("fhirVersion", ""))),
        ("formats", ", ".join(str(f) for f in doc.get("format", []))),
        ("software", " ".join(str(software.get(k, "")) for k in ("name", "version")).strip()),
    ]
    rest = []
    for part in _list(doc, "rest"):
        resources = [
            RestResource(
                type=type_link(str(r.get("type"))),
                profile=to.canonical(r["profile"]) if isinstance(r.get("profile"), str) else None,
                supported=to.canonicals(r.get("supportedProfile", [])),
                interactions=", ".join(str(i.get("code")) for i in _list(r, "interaction")),
            )
            for r in _list(part, "resource")
        ]
        operations = [
            (str(o.get("name", "")), to.canonical(str(o.get("definition", ""))))
            for o in _list(part, "operation")
        ]
        rest.append((str(part.get("mode", "")), resources, operations))
    messaging = []
    for part in _list(doc, "messaging"):
        endpoints = [
            f"{e.get('protocol', {}).get('code', '')} {e.get('address', '')}".strip()
            for e in _list(part, "endpoint")
        ]
        supported = [
            (str(m.get("mode", "")), to.canonical(str(m.get("definition", ""))))
            for m in _list(part, "supportedMessage")
        ]
        messaging.append((endpoints, supported))
    return CapabilityView(summary=summary, rest=rest, messaging=messaging)


def unique_ids(resource: Resource) -> list[tuple[str, str, str]]:
    """A NamingSystem's unique ids: (type, value, preferred)."""
    return [
        (str(u.get("type", "")), str(u.get("value", "")), "yes" if u.get("preferred") else "")
        for u in _list(resource.document, "uniqueId")
    ]
