"""Operator CLI for the router's API (``python -m services.router.cli``).

``replay --message-id ID [...]`` or ``replay --destination treserva [--event E] [--since T]``
replays dead-lettered deliveries, with a reason and the operator's name, and shows progress
page by page; ``--force`` also resurrects a superseded SIP or medication list.
``replays`` lists the replay audit.
``deviations export --month 2026-11 --format csv|json [--out FILE]`` exports the month's
deviation reports (avvikelser i samverkan) for a deviation system such as Flexite; without
``--out`` the export goes to standard output.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from services.router.deviations import InvalidMonth, month_window
from services.router.settings import RouterSettings


def _client(args: argparse.Namespace, transport: httpx.BaseTransport | None) -> httpx.Client:
    settings = RouterSettings()
    return httpx.Client(
        base_url=args.router_url or f"http://{settings.host}:{settings.port}",
        headers={"authorization": f"Bearer {settings.ops_token}"},
        timeout=60.0,
        transport=transport,
    )


def replay(args: argparse.Namespace, client: httpx.Client) -> int:
    body: dict[str, Any] = {
        "messageIds": args.message_id or [],
        "destination": args.destination,
        "event": args.event,
        "since": args.since,
        "until": args.until,
        "reason": args.reason,
        "operator": args.operator,
        "force": args.force,
    }
    replayed = 0
    refused: set[int] = set()
    page = 0
    while True:
        res = client.post("/api/v1/replays", json=body)
        if res.status_code != 200:
            print(f"router answered {res.status_code}: {res.text[:500]}", file=sys.stderr)
            return 2
        found = res.json()
        page += 1
        replayed += found["replayed"]
        for item in found["items"]:
            if not item["replayed"] and item["deliveryId"] not in refused:
                refused.add(item["deliveryId"])
                print(f"  refused {item['messageId']} → {item['destination']}: {item['detail']}")
        print(f"page {page}: {replayed} replayed so far, {len(refused)} refused", flush=True)
        # by id one request does it; by filter, repeat until a page replays nothing more
        if body["messageIds"] or found["replayed"] == 0:
            break
    print(f"done: {replayed} replayed, {len(refused)} refused (both audited)")
    return 0 if not refused else 1


def replays(args: argparse.Namespace, client: httpx.Client) -> int:
    res = client.get("/api/v1/replays", params={"limit": args.limit})
    res.raise_for_status()
    print(json.dumps(res.json(), indent=2, ensure_ascii=False))
    return 0


def deviations_export(args: argparse.Namespace, client: httpx.Client) -> int:
    params = {"month": args.month} if args.month else {}
    res = client.get(f"/api/v1/deviations/export.{args.format}", params=params)
    if res.status_code != 200:
        print(f"router answered {res.status_code}: {res.text[:500]}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(res.content.decode("utf-8"))
        return 0
    with open(args.out, "wb") as out:  # byte for byte: keeps the BOM Excel needs
        out.write(res.content)
    print(f"wrote {args.out} ({len(res.content)} bytes)", file=sys.stderr)
    return 0


def _month(value: str) -> str:
    try:
        month_window(value)
    except InvalidMonth as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def main(argv: list[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.router.cli", description=__doc__)
    parser.add_argument("--router-url", help="default: http://<ROUTER_HOST>:<ROUTER_PORT>")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("replay", help="replay dead-lettered deliveries")
    r.add_argument("--message-id", action="append", help="repeat for several")
    r.add_argument("--destination")
    r.add_argument("--event", help="event code, e.g. medication-list")
    r.add_argument("--since", help="dead-lettered at or after (ISO 8601 with offset)")
    r.add_argument("--until")
    r.add_argument("--reason", required=True, help="why (kept in the audit)")
    r.add_argument("--operator", required=True, help="who (kept in the audit)")
    r.add_argument("--force", action="store_true", help="also a superseded SIP/medication list")
    a = sub.add_parser("replays", help="show the replay audit")
    a.add_argument("--limit", type=int, default=50)
    d = sub.add_parser("deviations", help="deviation reports (avvikelser i samverkan)")
    d_sub = d.add_subparsers(dest="action", required=True)
    e = d_sub.add_parser("export", help="export for a deviation system such as Flexite")
    e.add_argument("--month", type=_month, help="YYYY-MM, Stockholm time; default: all")
    e.add_argument("--format", choices=("csv", "json"), default="csv")
    e.add_argument("--out", help="file to write; default: standard output")
    args = parser.parse_args(argv)
    if args.command == "replay" and not (args.message_id or args.destination or args.event):
        parser.error("name --message-id, or filter with --destination/--event")
    commands = {"replay": replay, "replays": replays, "deviations": deviations_export}
    with _client(args, transport) as client:
        return commands[args.command](args, client)


if __name__ == "__main__":
    sys.exit(main())
