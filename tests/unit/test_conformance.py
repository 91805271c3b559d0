"""The conformance resources in contracts/fhir/ (issue 21): every URL a golden message uses
resolves to one of them, every resource declares a profile that exists, the generator is
deterministic and the canonical base setting moves every URL."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from sandbox import conformance
from sandbox.conformance.concepts import SOURCES
from services.messaging import profiles
from services.messaging.canonical import CanonicalSettings
from services.messaging.contracts import CONTRACTS_DIR
from services.messaging.envelope import (
    EventCode,
    ResponseCode,
    System,
    response_message,
    to_json,
)
from services.messaging.vocabulary import BASE_URL, CODE_SYSTEMS, SE_BASE

FHIR_DIR = CONTRACTS_DIR / "fhir"
GOLDENS = sorted((CONTRACTS_DIR / "fixtures").glob("*/*/*.fhir.json"))
ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


CONFORMANCE = [_load(p) for p in sorted(FHIR_DIR.glob("*.json"))]
BY_URL: dict[str, dict[str, Any]] = {
    (r.get("url") or r["uniqueId"][0]["value"]): r for r in CONFORMANCE
}


def _resources(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield bundle
    for entry in bundle["entry"]:
        yield entry["resource"]


def _walk(node: Any, key: str | None = None) -> Iterator[tuple[str | None, Any, Any]]:
    """(key, value, parent) of every value under ``node``."""
    if isinstance(node, dict):
        for k, value in node.items():
            yield k, value, node
            yield from _walk(value, k)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _used_urls(doc: Any) -> Iterator[tuple[str, str]]:
    """(kind, url) of every system, extension url and profile in a message."""
    for key, value, parent in _walk(doc):
        if key == "system" and isinstance(value, str):
            yield "system", value
        elif key == "url" and isinstance(value, str) and "/" in value:
            yield "extension", value
        elif key == "profile" and isinstance(value, list):
            yield from (("profile", p) for p in value)
        elif key == "endpoint" and isinstance(value, str):
            yield "endpoint", value
        del parent


def test_there_are_goldens_and_conformance_resources() -> None:
    assert len(GOLDENS) > 50
    kinds = collections.Counter(r["resourceType"] for r in CONFORMANCE)
    assert kinds["MessageDefinition"] == len(profiles.EVENT_FOCUS)
    assert kinds["CapabilityStatement"] == 3
    assert kinds["CodeSystem"] == kinds["ValueSet"] == len(CODE_SYSTEMS)


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_project_url_in_a_golden_resolves(golden: Path) -> None:
    for kind, url in _used_urls(_load(golden)):
        assert "example.se" not in url
        if kind == "endpoint":
            assert url.startswith("urn:carebridge:system:")  # an address, not a code system
            continue
        assert not url.startswith("urn:carebridge:"), url
        if url.startswith(BASE_URL):
            assert url in BY_URL, f"{kind} {url} has no conformance resource"


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_resource_declares_a_profile_that_exists(golden: Path) -> None:
    for resource in _resources(_load(golden)):
        declared = resource.get("meta", {}).get("profile")
        assert declared, f"{resource['resourceType']} declares no profile"
        (profile,) = declared
        definition = BY_URL[profile]
        assert definition["resourceType"] == "StructureDefinition"
        assert definition["type"] == resource["resourceType"]
        assert definition["baseDefinition"].startswith("http://hl7.org/fhir/StructureDefinition/")


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_project_code_in_a_golden_is_in_its_code_system(golden: Path) -> None:
    for key, value, parent in _walk(_load(golden)):
        if key != "system" or not isinstance(value, str) or "code" not in parent:
            continue
        system = BY_URL.get(value)
        if value.startswith(BASE_URL) and system is not None and system["content"] == "complete":
            assert parent["code"] in {c["code"] for c in system["concept"]}, parent["code"]


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_focus_fits_the_message_definition(golden: Path) -> None:
    bundle = _load(golden)
    header = bundle["entry"][0]["resource"]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    definition = BY_URL[profiles.message_definition_url(header["eventCoding"]["code"])]
    focus = [by_url[f["reference"]] for f in header.get("focus", [])]
    for expected in definition.get("focus", []):
        found = [r for r in focus if r["meta"]["profile"][0] == expected["profile"]]
        assert expected["min"] <= len(found) <= int(expected["max"]), expected
    named = {f["profile"] for f in definition.get("focus", [])}
    assert all(r["meta"]["profile"][0] in named for r in focus)


def test_hsa_ids_of_units_and_staff_are_typed_prn() -> None:
    for golden in GOLDENS:
        for resource in _resources(_load(golden)):
            if resource["resourceType"] not in profiles.HSA_TYPED:
                continue
            for ident in resource.get("identifier", []):
                if ident["system"] == "urn:oid:1.2.752.29.4.19":
                    assert ident["type"]["coding"][0]["code"] == "PRN"


def test_protected_identity_uses_the_swedish_security_labels() -> None:
    labels = [
        label
        for golden in GOLDENS
        for resource in _resources(_load(golden))
        for label in resource.get("meta", {}).get("security", [])
        if label["code"] == "skyddadFolkbokforing"
    ]
    assert labels
    assert {label["system"] for label in labels} == {f"{SE_BASE}/CodeSystem/SecurityLabel"}


def test_every_declared_code_system_has_its_concepts() -> None:
    assert set(SOURCES) == set(CODE_SYSTEMS)


def test_the_generator_is_deterministic_and_matches_the_committed_files() -> None:
    assert conformance.generate() == conformance.generate()
    assert set(conformance.check(FHIR_DIR).values()) == {"ok"}


@pytest.mark.parametrize("resource", CONFORMANCE, ids=lambda r: f"{r['resourceType']}-{r['id']}")
def test_every_conformance_resource_parses_as_fhir(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_canonical_base_setting_changes_every_url() -> None:
    script = (
        "import json, sandbox.conformance as c\n"
        "from services.messaging import vocabulary as v\n"
        "print(json.dumps([v.BASE_URL, c.generate()]))\n"
    )
    env = {"CAREBRIDGE_CANONICAL_BASE": "https://fhir.region.test/carebridge/", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    base, files = json.loads(done.stdout)
    assert base == "https://fhir.region.test/carebridge"
    assert files.keys() == conformance.generate().keys()
    text = "".join(files.values())
    assert BASE_URL not in text
    for name in files:
        resource = json.loads(files[name])
        url = resource.get("url") or resource["uniqueId"][0]["value"]
        assert url.startswith(f"{base}/"), name


def test_the_canonical_base_must_be_an_absolute_url() -> None:
    assert CanonicalSettings().canonical_base == "https://carebridge.se/fhir"
    with pytest.raises(ValueError):
        CanonicalSettings(canonical_base="carebridge/fhir")


@pytest.mark.parametrize("code", list(ResponseCode))
def test_a_delivery_outcome_declares_profiles_that_exist(code: ResponseCode) -> None:
    bundle = json.loads(
        to_json(
            response_message(
                request_message_id="m-1",
                event=EventCode.DELIVERY_OUTCOME,
                responder=System.TRESERVA,
                code=code,
                diagnostics=None if code is ResponseCode.OK else "timeout",
                response_id="r-1",
                now=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
            )
        )
    )
    for resource in _resources(bundle):
        (profile,) = resource["meta"]["profile"]
        assert BY_URL[profile]["type"] == resource["resourceType"]


def _extensions_used(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(element path, extension url) of every extension under ``node`` (not its parts)."""
    if isinstance(node, list):
        for item in node:
            yield from _extensions_used(item, path)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "extension":
            for ext in value:
                yield path, ext["url"]
        elif key != "resource":
            yield from _extensions_used(value, f"{path}.{key}")


def _sliced_extensions(profile: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (e["path"].removesuffix(".extension"), t["profile"][0])
        for e in profile["differential"]["element"]
        if e["path"].endswith(".extension") and "sliceName" in e
        for t in e.get("type", [])
    }


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_extension_is_in_its_profile_and_its_context(golden: Path) -> None:
    """An extension on a resource or element is a slice of the resource's profile, and the
    extension's own context names where it sits (a datatype context, e.g. CodeableConcept,
    allows it on any element of that type)."""
    for resource in _resources(_load(golden)):
        profile = BY_URL[resource["meta"]["profile"][0]]
        sliced = _sliced_extensions(profile)
        for path, url in _extensions_used(resource, resource["resourceType"]):
            definition = BY_URL.get(url)
            if definition is None:  # HL7's own (patient-interpreterRequired)
                assert url.startswith("http://hl7.org/fhir/StructureDefinition/"), url
                assert (path, url) in sliced
                continue
            contexts = {c["expression"] for c in definition["context"]}
            if (path, url) in sliced:
                assert path in contexts, (path, url)
            else:  # only a datatype context lets an extension appear outside a slice
                assert contexts <= {"CodeableConcept"}, (path, url)


def _values_at(node: Any, steps: list[str]) -> list[Any]:
    """The values at a profile path (``event[x]`` read as its Coding form) under ``node``."""
    if not steps:
        return node if isinstance(node, list) else [node]
    if isinstance(node, list):
        return [v for item in node for v in _values_at(item, steps)]
    if not isinstance(node, dict):
        return []
    step = steps[0].replace("[x]", "Coding")
    return _values_at(node[step], steps[1:]) if step in node else []


def _matches(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches(value.get(k), p) for k, p in pattern.items()
        )
    if isinstance(pattern, list):  # every pattern item is matched by some value item
        return isinstance(value, list) and all(any(_matches(v, p) for v in value) for p in pattern)
    return bool(value == pattern)


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_resource_keeps_its_profiles_fixed_values_and_minimums(golden: Path) -> None:
    """The rules of each profile outside its slices: fixed and pattern values, minimums of
    top-level elements (slices are checked by the tests above, by system and url)."""
    for resource in _resources(_load(golden)):
        profile = BY_URL[resource["meta"]["profile"][0]]
        for rule in profile["differential"]["element"][1:]:
            if ":" in rule["id"] or rule["path"].endswith(".extension"):
                continue
            steps = rule["path"].split(".")[1:]
            values = _values_at(resource, steps)
            for key in ("fixedUri", "fixedCode", "patternCoding", "patternCodeableConcept"):
                if key in rule:
                    assert all(_matches(v, rule[key]) for v in values), (rule["id"], key)
            if rule.get("min", 0) >= 1 and len(steps) == 1:
                assert len(values) >= rule["min"], rule["id"]
