"""Errors never echo patient data (issue 19, item 5): every route of every app (both
adapters and the router: its JSON API, the console's pages and forms, ``/metrics``, the API
description, the static files), attacked with a personnummer in every path parameter, query
parameter, form field and JSON body field it takes and in some it does not. Every refusal
is an OperationOutcome (adapters) or problem details (router; the console a page for
people), names the field, and never repeats the value."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.adapter_takecare.app import OWNER as TAKECARE_OWNER
from services.adapter_takecare.app import create_app as create_takecare
from services.adapter_takecare.settings import AdapterTakeCareSettings
from services.adapter_treserva.app import OWNER as TRESERVA_OWNER
from services.adapter_treserva.app import create_app as create_treserva
from services.adapter_treserva.settings import AdapterTreservaSettings
from services.messaging.intake_group import GroupedIntakeStore
from services.messaging.problems import field_errors, field_path
from services.router.ops.app import create_app as create_router
from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from services.router.settings import RouterSettings
from tests.support.adapters import NOW, TAKECARE_KEY, TRESERVA_KEY
from tests.support.app_routes import Target, targets, url

pytestmark = pytest.mark.security

TOLVAN = "191212121212"  # Skatteverket's test personnummer (Tolvan Tolvansson)
# the number as sent, with a hyphen, too long for any field, and not a date or number at all
VALUES = (TOLVAN, "19121212-1212", TOLVAN * 3, f"{TOLVAN}x")
_WITH_BODY = {"POST", "PUT", "PATCH"}


def traces(value: str) -> set[str]:
    """What in an answer would betray the value: itself, its 12 digits, its last 10."""
    digits = re.sub(r"\D", "", value)
    return {value, digits[:12], digits[2:12]}


@dataclass
class Attacked:
    name: str
    client: httpx.AsyncClient
    csrf: str = ""


@pytest.fixture
async def apps(sessions) -> AsyncIterator[list[Attacked]]:
    no_limit: dict[str, Any] = {"rate_limit_per_s": 0}
    takecare = create_takecare(
        AdapterTakeCareSettings(**no_limit),
        store=GroupedIntakeStore(sessions, TAKECARE_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )
    treserva = create_treserva(
        AdapterTreservaSettings(**no_limit),
        store=GroupedIntakeStore(sessions, TRESERVA_OWNER),
        sessions=sessions,
        clock=lambda: NOW,
    )
    router = create_router(RouterSettings(**no_limit), sessions=sessions)
    keys = {"adapter_takecare": TAKECARE_KEY, "adapter_treserva": TRESERVA_KEY}
    keys["router"] = "sandbox-ops-token"
    attacked = []
    for name, app in (("adapter_takecare", takecare), ("adapter_treserva", treserva)):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://svc",
            headers={"authorization": f"Bearer {keys[name]}"},
        )
        attacked.append(Attacked(name, client))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=router),
        base_url="http://svc",
        headers={"authorization": f"Bearer {keys['router']}"},
    )
    logged_in = await client.post(
        "/console/login", data={"user": "ops", "password": SANDBOX_PASSWORDS["ops"]}
    )
    assert logged_in.status_code == 303
    page = (await client.get("/console/")).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    attacked.append(Attacked("router", client, csrf[1]))
    yield attacked
    for one in attacked:
        await one.client.aclose()


async def attack(one: Attacked, target: Target, value: str) -> list[httpx.Response]:
    """The requests of one target with ``value`` everywhere it can go."""
    query = {**dict.fromkeys(target.query, value), TOLVAN: value}
    fields = {**dict.fromkeys(target.body, value), TOLVAN: value}
    sent = []
    where = url(target.path, value)
    if target.method not in _WITH_BODY:
        sent.append(await one.client.request(target.method, where, params=query))
    elif target.form:
        form = {**fields, "csrf": one.csrf}
        sent.append(await one.client.request(target.method, where, params=query, data=form))
    else:
        sent.append(await one.client.request(target.method, where, params=query, json=fields))
        sent.append(
            await one.client.request(
                target.method,
                where,
                content=f'{{"{value}": {value}',  # not JSON
                headers={"content-type": "application/json"},
            )
        )
    return sent


def assert_refusal_is_clean(app: str, res: httpx.Response, value: str) -> None:
    what = f"{app}: {res.request.method} {res.request.url}"
    assert res.status_code < 500, (what, res.status_code, res.text[:500])
    if res.status_code < 400:
        return
    answered = res.text + json.dumps(dict(res.headers))
    for trace in traces(value):
        assert trace not in answered, (what, res.status_code, res.text[:500])
    media_type = res.headers["content-type"].split(";")[0]
    if (
        app == "router"
        and res.request.url.path.startswith("/console/")
        and not (res.request.url.path.startswith("/console/static/"))
    ):
        assert media_type == "text/html", what  # a page for a person
        return
    if app == "router":
        assert media_type == "application/problem+json", (what, media_type)
        problem = res.json()
        assert problem["status"] == res.status_code and problem["detail"], what
        for error in problem.get("errors", []):
            assert error["field"] and error["rule"] and error["message"], what
    else:
        assert media_type == "application/fhir+json", (what, media_type)
        outcome = res.json()
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"], what


async def test_no_refusal_of_any_route_repeats_a_personnummer(apps):
    """Every route of every app, every value: at least one 4xx each, none echoing it."""
    refused: dict[str, int] = {}
    for one in apps:
        walked = list(targets(one.client._transport.app))
        assert len(walked) > (40 if one.name == "router" else 8), one.name
        for target in walked:
            for value in VALUES:
                for res in await attack(one, target, value):
                    assert_refusal_is_clean(one.name, res, value)
                    refused[one.name] = refused.get(one.name, 0) + (res.status_code >= 400)
    assert refused["router"] > 300 and refused["adapter_takecare"] > 50, refused


async def test_the_personnummer_search_names_the_field_and_never_the_number(apps):
    """The finding of the issue: FastAPI's 422 repeated the personnummer searched for."""
    router = next(one for one in apps if one.name == "router").client
    for number, rule in (
        ("19121212-1212-1212-1212", "string_too_long"),  # over 20 characters
        ("1912121", "string_too_short"),
    ):
        res = await router.post(
            "/api/v1/messages/search/personnummer",
            json={"personnummer": number, "operator": "asa", "reason": "planning"},
        )
        assert res.status_code == 422
        assert res.headers["content-type"] == "application/problem+json"
        assert res.json()["errors"] == [
            {
                "field": "body.personnummer",
                "rule": rule,
                "message": res.json()["errors"][0]["message"],
            }
        ]
        assert res.json()["detail"] == "invalid request: body.personnummer"
        assert "input" not in res.text and "ctx" not in res.text
        assert number not in res.text and "1912121" not in res.text
    bad_check_digit = "19121212-1213"
    res = await router.post(
        "/api/v1/messages/search/personnummer",
        json={"personnummer": bad_check_digit, "operator": "asa", "reason": "planning"},
    )
    assert res.status_code == 422 and res.headers["content-type"] == "application/problem+json"
    assert res.json()["detail"].startswith("personnummer: ") and "Luhn" in res.json()["detail"]
    assert "1213" not in res.text


async def test_the_console_search_form_names_the_field_and_never_the_number(apps):
    router = next(one for one in apps if one.name == "router")
    res = await router.client.post(
        "/console/messages/by-personnummer",
        data={"personnummer": TOLVAN * 2, "reason": "planning", "csrf": router.csrf},
    )
    assert res.status_code == 422 and res.headers["content-type"].startswith("text/html")
    assert "personnummer" in res.text and TOLVAN not in res.text
    page = await router.client.get(
        "/console/messages", params={"since": TOLVAN, "pseudonym": TOLVAN}
    )
    assert page.status_code == 422 and "since" in page.text and TOLVAN not in page.text


def test_a_field_is_named_by_where_it_was_and_a_key_the_caller_chose_is_not_repeated():
    assert field_path(("query", "personnummer")) == "query.personnummer"
    assert field_path(("body", "criteria", "events", 0)) == "body.criteria.events[0]"
    assert field_path(("body", TOLVAN, "x")) == "body.*.x"
    assert field_path(("body", "19121212-1212")) == "body.*"
    assert field_path(()) == "$"


def test_pydantic_errors_lose_their_input_and_context():
    errors = field_errors(
        [
            {
                "type": "string_too_long",
                "loc": ("body", "personnummer"),
                "msg": "String should have at most 20 characters",
                "input": TOLVAN * 2,
                "ctx": {"max_length": 20},
            },
            {  # a validator's message that repeats the value: the value is cut out
                "type": "value_error",
                "loc": ("body", "name"),
                "msg": f"Value error, {TOLVAN} is not allowed",
                "input": TOLVAN,
            },
            {  # a tagged union names the caller's tag: pydantic's text is not used
                "type": "union_tag_invalid",
                "loc": ("body", "channel"),
                "msg": f"Input tag '{TOLVAN}' found using 'type' does not match",
                "input": {"type": TOLVAN},
                "ctx": {"tag": TOLVAN},
            },
        ]
    )
    assert [e.as_dict() for e in errors] == [
        {
            "field": "body.personnummer",
            "rule": "string_too_long",
            "message": "String should have at most 20 characters",
        },
        {"field": "body.name", "rule": "value_error", "message": "Value error, … is not allowed"},
        {
            "field": "body.channel",
            "rule": "union_tag_invalid",
            "message": "the value is not allowed here",
        },
    ]


async def test_an_unknown_key_in_an_intake_document_is_not_repeated(apps, admission):
    takecare = next(one for one in apps if one.name == "adapter_takecare").client
    admission[TOLVAN] = "x"
    res = await takecare.post("/takecare/v1/admissions", json=admission)
    assert res.status_code == 422 and res.headers["content-type"] == "application/fhir+json"
    issues = res.json()["issue"]
    assert {"*"} == {i["expression"][0] for i in issues if "unknown field" in i["diagnostics"]}
    assert TOLVAN not in res.text


async def test_the_personnummer_search_refuses_a_future_birth_date_without_echo(apps):
    """Issue 20: a personnummer born after today names no patient; the 422 says why and
    never repeats the number (born 2099-12-31, its check digit right)."""
    router = next(one for one in apps if one.name == "router").client
    res = await router.post(
        "/api/v1/messages/search/personnummer",
        json={"personnummer": "20991231-2387", "operator": "asa", "reason": "planning"},
    )
    assert res.status_code == 422 and res.headers["content-type"] == "application/problem+json"
    assert res.json()["detail"] == "personnummer: date of birth is in the future"
    assert "20991231" not in res.text and "2387" not in res.text
