"""The FHIR R4 message envelope every service agrees on.

Every message on Kafka is a ``Bundle`` of type ``message`` whose first entry is a
``MessageHeader``. This module holds the project's CodeSystem, the identity rules and a cheap
reader (:func:`read_envelope`) that pulls routing facts out of a Bundle without building the
whole FHIR model again at every hop: full validation happens once, at the edge that builds it.

Identity: the message id is a UUIDv5 of the business key (source system, source event id,
version), carried as ``MessageHeader.id`` (its entry's fullUrl is ``urn:uuid:<message id>``). A
retry or replay keeps it; a source that resends the same event gets the same id. ``Bundle.id``
is not the message id: it names one send of the message (a Kafka publication, a delivery
attempt), stamped fresh at the I/O edge that sends it (:func:`sent_as`); what a translation
builds carries a deterministic placeholder (:func:`placeholder_bundle_id`), so the goldens
stay stable. Nothing dedupes on ``Bundle.id``.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

from fhir.resources.R4B.bundle import Bundle
from pydantic import PrivateAttr

from services.messaging.profiles import declare_profiles
from services.messaging.vocabulary import BASE_URL as BASE_URL
from services.messaging.vocabulary import BUSINESS_KEY_SYSTEM as BUSINESS_KEY_SYSTEM
from services.messaging.vocabulary import EVENT_SYSTEM as EVENT_SYSTEM
from services.messaging.vocabulary import (
    RECEIVER_RECORD_ID_URL,
    RECEIVER_RECORDED_AT_URL,
)

_ID_NAMESPACE = uuid.UUID("6f1d3c52-2b7e-5c1a-9a43-0c9b1f6e8d21")


class EventCode(enum.StrEnum):
    """Codes of the project's own event CodeSystem (MessageHeader.eventCoding)."""

    ADMISSION_NOTICE = "admission-notice"  # inskrivningsmeddelande
    ADMISSION_NOTICE_UPDATED = "admission-notice-updated"  # new expected discharge date
    ADMISSION_NOTICE_CANCELLED = "admission-notice-cancelled"  # makulerat
    READY_FOR_DISCHARGE = "ready-for-discharge"  # utskrivningsklar
    READY_FOR_DISCHARGE_WITHDRAWN = "ready-for-discharge-withdrawn"  # återtag
    DISCHARGE_NOTICE = "discharge-notice"  # utskrivningsmeddelande
    MEDICATION_LIST = "medication-list"  # läkemedelslista
    SIP_INVITATION = "sip-invitation"  # kallelse till SIP-möte
    SIP_CREATED = "sip-created"
    SIP_UPDATED = "sip-updated"
    SIP_COMPLETED = "sip-completed"
    CONSENT_WITHDRAWN = "consent-withdrawn"  # återkallat samtycke för vårdtillfället
    ADMISSION_ANSWER = "admission-answer"  # svar på inskrivningsmeddelande (municipality)
    READ_RECEIPT = "read-receipt"  # läskvittens: a person read a message (not RECEIPT)
    READY_TO_RECEIVE = "ready-to-receive"  # kan ta emot: the municipality can take the patient
    PROCESS_INTERRUPTED = "process-interrupted"  # avbrott i utskrivningsprocessen
    TRANSFER = "transfer"  # förflyttning: the patient moved to another ward or hospital
    PATIENT_DECEASED = "patient-deceased"  # patienten avliden: planning stops
    ADMINISTRATIVE_MESSAGE = "administrative-message"  # administrativt meddelande (free text)
    MESSAGE_CANCELLED = "message-cancelled"  # makulering of an earlier message, any family
    DELIVERY_OUTCOME = "delivery-outcome"  # an adapter's result of one delivery attempt
    RECEIPT = "receipt"  # kvittens: the receiving journal holds the record


EVENT_DISPLAY = {
    EventCode.ADMISSION_NOTICE: "Inskrivningsmeddelande",
    EventCode.ADMISSION_NOTICE_UPDATED: "Inskrivningsmeddelande, ändrad beräknad utskrivning",
    EventCode.ADMISSION_NOTICE_CANCELLED: "Inskrivningsmeddelande, makulerat",
    EventCode.READY_FOR_DISCHARGE: "Utskrivningsklar",
    EventCode.READY_FOR_DISCHARGE_WITHDRAWN: "Återtag av utskrivningsklar",
    EventCode.DISCHARGE_NOTICE: "Utskrivningsmeddelande",
    EventCode.MEDICATION_LIST: "Läkemedelslista",
    EventCode.SIP_INVITATION: "Kallelse till SIP",
    EventCode.SIP_CREATED: "SIP upprättad",
    EventCode.SIP_UPDATED: "SIP uppdaterad",
    EventCode.SIP_COMPLETED: "SIP avslutad",
    EventCode.CONSENT_WITHDRAWN: "Återkallat samtycke",
    EventCode.ADMISSION_ANSWER: "Svar på inskrivningsmeddelande",
    EventCode.READ_RECEIPT: "Läskvittens",
    EventCode.READY_TO_RECEIVE: "Kan ta emot",
    EventCode.PROCESS_INTERRUPTED: "Avbrott i utskrivningsprocessen",
    EventCode.TRANSFER: "Förflyttning",
    EventCode.PATIENT_DECEASED: "Patienten avliden",
    EventCode.ADMINISTRATIVE_MESSAGE: "Administrativt meddelande",
    EventCode.MESSAGE_CANCELLED: "Makulering av meddelande",
    EventCode.DELIVERY_OUTCOME: "Leveransutfall",
    EventCode.RECEIPT: "Kvittens",
}


class ResponseCode(enum.StrEnum):
    """MessageHeader.response.code (FHIR R4 ResponseType)."""

    OK = "ok"
    TRANSIENT_ERROR = "transient-error"
    FATAL_ERROR = "fatal-error"


FAILURE_HEADER = "failure"
"""The header of a transient outcome record that says what failed (:class:`FailureKind`)."""

CONFIRM_BY_HEADER = "confirm-by"
"""The header of a delivery command that says (ISO 8601, UTC) until when the router waits for
this attempt's confirmation before it alerts and sends again: how long an adapter that
confirms by read-back keeps reading the record back."""

RECEIVER_UNIT_HEADER = "receiver-unit"
"""The header of a delivery command that names the receiving unit's HSA-id (addressing by
unit, issue 20): the municipality's home-care unit or the listed vårdcentral. Signed with the
record, so the adapter can trust it to address the journal and to stamp
``MessageHeader.destination.receiver``. A unit's id, never patient data."""


class FailureKind(enum.StrEnum):
    """What a transient failure says of its destination. ``transport``: the destination as
    a whole failed (not reached, no answer in time, or 429, 502, 503, 504: busy or
    unavailable), which its circuit counts whoever the patient. ``response``: it answered
    this message with another error status, which the circuit counts once per patient (one
    patient's bad record must not trip the circuit for everyone)."""

    TRANSPORT = "transport"
    RESPONSE = "response"


class System(enum.StrEnum):
    """Journal systems that take part; the value is the MessageHeader endpoint suffix."""

    TAKECARE = "takecare"
    TRESERVA = "treserva"
    PRIMARY_CARE = "primary-care"  # vårdcentral: receives FHIR messages as they are

    @property
    def endpoint(self) -> str:
        return f"urn:carebridge:system:{self.value}"

    @property
    def display(self) -> str:
        return {"takecare": "TakeCare", "treserva": "Treserva", "primary-care": "Primärvården"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class BusinessKey:
    """(source system, source event id, version): catches a resend under a new id."""

    source: str
    source_event_id: str
    version: int

    def __str__(self) -> str:
        return f"{self.source}|{self.source_event_id}|{self.version}"

    @classmethod
    def parse(cls, text: str) -> BusinessKey:
        source, event_id, version = text.rsplit("|", 2) if text.count("|") >= 2 else ("", "", "")
        if not source or not event_id or not version.isdigit():
            raise MalformedMessage("business key must be 'source|event id|version'")
        return cls(source, event_id, int(version))


def message_id_for(key: BusinessKey) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, str(key)))


def header_url(message_id: str) -> str:
    """The MessageHeader's fullUrl: its id, the message id, as a ``urn:uuid``."""
    return f"urn:uuid:{message_id}"


def placeholder_bundle_id(message_id: str) -> str:
    """``Bundle.id`` of a message as a translation builds it: deterministic (no clock, no
    random) and never the message id, so no reader can take one for the other. Every send
    replaces it with a fresh id (:func:`sent_as`)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{message_id}/bundle"))


def fresh_bundle_id() -> str:
    """The production :data:`BundleIdSource`: a random UUID per send."""
    return str(uuid.uuid4())


BundleIdSource = Callable[[], str]
"""Where a sending edge takes the ``Bundle.id`` of one send from (injected: tests pass a
deterministic one)."""


def entry_uuid(message_id: str, role: str) -> str:
    """Stable fullUrl of one resource inside a message (deterministic: no clock, no random)."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{message_id}/{role}')}"


class MalformedMessage(ValueError):
    """A Kafka record is not a FHIR message Bundle this broker understands."""


@dataclass(frozen=True, slots=True)
class ReceiverEvidence:
    """What a receiving journal says of the record it holds, carried by its receipt
    (kvittens): its own id of the record and when it stored it, as far as it tells. It is
    the evidence both sides argue from (the payment clock, an invoice check); never the
    record's content."""

    record_id: str | None = None  # at most 64 characters
    recorded_at: datetime | None = None  # aware

    def __bool__(self) -> bool:
        return bool(self.record_id) or self.recorded_at is not None


@dataclass(frozen=True, slots=True)
class Envelope:
    """Routing facts read from a message Bundle."""

    message_id: str
    event_code: str
    source_endpoint: str
    timestamp: datetime
    business_key: BusinessKey | None
    response_to: str | None
    response_code: ResponseCode | None
    outcome_text: str | None
    # a receipt's evidence; empty for other messages and for receipts from before it was sent
    evidence: ReceiverEvidence = ReceiverEvidence()

    @property
    def source_system(self) -> str:
        return self.source_endpoint.rsplit(":", 1)[-1]


def read_envelope(raw: bytes | str) -> Envelope:
    """Read routing facts; raise :class:`MalformedMessage` for anything else. Its message
    names the element, never a value (a changed message could hold patient data anywhere)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedMessage("not JSON") from exc
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise MalformedMessage("not a FHIR Bundle")
    if doc.get("type") != "message":
        raise MalformedMessage("Bundle.type must be 'message'")
    entries = doc.get("entry") or []
    if not isinstance(entries, list):
        raise MalformedMessage("Bundle.entry must be an array")
    header = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    if not isinstance(header, dict) or header.get("resourceType") != "MessageHeader":
        raise MessageHeaderMissing()
    coding = _obj(header, "eventCoding", "MessageHeader")
    if coding.get("system") != EVENT_SYSTEM:
        raise MalformedMessage("eventCoding must come from the carebridge event CodeSystem")
    try:
        timestamp = datetime.fromisoformat(_str(doc, "timestamp", "Bundle"))
    except ValueError:  # its message quotes the value
        raise MalformedMessage("Bundle.timestamp must be a date-time") from None
    ident = _obj(doc, "identifier", "Bundle", required=False)
    key = (
        BusinessKey.parse(_str(ident, "value", "Bundle.identifier"))
        if ident is not None and ident.get("system") == BUSINESS_KEY_SYSTEM
        else None
    )
    response = _obj(header, "response", "MessageHeader", required=False)
    response_code = None
    if response is not None:
        code = _str(response, "code", "MessageHeader.response")
        if code not in set(ResponseCode):
            raise MalformedMessage("MessageHeader.response.code is not a response code")
        response_code = ResponseCode(code)
    return Envelope(
        _str(header, "id", "MessageHeader"),
        _str(coding, "code", "MessageHeader.eventCoding"),
        _str(_obj(header, "source", "MessageHeader"), "endpoint", "MessageHeader.source"),
        timestamp,
        key,
        None if response is None else _str(response, "identifier", "MessageHeader.response"),
        response_code,
        None if response is None else _outcome_text(entries),
        ReceiverEvidence() if response is None else _evidence(response),
    )


def _evidence(response: dict[str, Any]) -> ReceiverEvidence:
    """The receipt's evidence extensions; absent (an older adapter) or unreadable ones are
    left out, never a reason to refuse the receipt: it still proves the delivery."""
    found = response.get("extension")
    record_id: str | None = None
    recorded_at: datetime | None = None
    for ext in found if isinstance(found, list) else []:
        if not isinstance(ext, dict):
            continue
        if ext.get("url") == RECEIVER_RECORD_ID_URL and isinstance(ext.get("valueString"), str):
            record_id = ext["valueString"][:64] or None
        elif ext.get("url") == RECEIVER_RECORDED_AT_URL and isinstance(
            ext.get("valueInstant"), str
        ):
            try:
                at = datetime.fromisoformat(ext["valueInstant"])
            except ValueError:
                continue
            recorded_at = at if at.tzinfo is not None else None
    return ReceiverEvidence(record_id, recorded_at)


@overload
def _obj(node: dict[str, Any], key: str, where: str) -> dict[str, Any]: ...
@overload
def _obj(
    node: dict[str, Any], key: str, where: str, *, required: bool
) -> dict[str, Any] | None: ...
def _obj(
    node: dict[str, Any], key: str, where: str, *, required: bool = True
) -> dict[str, Any] | None:
    found = node.get(key)
    if found is None and not required:
        return None
    if not isinstance(found, dict):
        raise MalformedMessage(f"{where}.{key} must be an object")
    return found


def _str(node: dict[str, Any], key: str, where: str) -> str:
    found = node.get(key)
    if not isinstance(found, str):
        raise MalformedMessage(f"{where}.{key} must be a string")
    return found


class MessageHeaderMissing(MalformedMessage):
    def __init__(self) -> None:
        super().__init__("first entry must be a MessageHeader")


def _outcome_text(entries: list[Any]) -> str | None:
    """The OperationOutcome's diagnostics of a response message; None when it has none."""
    for entry in entries[1:]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
            issues = resource.get("issue")
            found = [
                i.get("diagnostics") or i.get("code")
                for i in (issues if isinstance(issues, list) else [])
                if isinstance(i, dict)
            ]
            return "; ".join(t for t in found if isinstance(t, str) and t)[:500] or None
    return None


def response_message(
    *,
    request_message_id: str,
    event: EventCode,
    responder: System,
    code: ResponseCode,
    diagnostics: str | None,
    response_id: str,
    now: datetime,
    evidence: ReceiverEvidence | None = None,
) -> Bundle:
    """A FHIR response message about ``request_message_id``: delivery outcome or receipt.

    ``diagnostics`` goes into an OperationOutcome and must not hold patient data.
    ``evidence`` (a receipt's): the receiving journal's record id and time, as extensions
    of ``MessageHeader.response``.

    An internal control message of a fixed shape, built here and read by the router with
    :func:`read_envelope`: it is not run through the FHIR models (that was a tenth of an
    adapter's CPU per delivery). tests/unit/test_fhir_json.py validates every shape it can
    take against them.
    """
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": response_id,
        "eventCoding": {
            "system": EVENT_SYSTEM,
            "code": event.value,
            "display": EVENT_DISPLAY[event],
        },
        "source": {"name": responder.display, "endpoint": responder.endpoint},
        "response": {"identifier": request_message_id, "code": code.value},
    }
    if evidence:
        header["response"]["extension"] = _evidence_extensions(evidence)
    entries: list[dict[str, Any]] = [{"fullUrl": header_url(response_id), "resource": header}]
    if code is not ResponseCode.OK or diagnostics:
        outcome_url = entry_uuid(response_id, "outcome")
        header["response"]["details"] = {"reference": outcome_url}
        severity = {"ok": "information", "transient-error": "error", "fatal-error": "fatal"}
        entries.append(
            {
                "fullUrl": outcome_url,
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": severity[code.value],
                            "code": "informational" if code is ResponseCode.OK else "exception",
                            "diagnostics": diagnostics or code.value,
                        }
                    ],
                },
            }
        )
    return control_message(
        declare_profiles(
            {
                "resourceType": "Bundle",
                "id": placeholder_bundle_id(response_id),
                "type": "message",
                "timestamp": fhir_instant(now),
                "entry": entries,
            },
            event.value,
        )
    )


def _evidence_extensions(evidence: ReceiverEvidence) -> list[dict[str, str]]:
    found = []
    if evidence.record_id:
        found.append({"url": RECEIVER_RECORD_ID_URL, "valueString": evidence.record_id[:64]})
    if evidence.recorded_at is not None:
        found.append(
            {"url": RECEIVER_RECORDED_AT_URL, "valueInstant": fhir_instant(evidence.recorded_at)}
        )
    return found


def control_message(document: dict[str, Any]) -> Bundle:
    """A message this broker built to a fixed shape, kept for :func:`to_json` without
    validation (see :func:`response_message`)."""
    message = FhirMessage.model_construct()
    message._document = document
    return message


def fhir_instant(at: datetime) -> str:
    """``at`` as the FHIR models write an instant: UTC as ``Z``, any other offset as is."""
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class FhirMessage(Bundle):
    """A Bundle validated from a document this broker built, which it keeps: serialising that
    document is what :func:`to_json` does then, instead of walking the validated model again
    (fhir.resources' serialiser was a fifth of the intake's CPU)."""

    _document: dict[str, Any] | None = PrivateAttr(default=None)


def validated_message(document: dict[str, Any]) -> Bundle:
    """``document`` checked against the FHIR R4B Bundle model (raises ValidationError), kept
    for :func:`to_json`. The caller must not change ``document`` afterwards."""
    message = FhirMessage.model_validate(document)
    message._document = document
    return message


def to_json(bundle: Bundle) -> str:
    """The message as JSON, nulls left out as FHIR requires: for a :class:`FhirMessage` its
    validated source document, otherwise the model's own serialisation. Both are the same
    FHIR; they differ only where a builder wrote a UTC date-time with ``isoformat()``
    (``+00:00`` where the model writes ``Z``; the Bundle's timestamp uses :func:`fhir_instant`)."""
    document = bundle._document if isinstance(bundle, FhirMessage) else None
    if document is None:
        return str(bundle.model_dump_json(exclude_none=True))
    return json.dumps(_without_nulls(document), ensure_ascii=False, separators=(",", ":"))


def message_id_of(bundle: Bundle) -> str:
    """The message id of a message this broker built: its MessageHeader's id."""
    document = bundle._document if isinstance(bundle, FhirMessage) else None
    if document is None:
        document = json.loads(to_json(bundle))
    return _str(document["entry"][0]["resource"], "id", "MessageHeader")


def sent_as(bundle: Bundle, bundle_id: str) -> str:
    """The message as JSON (:func:`to_json`) for one send, its ``Bundle.id`` ``bundle_id``;
    ``bundle`` itself is left as it is."""
    document = bundle._document if isinstance(bundle, FhirMessage) else None
    # a shallow copy: only Bundle.id changes
    copy = dict(document) if document is not None else json.loads(to_json(bundle))
    return stamp_bundle_id(copy, bundle_id)


def stamp_bundle_id(document: dict[str, Any], bundle_id: str) -> str:
    """``document`` (a message Bundle's JSON form) as JSON with ``Bundle.id`` set to
    ``bundle_id``: what a sending edge does to a message right before it leaves."""
    document["id"] = bundle_id
    return json.dumps(_without_nulls(document), ensure_ascii=False, separators=(",", ":"))


def _without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node if v is not None]
    return node
