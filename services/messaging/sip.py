"""SIP (samordnad individuell plan): the neutral model both adapters translate their native SIP
documents into, the FHIR message built from it and the reader that takes it apart again.
Pure: no I/O, no clock. Mapping ``contracts/fhir/sip-update.md``.

Bundle layout::

    Bundle (type message, identifier = business key: source | SIP id | version)
     ├── MessageHeader     event sip-invitation|-created|-updated|-completed, focus CarePlan,
     │                     Consent
     ├── CarePlan          the SIP: id, version, status, consent, meeting, activities, note
     ├── Consent           the basis it is shared on (services.messaging.consent)
     ├── Patient           personnummer / samordningsnummer / reservnummer, name, (address)
     ├── CareTeam          the participants, each with its SIP role and responsibility
     ├── Organization ×n   the coordinating unit first (the sender), then every other unit
     ├── Practitioner ×n   participating professionals (personal HSA-id, name)
     ├── RelatedPerson ×n  participating relatives (närstående)
     ├── Goal ×n           the SIP's goals, in order
     └── EpisodeOfCare     the case (services.messaging.case), named last in focus; only
                           when the journal echoed the case id (arendeId / caseId)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, overload

from fhir.resources.R4B.bundle import Bundle

from services.messaging.consent import ConsentBasis, consent_of, read_consent
from services.messaging.envelope import BusinessKey, EventCode, System
from services.messaging.fhir_parts import (
    CareUnit,
    PatientInfo,
    Ref,
    TranslationError,
    arr,
    boolean,
    code,
    coded,
    extension,
    hsa_id,
    instant,
    integer,
    known,
    maybe_boolean,
    maybe_day,
    maybe_instant,
    maybe_obj,
    maybe_text,
    message_bundle,
    obj,
    one,
    organization_resource,
    patient_resource,
    read_patient,
    read_unit,
    refs,
    required_extension,
    resolve,
    resources,
    text,
    where,
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
    # the general basis every family carries (services.messaging.consent); ``consent`` above
    # is the SIP's own, kept for the SIP's receivers
    basis: ConsentBasis | None = None


# --- building --------------------------------------------------------------------------------


def sip_bundle(
    sip: Sip, *, key: BusinessKey, source: System, now: datetime, case_id: str | None = None
) -> Bundle:
    """``case_id``: the stay's case the journal echoed (services.messaging.case), if any."""
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
        case_id=case_id,
        key=key,
        event=STAGE_EVENTS[sip.stage],
        source=source,
        now=now,
        focus=["careplan"] if sip.basis is None else ["careplan", "consent"],
        sender="organization-0",
        resources=[
            ("careplan", plan),
            ("patient", patient_resource(sip.patient)),
            *(
                []
                if sip.basis is None
                else [("consent", consent_of(sip.basis, ref, organization="organization-0"))]
            ),
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
        consent = extension(one(doc, "CarePlan"), SIP_CONSENT_URL)
        given = _sub(consent, "given", required=False) if consent is not None else None
        return given is not None and maybe_boolean(given, "valueBoolean") is True
    except TranslationError:
        return False


def read_sip(doc: dict[str, Any]) -> Sip:
    """The SIP of a FHIR SIP message; raise :class:`TranslationError` if it is incomplete."""
    header = one(doc, "MessageHeader")
    plan = resolve(doc, header, "focus.0", "CarePlan")
    consent = required_extension(plan, SIP_CONSENT_URL)
    consent_note = _sub(consent, "note", required=False)
    meeting = maybe_obj(extension(plan, SIP_MEETING_URL), "valuePeriod")
    location = extension(plan, SIP_MEETING_LOCATION_URL)
    team = resolve(doc, plan, "careTeam.0", "CareTeam")
    ids = arr(plan, "identifier")
    at = next((i for i, x in enumerate(ids) if x.get("system") == SIP_ID_SYSTEM), None)
    if at is None:
        raise TranslationError("CarePlan has no SIP id")
    return Sip(
        sip_id=text(plan, f"identifier.{at}.value"),
        version=integer(required_extension(plan, DOCUMENT_VERSION_URL), "valuePositiveInt"),
        stage=known(EVENT_STAGES, text(header, "eventCoding.code"), "MessageHeader.eventCoding"),
        occurred_at=instant(plan, "meta.lastUpdated"),
        patient=read_patient(resolve(doc, plan, "subject")),
        consent=Consent(
            given=boolean(_sub(consent, "given"), "valueBoolean"),
            recorded_at=instant(_sub(consent, "recordedAt"), "valueDateTime"),
            note=None if consent_note is None else text(consent_note, "valueString"),
        ),
        coordinating_unit=read_unit(resolve(doc, plan, "author")),
        participants=tuple(
            _participant(doc, team, i) for i in range(len(arr(team, "participant")))
        ),
        activities=tuple(_read_activity(doc, plan, i) for i in range(len(arr(plan, "activity")))),
        goals=tuple(
            text(resolve(doc, plan, f"goal.{i}", "Goal"), "description.text")
            for i in range(len(arr(plan, "goal")))
        ),
        meeting=None
        if meeting is None
        else Meeting(
            instant(meeting, "start"),
            maybe_instant(meeting, "end"),
            None if location is None else text(location, "valueString"),
        ),
        note=text(plan, "note.0.text") if maybe_obj(plan, "note.0") is not None else None,
        basis=read_consent(doc) if resources(doc, "Consent") else None,
    )


@overload
def _sub(ext: dict[str, Any], url: str) -> dict[str, Any]: ...
@overload
def _sub(ext: dict[str, Any], url: str, *, required: bool) -> dict[str, Any] | None: ...
def _sub(ext: dict[str, Any], url: str, *, required: bool = True) -> dict[str, Any] | None:
    """The sub-extension ``url`` of the consent extension."""
    found = next((sub for sub in arr(ext, "extension") if sub.get("url") == url), None)
    if found is None and required:
        raise TranslationError(f"SIP consent lacks {url}")
    return found


def _read_role(concept: dict[str, Any] | None) -> str:
    role = coded(concept, SIP_ROLE_SYSTEM)
    if role not in ROLES:
        raise TranslationError("SIP role missing or unknown")
    return role


def _participant(doc: dict[str, Any], team: dict[str, Any], i: int) -> Participant:
    at = f"participant.{i}"
    roles = arr(team, f"{at}.role")
    texts = [
        text(team, f"{at}.role.{j}.text") for j, r in enumerate(roles) if j and not r.get("coding")
    ]
    name = hsa = unit = None
    if maybe_obj(team, f"{at}.member") is not None:
        member = resolve(doc, team, f"{at}.member")
        kind = member.get("resourceType")
        if kind == "Patient":
            name = maybe_text(team, f"{at}.member.display")
        elif kind == "Organization":
            unit = read_unit(member)
        elif kind in ("Practitioner", "RelatedPerson"):
            name = text(member, "name.0.text") if maybe_obj(member, "name.0") is not None else None
            hsa = hsa_id(member)
        else:
            raise TranslationError(f"{where(team, at)}.member points to no participant")
    if maybe_obj(team, f"{at}.onBehalfOf") is not None:
        unit = read_unit(resolve(doc, team, f"{at}.onBehalfOf"))
    return Participant(
        _read_role(maybe_obj(team, f"{at}.role.0")), name, unit, hsa, texts[0] if texts else None
    )


def _read_activity(doc: dict[str, Any], plan: dict[str, Any], i: int) -> Activity:
    at = f"activity.{i}"
    detail = obj(plan, f"{at}.detail")
    responsible = required_extension(detail, SIP_RESPONSIBLE_ROLE_URL)
    return Activity(
        activity_id=text(required_extension(obj(plan, at), SIP_ACTIVITY_ID_URL), "valueString"),
        description=text(plan, f"{at}.detail.description"),
        responsible=_read_role(obj(responsible, "valueCodeableConcept")),
        status=known(
            _ACTIVITY_STATUS_BACK, text(plan, f"{at}.detail.status"), "CarePlan.activity.status"
        ),
        unit=read_unit(resolve(doc, plan, f"{at}.detail.performer.0"))
        if arr(detail, "performer")
        else None,
        due=maybe_day(plan, f"{at}.detail.scheduledPeriod.end"),
    )
