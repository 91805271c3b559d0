"""Hostile input at the adapters' intake: refused with a clear 4xx and an OperationOutcome,
nothing stored, and valid traffic still flows (the last test runs every attack first)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from services.messaging.db import store_keyring
from services.messaging.identifiers import luhn_ok
from services.messaging.input_limits import RateLimiter, json_depth_exceeds
from services.messaging.intake_tables import intake_record
from services.messaging.outbox import open_value, outbox
from tests.support.adapters import TAKECARE_KEY, TRESERVA_KEY, bearer

pytestmark = pytest.mark.security

ADMISSIONS = "/takecare/v1/admissions"
AUTH = bearer(TAKECARE_KEY)
JSON = {**AUTH, "content-type": "application/json"}

SQL_STRINGS = [
    "'; DROP TABLE intake_record; --",
    "x'); DELETE FROM outbox; --",
    "' OR '1'='1",
    '" OR ""="',
    "1; UPDATE intake_record SET pseudonym='x' WHERE 1=1; --",
    "Robert'); DROP TABLE students;--",
]
HTML_STRINGS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    "</textarea><svg/onload=alert(1)>",
    "{{7*7}} ${7*7} <%= 7*7 %>",
]


def outcome(res: httpx.Response, status: int) -> list[dict[str, Any]]:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/fhir+json")
    body = res.json()
    assert body["resourceType"] == "OperationOutcome"
    issues: list[dict[str, Any]] = body["issue"]
    assert issues and all(i["severity"] == "error" for i in issues)
    return issues


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_luhn(first_eleven: str) -> str:
    """A 12-digit personnummer (YYYYMMDD-NNNC) with a correct check digit."""
    assert len(first_eleven) == 11
    for check in "0123456789":
        if luhn_ok(first_eleven[2:] + check):
            return f"{first_eleven[:8]}-{first_eleven[8:]}{check}"
    raise AssertionError


async def test_an_oversized_body_is_413(takecare_app, admission, stored):
    client = takecare_app(max_body_bytes=4096)
    admission["careNeedsAssessment"] = "x" * 1900
    admission["socialSituation"] = "y" * 1900
    body = json.dumps(admission).encode()
    assert len(body) > 4096
    issues = outcome(await client.post(ADMISSIONS, content=body, headers=JSON), 413)
    assert issues[0]["code"] == "too-long"
    assert await stored() == (0, 0)


async def test_an_oversized_body_without_a_length_is_413_while_streaming(takecare, stored):
    sent: list[int] = []

    async def endless():
        for _ in range(64):  # 64 × 16 KiB = 1 MiB, twice the limit
            sent.append(1)
            yield b" " * 16384

    res = await takecare.post(ADMISSIONS, content=endless(), headers=JSON)
    assert "content-length" not in res.request.headers
    outcome(res, 413)
    assert await stored() == (0, 0)


@pytest.mark.parametrize("depth", [33, 200, 100_000])
async def test_a_deeply_nested_body_is_refused_before_parsing(takecare, admission, stored, depth):
    text = json.dumps(admission)
    body = text[:-1] + f', "admissionReason": {nested(depth)}}}'
    issues = outcome(await takecare.post(ADMISSIONS, content=body, headers=JSON), 400)
    assert issues[0]["code"] == "too-costly"
    assert await stored() == (0, 0)


async def test_brackets_inside_strings_do_not_count_as_nesting(takecare, admission, stored):
    admission["admissionReason"] = nested(500) + ' "{[\\"" ' + "{" * 300
    res = await takecare.post(ADMISSIONS, json=admission, headers=AUTH)
    assert res.status_code == 202, res.text
    assert await stored() == (1, 1)


def test_the_depth_scan_matches_the_limit_exactly():
    assert not json_depth_exceeds(nested(32).encode(), 32)
    assert json_depth_exceeds(nested(33).encode(), 32)
    assert json_depth_exceeds(b'{"a": [{"b": [[' + b"0]]}]}", 4)
    assert not json_depth_exceeds(b'{"a": "[[[[[[\\"[[["}', 1)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(value=_JSON_VALUES, limit=st.integers(min_value=0, max_value=8))
def test_the_depth_scan_agrees_with_the_parsed_depth(value, limit):
    # Strings full of brackets, quotes and backslashes must not fool the scan.
    body = json.dumps(value).encode()
    assert json_depth_exceeds(body, limit) is (_depth(value) > limit)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/html",
        "application/json-patch+json",
        "application/jsonx",
    ],
)
async def test_a_wrong_content_type_is_415(takecare, admission, stored, content_type):
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    res = await takecare.post(ADMISSIONS, content=json.dumps(admission), headers=headers)
    issues = outcome(res, 415)
    assert issues[0]["code"] == "not-supported"
    assert await stored() == (0, 0)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/fhir+json", "Application/JSON; charset=utf-8"]
)
async def test_json_media_types_are_accepted(takecare, admission, stored, content_type):
    headers = {**AUTH, "content-type": content_type}
    res = await takecare.post(ADMISSIONS, content=json.dumps(admission), headers=headers)
    assert res.status_code == 202, res.text
    assert await stored() == (1, 1)


@pytest.mark.parametrize(
    "number", ["1" + "0" * 5000, "NaN", "Infinity", "-Infinity", "1e999", "1.5"]
)
async def test_numbers_that_trouble_parsers_are_refused(takecare, admission, stored, number):
    body = json.dumps(admission).replace('"version": 1', f'"version": {number}')
    assert number in body
    res = await takecare.post(ADMISSIONS, content=body, headers=JSON)
    assert res.status_code in (400, 422), res.text
    outcome(res, res.status_code)
    assert await stored() == (0, 0)


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("19121212-1213", "check digit"),  # bad Luhn
        (with_luhn("19121301123"), "date"),  # 13th month, correct check digit
        (with_luhn("20120230123"), "date"),  # 30 February
        (with_luhn("19000229123"), "date"),  # 29 February 1900, not a leap year
    ],
    ids=["bad-luhn", "month-13", "feb-30", "feb-29-not-leap"],
)
async def test_an_invalid_personnummer_is_422_naming_the_field(
    takecare, admission, stored, number, rule
):
    admission["patient"]["personalIdentityNumber"] = number
    issues = outcome(await takecare.post(ADMISSIONS, json=admission, headers=AUTH), 422)
    found = {i["expression"][0]: i["diagnostics"] for i in issues}
    assert rule in found["patient.personalIdentityNumber"]
    assert number not in json.dumps(issues)  # the refusal does not echo the number
    assert await stored() == (0, 0)


@pytest.mark.parametrize("hostile", SQL_STRINGS)
async def test_sql_strings_in_free_text_are_stored_verbatim_and_change_nothing(
    takecare, admission, sessions, stored, hostile
):
    first = await takecare.post(ADMISSIONS, json=admission, headers=AUTH)
    assert first.status_code == 202
    async with sessions() as s:
        before = (await s.execute(select(intake_record))).mappings().all()
    tables_before = await _tables(sessions)

    admission["eventId"] = "tc-2026-sql"
    for field in ("admissionReason", "housingSituation", "socialSituation"):
        admission[field] = hostile
    admission["patient"]["familyName"] = hostile
    res = await takecare.post(ADMISSIONS, json=admission, headers=AUTH)
    assert res.status_code == 202, res.text

    assert await _tables(sessions) == tables_before
    assert await stored() == (2, 2)
    async with sessions() as s:
        rows = (await s.execute(select(intake_record))).mappings().all()
        row = (
            await s.execute(
                select(outbox).where(
                    outbox.c.headers["message-id"].as_string() == res.json()["messageId"]
                )
            )
        ).one()
        payload = open_value(store_keyring(s), row, row.owner)
    assert [r for r in rows if r["message_id"] == first.json()["messageId"]] == before
    assert payload is not None and json.dumps(hostile)[1:-1] in payload


async def test_sql_strings_in_identifiers_are_refused_by_the_contract(takecare, admission, stored):
    admission["eventId"] = SQL_STRINGS[0]
    admission["encounter"]["unit"]["hsaId"] = SQL_STRINGS[2]
    issues = outcome(await takecare.post(ADMISSIONS, json=admission, headers=AUTH), 422)
    assert {"eventId", "encounter.unit.hsaId"} <= {i["expression"][0] for i in issues}
    assert await stored() == (0, 0)


@pytest.mark.parametrize("hostile", HTML_STRINGS)
async def test_html_in_free_text_is_stored_as_text_and_never_rendered(
    takecare, admission, sessions, hostile
):
    admission["careNeedsAssessment"] = hostile
    admission["encounter"]["unit"]["name"] = hostile
    res = await takecare.post(ADMISSIONS, json=admission, headers=AUTH)
    assert res.status_code == 202, res.text
    assert res.headers["content-type"] == "application/json"  # never text/html
    assert hostile not in res.text
    async with sessions() as s:
        row = (await s.execute(select(outbox))).one()
        payload = open_value(store_keyring(s), row, row.owner)
    bundle = json.loads(payload)
    texts = json.dumps(bundle, ensure_ascii=False)
    assert json.dumps(hostile, ensure_ascii=False)[1:-1] in texts  # verbatim, not escaped away


async def test_html_in_a_refused_document_is_not_echoed(takecare, admission):
    admission["encounter"]["unit"]["hsaId"] = HTML_STRINGS[0]
    admission["version"] = HTML_STRINGS[1]
    res = await takecare.post(ADMISSIONS, json=admission, headers=AUTH)
    outcome(res, 422)
    assert "<script" not in res.text and "onerror" not in res.text


async def test_over_the_rate_is_429_with_retry_after(takecare_app, admission, stored):
    client = takecare_app(rate_limit_per_s=0.01, rate_limit_burst=3)
    for n in range(3):
        admission["eventId"] = f"tc-rate-{n}"
        assert (await client.post(ADMISSIONS, json=admission, headers=AUTH)).status_code == 202
    admission["eventId"] = "tc-rate-over"
    res = await client.post(ADMISSIONS, json=admission, headers=AUTH)
    issues = outcome(res, 429)
    assert issues[0]["code"] == "throttled"
    assert int(res.headers["retry-after"]) == 100  # one token at 0.01 a second
    assert await stored() == (3, 3)


async def test_guessing_keys_is_throttled_by_address_and_spares_the_real_source(
    takecare_app, admission, stored
):
    client = takecare_app(rate_limit_per_s=0.01, rate_limit_burst=5)
    answers = [
        (await client.post(ADMISSIONS, json=admission, headers=bearer(f"guess-{n}"))).status_code
        for n in range(8)
    ]
    assert answers == [401] * 5 + [429] * 3
    assert (await client.post(ADMISSIONS, json=admission, headers=AUTH)).status_code == 202
    assert await stored() == (1, 1)


def test_the_token_bucket_refills_and_forgets_the_oldest_client():
    now = [0.0]
    limiter = RateLimiter(per_s=2, burst=2, clock=lambda: now[0], max_clients=2)
    assert [limiter.retry_after("a") for _ in range(3)] == [None, None, 1]
    now[0] += 0.5  # one token back
    assert limiter.retry_after("a") is None and limiter.retry_after("a") == 1
    limiter.retry_after("b")
    limiter.retry_after("c")  # "a" is dropped and starts full again
    assert limiter.retry_after("a") is None


async def test_after_every_attack_a_valid_admission_is_still_accepted_and_stored(
    takecare, treserva, admission, sessions, stored
):
    attacks: list[tuple[str, dict[str, str], bytes | str]] = [
        (ADMISSIONS, {}, json.dumps(admission)),
        (ADMISSIONS, bearer(TRESERVA_KEY), json.dumps(admission)),
        (ADMISSIONS, {**AUTH, "content-type": "text/plain"}, json.dumps(admission)),
        (ADMISSIONS, JSON, b"{" * 600_000),
        (ADMISSIONS, JSON, nested(5000)),
        (ADMISSIONS, JSON, b"\xff\xfe not json"),
        (ADMISSIONS, JSON, "null"),
        (ADMISSIONS, JSON, "[]"),
        (ADMISSIONS, JSON, '{"eventId": "' + SQL_STRINGS[0] + '"}'),
        (f"{ADMISSIONS}/$validate", JSON, nested(40)),
        ("/takecare/v1/receipts", JSON, nested(40)),
    ]
    answers = []
    for path, headers, body in attacks:
        res = await takecare.post(path, content=body, headers=headers)
        assert res.json()["resourceType"] == "OperationOutcome"
        answers.append(res.status_code)
    assert answers == [401, 403, 415, 413, 400, 400, 422, 422, 422, 400, 400]
    assert await stored() == (0, 0)

    res = await takecare.post(ADMISSIONS, json=admission, headers=AUTH)
    assert res.status_code == 202 and res.json()["duplicate"] is False
    async with sessions() as s:
        ids = (await s.scalars(select(intake_record.c.message_id))).all()
    assert ids == [res.json()["messageId"]]
    assert await stored() == (1, 1)


async def _tables(sessions) -> set[str]:
    async with sessions() as s:
        conn = await s.connection()
        names: list[str] = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return set(names)
