"""What schemathesis found (test_openapi_fuzz.py), one regression test each: documents the
contract let through that FHIR cannot hold (they answered 500 from the translator) and ids
the database cannot bind (500 from the driver). Each is now a 4xx, and nothing is stored."""

from __future__ import annotations

import httpx
import pytest

from services.router.ops.app import create_app as create_router
from services.router.settings import RouterSettings
from tests.support.adapters import TAKECARE_KEY, TRESERVA_KEY, bearer

pytestmark = pytest.mark.security


def _refused_by_contract(res: httpx.Response, field: str) -> None:
    assert res.status_code == 422, res.text
    body = res.json()
    assert body["resourceType"] == "OperationOutcome"
    assert field in [e for i in body["issue"] for e in i.get("expression", [])], body


@pytest.mark.parametrize(
    "offset", ["+20:52", "-14:01", "+14:30", "-23:59"], ids=lambda o: f"offset{o}"
)
async def test_a_utc_offset_beyond_14_hours_is_refused(takecare, admission, stored, offset):
    # Found: occurredAt "0439-05-19T00:27:13+20:52" passed RFC 3339, then FHIR's dateTime
    # (offsets up to ±14:00) refused it inside the translator: 500.
    admission["occurredAt"] = f"2026-11-20T09:12:00{offset}"
    res = await takecare.post(
        "/takecare/v1/admissions", json=admission, headers=bearer(TAKECARE_KEY)
    )
    _refused_by_contract(res, "occurredAt")
    assert await stored() == (0, 0)


async def test_the_widest_real_offsets_still_go_through(takecare, admission):
    for n, offset in enumerate(["+14:00", "-12:00", "+05:45"]):
        admission["eventId"], admission["occurredAt"] = (
            f"tc-off-{n}",
            f"2026-11-20T09:12:00{offset}",
        )
        res = await takecare.post(
            "/takecare/v1/admissions", json=admission, headers=bearer(TAKECARE_KEY)
        )
        assert res.status_code == 202, res.text


async def test_a_version_beyond_a_fhir_positive_int_is_refused(takecare, admission, stored):
    # Found: version 6412734364418548736 became a FHIR positiveInt (at most 2^31 - 1): 500.
    admission["version"] = 2**31
    res = await takecare.post(
        "/takecare/v1/admissions", json=admission, headers=bearer(TAKECARE_KEY)
    )
    _refused_by_contract(res, "version")
    admission["version"] = 2**31 - 1
    res = await takecare.post(
        "/takecare/v1/admissions", json=admission, headers=bearer(TAKECARE_KEY)
    )
    assert res.status_code == 202, res.text
    assert await stored() == (1, 1)


@pytest.mark.parametrize("text", ["\x0b", "\x0c\u00a0", "\u2003\u3000"], ids=repr)
async def test_free_text_of_only_odd_whitespace_is_refused(takecare, admission, stored, text):
    # Found: familyName "\x0b" is not a FHIR string ([ \r\n\t\S]+): 500 in the translator.
    admission["patient"]["familyName"] = text
    res = await takecare.post(
        "/takecare/v1/admissions", json=admission, headers=bearer(TAKECARE_KEY)
    )
    _refused_by_contract(res, "patient.familyName")
    assert await stored() == (0, 0)


async def test_treserva_free_text_of_only_odd_whitespace_is_refused(treserva, treserva_list):
    treserva_list["rader"][0]["namn"] = "\x0b"
    res = await treserva.post(
        "/treserva/v1/lakemedelslistor", json=treserva_list, headers=bearer(TRESERVA_KEY)
    )
    _refused_by_contract(res, "rader.0.namn")


async def test_free_text_with_spaces_and_tabs_still_goes_through(takecare, admission):
    admission["patient"]["givenName"] = " \t "  # FHIR takes it, so the contract does too
    res = await takecare.post(
        "/takecare/v1/admissions", json=admission, headers=bearer(TAKECARE_KEY)
    )
    assert res.status_code == 202, res.text


async def test_validate_documents_its_fhir_media_type(takecare, admission):
    # Found: $validate answers application/fhir+json; the OpenAPI said application/json.
    spec = (await takecare.get("/openapi.json")).json()
    ok = spec["paths"]["/takecare/v1/admissions/$validate"]["post"]["responses"]["200"]
    assert list(ok["content"]) == ["application/fhir+json"]
    res = await takecare.post(
        "/takecare/v1/admissions/$validate", json=admission, headers=bearer(TAKECARE_KEY)
    )
    assert res.headers["content-type"].startswith("application/fhir+json")


@pytest.fixture
async def router(sessions):
    app = create_router(RouterSettings(), sessions=sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://router",
        headers={"authorization": "Bearer sandbox-ops-token"},
    ) as client:
        yield client


@pytest.mark.parametrize("alert_id", [2**63, 145603542385892098048, 0, -1])
async def test_an_alert_id_no_row_can_have_is_refused(router, alert_id):
    # Found: /alerts/145603542385892098048/acknowledge: OverflowError binding it: 500.
    note = {"operator": "fuzz", "note": "checking"}
    res = await router.post(f"/api/v1/alerts/{alert_id}/acknowledge", json=note)
    assert res.status_code == 422, res.text
    res = await router.get("/api/v1/notifications", params={"alert_id": alert_id})
    assert res.status_code == 422, res.text


async def test_the_largest_alert_id_is_simply_not_found(router):
    note = {"operator": "fuzz", "note": "checking"}
    res = await router.post(f"/api/v1/alerts/{2**63 - 1}/resolve", json=note)
    assert res.status_code == 404, res.text
    res = await router.get("/api/v1/notifications", params={"alert_id": 2**63 - 1})
    assert res.status_code == 200, res.text
    assert res.json()["count"] == 0
