"""Reading the guide's inputs from the repository (the only module here that reads files).

Conformance resources: every ``*.json`` under the conformance directory (default
``contracts/fhir``). Mapping pages: the ``*.md`` files directly in it. Examples: the golden
FHIR messages ``contracts/fixtures/<source>/<family>/<name>.fhir.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sandbox.guide.model import Example, GuideInputs, InvalidResource, MappingPage, Resource

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = ROOT / "contracts" / "fhir"
FIXTURES_DIR = ROOT / "contracts" / "fixtures"
GUIDE_DIR = ROOT / "docs" / "guide"

# FHIR's id datatype: it also names the page, so nothing else may pass
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def read_resource(path: Path) -> Resource:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidResource(f"{path.name}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise InvalidResource(f"{path.name}: no resourceType")
    if not isinstance(document.get("id"), str) or not _FHIR_ID.match(document["id"]):
        raise InvalidResource(f"{path.name}: no valid FHIR id")
    return Resource(document=document, file_name=path.name)


def read_inputs(
    conformance_dir: Path = CONFORMANCE_DIR, fixtures_dir: Path = FIXTURES_DIR
) -> GuideInputs:
    resources = tuple(read_resource(p) for p in sorted(conformance_dir.rglob("*.json")))
    mapping = tuple(
        MappingPage(file_name=p.name, text=p.read_text(encoding="utf-8"))
        for p in sorted(conformance_dir.glob("*.md"))
    )
    examples = tuple(
        Example(
            source=p.parent.parent.name,
            family=p.parent.name,
            name=p.name.removesuffix(".fhir.json"),
            document=json.loads(p.read_text(encoding="utf-8")),
        )
        for p in sorted(fixtures_dir.glob("*/*/*.fhir.json"))
    )
    return GuideInputs(resources=resources, mapping=mapping, examples=examples)
