"""Source systems authenticate with their own keys and may post only their own families."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import httpx
import pytest
from pydantic import ValidationError

from services.adapter_takecare.app import create_app
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging import intake_http, keys
from services.messaging.envelope import System
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.payload_crypto import encode_keyring, new_key
from tests.support.adapters import NOW, TAKECARE_KEY, TRESERVA_KEY, bearer
from tests.support.settings import SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security

ADMISSIONS = "/takecare/v1/admissions"


def assert_outcome(res, status: int, code: str) -> None:
    assert res.status_code == status
    assert res.headers["content-type"].startswith("application/fhir+json")
    body = res.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-key-anyone-was-given"),
        bearer(TAKECARE_KEY + "x"),
        {"authorization": f"Basic {TAKECARE_KEY}"},
        {"authorization": "Bearer "},
        {"authorization": keys.hash_key(TAKECARE_KEY)},  # the stored hash is not a key
        bearer(keys.hash_key(TAKECARE_KEY)),
    ],
    ids=["none", "unknown", "near-miss", "basic", "empty", "bare-hash", "hash-as-key"],
)
async def test_no_or_wrong_key_is_401_with_a_challenge(takecare, admission, stored, headers):
    for path in (ADMISSIONS, f"{ADMISSIONS}/$validate", "/takecare/v1/receipts"):
        res = await takecare.post(path, json=admission, headers=headers)
        assert_outcome(res, 401, "login")
        assert res.headers["www-authenticate"].startswith("Bearer")
    assert await stored() == (0, 0)


async def test_another_systems_key_is_403_and_nothing_is_stored(
    takecare, admission, treserva_list, stored
):
    # Treserva may send medication lists, but not as TakeCare, and never admissions.
    res = await takecare.post(ADMISSIONS, json=admission, headers=bearer(TRESERVA_KEY))
    assert_outcome(res, 403, "forbidden")
    res = await takecare.post(
        "/takecare/v1/medication-lists", json=treserva_list, headers=bearer(TRESERVA_KEY)
    )
    assert_outcome(res, 403, "forbidden")
    res = await takecare.post("/takecare/v1/receipts", json={}, headers=bearer(TRESERVA_KEY))
    assert_outcome(res, 403, "forbidden")
    assert await stored() == (0, 0)


async def test_takecare_may_not_post_to_treservas_intake(treserva, treserva_list, stored):
    res = await treserva.post(
        "/treserva/v1/lakemedelslistor", json=treserva_list, headers=bearer(TAKECARE_KEY)
    )
    assert_outcome(res, 403, "forbidden")
    assert await stored() == (0, 0)
    res = await treserva.post(
        "/treserva/v1/lakemedelslistor", json=treserva_list, headers=bearer(TRESERVA_KEY)
    )
    assert res.status_code == 202, res.text
    assert await stored() == (1, 1)


async def test_a_family_the_catalogue_does_not_give_a_system_is_403(
    sessions, admission, stored, monkeypatch
):
    # If an intake ever offered a family its system does not send, the catalogue still rules.
    monkeypatch.setattr(intake_http, "may_send", lambda source, family: False)
    app = create_app(
        AdapterTakeCareSettings(),
        store=GroupedIntakeStore(sessions, "adapter_takecare"),
        sessions=sessions,
        clock=lambda: NOW,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.post(ADMISSIONS, json=admission, headers=bearer(TAKECARE_KEY))
    assert_outcome(res, 403, "forbidden")
    assert await stored() == (0, 0)


async def test_two_active_keys_rotate_without_downtime(takecare_app, admission, stored):
    old, new = keys.new_key(), keys.new_key()
    during = takecare_app(intake_key_hashes=[keys.hash_key(old), keys.hash_key(new)])
    first = await during.post(ADMISSIONS, json=admission, headers=bearer(old))
    assert first.status_code == 202
    admission["eventId"] = "tc-2026-000002"
    second = await during.post(ADMISSIONS, json=admission, headers=bearer(new))
    assert second.status_code == 202
    after = takecare_app(intake_key_hashes=[keys.hash_key(new)])  # the old key withdrawn
    admission["eventId"] = "tc-2026-000003"
    assert (await after.post(ADMISSIONS, json=admission, headers=bearer(old))).status_code == 401
    assert (await after.post(ADMISSIONS, json=admission, headers=bearer(new))).status_code == 202
    assert await stored() == (3, 3)


def test_settings_hold_one_or_two_sha256_hashes_only():
    one = keys.hash_key(keys.new_key())
    with pytest.raises(ValidationError, match="1 to 2"):
        AdapterTakeCareSettings(intake_key_hashes=[one, one, one])
    with pytest.raises(ValidationError, match="1 to 2"):
        AdapterTakeCareSettings(intake_key_hashes=[])
    with pytest.raises(ValidationError, match="64 hex"):
        AdapterTakeCareSettings(intake_key_hashes=["sandbox-takecare-key"])  # a key, not a hash
    with pytest.raises(ValidationError, match="exactly one system"):
        AdapterTakeCareSettings(intake_key_hashes=[one], peer_key_hashes={System.TRESERVA: [one]})


@pytest.mark.parametrize(
    ("cls", "real"),
    [
        (
            AdapterTakeCareSettings,
            {
                "takecare_token": "t" * 40,
                "primary_care_token": "p" * 40,
                "takecare_url": "https://takecare.example.se",
                "primary_care_url": "https://primary-care.example.se",
            },
        ),
        (
            AdapterTreservaSettings,
            {"treserva_token": "t" * 40, "treserva_url": "https://treserva.example.se"},
        ),
    ],
)
def test_production_refuses_the_sandbox_key_hashes(cls, real):
    fresh = {
        "pseudonym_key": "k" * 40,
        "payload_keys": encode_keyring("k1", {"k1": new_key()}),
        **SECURE_KAFKA,
        **SECURE_HTTP,
        **real,
    }
    own, peer = keys.hash_key(keys.new_key()), keys.hash_key(keys.new_key())
    other = System.TRESERVA if cls is AdapterTakeCareSettings else System.TAKECARE
    with pytest.raises(ValidationError, match="_INTAKE_KEY_HASHES: holds the hash of a published"):
        cls(environment="production", **fresh, peer_key_hashes={other: [peer]})
    sandbox_peer = cls().peer_key_hashes
    with pytest.raises(ValidationError, match="_PEER_KEY_HASHES: holds the hash of a published"):
        cls(
            environment="production", **fresh, intake_key_hashes=[own], peer_key_hashes=sandbox_peer
        )
    ok = cls(
        environment="production", **fresh, intake_key_hashes=[own], peer_key_hashes={other: [peer]}
    )
    assert ok.intake_key_hashes == [own]


def test_hashes_come_from_the_environment_as_json(monkeypatch):
    a, b = keys.hash_key("a" * 43), keys.hash_key("b" * 43)
    monkeypatch.setenv("ADAPTER_TAKECARE_INTAKE_KEY_HASHES", json.dumps([a, b.upper()]))
    c = keys.hash_key("c" * 43)
    monkeypatch.setenv("ADAPTER_TAKECARE_PEER_KEY_HASHES", json.dumps({"treserva": [c]}))
    settings = AdapterTakeCareSettings()
    assert settings.intake_key_hashes == [a, b]
    assert settings.system_keys().identify(f"Bearer {'b' * 43}") is System.TAKECARE
    assert settings.system_keys().identify(f"Bearer {'c' * 43}") is System.TRESERVA


def test_the_key_cli_prints_a_key_once_with_its_hash():
    out = io.StringIO()
    with redirect_stdout(out):
        assert keys.main(["new"]) == 0
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line)
    key, digest = lines["key"].strip(), lines["hash"].strip()
    assert len(key) >= 43 and keys.hash_key(key) == digest
    ring = keys.SystemKeys({System.TAKECARE: keys.check_hashes([digest])})
    assert ring.identify(f"Bearer {key}") is System.TAKECARE
    assert ring.identify(f"Bearer {digest}") is None


def test_the_key_cli_hashes_a_key_from_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(TAKECARE_KEY + "\n"))
    out = io.StringIO()
    with redirect_stdout(out):
        assert keys.main(["hash"]) == 0
    assert out.getvalue().strip() == AdapterTakeCareSettings().intake_key_hashes[0]
