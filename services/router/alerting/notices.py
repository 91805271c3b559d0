"""What an alert says, and to whom: pure text composition, no I/O, no clock.

From an :class:`AlertEvent` (and the unit directory) this module builds

* the **ops notification** (webhook payload, and an email with English and Swedish lines) and
* the **fallback notice** (reservrutin) to the receiving care unit, in plain Swedish: which
  message did not arrive, from whom, whom to phone, which case reference to give, the deadline,
  and what to do; and a follow-up when the message has arrived after all.

Nothing here carries patient identity. Email is not a secure channel, so a fallback notice
names no patient, no personnummer, not even the pseudonym: the reference code (``CB-`` and
the first eight hex digits of the message id) is what the sending ward looks the case up by.
The free-text summary of an event is scrubbed of anything shaped like a personnummer, in case
a rule ever lets one through.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.messaging.families import family_of
from services.router.alerting.events import AlertChange, AlertEvent, Severity
from services.router.alerting.unit_directory import Unit, UnitDirectory

# 6 or 8 digits of a birth date, an optional - or +, and four more: a personnummer or a
# samordningsnummer in any of its usual spellings.
PERSONNUMMER_SHAPE = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)")
REDACTED = "[borttaget]"


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class FallbackNotice:
    """A notice to one care unit; ``recipients`` are its email addresses for this moment
    (outside its telefontid, the on-call mailbox too, when the unit has one)."""

    unit: Unit
    recipients: tuple[str, ...]
    subject: str
    body: str
    reference: str


@dataclass(frozen=True, slots=True)
class _Family:
    the: str  # definite singular, starts a sentence: "Inskrivningsmeddelandet"
    one: str  # indefinite singular, for subjects: "inskrivningsmeddelande"
    many: str  # indefinite plural: "inskrivningsmeddelanden"
    why: str  # completes "Ring … och fråga efter ärende CB-…"


_FAMILIES: dict[str, _Family] = {
    "admission-notice": _Family(
        "Inskrivningsmeddelandet",
        "inskrivningsmeddelande",
        "inskrivningsmeddelanden",
        "innan patienten skrivs ut, så att ni kan planera hemgången",
    ),
    "discharge-readiness": _Family(
        "Meddelandet om att patienten är utskrivningsklar",
        "meddelande om utskrivningsklar",
        "meddelanden om utskrivningsklar",
        "så att ni kan förbereda hemgången i tid",
    ),
    "discharge-notice": _Family(
        "Utskrivningsmeddelandet",
        "utskrivningsmeddelande",
        "utskrivningsmeddelanden",
        "innan patienten kommer hem, så att ni får den information ni behöver",
    ),
    "medication-list": _Family(
        "Läkemedelslistan",
        "läkemedelslista",
        "läkemedelslistor",
        "och stäm av läkemedlen med dem före nästa läkemedelsgivning",
    ),
    "sip-update": _Family(
        "SIP-meddelandet (samordnad individuell plan)",
        "SIP-meddelande",
        "SIP-meddelanden",
        "så att ni inte missar SIP-mötet eller en ändring i planen",
    ),
    "consent-withdrawal": _Family(
        "Meddelandet om att patienten återkallat sitt samtycke",
        "meddelande om återkallat samtycke",
        "meddelanden om återkallat samtycke",
        "så att ni inte använder mer av vårdtillfället än samtycket tillät",
    ),
    "process-interrupted": _Family(
        "Meddelandet om avbrott i utskrivningsprocessen",
        "meddelande om avbrott i utskrivningsprocessen",
        "meddelanden om avbrott i utskrivningsprocessen",
        "så att ni inte planerar en hemgång som inte blir av",
    ),
    "transfer": _Family(
        "Meddelandet om att patienten flyttats till en annan enhet",
        "meddelande om förflyttning",
        "meddelanden om förflyttning",
        "så att ni planerar med rätt enhet",
    ),
    "patient-deceased": _Family(
        "Meddelandet om att patienten har avlidit",
        "meddelande om att patienten avlidit",
        "meddelanden om att patienten avlidit",
        "så att planeringen avslutas",
    ),
    "administrative-message": _Family(
        "Det administrativa meddelandet",
        "administrativt meddelande",
        "administrativa meddelanden",
        "så att ni inte missar en fråga om vårdtillfället",
    ),
}
_EVENTS: dict[str, _Family] = {  # where one event of a family reads better on its own
    "sip-invitation": _Family(
        "Kallelsen till SIP-möte",
        "kallelse till SIP-möte",
        "kallelser till SIP-möte",
        "så att ni inte missar SIP-mötet",
    ),
    "ready-for-discharge-withdrawn": _Family(
        "Återtaget av utskrivningsklar",
        "återtag av utskrivningsklar",
        "återtag av utskrivningsklar",
        "så att ni inte tar emot patienten i onödan",
    ),
}
_ANY = _Family("Meddelandet", "meddelande", "meddelanden", "")

_SYSTEMS = {"treserva": "Treserva", "takecare": "TakeCare", "primary-care": "TakeCare"}

_CHANGE_SV = {
    AlertChange.OPENED: "öppnat",
    AlertChange.ESCALATED: "eskalerat",
    AlertChange.REMINDER: "påminnelse",
    AlertChange.AFFECTED: "ytterligare meddelande",
    AlertChange.ACKNOWLEDGED: "kvitterat",
    AlertChange.RESOLVED: "löst",
}
_SEVERITY_SV = {
    Severity.INFO: "information",
    Severity.WARNING: "varning",
    Severity.CRITICAL: "kritiskt",
}
_KIND_SV = {
    "confirmation_overdue": "ingen kvittens i tid",
    "delivery_failed": "leveransen misslyckades",
    "consent_hold": "hållet: samtycket täcker inte mottagaren eller är återkallat",
}
_WEEKDAYS_SV = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
_MONTHS_SV = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)

_FOOTER = (
    "Det här meddelandet innehåller inga patientuppgifter, eftersom e-post inte är en säker "
    "kanal. Den som skickade meddelandet vet vilken patient ärendet gäller.\n"
    "Det här är ett automatiskt meddelande från carebridge, som för över meddelanden mellan "
    "TakeCare och Treserva. Svara inte på det."
)


def scrub(text: str) -> str:
    """``text`` with anything shaped like a personnummer replaced."""
    return PERSONNUMMER_SHAPE.sub(REDACTED, text)


def reference_code(event: AlertEvent) -> str:
    """The case reference staff give on the phone: ``CB-`` and the first eight hex digits of
    the message id (how the ops console finds the message), or the alert id without one."""
    if event.message_id is None:
        return f"CB-L{event.alert_id}"
    return message_reference(event.message_id)


def message_reference(message_id: str) -> str:
    """A message's case reference: ``CB-`` and the first eight hex digits of its id."""
    digits = re.sub(r"[^0-9a-f]", "", message_id.lower())
    if len(digits) < 8:
        digits = hashlib.sha256(message_id.encode()).hexdigest()
    return f"CB-{digits[:4].upper()}-{digits[4:8].upper()}"


def swedish_time(at: datetime, directory: UnitDirectory) -> str:
    """E.g. "tisdag 8 december kl. 14.30", in the directory's local time."""
    local = at.astimezone(directory.tz)
    return (
        f"{_WEEKDAYS_SV[local.weekday()]} {local.day} {_MONTHS_SV[local.month - 1]} "
        f"kl. {local.hour:02d}.{local.minute:02d}"
    )


def _family(event: AlertEvent) -> _Family:
    if event.family in _EVENTS:
        return _EVENTS[event.family]
    family = family_of(event.family)
    return _FAMILIES.get(family.name if family is not None else event.family, _ANY)


# --- the ops notification -------------------------------------------------------------------


def ops_notice(event: AlertEvent, directory: UnitDirectory | None = None) -> Notice:
    """Subject and body for operations: ids and metadata, English then Swedish."""
    summary = scrub(event.summary)
    subject = (
        f"[carebridge] {event.severity.upper()} {event.change}: {event.kind} "
        f"{event.family} → {event.destination} (alert {event.alert_id})"
    )
    lines = [
        f"Alert {event.alert_id} {event.change}: {summary}",
        f"Kind: {event.kind}; severity: {event.severity}; destination: {event.destination}; "
        f"family: {event.family}; affected: {event.affected}",
        f"At: {event.at.isoformat()}",
    ]
    if event.due_at is not None:
        lines.append(f"Due: {event.due_at.isoformat()}")
    if event.message_id is not None:
        lines.append(f"Message: {event.message_id} (reference {reference_code(event)})")
    if event.pseudonym is not None:
        lines.append(f"Pseudonym: {event.pseudonym}")
    for label, hsa in (
        ("Sender unit", event.sender_unit_hsa),
        ("Receiving unit", event.receiver_unit_hsa),
    ):
        if hsa is not None:
            unit = directory.unit(hsa) if directory is not None else None
            lines.append(f"{label}: {hsa}" + (f" ({unit.name}, {unit.phone})" if unit else ""))
    lines += [
        "",
        f"Larm {event.alert_id} {_CHANGE_SV[event.change]}: "
        f"{_KIND_SV.get(event.kind, event.kind)}, {_family(event).one} till "
        f"{event.destination}. Allvarlighetsgrad: {_SEVERITY_SV[event.severity]}. "
        f"Berörda: {event.affected}.",
    ]
    return Notice(subject, "\n".join(lines) + "\n")


def webhook_payload(event: AlertEvent) -> dict[str, Any]:
    """The JSON an ops webhook receives (no patient identity; pseudonym at most)."""
    return {
        "type": "carebridge.alert",
        "version": 1,
        "alertId": event.alert_id,
        "change": str(event.change),
        "kind": event.kind,
        "severity": str(event.severity),
        "destination": event.destination,
        "family": event.family,
        "summary": scrub(event.summary),
        "affected": event.affected,
        "at": event.at.isoformat(),
        "dueAt": event.due_at.isoformat() if event.due_at else None,
        "messageId": event.message_id,
        "reference": reference_code(event) if event.message_id else None,
        "pseudonym": event.pseudonym,
        "senderUnitHsa": event.sender_unit_hsa,
        "receiverUnitHsa": event.receiver_unit_hsa,
    }


# --- the fallback notice to the receiving unit ----------------------------------------------


def fallback_notice(
    event: AlertEvent, directory: UnitDirectory, references: Sequence[str] = ()
) -> FallbackNotice | None:
    """The notice to the unit that should have received the message; None when the directory
    knows no such unit, or for a change the unit need not hear about (acknowledged). An
    all-clear (resolved) names ``references``: those of the alarms the unit was sent."""
    unit = directory.receiving_unit(event.destination, event.receiver_unit_hsa)
    if unit is None or event.change is AlertChange.ACKNOWLEDGED:
        return None
    family, ref = _family(event), reference_code(event)
    sender = directory.unit(event.sender_unit_hsa)
    system = f" i {_SYSTEMS[event.destination]}" if event.destination in _SYSTEMS else ""
    origin = f" från {sender.name}" + ("," if "," in sender.name else "") if sender else ""
    recipients: tuple[str, ...] = (unit.email,)
    if event.change is AlertChange.RESOLVED:
        # the all-clear names the references the alarms gave, one per message (the resolving
        # event's own reference is the alert's, which no alarm email ever showed)
        refs = list(references) or [ref]
        ref = ", ".join(refs)
        many = len(refs) > 1
        subject = (
            f"Klart: {len(refs)} {family.many} har kommit fram (ärenden {_listed(refs)})"
            if many
            else f"Klart: {family.one} har kommit fram (ärende {ref})"
        )
        body = [
            "Hej!",
            "",
            (
                f"Nu har meddelandena kommit fram: {len(refs)} {family.many}{origin} har nu "
                f"kommit fram till er{system} (ärenden {ref})."
                if many
                else f"Nu har meddelandet kommit fram. {_what(event, family)}{origin} har nu "
                f"kommit fram till er{system} (ärende {ref})."
            ),
            "Ni behöver inte göra något mer i "
            + ("de här ärendena." if many else "det här ärendet."),
        ]
    else:
        open_now = unit.is_open(event.at, directory.tz)
        if not open_now and unit.on_call is not None and unit.on_call.email:
            recipients += (unit.on_call.email,)
        prefix = "Brådskande" if event.severity is Severity.CRITICAL else "Åtgärd behövs"
        if event.change is AlertChange.REMINDER:
            prefix = f"Påminnelse, {prefix[0].lower()}{prefix[1:]}"
        subject = f"{prefix}: {family.one} saknas hos er (ärende {ref})"
        body = ["Hej!", "", _status(event, family, origin, system)]
        if event.due_at is not None:
            verb = "gick ut" if event.due_at <= event.at else "går ut"
            body.append(f"Tidsgränsen {verb} {swedish_time(event.due_at, directory)}.")
        body += ["", _action(event, family, ref, sender, directory)]
        if not open_now:
            body += ["", _outside_hours(event, unit, directory)]
    label = "Ärenden" if ", " in ref else "Ärende"
    body += ["", f"{label}: {ref} (carebridge larm {event.alert_id})", "", _FOOTER]
    return FallbackNotice(unit, recipients, subject, "\n".join(body) + "\n", ref)


def _what(event: AlertEvent, family: _Family) -> str:
    if event.message_id is None and event.affected > 1:
        return f"{event.affected} {family.many}"
    return family.the


def _status(event: AlertEvent, family: _Family, origin: str, system: str) -> str:
    what = f"{_what(event, family)}{origin}"
    if event.kind == "confirmation_overdue":
        return (
            f"{what} har skickats men har inte kvitterats{system} och har troligen inte "
            f"kommit fram till er."
        )
    if event.kind.startswith("episode"):
        return f"{what} saknas hos er{system}."
    if event.kind.startswith("deadline"):
        return f"{what} har ännu inte kommit fram till er{system}."
    return f"{what} har inte kommit fram till er{system}."


def _action(
    event: AlertEvent, family: _Family, ref: str, sender: Unit | None, directory: UnitDirectory
) -> str:
    why = f" {family.why}" if family.why else ""
    if sender is None:
        board = directory.switchboard
        return (
            f"Gör så här: ring {board.description} på {board.phone}, be att få tala med den "
            f"enhet som skickade meddelandet och fråga efter ärende {ref}{why}."
        )
    if sender.is_open(event.at, directory.tz) or sender.on_call is None:
        return (
            f"Gör så här: ring {sender.kind.called} på {sender.phone} och fråga efter "
            f"ärende {ref}{why}."
        )
    return (
        f"Gör så här: ring {sender.kind.called} på {sender.phone} när de öppnar "
        f"{swedish_time(sender.next_opening(event.at, directory.tz), directory)} och fråga "
        f"efter ärende {ref}{why}. Brådskar det innan dess, ring {sender.on_call.description} "
        f"på {sender.on_call.phone}."
    )


def _outside_hours(event: AlertEvent, unit: Unit, directory: UnitDirectory) -> str:
    opens = swedish_time(unit.next_opening(event.at, directory.tz), directory)
    text = (
        f"Det här skickades utanför er telefontid ({unit.hours_text()}). "
        f"Ta hand om ärendet senast när ni öppnar, {opens}."
    )
    if unit.on_call is not None:
        text += (
            f" Brådskar det innan dess, kontakta {unit.on_call.description} på "
            f"{unit.on_call.phone}"
            + (", som också har fått det här meddelandet." if unit.on_call.email else ".")
        )
    return PERSONNUMMER_SHAPE.sub(REDACTED, text)


def _listed(refs: Sequence[str], shown: int = 3) -> str:
    more = len(refs) - shown
    return ", ".join(refs[:shown]) + (f" och {more} till" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class Queued:
    """A fallback notice waiting for its unit's next email: subject, body and the case
    references it names (one for an alarm, the alarms' for an all-clear)."""

    subject: str
    body: str
    references: tuple[str, ...]
    all_clear: bool


def grouped_notice(queued: Sequence[Queued], *, digest_over: int) -> Notice:
    """The one email a unit gets for what is waiting to be told: a single notice as it is;
    up to ``digest_over`` notices one after another, each under its own case reference; more
    than that, a digest with a line per reference (a backlog must not become an email storm,
    nor one email too long to read)."""
    if len(queued) == 1:
        return Notice(queued[0].subject, queued[0].body)
    alarms = [q for q in queued if not q.all_clear]
    clear = [q for q in queued if q.all_clear]
    missing = [r for q in alarms for r in q.references]
    arrived = [r for q in clear for r in q.references]
    if alarms:
        subject = f"{len(missing)} meddelanden saknas hos er (ärenden {_listed(missing)})"
        if any(q.subject.startswith("Brådskande") for q in alarms):
            subject = f"Brådskande: {subject}"
    else:
        subject = f"Klart: {len(arrived)} meddelanden har kommit fram (ärenden {_listed(arrived)})"
    if len(queued) <= digest_over:
        parts = [
            f"Hej! Det här mejlet samlar {len(queued)} ärenden, vart och ett under sitt eget "
            "ärendenummer.",
        ]
        parts += [f"--- {', '.join(q.references)} ---\n{q.body}" for q in queued]
        return Notice(subject[:300], "\n".join(parts))
    lines = [
        "Hej!",
        "",
        f"Sammanställning: {len(missing)} meddelanden saknas hos er"
        + (f" och {len(arrived)} har kommit fram" if arrived else "")
        + ". Varje rad är ett ärende; ring den avdelning som skickade meddelandet och fråga "
        "efter ärendenumret.",
    ]
    if alarms:
        lines += ["", "Saknas hos er:"] + [f"- {q.subject}" for q in alarms]
    if clear:
        lines += ["", "Har kommit fram (inget mer att göra):"] + [f"- {r}" for r in arrived]
    lines += ["", _FOOTER]
    return Notice(f"Sammanställning: {subject}"[:300], "\n".join(lines) + "\n")
