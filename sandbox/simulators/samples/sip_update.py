"""Sample SIP updates (samordnad individuell plan) from TakeCare's SIP module and from Treserva:
pure (take a ``random.Random`` and ``now``), valid against ``contracts/takecare/sip-update`` and
``contracts/treserva/sip-update``. Both draw the same plan and only write it differently."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    hospital_units,
    municipal_units,
    primary_care_units,
    takecare_consent_basis,
    takecare_patient,
    treserva_brukare,
    treserva_samtyckesgrund,
)

STAGES = ("invitation", "created", "updated", "completed")
_GOALS = (
    "Kunna bo kvar hemma i Klintehamn med stöd av hemtjänsten",
    "Gå självständigt med rollator mellan sovrum och kök",
    "Känna sig trygg nattetid och veta vem som ska ringas",
    "Få läkemedlen i rätt tid, inga missade doser",
)
_LOCATIONS = (
    "Vårdcentralen Visby Norr, samtalsrum 4",
    "I brukarens hem",
    "Videomöte, länk skickas av vårdcentralen",
    "Medicinavdelning 3, Visby lasarett, dagrummet",
)
_ACTIVITIES = (
    ("home-help", "Hjälp med inköp, städning och tvätt en gång i veckan"),
    ("home-care", "Delar läkemedel i dosett och följer upp vikt två gånger i veckan"),
    ("rehabilitation", "Arbetsterapeut bedömer behov av hjälpmedel i badrummet"),
    ("primary-care", "Fast vårdkontakt följer upp hjärtsvikten efter två veckor"),
    ("relative", "Dottern följer med på återbesöket och handlar på lördagar"),
    ("patient", "Väger sig varje morgon och för dagbok över svullnad"),
    ("hospital", "Skickar utskrivningsmeddelande och läkemedelslista på utskrivningsdagen"),
)
_PROFESSIONALS = (
    ("Karin Söderlund", "SE2321000222-P7Q1"),
    ("Jörgen Åkesson", "SE2120000803-S2K9"),
    ("Märit Björkqvist", "SE2120000803-AT44"),
    ("Örjan Lindgård", "SE2321000222-L0K3"),
)
_RESPONSIBILITIES = (
    "Samordnar planen och kallar till uppföljning",
    "Ansvarar för läkemedelsöverlämningen",
    "Ansvarar för hjälpmedel och bostadsanpassning",
    "Stöttar med inköp och följer med på besök",
)
_RELATIVES = ("Ingrid Öberg", "Sören Lärkström", "Åke Nyström")
_NOTES = (
    "Brukaren önskar att dottern får information efter varje möte.",
    "Tolk behövs inte; hörapparat ska vara laddad inför mötet.",
)
_STATUSES = {
    "invitation": ("planned",),
    "created": ("planned", "planned", "in-progress"),
    "updated": ("planned", "in-progress", "done", "cancelled"),
    "completed": ("done", "done", "cancelled"),
}

_UNIT_ROLES = ("hospital", "primary-care", "home-care", "home-help", "rehabilitation")


def _units(role: str) -> tuple[tuple[str, str], ...]:
    """The current region's units that may take ``role`` in a SIP."""
    municipal = municipal_units()
    return {
        "hospital": hospital_units(),
        "primary-care": primary_care_units(),
        "home-care": municipal[:1],
        "home-help": municipal[1:],
        "rehabilitation": municipal[:1],
    }[role]


_ROLL = {
    "patient": "patient",
    "relative": "narstaende",
    "hospital": "sjukhus",
    "primary-care": "primarvard",
    "home-care": "hemsjukvard",
    "home-help": "hemtjanst",
    "rehabilitation": "rehabilitering",
    "other": "annan",
}
_STEG = {
    "invitation": "kallelse",
    "created": "upprattad",
    "updated": "uppdaterad",
    "completed": "avslutad",
}
_STATUS = {
    "planned": "planerad",
    "in-progress": "pagaende",
    "done": "klar",
    "cancelled": "avbruten",
}


def sample_takecare_sip_update(
    rng: random.Random,
    *,
    now: datetime,
    stage: str | None = None,
    sip_id: str | None = None,
    version: int = 1,
    consent: bool | None = True,
) -> dict[str, Any]:
    """A SIP update as TakeCare's SIP module pushes it. ``consent``: the patient's consent
    (None: drawn, given 85 % of the time); given by default, because the router does not
    route a SIP without it (services.router.routing.consent) and the simulators' SIPs should
    arrive."""
    patient = takecare_patient(rng)
    name = f"{patient['givenName']} {patient['familyName']}"
    plan = _plan(
        rng,
        now=now,
        stage=stage,
        sip_id=sip_id,
        version=version,
        patient_name=name,
        consent=consent,
    )
    primary_hsa, primary_name = rng.choice(primary_care_units())
    doc: dict[str, Any] = {
        "eventId": f"tc-sip-{rng.getrandbits(40):010x}",
        **plan,
        "patient": patient,
        "consentBasis": takecare_consent_basis(now),
        "coordinatingUnit": {"hsaId": primary_hsa, "name": primary_name},
    }
    return _ordered(doc, ("eventId", "sipId", "version", "stage", "occurredAt", "patient"))


def sample_treserva_sip_update(
    rng: random.Random,
    *,
    now: datetime,
    stage: str | None = None,
    sip_id: str | None = None,
    version: int = 1,
    consent: bool | None = True,
) -> dict[str, Any]:
    """A SIP update as Treserva pushes it: the same plan, in Treserva's words (``consent``
    as for :func:`sample_takecare_sip_update`)."""
    patient = treserva_brukare(rng)
    name = f"{patient['fornamn']} {patient['efternamn']}"
    plan = _plan(
        rng,
        now=now,
        stage=stage,
        sip_id=sip_id,
        version=version,
        patient_name=name,
        consent=consent,
    )
    hsa_id, unit_name = rng.choice(municipal_units())
    doc: dict[str, Any] = {
        "meddelandeId": f"trs-sip-{rng.getrandbits(40):010x}",
        "sipId": plan["sipId"],
        "version": plan["version"],
        "steg": _STEG[plan["stage"]],
        "tidpunkt": plan["occurredAt"],
        "brukare": patient,
        "samtycke": _renamed(
            plan["consent"], {"given": "lamnat", "recordedAt": "registrerat", "note": "notering"}
        ),
        "samtyckesgrund": treserva_samtyckesgrund(now),
        "samordnandeEnhet": {"hsaId": hsa_id, "namn": unit_name},
    }
    if "meeting" in plan:
        doc["mote"] = _renamed(
            plan["meeting"], {"start": "start", "end": "slut", "location": "plats"}
        )
    if "goals" in plan:
        doc["mal"] = plan["goals"]
    doc["deltagare"] = [
        _renamed(
            p,
            {
                "role": "roll",
                "name": "namn",
                "unit": "enhet",
                "hsaId": "hsaId",
                "responsibleFor": "ansvarFor",
            },
        )
        for p in plan["participants"]
    ]
    doc["aktiviteter"] = [
        _renamed(
            a,
            {
                "activityId": "aktivitetId",
                "description": "beskrivning",
                "responsible": "ansvarig",
                "unit": "enhet",
                "status": "status",
                "due": "senast",
            },
        )
        for a in plan["activities"]
    ]
    if "note" in plan:
        doc["notering"] = plan["note"]
    return doc


def _plan(
    rng: random.Random,
    *,
    now: datetime,
    stage: str | None,
    sip_id: str | None,
    version: int,
    patient_name: str,
    consent: bool | None,
) -> dict[str, Any]:
    """The plan in TakeCare's (English) words, without patient and coordinating unit."""
    stage = stage or rng.choice(STAGES)
    local_now = now.astimezone(STOCKHOLM).replace(microsecond=0)
    drawn = rng.random() < 0.85  # drawn either way: the same seed gives the same SIP otherwise
    plan: dict[str, Any] = {
        "sipId": sip_id or f"SIP-{rng.getrandbits(32):08X}",
        "version": version,
        "stage": stage,
        "occurredAt": local_now.isoformat(),
        "consent": {
            "given": drawn if consent is None else consent,
            "recordedAt": (local_now - timedelta(minutes=rng.randint(0, 600))).isoformat(),
        },
    }
    if rng.random() < 0.3:
        plan["consent"]["note"] = "Samtycke lämnat muntligt av brukaren, närstående närvarande"
    if stage == "invitation" or rng.random() < 0.4:
        start = (local_now + timedelta(days=rng.randint(1, 3))).replace(
            hour=rng.choice((9, 10, 13)), minute=rng.choice((0, 30)), second=0
        )
        meeting: dict[str, Any] = {"start": start.isoformat()}
        if rng.random() < 0.7:
            meeting["end"] = (start + timedelta(minutes=rng.choice((45, 60, 90)))).isoformat()
        if rng.random() < 0.7:
            meeting["location"] = rng.choice(_LOCATIONS)
        plan["meeting"] = meeting
    if stage != "invitation" and rng.random() < 0.8:
        plan["goals"] = rng.sample(_GOALS, rng.randint(1, 3))
    plan["participants"] = _participants(rng, patient_name)
    count = rng.randint(0, 1) if stage == "invitation" else rng.randint(1, 4)
    plan["activities"] = [_activity(rng, f"A{i + 1}", stage, local_now) for i in range(count)]
    if rng.random() < 0.4:
        plan["note"] = rng.choice(_NOTES)
    return plan


def _participants(rng: random.Random, patient_name: str) -> list[dict[str, Any]]:
    participants: list[dict[str, Any]] = [{"role": "patient"}]
    if rng.random() < 0.5:
        participants[0]["name"] = patient_name
    if rng.random() < 0.5:
        participants.append({"role": "relative", "name": rng.choice(_RELATIVES)})
    for role in rng.sample(sorted(_UNIT_ROLES), rng.randint(1, 4)):
        hsa_id, name = rng.choice(_units(role))
        participant: dict[str, Any] = {"role": role, "unit": {"hsaId": hsa_id, "name": name}}
        if rng.random() < 0.6:
            person, person_hsa = rng.choice(_PROFESSIONALS)
            participant["name"] = person
            if rng.random() < 0.7:
                participant["hsaId"] = person_hsa
        participants.append(participant)
    if rng.random() < 0.2:
        participants.append({"role": "other", "name": "God man Lennart Ödmark"})
    for participant in participants:
        if rng.random() < 0.4:
            participant["responsibleFor"] = rng.choice(_RESPONSIBILITIES)
    return participants


def _activity(
    rng: random.Random, activity_id: str, stage: str, local_now: datetime
) -> dict[str, Any]:
    responsible, description = rng.choice(_ACTIVITIES)
    activity: dict[str, Any] = {
        "activityId": activity_id,
        "description": description,
        "responsible": responsible,
        "status": rng.choice(_STATUSES[stage]),
    }
    if responsible in _UNIT_ROLES and rng.random() < 0.7:
        hsa_id, name = rng.choice(_units(responsible))
        activity["unit"] = {"hsaId": hsa_id, "name": name}
    if rng.random() < 0.6:
        activity["due"] = (local_now + timedelta(days=rng.randint(1, 30))).date().isoformat()
    return activity


def _renamed(doc: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``doc`` with Treserva's names: roles, statuses and units translated too."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = names[key]
        if key in ("role", "responsible"):
            value = _ROLL[value]
        elif key == "status":
            value = _STATUS[value]
        elif key == "unit":
            value = {"hsaId": value["hsaId"], "namn": value["name"]}
        out[name] = value
    return out


def _ordered(doc: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    return {**{k: doc[k] for k in first}, **{k: v for k, v in doc.items() if k not in first}}
