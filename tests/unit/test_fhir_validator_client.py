"""The FHIR validator's client (services/messaging/fhir_validator.py) on httpx.MockTransport:
what it sends, how it reads an OperationOutcome, and that a broken validator is no verdict."""

from __future__ import annotations

import json

import httpx
import pytest

from services.messaging.fhir_validator import (
    FakeFhirValidator,
    FhirValidatorUnavailable,
    HttpFhirValidator,
    ValidationIssue,
    verdict_from_outcome,
)

BUNDLE = {"resourceType": "Bundle", "type": "message"}
CLEAN = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": "No issues detected during validation",
        }
    ],
}
FINDINGS = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "required",
            "diagnostics": "MessageHeader.source.endpoint: minimum required = 1, but only found 0",
            "expression": ["Bundle.entry[0].resource.source.endpoint"],
        },
        {
            "severity": "warning",
            "code": "invariant",
            "diagnostics": "Constraint failed: dom-6",
            "expression": ["Bundle.entry[0].resource"],
        },
        {
            "severity": "error",
            "code": "processing",
            "diagnostics": "cvc-complex-type.2.4.b: ...",
            "location": ["xml Line[1] Col[9]"],
        },
    ],
}


def _client(handler: httpx.MockTransport) -> HttpFhirValidator:
    return HttpFhirValidator("http://validator.test", transport=handler)


async def test_posts_the_resource_and_the_profile_and_reads_the_outcome() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=FINDINGS)

    async with _client(httpx.MockTransport(handler)) as client:
        verdict = await client.validate(BUNDLE, profile="https://carebridge.example.se/fhir/P")

    (request,) = seen
    assert request.method == "POST" and request.url.path == "/validate"
    assert request.url.params["profile"] == "https://carebridge.example.se/fhir/P"
    assert request.headers["content-type"] == "application/fhir+json"
    assert json.loads(request.content) == BUNDLE
    assert not verdict.valid
    assert [i.expression for i in verdict.errors] == [
        "Bundle.entry[0].resource.source.endpoint",
        None,
    ]
    assert verdict.errors[1].location == "xml Line[1] Col[9]"
    assert [i.code for i in verdict.warnings] == ["invariant"]
    assert verdict.outcome == FINDINGS


async def test_raw_bytes_go_as_they_are_and_no_profile_means_no_parameter() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=CLEAN)

    async with _client(httpx.MockTransport(handler)) as client:
        verdict = await client.validate(b'{"resourceType":"Bundle"}')

    assert seen[0].content == b'{"resourceType":"Bundle"}'
    assert "profile" not in seen[0].url.params
    assert verdict.valid and verdict.issues == ()


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="boom"),
        httpx.Response(413, json={"error": "too big"}),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json={"resourceType": "Bundle"}),
        httpx.Response(
            200, json={"resourceType": "OperationOutcome", "issue": [{"severity": "x"}]}
        ),
    ],
)
async def test_anything_but_an_operation_outcome_is_no_verdict(response: httpx.Response) -> None:
    async with _client(httpx.MockTransport(lambda _: response)) as client:
        with pytest.raises(FhirValidatorUnavailable):
            await client.validate(BUNDLE)


async def test_a_validator_that_does_not_answer_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _client(httpx.MockTransport(handler)) as client:
        with pytest.raises(FhirValidatorUnavailable):
            await client.validate(BUNDLE)
        assert not await client.healthy()


async def test_health() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"status": "ok"}))
    async with _client(transport) as client:
        assert await client.healthy()


def test_the_single_no_issues_line_is_no_issue() -> None:
    assert verdict_from_outcome(CLEAN).issues == ()


async def test_the_fake_answers_like_the_client() -> None:
    issue = ValidationIssue("error", "required", "missing", expression="Bundle.type")
    fake = FakeFhirValidator((issue,))
    verdict = await fake.validate(BUNDLE, profile="p")
    assert verdict.errors == (issue,) and fake.seen == [(BUNDLE, "p")]
    assert verdict_from_outcome(verdict.outcome).issues == (issue,)
    assert (await FakeFhirValidator().validate(BUNDLE)).valid
    with pytest.raises(FhirValidatorUnavailable):
        await FakeFhirValidator(unavailable=True).validate(BUNDLE)
