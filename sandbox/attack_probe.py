"""``make attack-probe``: try each attack of the threat model against a private stack over real
sockets (Tansu, router, adapters, simulated journals) and print what was expected and what
was observed, as a Markdown table. Exits non-zero if any observation differs.

The stack runs with a low rate limit (a burst of 40, then 5 a second) so the flood attack
is quick; everything else is the sandbox's defaults. After every attack, valid traffic must
still flow: the last row posts an admission and waits for Treserva's confirmation."""

from __future__ import annotations

import contextlib
import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from sandbox import stack as stack_module
from sandbox.demo import demo_settings
from sandbox.probe_identity import (
    actor_from_the_body,
    admission_during_login_flood,
    console_headers,
    cookie_after_logout,
    cookie_after_removal,
    forged_access_tokens,
    forged_console_cookie,
    login_throttled,
    person_token_names_the_person,
)
from sandbox.probe_refusals import (
    api_search_never_echoes,
    csv_export_escapes_formulas,
    dependency_without_a_lock,
    production_on_sandbox_secrets,
)
from sandbox.probe_support import (
    METRICS_TOKEN,
    OPS_TOKEN,
    PATIENT,
    TAKECARE_KEY,
    TRESERVA_KEY,
    VIEWER_KEY,
    WRONG_CHECK_DIGIT,
    Attack,
    Observation,
    Probe,
    bearer,
    csrf_of,
    expect_status,
    log_in,
)
from sandbox.scenario import Scenario, Timeout
from sandbox.stack import Stack, StackError, StackSettings, free_port
from services.messaging.keys import hash_key

SQL = "'); DROP TABLE message; --"
HTML = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def no_key(p: Probe) -> Observation:
    res = p.takecare("admissions", json=p.admission())
    return expect_status(res, 401, res.headers.get("www-authenticate", ""))


def wrong_key(p: Probe) -> Observation:
    return expect_status(
        p.takecare("admissions", json=p.admission(), headers=bearer("guess-123")), 401
    )


def other_systems_key(p: Probe) -> Observation:
    return expect_status(
        p.takecare("admissions", json=p.admission(), headers=bearer(TRESERVA_KEY)), 403
    )


def family_not_its_own(p: Probe) -> Observation:
    # TakeCare's key on Treserva's intake (Treserva's SIP): a known system, not its family
    res = p.http.post(
        f"{p.stack.treserva_adapter_url}/treserva/v1/sip", json={}, headers=bearer(TAKECARE_KEY)
    )
    return expect_status(res, 403)


def oversized(p: Probe) -> Observation:
    event = p.admission(admissionReason="x" * (2 * 1024 * 1024))
    res = p.takecare("admissions", json=event, headers=bearer(TAKECARE_KEY))
    return expect_status(res, 413)


def streamed_oversized(p: Probe) -> Observation:
    def chunks() -> Any:
        yield b'{"eventId": "'
        for _ in range(1024):
            yield b"y" * 1024
        yield b'"}'

    res = p.takecare(
        "admissions",
        content=chunks(),
        headers={**bearer(TAKECARE_KEY), "content-type": "application/json"},
    )
    return expect_status(res, 413, "no Content-Length: counted while it streams")


def deeply_nested(p: Probe) -> Observation:
    body = '{"a":' * 200 + "1" + "}" * 200
    res = p.takecare(
        "admissions",
        content=body,
        headers={**bearer(TAKECARE_KEY), "content-type": "application/json"},
    )
    return expect_status(res, 400)


def wrong_media_type(p: Probe) -> Observation:
    res = p.takecare(
        "admissions",
        content=json.dumps(p.admission()),
        headers={**bearer(TAKECARE_KEY), "content-type": "application/xml"},
    )
    return expect_status(res, 415)


def invalid_personnummer(p: Probe) -> Observation:
    event = p.admission()
    event["patient"].pop("reserveNumber", None)
    event["patient"]["personalIdentityNumber"] = WRONG_CHECK_DIGIT
    res = p.takecare("admissions", json=event, headers=bearer(TAKECARE_KEY))
    echoed = WRONG_CHECK_DIGIT in res.text
    return Observation(
        str(res.status_code),
        res.status_code == 422 and not echoed,
        "value not echoed" if not echoed else "the value was echoed",
    )


def _delivered(p: Probe, free_text: str) -> str | Observation:
    """Post an admission whose reason is ``free_text``; its message id once Treserva has
    confirmed it, or the refusal."""
    event = p.admission(admissionReason=free_text)
    res = p.takecare("admissions", json=event, headers=bearer(TAKECARE_KEY))
    if res.status_code != 202:
        return expect_status(res, 202)
    message_id = str(res.json()["messageId"])
    p.scenario.wait_for_state(message_id, "confirmed", timeout_s=30, destination="treserva")
    return message_id


def sql_in_free_text(p: Probe) -> Observation:
    message_id = _delivered(p, SQL)
    if isinstance(message_id, Observation):
        return message_id
    stored = p.scenario.journal("treserva", f"inskrivningsmeddelanden/{message_id}") or {}
    verbatim = SQL in json.dumps(stored, ensure_ascii=False)
    return Observation("202", verbatim, "delivered verbatim to Treserva; tables intact")


def html_in_free_text(p: Probe) -> Observation:
    message_id = _delivered(p, HTML)
    if isinstance(message_id, Observation):
        return message_id
    with p.console() as console:
        log_in(console)
        page = console.get(f"/console/messages/{message_id}")
        csrf = csrf_of(page)
        if csrf is None:
            return Observation(str(page.status_code), False, "no console form")
        shown = console.post(
            f"/console/messages/{message_id}/payload",
            data={"reason": "granskning av fritext", "csrf": csrf},
        )
    raw = "<script>alert(" in shown.text or "<img src=x" in shown.text
    # as HTML entities in text, or as JSON escapes (\u003c) in the payload's <pre>
    escaped = "&lt;script&gt;" in shown.text or "\\u003cscript\\u003e" in shown.text
    return Observation(
        f"202, console {shown.status_code}",
        shown.status_code == 200 and escaped and not raw,
        "shown escaped in the console" if escaped and not raw else "NOT escaped",
    )


def flood(p: Probe) -> Observation:
    statuses = []
    for _ in range(80):
        res = p.takecare("admissions", json={}, headers=bearer("flood-guess"))
        statuses.append(res.status_code)
        if res.status_code == 429:
            break
    last = res
    retry = last.headers.get("retry-after")
    return Observation(
        str(last.status_code),
        last.status_code == 429 and retry is not None,
        f"after {len(statuses)} requests, Retry-After {retry}",
    )


def router_api_without_key(p: Probe) -> Observation:
    return expect_status(p.router("GET", "/api/v1/messages", None), 401)


def viewer_replays(p: Probe) -> Observation:
    body = {"messageIds": ["m-1"], "operator": "eve", "reason": "nyfiken"}
    return expect_status(p.router("POST", "/api/v1/replays", VIEWER_KEY, json=body), 403)


def viewer_opens_payload(p: Probe) -> Observation:
    body = {"operator": "eve", "reason": "nyfiken"}
    path = "/api/v1/messages/00000000-0000-0000-0000-000000000000/payload"
    return expect_status(p.router("POST", path, VIEWER_KEY, json=body), 403)


def metrics_without_token(p: Probe) -> Observation:
    urls = (p.stack.router_url, p.stack.takecare_adapter_url, p.stack.treserva_adapter_url)
    without = [p.http.get(f"{url}/metrics").status_code for url in urls]
    with_token = [
        p.http.get(f"{url}/metrics", headers=bearer(METRICS_TOKEN)).status_code for url in urls
    ]
    return Observation(
        "/".join(map(str, without)),
        without == [401, 401, 401] and with_token == [200, 200, 200],
        "router/takecare/treserva; 200 with the token",
    )


def router_api_flood(p: Probe) -> Observation:
    def one(_: int) -> httpx.Response:
        return p.router("GET", "/api/v1/deliveries/states", VIEWER_KEY)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(400)))
    throttled = [r for r in answers if r.status_code == 429]
    if not throttled:
        return Observation("200", False, "never throttled")
    retry = throttled[0].headers.get("retry-after")
    return Observation(
        "429",
        retry is not None,
        f"{len(throttled)} of {len(answers)} concurrent requests, Retry-After {retry}",
    )


def payload_without_reason(p: Probe) -> Observation:
    path = "/api/v1/messages/00000000-0000-0000-0000-000000000000/payload"
    return expect_status(p.router("POST", path, OPS_TOKEN, json={"operator": "asa"}), 422)


def console_wrong_password(p: Probe) -> Observation:
    res = p.http.post(
        f"{p.stack.router_url}/console/login",
        data={"user": "ops", "password": "sommar2026", "next": "/console/"},
    )
    cookie = "set-cookie" in res.headers
    return Observation(str(res.status_code), res.status_code == 401 and not cookie, "no session")


def console_without_csrf(p: Probe) -> Observation:
    with p.console() as console:
        log_in(console)
        res = console.post(
            "/console/messages/by-personnummer",
            data={"personnummer": PATIENT, "reason": "förfalskad", "csrf": "forged"},
        )
    return expect_status(res, 403)


def access_log_holds_every_view(p: Probe) -> Observation:
    body = {"operator": "asa", "reason": "uppföljning", "personnummer": PATIENT}
    search = p.router("POST", "/api/v1/messages/search/personnummer", OPS_TOKEN, json=body)
    verify = p.router("GET", "/api/v1/access-log/verify", OPS_TOKEN).json()
    entries = p.router("GET", "/api/v1/access-log", OPS_TOKEN).json()["items"]
    logged = any(e.get("reason") == "uppföljning" for e in entries)
    return Observation(
        f"{search.status_code}, chain ok={verify['ok']}",
        search.status_code == 200 and logged and verify["ok"],
        f"{verify['checked']} entries chained; search logged with pseudonym only",
    )


# --- webhook subscriptions (issue 19): server-side request forgery and two admins ---------

# The probe's router refuses private callbacks (its subscriber simulator is not used), and
# a public address written literally needs no DNS: the probe runs without a network.
PUBLIC_CALLBACK = "https://93.184.215.14/hooks/carebridge"
PRIVATE_CALLBACKS = (
    "http://127.0.0.1:{port}/api/v1/messages",  # the router itself
    "https://localhost/hooks",
    "https://10.0.0.1/hooks",
    "https://169.254.169.254/latest/meta-data/",  # a cloud metadata service
    "https://[::ffff:127.0.0.1]/hooks",
    "https://100.64.0.1/hooks",
)


def _subscription(endpoint: str) -> dict[str, Any]:
    return {
        "name": "probe",
        "criteria": {"events": ["admission-notice"]},
        "channel": {"type": "rest-hook", "endpoint": endpoint},
        "secret": "probe-subscriber-secret-0123456789",
    }


def private_callback(p: Probe) -> Observation:
    port = p.stack.routers()[0][1]
    codes, named = [], True
    for endpoint in PRIVATE_CALLBACKS:
        url = endpoint.format(port=port)
        res = p.router("POST", "/api/v1/subscriptions", OPS_TOKEN, json=_subscription(url))
        codes.append(res.status_code)
        fields = [e.get("field") for e in res.json().get("errors", [])]
        named = named and fields == ["body.channel.endpoint"] and url not in res.text
    return Observation(
        "/".join(sorted(set(map(str, codes)))),
        set(codes) == {422} and named,
        f"{len(codes)} callbacks; the field named, never the URL",
    )


def activation_by_the_creator(p: Probe) -> Observation:
    created = p.router(
        "POST", "/api/v1/subscriptions", OPS_TOKEN, json=_subscription(PUBLIC_CALLBACK)
    )
    if created.status_code != 201:
        return Observation(str(created.status_code), False, "could not create one to try")
    sub_id = created.json()["id"]
    res = p.router("POST", f"/api/v1/subscriptions/{sub_id}/activate", OPS_TOKEN)
    status = p.router("GET", f"/api/v1/subscriptions/{sub_id}", OPS_TOKEN).json()["status"]
    p.router("DELETE", f"/api/v1/subscriptions/{sub_id}", OPS_TOKEN)  # leave nothing pending
    return (
        expect_status(res, 403, f"still {status}")
        if status == "pending"
        else Observation(str(res.status_code), False, f"it became {status}")
    )


# --- the access log out of the database owner's reach (issue 19, item 7) ---------------------
GUESSED_TOKEN = "probe-guessed-token-0123456789"  # noqa: S105 (a guess the router refuses)


def refused_token_is_recorded(p: Probe) -> Observation:
    refused = p.router("GET", "/api/v1/alerts", GUESSED_TOKEN)
    listed = p.router("GET", "/api/v1/access-log?category=security&limit=50", OPS_TOKEN)
    entries = [e for e in listed.json()["items"] if e["kind"] == "token-refused"]
    leaked = GUESSED_TOKEN in listed.text
    return Observation(
        f"{refused.status_code}, recorded {len(entries)}x",
        refused.status_code == 401 and bool(entries) and not leaked,
        entries[0]["reason"] if entries else "not recorded",
    )


def rewritten_access_log_is_found(p: Probe) -> Observation:
    """The database's owner rewrites an entry and recomputes every later hash: the chain
    alone accepts it, the router's signed checkpoints (a file outside the database) do not."""
    import sqlite3

    from services.router.audit.access_log import entry_hash

    url = p.stack.database_url("router")
    if not url.startswith("sqlite"):
        return Observation("not run", True, "rewrites the SQLite stack's database only")
    deadline = time.monotonic() + 20
    while True:  # a checkpoint of the head (written every second here) first
        found = p.router("GET", "/api/v1/access-log/verify", OPS_TOKEN).json()
        if (found.get("checkpoints") or {}).get("matched"):
            break
        if time.monotonic() > deadline:
            return Observation("no checkpoint", False, "the router wrote no checkpoint")
        time.sleep(0.5)
    export = p.router("GET", "/api/v1/access-log/export.jsonl", OPS_TOKEN).text
    entries = [json.loads(line) for line in export.splitlines() if line.strip()]
    with sqlite3.connect(url.split(":///", 1)[1], timeout=30) as db:
        db.execute("DROP TRIGGER IF EXISTS access_log_no_update")  # as the owner can
        prev = "0" * 64
        for entry in entries:
            if entry["seq"] == 1:
                entry["reason"] = "rutinkontroll"  # what the forger wants it to say
            entry["prev_hash"], entry["hash"] = prev, entry_hash(entry, prev)
            db.execute(
                "UPDATE access_log SET reason = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (entry["reason"], prev, entry["hash"], entry["seq"]),
            )
            prev = entry["hash"]
    after = p.router("GET", "/api/v1/access-log/verify", OPS_TOKEN).json()
    first = (after.get("checkpoints") or {}).get("firstMismatch") or {}
    return Observation(
        f"chain ok={after['ok']}, checkpoints ok={(after.get('checkpoints') or {}).get('ok')}",
        after["ok"] is True and first.get("problem") == "mismatch",
        f"first checkpoint no longer matching: line {first.get('line')}, seq {first.get('seq')}",
    )


def valid_traffic_still_flows(p: Probe) -> Observation:
    # the flood emptied the guessing peer's bucket; TakeCare's key has a bucket of its own
    res = p.takecare("admissions", json=p.admission(), headers=bearer(TAKECARE_KEY))
    if res.status_code != 202:
        return expect_status(res, 202)
    started = time.perf_counter()
    # the router API flood came from this address too: the poll waits out its 429s
    p.scenario.wait_for_state(res.json()["messageId"], "confirmed", timeout_s=30)
    return Observation(
        "202, confirmed", True, f"confirmed {(time.perf_counter() - started) * 1000:.0f} ms later"
    )


ATTACKS = (
    Attack("intake without a key", "401 + WWW-Authenticate", no_key),
    Attack("intake with a guessed key", "401", wrong_key),
    Attack("Treserva's key on TakeCare's admissions", "403", other_systems_key),
    Attack("TakeCare's key on Treserva's SIP intake", "403", family_not_its_own),
    Attack("2 MiB body (declared length)", "413", oversized),
    Attack("1 MiB streamed body, no length", "413", streamed_oversized),
    Attack("JSON nested 200 deep", "400", deeply_nested),
    Attack("XML body", "415", wrong_media_type),
    Attack("personnummer with a wrong check digit", "422, value not echoed", invalid_personnummer),
    Attack("SQL injection in free text", "202, stored verbatim, delivered", sql_in_free_text),
    Attack("HTML/script in free text", "202, escaped in the console", html_in_free_text),
    Attack("flood of requests with guessed keys", "429 + Retry-After", flood),
    Attack("router API without a key", "401", router_api_without_key),
    Attack("viewer API key replays a dead letter", "403", viewer_replays),
    Attack("viewer API key opens a payload", "403", viewer_opens_payload),
    Attack("payload view without a reason", "422", payload_without_reason),
    Attack("/metrics without its token", "401 on every service", metrics_without_token),
    Attack("console log-in with a wrong password", "401, no session", console_wrong_password),
    Attack("console form with a forged CSRF token", "403", console_without_csrf),
    Attack(
        "personnummer search leaves an access-log entry",
        "200, chain ok",
        access_log_holds_every_view,
    ),
    Attack(
        "subscription to a loopback/private callback", "422 naming the endpoint", private_callback
    ),
    Attack(
        "subscription activated by the admin who made it",
        "403, still pending",
        activation_by_the_creator,
    ),
    Attack(
        "router API with a guessed token", "401, recorded, token not", refused_token_is_recorded
    ),
    Attack(
        "rewrite the access log and recompute every hash",
        "chain ok, checkpoints report it",
        rewritten_access_log_is_found,
    ),
    # --- issue 19: fail closed (sandbox/probe_refusals.py) ---
    Attack(
        "router started in production on the sandbox's secrets",
        "exit 2, settings named, no value",
        production_on_sandbox_secrets,
    ),
    # --- issue 19: console sessions on the server (sandbox/probe_identity.py) ---
    Attack(
        "console cookie forged (made up; old format, sandbox secret)",
        "303 to the log-in",
        forged_console_cookie,
    ),
    Attack("console cookie reused after log-out", "303 to the log-in", cookie_after_logout),
    Attack(
        "6 wrong console passwords for one name", "401 x5, then 429 + Retry-After", login_throttled
    ),
    Attack(
        "console cookie of an account removed since (kept 8 h before)",
        "303 to the log-in",
        cookie_after_removal,
    ),
    Attack(
        "admission confirmed during 40 parallel console log-ins (6.9 s, 0.4 s alone)",
        "at most 2x alone + 1 s, all 303",
        admission_during_login_flood,
    ),
    # --- issue 19: identity tokens and who acts (sandbox/probe_identity.py) ---
    Attack(
        "ops API with a forged access token (RS256 own key; alg none)",
        "401",
        forged_access_tokens,
    ),
    Attack(
        "ops API with a sandbox person's real access token (control)",
        "200, logged as that person",
        person_token_names_the_person,
    ),
    Attack(
        'replay whose body names "operator": "Mallory"',
        "200, logged as the API client",
        actor_from_the_body,
    ),
    # --- issue 19: HTTP edge and refusals (sandbox/probe_identity.py, probe_refusals.py) ---
    Attack(
        "console framed, sniffed, inline script, cached",
        "CSP, nosniff, Referrer-Policy, no-store",
        console_headers,
    ),
    Attack(
        "router API search with an invalid personnummer",
        "422 naming the field, not the value",
        api_search_never_echoes,
    ),
    # --- issue 19: the access log's CSV export (sandbox/probe_refusals.py) ---
    Attack(
        "access-log reason =HYPERLINK(…) exported as CSV",
        "the cell starts with '",
        csv_export_escapes_formulas,
    ),
    # --- issue 19: supply chain (sandbox/probe_refusals.py) ---
    Attack(
        "a dependency added to pyproject.toml without make lock",
        "refused, naming it",
        dependency_without_a_lock,
    ),
    # --- after everything else: the flood empties the router API's bucket ---
    Attack("flood of router API requests", "429 + Retry-After", router_api_flood),
    Attack("valid admission after all of the above", "202, confirmed", valid_traffic_still_flows),
)


def run(stack: Stack) -> list[tuple[Attack, Observation]]:
    scenario = Scenario(stack, random.Random(7))
    probe = Probe(stack, scenario)
    results = []
    try:
        for attack in ATTACKS:
            try:
                seen = attack.run(probe)
            except (httpx.HTTPError, Timeout, KeyError, ValueError) as exc:
                seen = Observation("error", False, f"{type(exc).__name__}: {exc}"[:120])
            results.append((attack, seen))
            mark = "ok " if seen.ok else "BAD"
            print(f"  {mark} {attack.name}: {seen.status}", flush=True)
    finally:
        probe.http.close()
        scenario.close()
    return results


def table(results: list[tuple[Attack, Observation]]) -> str:
    rows = ["| attack tried | expected | observed | |", "|---|---|---|---|"]
    for attack, seen in results:
        observed = f"{seen.status}" + (f" ({seen.detail})" if seen.detail else "")
        rows.append(
            f"| {attack.name} | {attack.expected} | {observed} | {'✓' if seen.ok else '✗'} |"
        )
    return "\n".join(rows)


def probe_settings(data_dir: Path, **overrides: object) -> StackSettings:
    """A private sandbox stack with a low rate limit and a viewer API client."""
    return demo_settings(
        data_dir,
        adapter_env={
            "RATE_LIMIT_BURST": "40",
            "RATE_LIMIT_PER_S": "5",
            "METRICS_TOKEN": METRICS_TOKEN,
        },
        router_env={
            "RATE_LIMIT_BURST": "60",  # the default burst (100) outlasts the flood's polls
            # the default rate (100/s) is more than a router on a loaded 2-core machine
            # answers, so the flood would never pass it: CI once saw "never throttled"
            "RATE_LIMIT_PER_S": "10",
            "METRICS_TOKEN": METRICS_TOKEN,
            "SUBSCRIPTION_ALLOW_PRIVATE_ADDRESSES": "false",  # the SSRF rows need the check
            # signed access-log checkpoints, written every second when the head moved
            "AUDIT_CHECKPOINT_FILE": str(data_dir.resolve() / "access-log-checkpoints.jsonl"),
            "AUDIT_CHECKPOINT_EVERY_S": "1",
            "API_CLIENTS": json.dumps(
                {"probe-viewer": {"role": "viewer", "key_hashes": [hash_key(VIEWER_KEY)]}}
            ),
        },
        **overrides,
    )


def with_identity_provider(
    settings: StackSettings, resources: contextlib.ExitStack
) -> tuple[StackSettings, str]:
    """The sandbox's OIDC provider for the probe's router when it is installed (``make
    oidc-provider``), on a free port, until ``resources`` closes: the forged-token row then
    attacks a router that trusts a provider, and the control row gets a real token."""
    return stack_module.with_identity_provider(
        settings.model_copy(update={"oidc_port": free_port()}), resources
    )


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="carebridge-probe-") as tmp,
        contextlib.ExitStack() as resources,
    ):
        settings, provider = with_identity_provider(probe_settings(Path(tmp)), resources)
        stack = Stack(settings, echo=lambda _: None)
        print(f"starting a private stack…\n{provider.rstrip()}", flush=True)
        try:
            stack.start()
            results = run(stack)
        except StackError as exc:
            print(f"FAILED to start: {exc}")
            return 1
        finally:
            stack.stop()
    print()
    print(table(results))
    failed = [a.name for a, seen in results if not seen.ok]
    print(f"\n{len(results) - len(failed)} of {len(results)} attacks answered as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
