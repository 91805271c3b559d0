"""The operator CLI (services/router/ops/cli.py) against httpx.MockTransport: what each command
asks the router and what it prints; bulk replay's progress bar; exit codes."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from services.router.ops import cli

PAGE = {
    "count": 2,
    "items": [
        {
            "id": "m-2",
            "event_code": "admission-notice",
            "source": "takecare",
            "received_at": "2026-11-02T08:00:00+00:00",
            "deliveries": [
                {"destination": "treserva", "state": "dead_letter"},
                {"destination": "primary-care", "state": "confirmed"},
            ],
        },
        {
            "id": "m-1",
            "event_code": "sip-update",
            "source": "treserva",
            "received_at": "2026-11-01T08:00:00+00:00",
            "deliveries": [],
        },
    ],
    "next": "CURSOR-2",
}

DETAIL = {
    "id": "m-2",
    "event_code": "admission-notice",
    "source": "takecare",
    "pseudonym": "ab" * 16,
    "business_key": "takecare|ev-2|1",
    "sent_at": "2026-11-02T07:59:59+00:00",
    "received_at": "2026-11-02T08:00:00+00:00",
    "version": None,
    "superseded_by": None,
    "deliveries": [
        {
            "id": 7,
            "destination": "treserva",
            "state": "dead_letter",
            "attempts": 1,
            "last_error": "422 from Treserva",
            "transitions": [
                {
                    "from_state": None,
                    "to_state": "pending",
                    "at": "2026-11-02T08:00:00+00:00",
                    "reason": "routed",
                },
                {
                    "from_state": "pending",
                    "to_state": "dispatched",
                    "at": "2026-11-02T08:00:01+00:00",
                    "reason": "dispatch",
                },
                {
                    "from_state": "dispatched",
                    "to_state": "dead_letter",
                    "at": "2026-11-02T08:00:03+00:00",
                    "reason": "fatal error",
                },
            ],
            "attempts_log": [
                {
                    "attempt_no": 1,
                    "dispatched_at": "2026-11-02T08:00:01+00:00",
                    "completed_at": "2026-11-02T08:00:02+00:00",
                    "outcome": "fatal-error",
                    "detail": "422 from Treserva",
                },
            ],
        }
    ],
}


def answering(routes):
    """A MockTransport answering ``(method, path)`` from ``routes``; records each request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = routes[(request.method, request.url.path)]
        found: httpx.Response = answer(request) if callable(answer) else answer
        return found

    return httpx.MockTransport(handler), seen


def test_list_sends_every_filter_and_prints_a_table_with_the_next_cursor(capsys):
    transport, seen = answering({("GET", "/api/v1/messages"): httpx.Response(200, json=PAGE)})
    code = cli.main(
        [
            "list",
            "--since", "2026-11-01T00:00:00+01:00",
            "--until", "2026-11-03T00:00:00+01:00",
            "--event", "admission-notice",
            "--source", "takecare",
            "--destination", "treserva",
            "--state", "dead_letter",
            "--pseudonym", "ab" * 16,
            "--business-key", "takecare|ev-2|1",
            "--limit", "2",
            "--next", "CURSOR-1",
        ],
        transport=transport,
    )  # fmt: skip
    assert code == 0
    (request,) = seen
    assert dict(request.url.params) == {
        "since": "2026-11-01T00:00:00+01:00",
        "until": "2026-11-03T00:00:00+01:00",
        "event": "admission-notice",
        "source": "takecare",
        "destination": "treserva",
        "state": "dead_letter",
        "pseudonym": "ab" * 16,
        "businessKey": "takecare|ev-2|1",
        "limit": "2",
        "cursor": "CURSOR-1",
    }
    assert request.headers["authorization"] == "Bearer sandbox-ops-token"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["received", "message", "id", "family", "source", "deliveries"]
    assert lines[1].split() == [
        "2026-11-02T08:00:00+00:00",
        "m-2",
        "admission-notice",
        "takecare",
        "treserva:dead_letter",
        "primary-care:confirmed",
    ]
    assert lines[2].split()[-1] == "-"
    assert lines[-1] == "more: --next CURSOR-2"


def test_list_reports_a_refused_filter(capsys):
    transport, _ = answering(
        {("GET", "/api/v1/messages"): httpx.Response(422, json={"detail": "cursor: bad"})}
    )
    assert cli.main(["list", "--next", "nope"], transport=transport) == 2
    assert "router answered 422" in capsys.readouterr().err


def test_show_prints_each_delivery_as_a_timeline(capsys):
    transport, _ = answering({("GET", "/api/v1/messages/m-2"): httpx.Response(200, json=DETAIL)})
    assert cli.main(["show", "m-2"], transport=transport) == 0
    out = capsys.readouterr().out
    assert "family    admission-notice from takecare" in out
    timeline = [
        line.strip()
        for line in out.split("→ treserva: dead_letter, 1 attempt(s)\n")[1].splitlines()
    ]
    assert timeline == [
        "2026-11-02T08:00:00+00:00  · → pending  routed",
        "2026-11-02T08:00:01+00:00  pending → dispatched  dispatch",
        "2026-11-02T08:00:01+00:00  attempt 1 dispatched",
        "2026-11-02T08:00:02+00:00  attempt 1 fatal-error: 422 from Treserva",
        "2026-11-02T08:00:03+00:00  dispatched → dead_letter  fatal error",
        "last error: 422 from Treserva",
    ]


def test_show_an_unknown_message_exits_1(capsys):
    transport, _ = answering({("GET", "/api/v1/messages/nope"): httpx.Response(404, json={})})
    assert cli.main(["show", "nope"], transport=transport) == 1
    assert "no message nope" in capsys.readouterr().err


def _replay_pages(*replayed: int):
    pages = iter(replayed)

    def answer(request):
        n = next(pages)
        items = [
            {
                "deliveryId": i,
                "messageId": f"m{i}",
                "destination": "treserva",
                "replayed": True,
                "detail": "replayed",
            }
            for i in range(n)
        ]
        return httpx.Response(200, json={"replayed": n, "refused": 0, "items": items})

    return answer


def test_bulk_replay_counts_first_and_shows_a_progress_bar(capsys):
    transport, seen = answering(
        {
            ("GET", "/api/v1/replays/candidates"): httpx.Response(200, json={"count": 2500}),
            ("POST", "/api/v1/replays"): _replay_pages(1000, 1000, 500, 0),
        }
    )
    code = cli.main(
        ["replay", "--destination", "treserva", "--event", "admission-notice",
         "--since", "2026-11-01T00:00:00+00:00", "--reason", "Treserva is back"],
        transport=transport,
    )  # fmt: skip
    assert code == 0
    count, *posts = seen
    assert dict(count.url.params) == {
        "destination": "treserva",
        "event": "admission-notice",
        "since": "2026-11-01T00:00:00+00:00",
    }
    assert len(posts) == 4
    body = json.loads(posts[0].content)
    # no "operator": who replays is who the key names (the access log's actor)
    assert "operator" not in body and body["messageIds"] == [] and body["force"] is False
    captured = capsys.readouterr()
    assert "replaying" in captured.err  # the bar (stderr keeps stdout for the summary)
    assert "done: 2500 replayed, 0 refused" in captured.out


def test_replay_by_id_is_one_request_without_a_count(capsys):
    transport, seen = answering({("POST", "/api/v1/replays"): _replay_pages(2)})
    code = cli.main(
        ["replay", "--message-id", "m0", "--message-id", "m1", "--reason", "fixed",
         "--force"],
        transport=transport,
    )  # fmt: skip
    assert code == 0
    (request,) = seen
    assert json.loads(request.content)["messageIds"] == ["m0", "m1"]
    assert json.loads(request.content)["force"] is True


def test_replay_without_ids_or_filter_is_a_usage_error(capsys):
    transport, seen = answering({})
    with pytest.raises(SystemExit) as exited:
        cli.main(["replay", "--reason", "why"], transport=transport)
    assert exited.value.code == 2 and seen == []
    assert "--message-id" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_alert_actions_post_the_note_and_no_name(action, capsys):
    alert = {"id": 7, "state": f"{action}d", "summary": "Treserva down"}
    transport, seen = answering(
        {("POST", f"/api/v1/alerts/7/{action}"): httpx.Response(200, json=alert)}
    )
    code = cli.main([action, "7", "--note", "on it"], transport=transport)
    assert code == 0
    assert json.loads(seen[0].content) == {"note": "on it"}
    assert f"alert 7 is {alert['state']}: Treserva down" in capsys.readouterr().out


def test_alert_actions_report_not_found_and_conflicts(capsys):
    transport, _ = answering(
        {
            ("POST", "/api/v1/alerts/8/resolve"): httpx.Response(404, json={}),
            ("POST", "/api/v1/alerts/9/resolve"): httpx.Response(
                409, json={"detail": "the alert is resolved: cannot resolve"}
            ),
        }
    )
    args = ["--note", "done"]
    assert cli.main(["resolve", "8", *args], transport=transport) == 1
    assert cli.main(["resolve", "9", *args], transport=transport) == 2
    assert "router answered 409" in capsys.readouterr().err


def test_the_typer_app_runs_under_clirunner_with_an_injected_connection():
    transport, seen = answering(
        {("GET", "/api/v1/replays"): httpx.Response(200, json={"count": 0, "items": []})}
    )
    result = CliRunner().invoke(
        cli.app,
        ["--router-url", "http://router.example:9000", "replays", "--limit", "5"],
        obj=cli.Connection(transport=transport),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"count": 0, "items": []}
    assert str(seen[0].url) == "http://router.example:9000/api/v1/replays?limit=5"


def test_hash_password_prints_an_account_whose_hash_verifies(monkeypatch, capsys):
    import json as _json

    from services.router.ops import cli as router_cli
    from services.router.ops.console.accounts import ConsoleUser, verify_password

    answers = iter(["a long passphrase", "a long passphrase"])
    monkeypatch.setattr("typer.prompt", lambda *a, **k: next(answers))
    assert router_cli.main(["hash-password", "--name", "asa", "--role", "admin"]) == 0
    account = ConsoleUser.model_validate(_json.loads(capsys.readouterr().out))
    assert (account.name, account.role) == ("asa", "admin")
    assert verify_password("a long passphrase", account.password_hash)
    assert "a long passphrase" not in account.password_hash


@pytest.mark.parametrize(
    ("status", "code", "printed"),
    [(200, 0, "closed: m-2 → treserva is not sent again"), (404, 1, ""), (409, 2, "")],
)
def test_close_asks_the_router_with_the_reason_and_reports(capsys, status, code, printed):
    path = "/api/v1/messages/m-2/deliveries/treserva/close"
    transport, seen = answering({("POST", path): httpx.Response(status, json={"closed": True})})
    argv = ["close", "m-2", "--destination", "treserva", "--reason", "phoned"]
    assert cli.main(argv, transport=transport) == code
    assert json.loads(seen[0].content) == {"reason": "phoned"}
    assert printed in capsys.readouterr().out


def test_activate_subscription_sends_the_second_admins_own_key(tmp_path, capsys):
    key_file = tmp_path / "key"
    key_file.write_text("the-approvers-own-key\n", encoding="utf-8")
    activated = {
        "id": "sub-1",
        "status": "active",
        "createdBy": "ops",
        "activatedBy": "approver",
    }
    transport, seen = answering(
        {("POST", "/api/v1/subscriptions/sub-1/activate"): httpx.Response(200, json=activated)}
    )
    code = cli.main(
        ["activate-subscription", "sub-1", "--api-key-file", str(key_file)], transport=transport
    )
    assert code == 0
    assert seen[0].headers["authorization"] == "Bearer the-approvers-own-key"
    assert "sub-1 is active: created by ops, activated by approver" in capsys.readouterr().out


def test_activate_subscription_reports_the_refusal_of_the_same_admin(capsys):
    refused = {"detail": "a subscription is activated by a different admin"}
    transport, _ = answering(
        {
            ("POST", "/api/v1/subscriptions/sub-1/activate"): httpx.Response(403, json=refused),
            ("POST", "/api/v1/subscriptions/sub-2/activate"): httpx.Response(404, json={}),
        }
    )
    assert cli.main(["activate-subscription", "sub-1"], transport=transport) == 2
    assert "router answered 403" in capsys.readouterr().err
    assert cli.main(["activate-subscription", "sub-2"], transport=transport) == 1


CASE_ID = "6f1c1d1e-0000-5000-8000-000000000001"
CASE = {
    "case_id": CASE_ID,
    "count": 2,
    "items": [
        {
            "id": "m-1",
            "event_code": "admission-notice",
            "sent_at": "2026-11-02T08:00:00+00:00",
            "deliveries": [
                {
                    "destination": "treserva",
                    "receiver_unit_hsa": "SE2120000000-FBGHSV",
                    "state": "confirmed",
                    "legal_due_at": "2026-11-02T09:00:00+00:00",
                }
            ],
        },
        {
            "id": "m-2",
            "event_code": "read-receipt",
            "sent_at": "2026-11-02T08:05:00+00:00",
            "deliveries": [],
        },
    ],
}


def test_case_asks_the_logged_case_view_with_the_reason_and_prints_its_timeline(capsys):
    path = f"/api/v1/cases/{CASE_ID}"
    transport, seen = answering({("GET", path): httpx.Response(200, json=CASE)})
    code = cli.main(["case", CASE_ID, "--reason", "ärende 42"], transport=transport)
    assert code == 0
    (request,) = seen
    assert dict(request.url.params) == {"reason": "ärende 42"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["sent", "family", "message", "id", "deliveries"]
    assert lines[1].split() == [
        "2026-11-02T08:00:00+00:00",
        "admission-notice",
        "m-1",
        "treserva@SE2120000000-FBGHSV:confirmed",
        "due",
        "2026-11-02T09:00:00+00:00",
    ]
    assert lines[2].split() == ["2026-11-02T08:05:00+00:00", "read-receipt", "m-2", "-"]


def test_case_without_a_reason_is_a_usage_error_and_an_unknown_case_exits_1(capsys):
    transport, seen = answering(
        {("GET", "/api/v1/cases/nope"): httpx.Response(404, json={"detail": "no such case"})}
    )
    with pytest.raises(SystemExit) as usage:
        cli.main(["case", "nope"], transport=transport)
    assert usage.value.code == 2 and seen == []
    assert cli.main(["case", "nope", "--reason", "check"], transport=transport) == 1
    assert "no case nope" in capsys.readouterr().err
