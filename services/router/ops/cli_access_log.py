"""The ops CLI's ``access-log`` commands (``python -m services.router.ops.cli access-log …``).

``access-log verify``                         the router walks its hash chain (and, with a
                                              checkpoint file of its own, checks it too)
``access-log verify --checkpoints FILE …``    verify here, not on the router's word: the
                                              chain (the router's export, or ``--export``
                                              FILE) against signed checkpoints, with
                                              ``--public-key KEYID:BASE64`` (default: the
                                              public half of ROUTER_AUDIT_CHECKPOINT_KEY and
                                              ROUTER_AUDIT_CHECKPOINT_PUBLIC_KEYS)

Exit codes: 0 intact, 1 broken or rewritten (the first checkpoint that no longer matches is
named), 2 the router refused or bad usage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.router.audit.checkpoints import (
    CheckpointReport,
    check_against_checkpoints,
    trusted_keys,
)
from services.router.settings import RouterSettings

access_log_app = typer.Typer(help="The access log: verify its chain.", no_args_is_help=True)


def _client(ctx: typer.Context) -> httpx.Client:
    """The router's API client from the CLI's connection (services.router.ops.cli)."""
    from services.router.ops.cli import Connection  # the CLI imports this module

    found = ctx.find_object(Connection)
    return (found or Connection()).client()


def _trusted(public_keys: list[str]) -> dict[str, Ed25519PublicKey]:
    if public_keys:
        try:
            return trusted_keys(public_keys)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--public-key") from None
    return RouterSettings().checkpoint_trusted()


def _lines(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        yield from path.read_text(encoding="utf-8").splitlines()


def _print(report: CheckpointReport) -> None:
    chain = report.chain
    typer.echo(
        f"chain: {'intact' if chain.ok else 'BROKEN'}, {chain.checked} entries checked"
        + ("" if chain.ok else f", first bad seq {chain.first_bad_seq} ({chain.problem})")
    )
    typer.echo(f"checkpoints: {report.checkpoints} read, {report.matched} match the chain")
    first = report.first_mismatch
    if first is not None:
        typer.echo(
            f"REWRITTEN: the first checkpoint that no longer matches is line {first.line}, "
            f"seq {first.seq}, signed at {first.at}: {first.problem} ({first.detail})"
        )
    for finding in report.findings:
        where = f"  line {finding.line}: {finding.problem} (seq {finding.seq})"
        typer.echo(f"{where} {finding.detail}".rstrip())


@access_log_app.command("verify")
def verify(
    ctx: typer.Context,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="a JSON-lines file of signed checkpoints (repeat for several, in order)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(help="KEYID:BASE64 of a trusted checkpoint key (repeat for a rotation)"),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(help="a JSON-lines export to check instead of the router's", exists=True),
    ] = None,
) -> None:
    """Verify the access log; with ``--checkpoints`` also that nobody rewrote it, even with
    every hash recomputed, or cut it short."""
    if not checkpoints:
        with _client(ctx) as client:
            res = client.get("/api/v1/access-log/verify")
        if res.status_code != 200:
            typer.echo(f"router answered {res.status_code}: {res.text[:500]}", err=True)
            raise typer.Exit(2)
        found: dict[str, Any] = res.json()
        typer.echo(json.dumps(found, indent=2, ensure_ascii=False))
        sink = found.get("checkpoints")
        raise typer.Exit(0 if found["ok"] and (sink is None or sink["ok"]) else 1)
    trusted = _trusted(public_key or [])
    if export is not None:
        entries = [json.loads(line) for line in export.read_text("utf-8").splitlines() if line]
        report = check_against_checkpoints(entries, _lines(checkpoints), trusted)
    else:
        with _client(ctx) as client, client.stream("GET", "/api/v1/access-log/export.jsonl") as res:
            if res.status_code != 200:
                res.read()
                typer.echo(f"router answered {res.status_code}: {res.text[:500]}", err=True)
                raise typer.Exit(2)
            streamed = (json.loads(line) for line in res.iter_lines() if line.strip())
            report = check_against_checkpoints(streamed, _lines(checkpoints), trusted)
    _print(report)
    raise typer.Exit(0 if report.ok else 1)
