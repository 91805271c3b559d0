"""``make demo``: a bounded scenario against the full embedded stack.

The basic scenario runs the sandbox region, by default the fictive Region Halland
(contracts/units/halland.json: Halmstad 1380, Falkenberg 1382, Varberg 1383, two
vårdcentraler; ``make demo REGION=gotland`` for Gotland's one municipality):

1. TakeCare admits one patient of each municipality. Each admission notice is delivered to
   the home-care unit of the patient's municipality in Treserva and to the listed vårdcentral,
   and confirmed; the demo prints the routing per municipality and what each unit holds, and
   checks that no unit holds another municipality's notice.
2. Treserva is switched to silent-drop (202, then nothing: Region Gotland's fault); the next
   admission is accepted and delivered but never confirmed, and the confirmation deadline
   raises an alert.

``make demo SCENARIO=broken-trigger`` plays the Gotland failure with every alert channel real
(sandbox/gotland_demo.py), on Gotland's directory. Prints a readable summary; exits non-zero
if any expectation fails.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.scenario import Scenario, Timeout
from sandbox.simulators.samples.people import REGIONS, in_region, takecare_patient
from sandbox.stack import Stack, StackError, StackSettings, free_port
from services.router.alerting.unit_directory import (
    SANDBOX_REGIONS,
    Unit,
    UnitDirectory,
    sandbox_directory,
)

DEADLINE_S = 3.0
SCENARIOS = ("basic", "broken-trigger")


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
    """``python -m sandbox.demo [basic|broken-trigger] [--region halland|gotland]``
    (``make demo SCENARIO=… REGION=…``)."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo")
    parser.add_argument("scenario", nargs="?", default="basic", choices=SCENARIOS)
    parser.add_argument("--region", choices=SANDBOX_REGIONS, default=SANDBOX_REGIONS[0])
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.scenario == "broken-trigger":
        return broken_trigger()
    with tempfile.TemporaryDirectory(prefix="carebridge-demo-") as tmp:
        stack = Stack(demo_settings(Path(tmp), region=args.region), echo=lambda _: None)
        print(
            f"starting Tansu, migrating SQLite, starting 6 processes (region {args.region})…",
            flush=True,
        )
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
        stack = Stack(
            demo_settings(Path(tmp), region="gotland", router_env=router_env),
            echo=lambda _: None,
        )
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
    region = s.stack.settings.region
    directory = UnitDirectory.load(sandbox_directory(region))
    print(f"1) TakeCare admits one patient of each municipality of {directory.region}")
    routed = [_admit(s, directory, municipality) for municipality in _municipalities(directory)]
    print("\n   per municipality (folkbokföringskommun → the units that received the notice):")
    for municipality, message_id, units in routed:
        print(
            f"     {municipality} {_name_of_municipality(directory, municipality):<11} "
            f"Treserva → {_unit_name(directory, units['treserva'])}; primary care → "
            f"{_unit_name(directory, units['primary-care'])}  (message {message_id[:8]}…)"
        )
    held = s.units("treserva")
    print("\n   what each home-care unit holds in Treserva (filed by mottagandeEnhet):")
    for unit in _home_care_units(directory):
        print(f"     {unit.hsa_id:<22} {unit.name:<40} {held.get(unit.hsa_id, 0)} notice(s)")
    for municipality, message_id, units in routed:
        own = [u.hsa_id for u in _home_care_units(directory) if u.municipality == municipality]
        assert [units["treserva"]] == own, f"{municipality}'s notice went to {units}"
        for unit in _home_care_units(directory):
            listed = s.journal("treserva", f"inskrivningsmeddelanden?unit={unit.hsa_id}")
            ids = {item["meddelandeId"] for item in listed["items"]}
            mine = unit.municipality == municipality
            assert (message_id in ids) is mine, (
                f"the notice for a patient of {municipality} is "
                f"{'missing at' if mine else 'also at'} {unit.name}"
            )
    print("   no municipality's unit holds another municipality's notice\n")

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
        "\nall expectations met: each notice reached its own municipality's unit and the "
        "listed vårdcentral only, confirmed; silent drop caught by the confirmation deadline."
    )
    return 0


def _admit(
    s: Scenario, directory: UnitDirectory, municipality: str
) -> tuple[str, str, dict[str, str]]:
    """Admit a patient of ``municipality`` (a sample person who lives there); wait until
    both receivers confirmed; (municipality, message id, destination → receiving unit)."""
    region = REGIONS[s.stack.settings.region]
    person = next(i for i, (kommun, _) in enumerate(region.residents) if kommun == municipality)
    listed = region.residents[person][1]
    message_id, intake_s = s.post_admission(
        patient=_patient_of(s, municipality=municipality, listed=listed)
    )
    t0 = time.perf_counter()
    detail = s.wait_for_state(message_id, "confirmed", timeout_s=15)
    units = {d["destination"]: d.get("receiver_unit_hsa") or "-" for d in detail["deliveries"]}
    delivery = s.delivery(detail, "treserva")
    print(
        f"   {municipality}: accepted in {intake_s * 1000:.0f} ms, confirmed by Treserva and "
        f"the vårdcentral after {(time.perf_counter() - t0) * 1000:.0f} ms "
        f"({len(delivery['transitions'])} transitions)"
    )
    return municipality, message_id, units


def _patient_of(s: Scenario, *, municipality: str, listed: str) -> dict[str, Any]:
    with in_region(s.stack.settings.region):
        patient = takecare_patient(s.rng)
    return {**patient, "municipalityOfResidence": municipality, "listedPrimaryCareUnit": listed}


def _municipalities(directory: UnitDirectory) -> list[str]:
    return sorted({u.municipality for u in _home_care_units(directory) if u.municipality})


def _home_care_units(directory: UnitDirectory) -> list[Unit]:
    return [u for u in directory.receivers() if u.channel == "treserva"]


def _name_of_municipality(directory: UnitDirectory, municipality: str) -> str:
    unit = next(u for u in _home_care_units(directory) if u.municipality == municipality)
    return unit.name.split(",")[0].removeprefix("Hemsjukvården ")


def _unit_name(directory: UnitDirectory, hsa_id: str) -> str:
    unit = directory.unit(hsa_id)
    return unit.name if unit is not None else hsa_id


if __name__ == "__main__":
    sys.exit(main())
