"""Code and contracts must not drift apart."""

import yaml

from services.contracts_cli import check_fixtures, check_schemas
from services.messaging import topics
from services.messaging.contracts import CONTRACTS_DIR


def test_asyncapi_documents_exactly_the_topics_in_code():
    doc = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    documented = {channel["address"] for channel in doc["channels"].values()}
    assert documented == set(topics.all_topics())


def test_every_schema_is_valid_draft_2020_12():
    results = check_schemas()
    assert len(results) >= 3
    assert [r for r in results if r.status != "ok"] == []


def test_every_fixture_matches_its_golden_output():
    results = check_fixtures()
    assert len(results) >= 6
    assert [(r.fixture, r.golden, r.status) for r in results if r.status != "ok"] == []
