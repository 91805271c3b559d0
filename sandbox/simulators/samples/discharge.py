"""Sample TakeCare discharge events: ready for discharge (utskrivningsklar, sometimes with
planning information) and its withdrawal (återtag), and the discharge notice
(utskrivningsmeddelande). Pure (takes a ``random.Random`` and ``now``), valid against
``contracts/takecare/discharge-readiness.schema.json`` and
``contracts/takecare/discharge-notice.schema.json``.

Times are computed in UTC and only then shown in Stockholm time, so a sample never names a
wall-clock time that does not exist (the spring-forward gap)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    municipal_units,
    primary_care_units,
    takecare_consent_basis,
    takecare_patient,
    takecare_unit,
)

_PHYSICIANS = (
    ("SE2321000222-L0417", "Karin Öst, överläkare"),
    ("SE2321000222-L1239", "Jörgen Ählström, specialistläkare"),
    ("SE2321000222-L2001", "Märit Åkesson, ST-läkare"),
)
_CARE_NEEDS = (
    "Behöver hjälp med på- och avklädning samt läkemedelsöverlämning morgon och kväll",
    "Tillsyn nattetid, hjälp vid förflyttning med rollator",
    "Såromläggning på höger underben två gånger i veckan",
)
_NOTES = (
    "Anhörig är informerad och önskar kontakt före hemgång",
    "Patienten önskar korttidsboende i väntan på bostadsanpassning",
)
_WITHDRAWALS = (
    "Nytillkommen feber, ny bedömning i morgon",
    "Försämrat allmäntillstånd efter fall på avdelningen",
    "Provsvar visar förhöjt CRP, fortsatt antibiotika intravenöst",
)
_SUMMARIES = (
    "Vårdad för pneumoni, behandlad med antibiotika. Förbättrad, feberfri sedan två dygn.",
    "Opererad för höftfraktur, mobiliserad med rollator. Smärtlindring enligt läkemedelslista.",
    "Hjärtsvikt, ödemen minskade efter ökad diuretikados. Vikt vid utskrivning 71 kg.",
)
_NURSING = (
    "Daglig viktkontroll, hjälp med stödstrumpor",
    "Hjälp med hygien och påklädning, tillsyn vid måltider",
)
_FUNCTION = (
    "Går kortare sträckor med rollator, behöver hjälp i trappor",
    "Klarar förflyttning säng–stol med stöd av en person",
)
_AIDS = ("Rollator, toalettförhöjning", "Duschpall och griptång", "Rullstol, glidlakan")
_RISKS = (
    "Förhöjd fallrisk enligt Downton, risk för trycksår enligt Norton",
    "Risk för undernäring, nutritionsdryck två gånger per dag",
)
_PENDING = ("Odlingssvar från urinprov väntas, vårdcentralen följer upp",)
_FOLLOW_UP_NOTES = (
    "Kontroll av vikt och ödem, justering av diuretika",
    "Återbesök för suturtagning och sårbedömning",
)
_ADL = ("eating", "dressing", "toileting", "mobility", "hygiene")
_ADL_LEVELS = ("independent", "needs-some-help", "needs-full-help")
_ADL_NOTES = ("Behöver hjälp med strumpor och skor", "Går med rollator, stöd i trappor")
_DEVICES = (  # ISO 9999: class, subclass or division
    ("120606", "Rollator"),
    ("122203", "Rullstol, manuell"),
    ("093303", "Duschpall"),
    ("1812", "Sängar och sängutrustning"),
    ("24", "Hjälpmedel för att hantera föremål"),
)
_PRESCRIBERS = (
    ("SE2321000222-AT07", "Åsa Lind, arbetsterapeut"),
    ("SE2321000222-FT02", "Olle Sjö, fysioterapeut"),
)
_KIN = (
    ("Elvira Lindqvist", "daughter"),
    ("Gunnar Ek", "spouse"),
    ("Ingrid Berg", "neighbour"),
    ("Sören Dahl", "son"),
    ("Mona Ström", "domestic-partner"),
)
_PHONES = ("0498-123456", "+46701234567", "0706543210", "08-7654321")
_WORK_PHONES = ("0498-268000", "+46498268100")  # the fast vårdkontakt's unit
_CARE_CONTACTS = (
    ("SE2321000222-SSK3", "Maria Nord, distriktssköterska"),
    ("SE2321000222-L3310", "Per Holm, distriktsläkare"),
)
LANGUAGES = ("ar", "fa", "fi", "so", "ti", "sv", "se")  # BCP-47 tags
_DESTINATIONS = (
    "home",
    "home-with-home-care",
    "home-with-home-care",
    "short-term-care",
    "nursing-home",
    "other-hospital",
    "deceased",
    "other",
)


def _local(moment: datetime) -> str:
    return moment.astimezone(STOCKHOLM).isoformat(timespec="seconds")


def _unit(choices: tuple[tuple[str, str], ...], rng: random.Random) -> dict[str, str]:
    hsa_id, name = rng.choice(choices)
    return {"hsaId": hsa_id, "name": name}


def _stay(rng: random.Random, end: datetime) -> dict[str, Any]:
    admitted = end - timedelta(days=rng.randint(1, 14), minutes=rng.randint(0, 600))
    return {
        "encounterId": f"VT-{rng.randint(100000, 999999)}",
        "admittedAt": _local(admitted),
        "unit": takecare_unit(rng),
    }


def sample_discharge_readiness(
    rng: random.Random,
    *,
    now: datetime,
    withdrawn: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    occurred = now.astimezone(UTC).replace(microsecond=0)
    judged = occurred - timedelta(minutes=rng.randint(5, 240))
    event: dict[str, Any] = {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "version": 1,
        "eventType": "ready-for-discharge-withdrawn" if withdrawn else "ready-for-discharge",
        "occurredAt": _local(occurred),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now),
        "encounter": _stay(rng, judged),
        "judgedAt": _local(judged),
    }
    if withdrawn:
        event["withdrawalReason"] = rng.choice(_WITHDRAWALS)
    if rng.random() < 0.8:
        hsa_id, name = rng.choice(_PHYSICIANS)
        event["judgedBy"] = {"hsaId": hsa_id, "name": name}
    if rng.random() < 0.7:
        expected = judged + timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 8))
        event["expectedDischargeAt"] = _local(expected)
    for field, options in (("careNeedsAtDischarge", _CARE_NEEDS), ("note", _NOTES)):
        if rng.random() < 0.6:
            event[field] = rng.choice(options)
    if not withdrawn and rng.random() < 0.6:  # a withdrawal never carries planning information
        planning = sample_planning_information(rng)
        if planning:
            event["planningInformation"] = planning
    return event


def sample_planning_information(rng: random.Random) -> dict[str, Any]:
    """Planeringsunderlag: each part present at random (possibly none: then ``{}``)."""
    planning: dict[str, Any] = {}

    def maybe_phone() -> dict[str, str]:
        return {"phone": rng.choice(_PHONES)} if rng.random() < 0.7 else {}

    if rng.random() < 0.6:
        planning["functionalStatus"] = [
            {"activity": activity, "level": rng.choice(_ADL_LEVELS)}
            | ({"note": rng.choice(_ADL_NOTES)} if rng.random() < 0.3 else {})
            for activity in rng.sample(_ADL, rng.randint(1, len(_ADL)))
        ]
    if rng.random() < 0.5:
        devices = []
        for iso, name in rng.sample(_DEVICES, rng.randint(1, 3)):
            device: dict[str, Any] = {"isoCode": iso, "name": name}
            if rng.random() < 0.6:
                hsa_id, prescriber = rng.choice(_PRESCRIBERS)
                device["prescribedBy"] = {"hsaId": hsa_id, "name": prescriber}
            devices.append(device)
        planning["assistiveDevices"] = devices
    if rng.random() < 0.5:
        planning["nextOfKin"] = [
            {"name": name, "relationship": kinship} | maybe_phone()
            for name, kinship in rng.sample(_KIN, rng.randint(1, 2))
        ]
    if rng.random() < 0.15:
        role = rng.choice(("god-man", "forvaltare"))
        planning["legalRepresentatives"] = [{"name": "Kerstin Holm", "role": role} | maybe_phone()]
    if rng.random() < 0.5:
        hsa_id, name = rng.choice(_CARE_CONTACTS)
        planning["permanentCareContact"] = {"hsaId": hsa_id, "name": name}
        if rng.random() < 0.7:
            planning["permanentCareContact"]["phone"] = rng.choice(_WORK_PHONES)
    if rng.random() < 0.2:
        planning["interpreter"] = {"language": rng.choice(LANGUAGES), "needed": rng.random() < 0.8}
    if rng.random() < 0.5:
        planning["patientPhone"] = rng.choice(_PHONES)
    return planning


def sample_discharge_notice(
    rng: random.Random, *, now: datetime, event_id: str | None = None
) -> dict[str, Any]:
    occurred = now.astimezone(UTC).replace(microsecond=0)
    discharged = occurred - timedelta(minutes=rng.randint(0, 180))
    information: dict[str, Any] = {"summary": rng.choice(_SUMMARIES)}
    for field, options in (
        ("nursingNeeds", _NURSING),
        ("functionalStatus", _FUNCTION),
        ("aids", _AIDS),
        ("riskAssessment", _RISKS),
        ("pendingResults", _PENDING),
    ):
        if rng.random() < 0.6:
            information[field] = rng.choice(options)
    event: dict[str, Any] = {
        "eventId": event_id or f"tc-{rng.getrandbits(48):012x}",
        "version": 1,
        "eventType": "discharged",
        "occurredAt": _local(occurred),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now),
        "encounter": _stay(rng, discharged),
        "dischargedAt": _local(discharged),
        "destination": rng.choice(_DESTINATIONS),
        "informationAtDischarge": information,
        "medicationListIncluded": rng.random() < 0.9,
    }
    if event["destination"] == "deceased":
        return event  # no follow-up and no responsibility after a death
    if rng.random() < 0.7:
        follow_up: dict[str, Any] = {"unit": _unit(primary_care_units() + municipal_units(), rng)}
        if rng.random() < 0.6:
            follow_up["appointmentAt"] = _local(discharged + timedelta(days=rng.randint(1, 14)))
        if rng.random() < 0.6:
            follow_up["note"] = rng.choice(_FOLLOW_UP_NOTES)
        event["followUp"] = follow_up
    if rng.random() < 0.5:
        event["responsibleUnit"] = _unit(primary_care_units(), rng)
    return event
