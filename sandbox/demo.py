"""``make demo``: a bounded scenario against the full embedded stack.

1. An admission is accepted by adapter_takecare, delivered to Treserva and confirmed.
2. Treserva is switched to silent-drop (202, then nothing: Region Gotland's fault); the next
   admission is accepted and delivered but never confirmed, and the confirmation deadline
   raises an alert.

Prints a readable summary; exits non-zero if any expectation fails.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sandbox.scenario import Scenario, Timeout
from sandbox.stack import Stack, StackError, StackSettings, free_port

DEADLINE_S = 3.0


def demo_settings(data_dir: Path, **overrides: object) -> StackSettings:
    """A private stack: free ports, its own data directory, a short confirmation deadline."""
    ports = {
        name: free_port()
        for name in (
            "kafka_port",
            "router_port",
            "second_router_port",
            "takecare_adapter_port",
            "treserva_adapter_port",
            "treserva_sim_port",
            "treserva_sim_control_port",
            "takecare_sim_port",
            "takecare_sim_control_port",
            "subscriber_sim_port",
            "subscriber_sim_control_port",
        )
    }
    return StackSettings.model_validate(
        {
            "data_dir": data_dir,
            "admission_confirmation_deadline_s": DEADLINE_S,
            "confirmation_deadline_s": 30.0,
            **ports,
            **overrides,
        }
    )


def _hhmmss(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S.%f")[:-3]


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.demo [broken-trigger]`` (``make demo SCENARIO=…``)."""
    chosen = (argv if argv is not None else sys.argv[1:]) or ["basic"]
    if chosen[0] == "broken-trigger":
        return broken_trigger()
    if chosen[0] != "basic":
        print(f"unknown scenario {chosen[0]!r}: basic or broken-trigger")
        return 2
    with tempfile.TemporaryDirectory(prefix="carebridge-demo-") as tmp:
        stack = Stack(demo_settings(Path(tmp)), echo=lambda _: None)
        print("starting Tansu, migrating SQLite, starting 6 processes…", flush=True)
        started = time.perf_counter()
        try:
            stack.start()
        except StackError as exc:
            print(f"FAILED to start: {exc}")
            stack.stop()
            return 1
        print(f"stack up in {time.perf_counter() - started:.1f}s\n")
        scenario = Scenario(stack, random.Random(2026))
        try:
            return _play(scenario)
        except (Timeout, AssertionError) as exc:
            print(f"\nFAILED: {exc}")
            return 1
        finally:
            scenario.close()
            stack.stop()


def broken_trigger() -> int:
    """The Gotland scenario with every alert channel real (sandbox/gotland_demo.py)."""
    from sandbox import gotland_demo

    with tempfile.TemporaryDirectory(prefix="carebridge-demo-") as tmp:
        smtp, inbox, receiver, hooks, router_env = gotland_demo.channels(Path(tmp))
        stack = Stack(demo_settings(Path(tmp), router_env=router_env), echo=lambda _: None)
        print("starting the stack with a real SMTP server and webhook receiver…", flush=True)
        try:
            stack.start()
        except StackError as exc:
            print(f"FAILED to start: {exc}")
            stack.stop()
            smtp.stop()
            receiver.shutdown()
            receiver.server_close()
            return 1
        scenario = Scenario(stack, random.Random(2026))
        try:
            return gotland_demo.play(scenario, inbox, hooks)
        except (Timeout, AssertionError) as exc:
            print(f"\nFAILED: {exc}")
            return 1
        finally:
            scenario.close()
            stack.stop()
            smtp.stop()
            receiver.shutdown()
            receiver.server_close()


def _play(s: Scenario) -> int:
    print("1) TakeCare admits a patient")
    message_id, intake_s = s.post_admission()
    print(f"   accepted by adapter_takecare in {intake_s * 1000:.0f} ms, message {message_id}")
    t0 = time.perf_counter()
    detail = s.wait_for_state(message_id, "confirmed", timeout_s=15, destination="treserva")
    delivery = s.delivery(detail, "treserva")
    print(
        f"   confirmed by Treserva after {(time.perf_counter() - t0) * 1000:.0f} ms; delivery log:"
    )
    for t in delivery["transitions"]:
        print(
            f"     {_hhmmss(t['at'])}  {t['from_state'] or '—':>10} → {t['to_state']:<10}"
            f"  {t['reason']}"
        )
    stored = s.treserva_stats()["stored"]
    print(f"   Treserva holds {stored} notice(s)")
    s.wait_for_state(message_id, "confirmed", timeout_s=15, destination="primary-care")
    print("   primary care (vårdcentralen) has confirmed its copy too\n")

    print("2) Treserva silently drops notices (202, then nothing), as in Region Gotland")
    s.set_treserva_fault("silent-drop")
    dropped_id, _ = s.post_admission()
    s.wait_for_state(dropped_id, "sent", timeout_s=15, destination="treserva")
    print(f"   message {dropped_id} accepted and sent; Treserva said 202 but stored nothing")
    alert = s.wait_for_alert("confirmation_overdue", "treserva", timeout_s=DEADLINE_S + 15)
    print(
        f"   ALERT #{alert['id']} [{alert['state']}] {alert['summary']} "
        f"(affected: {alert['affected']}, opened {_hhmmss(alert['opened_at'])}, "
        f"deadline {DEADLINE_S:.0f}s)"
    )
    s.set_treserva_fault("none")
    print(
        "\nall expectations met: notice accepted, delivered, confirmed; "
        "silent drop caught by the confirmation deadline."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
