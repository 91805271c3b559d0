"""adapter_takecare intake: HTTP behaviour (fake store) and durable storage (real database)."""

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from sandbox.contracts_cli import FIXTURE_REGIONAL_RESERVE_OID
from services.adapter_takecare.app import create_app
from services.adapter_takecare.families.admission_notice import INBOUND
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.messaging import topics
from services.messaging.identifiers import EXAMPLE_REGIONAL_RESERVE_OID
from services.messaging.intake import (
    ConflictingResend,
    FakeIntakeStore,
    SqlIntakeStore,
    accept_event,
)
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.intake_tables import intake_record
from services.messaging.outbox import outbox


async def accept_admission(document, *, store, pseudonym_key, now):
    return await accept_event(
        document,
        INBOUND,
        store=store,
        pseudonym_key=pseudonym_key,
        now=now,
        regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
    )


FIXTURE = Path("contracts/fixtures/takecare/admission-notice/personnummer-full.input.json")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TOKEN = "sandbox-takecare-key"


@pytest.fixture
def event():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture
def store():
    return FakeIntakeStore()


@pytest.fixture
async def client(store):
    app = create_app(AdapterTakeCareSettings(), store=store, sessions=None, clock=lambda: NOW)
    async with _client_of(app) as c:
        yield c


def _client_of(app) -> httpx.AsyncClient:
    """TakeCare's client of ``app``, with its intake key."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://tc",
        headers={"authorization": f"Bearer {TOKEN}"},
    )


async def test_accepts_and_answers_with_the_message_id(client, store, event):
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 202
    body = res.json()
    assert body["duplicate"] is False
    (record,) = store.outbox
    assert record.topic == topics.INBOUND
    assert record.headers["message-id"] == body["messageId"]
    assert "19121212" not in (record.key or "") and "Tolvan" not in json.dumps(record.headers)


async def test_a_repeated_post_returns_the_same_id_and_creates_nothing(client, store, event):
    first = (await client.post("/takecare/v1/admissions", json=event)).json()
    second = await client.post("/takecare/v1/admissions", json=event)
    assert second.status_code == 202
    assert second.json() == {"messageId": first["messageId"], "duplicate": True}
    assert len(store.outbox) == 1


async def test_same_event_id_with_changed_content_is_a_conflict(client, store, event):
    await client.post("/takecare/v1/admissions", json=event)
    event["admissionReason"] = "Något annat"
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 409
    assert res.json()["issue"][0]["code"] == "conflict"
    assert len(store.outbox) == 1


async def test_a_new_version_is_a_new_message(client, store, event):
    first = (await client.post("/takecare/v1/admissions", json=event)).json()
    event["version"] = 2
    event["expectedDischargeAt"] = "2026-11-25T12:00:00+01:00"
    second = (await client.post("/takecare/v1/admissions", json=event)).json()
    assert second["messageId"] != first["messageId"] and len(store.outbox) == 2


async def test_unauthenticated_is_401(client, event):
    res = await client.post(
        "/takecare/v1/admissions", json=event, headers={"authorization": "Bearer wrong"}
    )
    assert res.status_code == 401
    assert res.json()["resourceType"] == "OperationOutcome"


async def test_wrong_content_type_is_415(client, event):
    res = await client.post(
        "/takecare/v1/admissions", content=json.dumps(event), headers={"content-type": "text/plain"}
    )
    assert res.status_code == 415


async def test_oversized_body_is_413(client, event, store):
    event["careNeedsAssessment"] = "x" * 600_000
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 413
    assert store.outbox == []


async def test_broken_json_is_400(client):
    res = await client.post(
        "/takecare/v1/admissions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 400
    assert res.json()["issue"][0]["code"] == "structure"


async def test_invalid_personnummer_is_422_without_echoing_patient_data(client, event):
    event["patient"]["personalIdentityNumber"] = "19121212-1213"
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    outcome = res.json()
    assert outcome["issue"][0]["expression"] == ["patient.personalIdentityNumber"]
    assert "1213" not in res.text and "Tolvan" not in res.text


async def test_missing_required_fields_are_each_reported(client, event):
    del event["expectedDischargeAt"]
    del event["patient"]["registeredAddress"]
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    paths = [i["expression"][0] for i in res.json()["issue"]]
    assert "expectedDischargeAt" in paths and "patient.registeredAddress" in paths


SQL_STORES = [SqlIntakeStore, GroupedIntakeStore]  # one event at a time; grouped (the adapters')


@pytest.mark.parametrize("sql_store", SQL_STORES)
async def test_sql_store_writes_intake_and_outbox_in_one_go(sessions, event, sql_store):
    store = sql_store(sessions, "adapter_takecare")
    first = await accept_admission(event, store=store, pseudonym_key="k", now=NOW)
    again = await accept_admission(event, store=store, pseudonym_key="k", now=NOW)
    assert again.message_id == first.message_id and again.duplicate
    changed = {**event, "admissionReason": "Annat"}
    with pytest.raises(ConflictingResend):
        await accept_admission(changed, store=store, pseudonym_key="k", now=NOW)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(intake_record)) == 1
        assert await s.scalar(select(func.count()).select_from(outbox)) == 1


@pytest.mark.parametrize("sql_store", SQL_STORES)
async def test_concurrent_identical_posts_create_one_message(sessions, event, sql_store):
    store = sql_store(sessions, "adapter_takecare")
    results = await asyncio.gather(
        *(accept_admission(event, store=store, pseudonym_key="k", now=NOW) for _ in range(8))
    )
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(outbox)) == 1


async def test_validate_checks_without_storing(client, store, event):
    ok = await client.post("/takecare/v1/admissions/$validate", json=event)
    assert ok.status_code == 200
    assert ok.json()["issue"][0]["severity"] == "information"
    event["patient"]["personalIdentityNumber"] = "19121212-1213"
    event["encounter"]["unit"]["hsaId"] = "not-an-hsa-id"
    bad = await client.post("/takecare/v1/admissions/$validate", json=event)
    assert bad.status_code == 422
    paths = {i["expression"][0] for i in bad.json()["issue"]}
    assert "encounter.unit.hsaId" in paths
    assert store.outbox == []


async def test_a_reserve_number_is_accepted_and_two_identifiers_are_not(client, store, event):
    del event["patient"]["personalIdentityNumber"]
    event["patient"]["reserveNumber"] = "19470312-KT07"
    event["patient"]["reserveNumberKind"] = "national"
    assert (await client.post("/takecare/v1/admissions", json=event)).status_code == 202
    event["eventId"] = "tc-two-ids"
    event["patient"]["personalIdentityNumber"] = "191212121212"
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    assert res.json()["issue"][0]["expression"] == ["patient"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["dose", "maxDose"])
async def test_a_dose_that_is_no_number_is_422_naming_the_field(client, store, value, where):
    """Python's json reads NaN and Infinity, and the schema's exclusiveMinimum lets NaN by."""
    path = Path("contracts/fixtures/takecare/medication-list/admission-structured-every-text-field")
    doc = json.loads(path.with_suffix(".input.json").read_text(encoding="utf-8"))
    dosage = doc["items"][0]["dosage"]
    dosage[where] = {"value": 1, "unit": "st"} | ({"periodHours": 24} if where == "maxDose" else {})
    body = json.dumps(doc).replace('"value": 1,', f'"value": {value},', 1)
    res = await client.post(
        "/takecare/v1/medication-lists",
        content=body.encode(),
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 422
    assert [i["expression"] for i in res.json()["issue"]] == [[f"items.0.dosage.{where}.value"]]
    assert store.outbox == []


# --- issue 20: identifiers -----------------------------------------------------------------

FUTURE = "20261224-2384"  # born 2026-12-24, after NOW; the check digit is right
REGION = "1.2.752.97.3.1.3"  # Region Stockholm's local reserve numbers (HL7 Sweden)


def _issues(res):
    return [(i["expression"], i["diagnostics"]) for i in res.json()["issue"]]


@pytest.mark.parametrize("route", ["/takecare/v1/admissions", "/takecare/v1/admissions/$validate"])
async def test_a_birth_date_in_the_future_is_refused_naming_the_field(client, store, event, route):
    event["patient"]["personalIdentityNumber"] = FUTURE
    res = await client.post(route, json=event)
    assert res.status_code == 422
    assert _issues(res) == [
        (["patient.personalIdentityNumber"], "identifier: date of birth is in the future")
    ]
    assert "20261224" not in res.text and "2384" not in res.text
    assert store.outbox == []


async def test_a_future_samordningsnummer_is_refused_too(client, store, event):
    event["patient"]["personalIdentityNumber"] = "202611812385"  # day 21 + 60, tomorrow
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    assert "future" in res.text and "202611812385" not in res.text
    assert store.outbox == []


async def test_today_in_sweden_is_not_the_future_though_utc_is_still_yesterday(store, event):
    # 2026-11-20 23:30 UTC is 2026-11-21 00:30 in Stockholm: a child born on the 21st exists
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    app = create_app(AdapterTakeCareSettings(), store=store, sessions=None, clock=lambda: late)
    event["patient"]["personalIdentityNumber"] = "202611212388"
    async with _client_of(app) as c:
        assert (await c.post("/takecare/v1/admissions", json=event)).status_code == 202


def test_outside_the_sandbox_no_region_is_assumed():
    sandbox = AdapterTakeCareSettings()
    assert sandbox.region_reserve_oid() == EXAMPLE_REGIONAL_RESERVE_OID
    production = sandbox.model_copy(update={"environment": "production"})
    assert production.region_reserve_oid() is None
    assert AdapterTakeCareSettings(regional_reserve_oid=REGION).region_reserve_oid() == REGION
    with pytest.raises(ValueError, match="OID"):
        AdapterTakeCareSettings(regional_reserve_oid="Region Gotland")
    example = production.model_copy(update={"regional_reserve_oid": EXAMPLE_REGIONAL_RESERVE_OID})
    assert any("REGIONAL_RESERVE_OID" in r for r in example.refusals())


async def test_a_regional_reserve_number_without_a_configured_region_is_refused(store, event):
    # outside the sandbox, nothing configured: refused, never sent as the national number
    settings = AdapterTakeCareSettings().model_copy(update={"environment": "production"})
    app = create_app(settings, store=store, sessions=None, clock=lambda: NOW)
    del event["patient"]["personalIdentityNumber"]
    event["patient"] |= {"reserveNumber": "GOT2026000417", "reserveNumberKind": "regional"}
    async with _client_of(app) as c:
        res = await c.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    ((path, text),) = _issues(res)
    assert path == ["patient.reserveNumber"] and "OID" in text
    assert "GOT2026000417" not in res.text
    assert store.outbox == []


async def test_a_regional_reserve_number_goes_out_under_the_regions_oid(store, event):
    settings = AdapterTakeCareSettings(regional_reserve_oid=REGION)
    app = create_app(settings, store=store, sessions=None, clock=lambda: NOW)
    del event["patient"]["personalIdentityNumber"]
    event["patient"] |= {"reserveNumber": "GOT2026000417", "reserveNumberKind": "regional"}
    async with _client_of(app) as c:
        assert (await c.post("/takecare/v1/admissions", json=event)).status_code == 202
    (record,) = store.outbox
    bundle = json.loads(record.value)
    (patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert patient["identifier"] == [{"system": f"urn:oid:{REGION}", "value": "GOT2026000417"}]
    assert "nationelltReservnummer" not in record.value


async def test_a_regional_number_sent_as_national_is_refused_by_its_format(client, store, event):
    del event["patient"]["personalIdentityNumber"]
    event["patient"] |= {"reserveNumber": "GOT2026000417", "reserveNumberKind": "national"}
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    assert [p for p, _ in _issues(res)] == [["patient.reserveNumber"]]
    assert store.outbox == []


async def test_a_reserve_number_must_say_its_kind(client, store, event):
    del event["patient"]["personalIdentityNumber"]
    event["patient"]["reserveNumber"] = "19470312KT07"
    res = await client.post("/takecare/v1/admissions", json=event)
    assert res.status_code == 422
    assert store.outbox == []
