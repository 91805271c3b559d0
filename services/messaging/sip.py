"""SIP (samordnad individuell plan): the neutral model both adapters translate their native SIP
documents into, the FHIR message built from it and the reader that takes it apart again.
Pure: no I/O, no clock. Mapping ``contracts/fhir/sip-update.md``.

Bundle layout::

    Bundle (type message, identifier = business key: source | SIP id | version)
     ├── MessageHeader     event sip-invitation|-created|-updated|-completed, focus CarePlan
     ├── CarePlan          the SIP: id, version, status, consent, meeting, activities, note
     ├── Patient           personnummer / samordningsnummer / reservnummer, name, (address)
     ├── CareTeam          the participants, each with its SIP role and responsibility
     ├── Organization ×n   the coordinating unit first (the sender), then every other unit
     ├── Practitioner ×n   participating professionals (personal HSA-id, name)
     ├── RelatedPerson ×n  participating relatives (närstående)
     └── Goal ×n           the SIP's goals, in order
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import (
    CareUnit,
    PatientInfo,
    Ref,
    TranslationError,
    code,
    coded,
    extension,
    message_bundle,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    refs,
    resolve,
)
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.vocabulary import (
    CARE_PLAN_CATEGORY_SYSTEM,
    DOCUMENT_VERSION_URL,
    SIP_ACTIVITY_ID_URL,
    SIP_CONSENT_URL,
    SIP_ID_SYSTEM,
    SIP_MEETING_LOCATION_URL,
    SIP_MEETING_URL,
    SIP_RESPONSIBLE_ROLE_URL,
    SIP_ROLE_SYSTEM,
)

LOINC_SYSTEM = "http://loinc.org"
CARE_TEAM_CATEGORY = code(
    LOINC_SYSTEM, "LA28865-6", "Longitudinal care-coordination focused care team"
)
SIP_TITLE = "Samordnad individuell plan (SIP)"
# stage → (event, CarePlan.status, Goal.lifecycleStatus)
STAGES = {
    "invitation": (EventCode.SIP_INVITATION, "draft", "proposed"),
    "created": (EventCode.SIP_CREATED, "active", "active"),
    "updated": (EventCode.SIP_UPDATED, "active", "active"),
    "completed": (EventCode.SIP_COMPLETED, "completed", "completed"),
}
STAGE_EVENTS = {stage: event for stage, (event, _, _) in STAGES.items()}
EVENT_STAGES = {event.value: stage for stage, event in STAGE_EVENTS.items()}
ROLES = {  # SIP_ROLE_SYSTEM code → display
    "patient": "Patient",
    "relative": "Närstående",
    "hospital": "Slutenvården",
    "primary-care": "Primärvården",
    "home-care": "Kommunal hemsjukvård",
    "home-help": "Hemtjänst",
    "rehabilitation": "Rehabilitering",
    "other": "Annan aktör",
}
ACTIVITY_STATUS = {  # neutral status → CarePlan.activity.detail.status
    "planned": "not-started",
    "in-progress": "in-progress",
    "done": "completed",
    "cancelled": "cancelled",
}
_ACTIVITY_STATUS_BACK = {fhir: neutral for neutral, fhir in ACTIVITY_STATUS.items()}
UnitRef = Callable[[CareUnit], dict[str, str]]  # the Reference to a unit's Organization


@dataclass(frozen=True, slots=True)
class Consent:
    """The patient's consent to share the SIP between region and municipality."""

    given: bool
    recorded_at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Meeting:
    start: datetime
    end: datetime | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Participant:
    role: str  # a ROLES code; patient and relative never have a unit or an HSA-id
    name: str | None = None
    unit: CareUnit | None = None
    hsa_id: str | None = None  # the person's own HSA-id
    responsible_for: str | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    activity_id: str
    description: str
    responsible: str  # a ROLES code
    status: str  # an ACTIVITY_STATUS key
    unit: CareUnit | None = None
    due: date | None = None


@dataclass(frozen=True, slots=True)
class Sip:
    sip_id: str
    version: int
    stage: str  # a STAGES key
    occurred_at: datetime
    patient: PatientInfo
    consent: Consent
    coordinating_unit: CareUnit
    participants: tuple[Participant, ...] = ()
    activities: tuple[Activity, ...] = ()
    goals: tuple[str, ...] = ()
    meeting: Meeting | None = None
    note: str | None = None


# --- building --------------------------------------------------------------------------------


def sip_bundle(sip: Sip, *, key: BusinessKey, source: System, now: datetime) -> Bundle:
    ref = refs(key)
    units: dict[CareUnit, str] = {}  # one Organization per unit, the coordinating one first

    def unit_ref(unit: CareUnit) -> dict[str, str]:
        return {"reference": ref(units.setdefault(unit, f"organization-{len(units)}"))}

    unit_ref(sip.coordinating_unit)
    people: list[tuple[str, dict[str, Any]]] = []
    team = _care_team(sip, ref, unit_ref, people)
    _, plan_status, goal_status = STAGES[sip.stage]
    goals = [(f"goal-{i}", _goal(text, goal_status, ref)) for i, text in enumerate(sip.goals)]
    plan = _some(
        resourceType="CarePlan",
        meta={"lastUpdated": sip.occurred_at.isoformat()},
        extension=_plan_extensions(sip),
        identifier=[{"system": SIP_ID_SYSTEM, "value": sip.sip_id}],
        status=plan_status,
        intent="plan",
        category=[code(CARE_PLAN_CATEGORY_SYSTEM, "sip", SIP_TITLE)],
        title=SIP_TITLE,
        subject={"reference": ref("patient")},
        author=unit_ref(sip.coordinating_unit),
        careTeam=[{"reference": ref("careteam")}],
        goal=[{"reference": ref(role)} for role, _ in goals] or None,
        activity=[_activity(a, unit_ref) for a in sip.activities] or None,
        note=None if sip.note is None else [{"text": sip.note}],
    )
    return message_bundle(
        key=key,
        event=STAGE_EVENTS[sip.stage],
        source=source,
        now=now,
        focus=["careplan"],
        sender="organization-0",
        resources=[
            ("careplan", plan),
            ("patient", patient_resource(sip.patient)),
            ("careteam", team),
            *[(role, organization_resource(unit)) for unit, role in units.items()],
            *people,
            *goals,
        ],
    )


def _some(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: FHIR has no nulls."""
    return {name: value for name, value in fields.items() if value is not None}


def _plan_extensions(sip: Sip) -> list[dict[str, Any]]:
    consent: list[dict[str, Any]] = [
        {"url": "given", "valueBoolean": sip.consent.given},
        {"url": "recordedAt", "valueDateTime": sip.consent.recorded_at.isoformat()},
    ]
    if sip.consent.note is not None:
        consent.append({"url": "note", "valueString": sip.consent.note})
    found: list[dict[str, Any]] = [
        {"url": SIP_CONSENT_URL, "extension": consent},
        {"url": DOCUMENT_VERSION_URL, "valuePositiveInt": sip.version},
    ]
    if (meeting := sip.meeting) is not None:
        end = None if meeting.end is None else meeting.end.isoformat()
        period = _some(start=meeting.start.isoformat(), end=end)
        found.append({"url": SIP_MEETING_URL, "valuePeriod": period})
        if meeting.location is not None:
            found.append({"url": SIP_MEETING_LOCATION_URL, "valueString": meeting.location})
    return found


def _activity(activity: Activity, unit_ref: UnitRef) -> dict[str, Any]:
    responsible = {
        "url": SIP_RESPONSIBLE_ROLE_URL,
        "valueCodeableConcept": _role(activity.responsible),
    }
    detail = _some(
        extension=[responsible],
        status=ACTIVITY_STATUS[activity.status],
        scheduledPeriod=None if activity.due is None else {"end": activity.due.isoformat()},
        performer=None if activity.unit is None else [unit_ref(activity.unit)],
        description=activity.description,
    )
    activity_id = {"url": SIP_ACTIVITY_ID_URL, "valueString": activity.activity_id}
    return {"extension": [activity_id], "detail": detail}


def _care_team(
    sip: Sip, ref: Ref, unit_ref: UnitRef, people: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    participants = []
    for i, p in enumerate(sip.participants):
        entry: dict[str, Any] = {"role": [_role(p.role)]}
        if p.responsible_for is not None:  # the participant's specific responsibility
            entry["role"].append({"text": p.responsible_for})
        name = None if p.name is None else [{"text": p.name}]
        person: dict[str, Any] | None = None
        if p.role == "patient":
            entry["member"] = _some(reference=ref("patient"), display=p.name)
        elif p.role == "relative" and name is not None:
            patient = {"reference": ref("patient")}
            person = {"resourceType": "RelatedPerson", "patient": patient, "name": name}
        elif p.role != "relative" and (name is not None or p.hsa_id is not None):
            hsa = None if p.hsa_id is None else [{"system": HSA_ID_SYSTEM, "value": p.hsa_id}]
            person = _some(resourceType="Practitioner", identifier=hsa, name=name)
            if p.unit is not None:
                entry["onBehalfOf"] = unit_ref(p.unit)
        elif p.unit is not None:
            entry["member"] = unit_ref(p.unit)
        if person is not None:
            people.append((f"participant-{i}", person))
            entry["member"] = {"reference": ref(f"participant-{i}")}
        participants.append(entry)
    return _some(
        resourceType="CareTeam",
        status="active",
        category=[CARE_TEAM_CATEGORY],
        name="Deltagare i SIP",
        subject={"reference": ref("patient")},
        participant=participants or None,
        managingOrganization=[unit_ref(sip.coordinating_unit)],
    )


def _goal(text: str, status: str, ref: Ref) -> dict[str, Any]:
    return {
        "resourceType": "Goal",
        "lifecycleStatus": status,
        "description": {"text": text},
        "subject": {"reference": ref("patient")},
    }


def _role(role: str) -> dict[str, Any]:
    return code(SIP_ROLE_SYSTEM, role, ROLES[role])


# --- reading ---------------------------------------------------------------------------------


def consent_given(doc: dict[str, Any]) -> bool:
    """The patient's consent carried by a SIP message; False when absent or unreadable."""
    try:
        consent = extension(one(doc, "CarePlan"), SIP_CONSENT_URL) or {}
        return _sub(consent, "given", "valueBoolean") is True
    except (TranslationError, KeyError, TypeError, AttributeError):
        return False


def read_sip(doc: dict[str, Any]) -> Sip:
    """The SIP of a FHIR SIP message; raise :class:`TranslationError` if it is incomplete."""
    header = one(doc, "MessageHeader")
    try:
        plan = resolve(doc, header["focus"][0])
        consent = extension(plan, SIP_CONSENT_URL) or {}
        meeting = (extension(plan, SIP_MEETING_URL) or {}).get("valuePeriod")
        location = (extension(plan, SIP_MEETING_LOCATION_URL) or {}).get("valueString")
        team = resolve(doc, plan["careTeam"][0])
        return Sip(
            sip_id=next(i["value"] for i in plan["identifier"] if i["system"] == SIP_ID_SYSTEM),
            version=(extension(plan, DOCUMENT_VERSION_URL) or {})["valuePositiveInt"],
            stage=EVENT_STAGES[header["eventCoding"]["code"]],
            occurred_at=datetime.fromisoformat(plan["meta"]["lastUpdated"]),
            patient=read_patient(resolve(doc, plan["subject"])),
            consent=Consent(
                given=_sub(consent, "given", "valueBoolean"),
                recorded_at=datetime.fromisoformat(_sub(consent, "recordedAt", "valueDateTime")),
                note=_sub(consent, "note", "valueString", required=False),
            ),
            coordinating_unit=read_unit(resolve(doc, plan["author"])),
            participants=tuple(_participant(doc, p) for p in team.get("participant", [])),
            activities=tuple(_read_activity(doc, a) for a in plan.get("activity", [])),
            goals=tuple(resolve(doc, g)["description"]["text"] for g in plan.get("goal", [])),
            meeting=None
            if meeting is None
            else Meeting(_datetime(meeting["start"]), _datetime(meeting.get("end")), location),
            note=plan["note"][0]["text"] if plan.get("note") else None,
        )
    except (KeyError, IndexError, StopIteration, TypeError, ValueError) as exc:
        if isinstance(exc, TranslationError):
            raise
        raise TranslationError(f"SIP message incomplete: {type(exc).__name__}") from None


def _sub(ext: dict[str, Any], url: str, value: str, *, required: bool = True) -> Any:
    for sub in ext.get("extension", []):
        if sub.get("url") == url:
            return sub[value]
    if required:
        raise KeyError(url)
    return None


def _datetime(text: str | None) -> Any:
    return None if text is None else datetime.fromisoformat(text)


def _read_role(concept: dict[str, Any]) -> str:
    role = coded(concept, SIP_ROLE_SYSTEM)
    if role not in ROLES:
        raise TranslationError("SIP role missing or unknown")
    return role


def _participant(doc: dict[str, Any], entry: dict[str, Any]) -> Participant:
    texts = [r["text"] for r in entry["role"][1:] if not r.get("coding")]
    name = hsa_id = unit = None
    if (member_ref := entry.get("member")) is not None:
        member = resolve(doc, member_ref)
        if member["resourceType"] == "Patient":
            name = member_ref.get("display")
        elif member["resourceType"] == "Organization":
            unit = read_unit(member)
        else:  # Practitioner, RelatedPerson
            name = member["name"][0]["text"] if member.get("name") else None
            ids = member.get("identifier", [])
            hsa_id = next((i["value"] for i in ids if i["system"] == HSA_ID_SYSTEM), None)
    if entry.get("onBehalfOf") is not None:
        unit = read_unit(resolve(doc, entry["onBehalfOf"]))
    return Participant(
        _read_role(entry["role"][0]), name, unit, hsa_id, texts[0] if texts else None
    )


def _read_activity(doc: dict[str, Any], activity: dict[str, Any]) -> Activity:
    detail = activity["detail"]
    responsible = extension(detail, SIP_RESPONSIBLE_ROLE_URL) or {}
    due = detail.get("scheduledPeriod", {}).get("end")
    performers = detail.get("performer", [])
    return Activity(
        activity_id=(extension(activity, SIP_ACTIVITY_ID_URL) or {})["valueString"],
        description=detail["description"],
        responsible=_read_role(responsible["valueCodeableConcept"]),
        status=_ACTIVITY_STATUS_BACK[detail["status"]],
        unit=read_unit(resolve(doc, performers[0])) if performers else None,
        due=None if due is None else date.fromisoformat(due[:10]),
    )
