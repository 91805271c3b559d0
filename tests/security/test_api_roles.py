"""The router's JSON API knows which client calls and gives it only what its role allows: a
viewer reads metadata, an operator also acts and opens patient data (logged under its name),
an admin also manages subscriptions and payload keys."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from services.messaging.keys import hash_key
from services.router.alerting.unit_directory import GOTLAND_PATH, UnitDirectory
from services.router.ops.api_clients import ApiClient, ApiClients
from services.router.ops.app import create_app
from services.router.settings import RouterSettings
from tests.support.router_api import platform_resolver

pytestmark = pytest.mark.security

VIEWER, OPERATOR, ADMIN = "viewer-key-0123456789", "operator-key-0123456789", "sandbox-ops-token"
CLIENTS = {
    "monitoring": {"role": "viewer", "key_hashes": [hash_key(VIEWER)]},
    "oncall": {"role": "operator", "key_hashes": [hash_key("old-oncall-key"), hash_key(OPERATOR)]},
}
REASONED = {"operator": "asa", "reason": "uppföljning efter avvikelse"}
SUBSCRIPTION = {
    "name": "Regionens kommunikationsplattform",
    "criteria": {"events": ["admission-notice"]},
    "channel": {"type": "rest-hook", "endpoint": "https://platform.example.se/hooks/cb"},
    "secret": "platform-secret-0123456789",
}
# (method, path, body): what only an operator (or more) may do
OPERATOR_ONLY = [
    ("POST", "/api/v1/messages/00000000-0000-0000-0000-000000000000/payload", REASONED),
    ("POST", "/api/v1/messages/search/personnummer", {**REASONED, "personnummer": "191212121212"}),
    ("POST", "/api/v1/replays", {**REASONED, "messageIds": ["m-1"]}),
    ("POST", "/api/v1/alerts/1/acknowledge", {"operator": "asa", "note": "tar den"}),
    ("POST", "/api/v1/alerts/1/resolve", {"operator": "asa", "note": "löst"}),
]
_UNIT = UnitDirectory.load(GOTLAND_PATH).units["SE2120000803-HSMO"].document()
ADMIN_ONLY = [
    ("POST", "/api/v1/subscriptions", SUBSCRIPTION),
    ("GET", "/api/v1/payload-keys", None),
    ("POST", "/api/v1/payload-keys/rotate", {}),
    ("POST", "/api/v1/payloads/prune", {}),
    # the unit directory (issue 20): added, then deactivated, by an admin only
    ("PUT", f"/api/v1/units/{_UNIT['hsaId']}", _UNIT),
    ("POST", f"/api/v1/units/{_UNIT['hsaId']}/deactivate", None),
]
READS = ["/api/v1/messages", "/api/v1/alerts", "/api/v1/dashboard", "/api/v1/access-log"]


@pytest.fixture
async def call(sessions):
    settings = RouterSettings.model_validate({"api_clients": CLIENTS})
    app = create_app(settings, sessions=sessions, resolver=platform_resolver())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as client:

        async def send(key: str | None, method: str, path: str, body: object = None):
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return await client.request(method, path, json=body, headers=headers)

        yield send


@pytest.mark.parametrize(
    "key", [None, "not-a-key", hash_key(VIEWER)], ids=["none", "wrong", "hash"]
)
async def test_no_key_or_a_wrong_one_is_401_everywhere(call, key):
    for path in READS:
        res = await call(key, "GET", path)
        assert res.status_code == 401, path
        assert res.headers["www-authenticate"] == "Bearer"


async def test_a_viewer_reads_metadata_but_cannot_act_or_open_patient_data(call):
    for path in READS:
        assert (await call(VIEWER, "GET", path)).status_code == 200, path
    for method, path, body in OPERATOR_ONLY + ADMIN_ONLY:
        res = await call(VIEWER, method, path, body)
        assert res.status_code == 403, (path, res.text)
        assert "viewer" in res.json()["detail"]


async def test_an_operator_acts_but_cannot_administer(call):
    for method, path, body in OPERATOR_ONLY:
        res = await call(OPERATOR, method, path, body)
        assert res.status_code not in (401, 403), (path, res.text)
    assert (await call("old-oncall-key", "GET", "/api/v1/messages")).status_code == 200
    for method, path, body in ADMIN_ONLY:
        assert (await call(OPERATOR, method, path, body)).status_code == 403, path


async def test_the_operator_token_is_admin(call):
    for method, path, body in ADMIN_ONLY:
        res = await call(ADMIN, method, path, body)
        assert res.status_code in (200, 201), (path, res.text)


async def test_the_access_log_names_the_client_that_vouched_never_the_body(call):
    res = await call(OPERATOR, "POST", *OPERATOR_ONLY[1][1:])
    assert res.status_code == 200, res.text
    entries = (await call(VIEWER, "GET", "/api/v1/access-log")).json()["items"]
    assert [e["actor"] for e in entries] == ["API client oncall"]  # the body said "asa"
    assert [e["role"] for e in entries] == ["operator"]


@pytest.mark.parametrize(
    "clients",
    [
        {"ops": {"role": "viewer", "key_hashes": [hash_key("x")]}},
        {
            "a": {"role": "viewer", "key_hashes": [hash_key("same")]},
            "b": {"role": "admin", "key_hashes": [hash_key("same")]},
        },
        {"a": {"role": "viewer", "key_hashes": [hash_key("ops-token-0123456789")]}},
    ],
    ids=["the-ops-name", "one-key-two-clients", "the-ops-tokens-key"],
)
def test_a_key_that_could_pass_as_another_client_is_refused(clients):
    parsed = {name: ApiClient.model_validate(c) for name, c in clients.items()}
    with pytest.raises(ValueError):
        ApiClients.build(parsed, "ops-token-0123456789")
    with pytest.raises(ValidationError):  # the router does not start on it
        RouterSettings.model_validate({"api_clients": clients, "ops_token": "ops-token-0123456789"})


def test_a_client_has_one_or_two_active_keys():
    three = [hash_key(k) for k in ("a", "b", "c")]
    with pytest.raises(ValidationError):
        ApiClient.model_validate({"role": "viewer", "key_hashes": three})
    with pytest.raises(ValidationError):
        ApiClient.model_validate({"role": "root", "key_hashes": three[:1]})
