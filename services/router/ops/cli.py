"""Operator CLI for the router's HTTP API (``python -m services.router.ops.cli``), built on typer.

``list [filters] [--next CURSOR]``   messages newest first, as a table (the search filters)
``show MESSAGE_ID``                  one message: each delivery's transitions and attempts
``case CASE_ID --reason R``          one stay's messages oldest first, with receiving units,
                                     states and deadlines (logged by the router: case-view)
``replay --message-id ID ...`` or ``replay --destination D [--event E] [--since T]``
                                     replay unconfirmed deliveries (dead letters, sent without a
                                     receipt), with a reason;
                                     by filter with a progress bar over the matching total;
                                     ``--force`` also resurrects a superseded SIP/medication list
``replays``                          the replay audit
``acknowledge ALERT_ID``, ``resolve ALERT_ID``  take or close an incident (``--note``)
``close ID --destination D``         stop sending an unconfirmed delivery (with a reason)
``activate-subscription ID --api-key-file F``  the second admin's approval of a pending
                                     webhook subscription, with that admin's own API key
                                     (the admin who created it is refused)
``hash-password --name N --role R``  a console account (argon2id hash) for ROUTER_CONSOLE_USERS
``new-payload-key --key-id ID [--keep RING]``  a ROUTER_PAYLOAD_KEYS value with a new key
``new-signing-key --service S --key-id ID``  an Ed25519 record signing key and its public entry
``rotate-payload-keys``              re-seal stored payloads under the current key (progress)
``prune-payloads``                   prune finished payloads past the retention period
``new-checkpoint-key --key-id ID``   an Ed25519 key for the access log's signed checkpoints
``access-log verify [--checkpoints FILE] [--public-key ID:KEY] [--export FILE]``  the hash
                                     chain; with checkpoints, also a rewrite with recomputed
                                     hashes or a truncation (services/router/ops/cli_access_log.py)
``units list [--active]``           the unit directory (HSA-id, kind, kommunkod, channel)
``units put --file UNIT.json``       add or update a unit (admin; audited, before and after)
``units deactivate HSA_ID``          a unit receives nothing more (admin; audited)
``deviations export --month 2026-11 --format csv|json [--out FILE]``  the month's deviation
                                     reports (avvikelser i samverkan) for a deviation system
                                     such as Flexite; without ``--out`` to standard output

Every command only shapes a request and its answer; the router does the work. Exit codes: 0
done, 1 done with refusals (or not found), 2 the router refused the request or bad usage.
"""

from __future__ import annotations

import base64
import enum
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

# typer vendors click (since 0.2x) and exports BadParameter but not its base class, which
# main() needs to print any usage error plainly and exit 2 the way argparse did.
from typer._click.exceptions import ClickException

from services.messaging.payload_crypto import Keyring, encode_keyring, new_key
from services.messaging.record_signing import new_signing_key, public_entry
from services.router.deviations.records import InvalidMonth, month_window
from services.router.ops.cli_access_log import access_log_app
from services.router.ops.cli_output import case_rows, message_rows, print_table, timeline
from services.router.ops.console.accounts import Role, hash_password
from services.router.settings import RouterSettings

app = typer.Typer(
    name="python -m services.router.ops.cli",
    help="Operate the carebridge router through its HTTP API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
deviations_app = typer.Typer(
    help="Deviation reports (avvikelser i samverkan).", no_args_is_help=True
)
app.add_typer(deviations_app, name="deviations")
app.add_typer(access_log_app, name="access-log")
units_app = typer.Typer(help="The unit directory (addressing by unit).", no_args_is_help=True)
app.add_typer(units_app, name="units")


@dataclass
class Connection:
    """How to reach the router: ``transport`` is injected by tests (httpx.MockTransport or
    an in-process ASGI app), None in production."""

    transport: httpx.BaseTransport | None = None
    router_url: str | None = None

    def client(self) -> httpx.Client:
        settings = RouterSettings()
        return httpx.Client(
            base_url=self.router_url or f"http://{settings.host}:{settings.port}",
            headers={"authorization": f"Bearer {settings.ops_token}"},
            timeout=60.0,
            transport=self.transport,
        )


def _client(ctx: typer.Context) -> httpx.Client:
    found = ctx.find_object(Connection)
    return (found or Connection()).client()


def _refused(res: httpx.Response) -> typer.Exit:
    typer.echo(f"router answered {res.status_code}: {res.text[:500]}", err=True)
    return typer.Exit(2)


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


@app.callback()
def _root(
    ctx: typer.Context,
    router_url: Annotated[
        str | None, typer.Option(help="default: http://<ROUTER_HOST>:<ROUTER_PORT>")
    ] = None,
) -> None:
    ctx.ensure_object(Connection).router_url = router_url


Event = Annotated[str | None, typer.Option(help="family (event code), e.g. medication-list")]
Destination = Annotated[str | None, typer.Option(help="e.g. treserva, primary-care")]


@app.command("list")
def list_messages(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="received at or after (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="received before (ISO 8601)")] = None,
    event: Event = None,
    source: Annotated[str | None, typer.Option(help="takecare or treserva")] = None,
    destination: Destination = None,
    state: Annotated[str | None, typer.Option(help="a delivery in this state")] = None,
    pseudonym: Annotated[str | None, typer.Option(help="the patient's keyed pseudonym")] = None,
    business_key: Annotated[str | None, typer.Option(help="source|event id|version")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    next_cursor: Annotated[
        str | None, typer.Option("--next", help="the cursor printed under the last page")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the API's answer as JSON")] = False,
) -> None:
    """Messages newest first, filtered; page on with --next."""
    params = _drop_none(
        {
            "since": since,
            "until": until,
            "event": event,
            "source": source,
            "destination": destination,
            "state": state,
            "pseudonym": pseudonym,
            "businessKey": business_key,
            "limit": limit,
            "cursor": next_cursor,
        }
    )
    with _client(ctx) as client:
        res = client.get("/api/v1/messages", params=params)
    if res.status_code != 200:
        raise _refused(res)
    page = res.json()
    if as_json:
        typer.echo(json.dumps(page, indent=2, ensure_ascii=False))
        return
    print_table(("received", "message id", "family", "source", "deliveries"), message_rows(page))
    if page["next"]:
        typer.echo(f"more: --next {page['next']}")


@app.command()
def show(ctx: typer.Context, message_id: str) -> None:
    """One message and each delivery's timeline: state transitions and attempts."""
    with _client(ctx) as client:
        res = client.get(f"/api/v1/messages/{message_id}")
    if res.status_code == 404:
        typer.echo(f"no message {message_id}", err=True)
        raise typer.Exit(1)
    if res.status_code != 200:
        raise _refused(res)
    for line in timeline(res.json()):
        typer.echo(line)


@app.command("case")
def show_case(
    ctx: typer.Context,
    case_id: str,
    reason: Annotated[str, typer.Option(help="why you open the case (kept in the access log)")],
) -> None:
    """One stay's case as a timeline: every message oldest first, with each delivery's
    receiving unit, state and legal deadline. The router logs the view (``case-view``)."""
    with _client(ctx) as client:
        res = client.get(f"/api/v1/cases/{case_id}", params={"reason": reason})
    if res.status_code == 404:
        typer.echo(f"no case {case_id}", err=True)
        raise typer.Exit(1)
    if res.status_code != 200:
        raise _refused(res)
    print_table(("sent", "family", "message id", "deliveries"), case_rows(res.json()))


@app.command()
def replay(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="why (kept in the audit)")],
    message_id: Annotated[list[str] | None, typer.Option(help="repeat for several")] = None,
    destination: Destination = None,
    event: Event = None,
    since: Annotated[
        str | None, typer.Option(help="in its current state since, at or after (ISO 8601)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="in its current state since, at or before")
    ] = None,
    force: Annotated[bool, typer.Option(help="also a superseded SIP/medication list")] = False,
) -> None:
    """Replay unconfirmed deliveries (dead letters, sent without a receipt, waiting for a
    retry), by message id or by filter (audited)."""
    if not (message_id or destination or event):
        raise typer.BadParameter("name --message-id, or filter with --destination/--event")
    body: dict[str, Any] = {
        "messageIds": message_id or [],
        "destination": destination,
        "event": event,
        "since": since,
        "until": until,
        "reason": reason,
        "force": force,
    }
    with _client(ctx) as client:
        if message_id:
            replayed, refused = _replay_by_id(client, body)
        else:
            replayed, refused = _replay_by_filter(client, body)
    for item in refused.values():
        typer.echo(f"  refused {item['messageId']} → {item['destination']}: {item['detail']}")
    typer.echo(f"done: {replayed} replayed, {len(refused)} refused (both audited)")
    if refused:
        raise typer.Exit(1)


def _replay_page(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    res = client.post("/api/v1/replays", json=body)
    if res.status_code != 200:
        raise _refused(res)
    found: dict[str, Any] = res.json()
    return found


def _replay_by_id(
    client: httpx.Client, body: dict[str, Any]
) -> tuple[int, dict[int, dict[str, Any]]]:
    found = _replay_page(client, body)
    refused = {i["deliveryId"]: i for i in found["items"] if not i["replayed"]}
    return int(found["replayed"]), refused


def _replay_by_filter(
    client: httpx.Client, body: dict[str, Any]
) -> tuple[int, dict[int, dict[str, Any]]]:
    """Page by page until a page replays nothing more (the API replays at most 1000 per
    request), with a progress bar over the dead letters the filter matched at the start."""
    keys = ("destination", "event", "since", "until")
    res = client.get("/api/v1/replays/candidates", params=_drop_none({k: body[k] for k in keys}))
    if res.status_code != 200:
        raise _refused(res)
    total = int(res.json()["count"])
    replayed = 0
    refused: dict[int, dict[str, Any]] = {}
    with typer.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
        while True:
            found = _replay_page(client, body)
            fresh = {i["deliveryId"]: i for i in found["items"] if not i["replayed"]}
            fresh = {k: v for k, v in fresh.items() if k not in refused}
            refused |= fresh
            replayed += int(found["replayed"])
            bar.update(int(found["replayed"]) + len(fresh))
            if found["replayed"] == 0:
                break
    return replayed, refused


@app.command()
def replays(ctx: typer.Context, limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """The replay audit, newest first, as JSON."""
    with _client(ctx) as client:
        res = client.get("/api/v1/replays", params={"limit": limit})
    if res.status_code != 200:
        raise _refused(res)
    typer.echo(json.dumps(res.json(), indent=2, ensure_ascii=False))


@app.command("close")
def close_delivery(
    ctx: typer.Context,
    message_id: str,
    destination: Annotated[str, typer.Option(help="e.g. treserva, primary-care")],
    reason: Annotated[str, typer.Option(help="why it is not to be sent again (audited)")],
) -> None:
    """Stop sending a delivery that has no receipt (otherwise it is sent again every
    confirmation interval until its receipt comes). It can still be replayed."""
    with _client(ctx) as client:
        res = client.post(
            f"/api/v1/messages/{message_id}/deliveries/{destination}/close",
            json={"reason": reason},
        )
    if res.status_code == 404:
        typer.echo(f"no delivery of {message_id} to {destination}", err=True)
        raise typer.Exit(1)
    if res.status_code != 200:
        raise _refused(res)
    typer.echo(f"closed: {message_id} → {destination} is not sent again")


Note = Annotated[str, typer.Option(help="what was done or found (at least 3 characters)")]


def _alert_action(ctx: typer.Context, alert_id: int, action: str, note: str) -> None:
    with _client(ctx) as client:
        res = client.post(f"/api/v1/alerts/{alert_id}/{action}", json={"note": note})
    if res.status_code == 404:
        typer.echo(f"no alert {alert_id}", err=True)
        raise typer.Exit(1)
    if res.status_code != 200:
        raise _refused(res)
    found = res.json()
    typer.echo(f"alert {alert_id} is {found['state']}: {found['summary']}")


@app.command()
def acknowledge(ctx: typer.Context, alert_id: int, note: Note) -> None:
    """Take an incident: reminders stop until it is resolved."""
    _alert_action(ctx, alert_id, "acknowledge", note)


@app.command()
def resolve(ctx: typer.Context, alert_id: int, note: Note) -> None:
    """Close an incident by hand (one whose cause clears closes itself)."""
    _alert_action(ctx, alert_id, "resolve", note)


@app.command("activate-subscription")
def activate_subscription(
    ctx: typer.Context,
    subscription_id: str,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="a file holding your own admin API key (ROUTER_API_CLIENTS); default: the "
            "operator token, which is refused for a subscription it created"
        ),
    ] = None,
) -> None:
    """Activate a pending webhook subscription: the second admin's step. Who activates is
    the API client whose key is sent, never a name given here."""
    with _client(ctx) as client:
        if api_key_file is not None:  # a file, not an argument: keys stay out of ps and history
            key = api_key_file.read_text(encoding="utf-8").strip()
            client.headers["authorization"] = f"Bearer {key}"
        res = client.post(f"/api/v1/subscriptions/{subscription_id}/activate")
    if res.status_code == 404:
        typer.echo(f"no subscription {subscription_id}", err=True)
        raise typer.Exit(1)
    if res.status_code != 200:
        raise _refused(res)
    found = res.json()
    typer.echo(
        f"{found['id']} is {found['status']}: created by {found['createdBy']}, "
        f"activated by {found['activatedBy']}"
    )


@app.command("hash-password")
def hash_password_command(
    name: Annotated[str, typer.Option(help="the operator's log-in name")],
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")] = Role.OPERATOR,
) -> None:
    """Print one console account for ROUTER_CONSOLE_USERS (JSON); the password is asked for
    twice and never echoed, and only its argon2id hash is printed."""
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        typer.echo("use at least 12 characters", err=True)
        raise typer.Exit(2)
    account = {"name": name, "role": role.value, "password_hash": hash_password(password)}
    typer.echo(json.dumps(account))


@app.command("new-payload-key")
def new_payload_key(
    key_id: Annotated[str, typer.Option(help="the new key's id, e.g. 2026-12")],
    keep: Annotated[
        str | None, typer.Option(help="the current ROUTER_PAYLOAD_KEYS, to keep its keys")
    ] = None,
) -> None:
    """Print a ROUTER_PAYLOAD_KEYS value with a new random 256-bit key as the current one
    (the keys of ``--keep`` stay readable). Then restart the router and run
    ``rotate-payload-keys``."""
    keys = {}
    if keep:
        keys = {k: base64.b64encode(v).decode() for k, v in Keyring.from_setting(keep).keys.items()}
    if key_id in keys:
        raise typer.BadParameter(f"key id {key_id!r} is already in the ring")
    typer.echo(encode_keyring(key_id, {**keys, key_id: new_key()}))


@app.command("new-signing-key")
def new_record_signing_key(
    service: Annotated[str, typer.Option(help="router, adapter_takecare or adapter_treserva")],
    key_id: Annotated[str, typer.Option(help="the new key's id, e.g. 2026-12")],
) -> None:
    """Print a new Ed25519 record signing key for ``<SERVICE>_RECORD_SIGNING_KEY`` and the
    entry every consumer adds to its ``RECORD_TRUSTED_KEYS`` (next to the old key until every
    record signed with the old one is read)."""
    setting = f"{key_id}:{new_signing_key()}"
    kid, public = public_entry(setting)
    typer.echo(f"RECORD_SIGNING_KEY={setting}")
    typer.echo(f"RECORD_TRUSTED_KEYS entry: {json.dumps({service: {kid: public}})}")


@app.command("new-checkpoint-key")
def new_checkpoint_key(
    key_id: Annotated[str, typer.Option(help="the new key's id, e.g. audit-2026-12")],
) -> None:
    """Print a new Ed25519 key for ``ROUTER_AUDIT_CHECKPOINT_KEY`` (the access log's signed
    checkpoints; never the record signing key) and the public key an auditor passes to
    ``access-log verify --public-key``."""
    setting = f"{key_id}:{new_signing_key()}"
    kid, public = public_entry(setting)
    typer.echo(f"ROUTER_AUDIT_CHECKPOINT_KEY={setting}")
    typer.echo(f"public key (access-log verify --public-key): {kid}:{public}")


@app.command("rotate-payload-keys")
def rotate_payload_keys(
    ctx: typer.Context, batch: Annotated[int, typer.Option(min=1, max=1000)] = 200
) -> None:
    """Re-seal every stored payload under the router's current key, batch by batch, with a
    progress bar; afterwards no payload needs an older key."""
    with _client(ctx) as client:
        res = client.get("/api/v1/payload-keys")
        if res.status_code != 200:
            raise _refused(res)
        total, done, after = int(res.json()["stale"]), 0, ""
        with typer.progressbar(length=total, label="re-sealing", file=sys.stderr) as bar:
            while True:
                step = client.post(
                    "/api/v1/payload-keys/rotate", json={"after": after, "limit": batch}
                )
                if step.status_code != 200:
                    raise _refused(step)
                found = step.json()
                done += int(found["resealed"])
                bar.update(int(found["resealed"]))
                if found["next"] is None:
                    break
                after = found["next"]
    typer.echo(f"{done} payload(s) re-sealed under {res.json()['current']}; {found['stale']} left")


@app.command("prune-payloads")
def prune_payloads_command(
    ctx: typer.Context, batch: Annotated[int, typer.Option(min=1, max=5000)] = 500
) -> None:
    """Prune finished payloads past the retention period now (the router also does it by
    itself, hourly); the metadata stays."""
    pruned = 0
    with _client(ctx) as client:
        while True:
            res = client.post("/api/v1/payloads/prune", json={"limit": batch})
            if res.status_code != 200:
                raise _refused(res)
            pruned += int(res.json()["pruned"])
            if int(res.json()["pruned"]) < batch:
                break
    typer.echo(f"{pruned} payload(s) pruned")


@units_app.command("list")
def units_list(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="only active units")] = False,
) -> None:
    """The unit directory as a table."""
    with _client(ctx) as client:
        res = client.get("/api/v1/units", params={"active": "true"} if active else {})
    if res.status_code != 200:
        raise _refused(res)
    rows = [
        (
            u["hsaId"],
            u["kind"],
            u["municipality"] or "-",
            u["channel"] or "-",
            "active" if u["active"] else "inactive",
            u["name"],
        )
        for u in res.json()["items"]
    ]
    print_table(("HSA-ID", "KIND", "KOMMUN", "CHANNEL", "STATE", "NAME"), rows)


@units_app.command("put")
def units_put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option(help="one unit as in contracts/units/<region>.json")],
) -> None:
    """Add or update a unit (admin)."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("hsaId"), str):
        raise typer.BadParameter("the file holds one unit with its hsaId")
    with _client(ctx) as client:
        res = client.put(f"/api/v1/units/{body['hsaId']}", json=body)
    if res.status_code != 200:
        raise _refused(res)
    found = res.json()
    what = "added" if found["before"] is None else "updated"
    typer.echo(f"{body['hsaId']} {what if found['changed'] else 'unchanged'}")


@units_app.command("deactivate")
def units_deactivate(ctx: typer.Context, hsa_id: str) -> None:
    """Deactivate a unit: it receives nothing more (admin)."""
    with _client(ctx) as client:
        res = client.post(f"/api/v1/units/{hsa_id}/deactivate")
    if res.status_code == 404:
        typer.echo(f"no unit {hsa_id}", err=True)
        raise typer.Exit(1)
    if res.status_code != 200:
        raise _refused(res)
    typer.echo(f"{hsa_id} deactivated" if res.json()["changed"] else f"{hsa_id} was inactive")


def _month(value: str | None) -> str | None:
    if value is not None:
        try:
            month_window(value)
        except InvalidMonth as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


@deviations_app.command("export")
def deviations_export(
    ctx: typer.Context,
    month: Annotated[
        str | None,
        typer.Option(callback=_month, help="YYYY-MM, Stockholm time; default: all"),
    ] = None,
    export_format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.CSV,
    out: Annotated[str | None, typer.Option(help="file to write; default: stdout")] = None,
) -> None:
    """Export deviation reports for a deviation system such as Flexite."""
    params = {"month": month} if month else {}
    with _client(ctx) as client:
        res = client.get(f"/api/v1/deviations/export.{export_format.value}", params=params)
    if res.status_code != 200:
        raise _refused(res)
    if out is None:
        sys.stdout.write(res.content.decode("utf-8"))
        return
    with open(out, "wb") as file:  # byte for byte: keeps the BOM Excel needs
        file.write(res.content)
    typer.echo(f"wrote {out} ({len(res.content)} bytes)", err=True)


def main(argv: list[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run one command and return its exit code; bad usage exits with 2 (SystemExit)."""
    command = typer.main.get_command(app)
    try:
        code = command.main(
            args=argv,
            prog_name="python -m services.router.ops.cli",
            standalone_mode=False,
            obj=Connection(transport=transport),
        )
    except ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
