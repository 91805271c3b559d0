"""FHIR messages for adapter_treserva, translated from TakeCare's admission-notice fixtures."""

import json
from datetime import UTC, datetime

from sandbox.contracts_cli import fixtures_of
from services.messaging.envelope import System
from tests.support.translation import _translate

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


FIXTURES = fixtures_of(System.TAKECARE, "admission-notice")


def fhir(name):
    return _translate(json.loads((FIXTURES[0].parent / name).read_text(encoding="utf-8")))
