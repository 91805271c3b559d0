"""The implementation guide as the tests make it: the sample conformance resources of
tests/unit/guide_samples (a profile with a slice and a binding, an extension, a code system,
value sets, a naming system, messages, a capability statement), the real mapping pages and the
real golden FHIR fixtures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sandbox.guide.load import CONFORMANCE_DIR, FIXTURES_DIR, read_inputs, read_resource
from sandbox.guide.model import GuideInputs

SAMPLES = Path(__file__).resolve().parents[1] / "unit" / "guide_samples"


def sample_inputs() -> GuideInputs:
    real = read_inputs(CONFORMANCE_DIR, FIXTURES_DIR)
    samples = tuple(read_resource(p) for p in sorted(SAMPLES.glob("*.json")))
    return dataclasses.replace(real, resources=samples)


def write_samples(into: Path) -> None:
    """The samples and the mapping pages in one folder, as contracts/fhir will hold them."""
    into.mkdir(parents=True, exist_ok=True)
    for path in [*SAMPLES.glob("*.json"), *CONFORMANCE_DIR.glob("*.md")]:
        (into / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")


def load_sample(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return document
