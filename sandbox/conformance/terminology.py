"""CodeSystem and ValueSet per project CodeSystem, NamingSystem per project identifier system."""

from __future__ import annotations

from typing import Any

from sandbox.conformance.common import DATE, JURISDICTION, PUBLISHER, metadata, narrative
from sandbox.conformance.concepts import concepts_of
from services.messaging.vocabulary import CodeSystemDecl, NamingSystemDecl


def code_system(decl: CodeSystemDecl) -> dict[str, Any]:
    concepts = concepts_of(decl.id)
    found = {
        **metadata("CodeSystem", decl.id, decl.title, decl.description),
        "caseSensitive": True,
        "valueSet": decl.value_set,
        # a national list not copied is a fragment of the codes used, so a validator checks
        # those and only warns about others (not-present would let it check nothing)
        "content": "complete" if decl.complete else "fragment",
    }
    if decl.complete:
        found["count"] = len(concepts)
    found["concept"] = [{"code": c, "display": d} for c, d in concepts.items()]
    return found


def value_set(decl: CodeSystemDecl) -> dict[str, Any]:
    return {
        **metadata("ValueSet", decl.id, decl.title, f"All codes of {decl.url}."),
        "compose": {"include": [{"system": decl.url}]},
    }


def naming_system(decl: NamingSystemDecl) -> dict[str, Any]:
    return {
        "resourceType": "NamingSystem",
        "id": decl.id,
        "text": narrative(decl.title, decl.description),
        "name": "".join(w[:1].upper() + w[1:] for w in decl.id.split("-")),
        "status": "active",
        "kind": "identifier",
        "date": DATE,
        "publisher": PUBLISHER,
        "description": f"{decl.title}: {decl.description}",
        "jurisdiction": JURISDICTION,
        "uniqueId": [{"type": "uri", "value": decl.url, "preferred": True}],
    }
