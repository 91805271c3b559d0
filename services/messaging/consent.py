"""The basis on which a message may cross between region and municipality: the patient's consent
(samtycke) or a documented legal basis without it (OSL 25 and 26 kap.). Every native event
carries one (``consentBasis`` from TakeCare, ``samtyckesgrund`` from Treserva), every FHIR
message carries it as a ``Consent`` resource that ``MessageHeader.focus`` points to, and the
router reads it back before it routes anything. Pure: no I/O, no clock.

The closed code list of kinds (``CONSENT_BASIS_SYSTEM``):

- ``samtycke``      the patient has consented (or a representative on the patient's behalf);
- ``menprovning``   a documented secrecy assessment (menprövning) where consent cannot be given;
- ``nodsituation``  an emergency (nödsituation) where neither can wait.

Recipients are unit kinds (``hospital``, ``primary-care``, ``municipality``), each with an
optional HSA-id that narrows it to one unit; the scope is a list of message families.

Which unit a recipient covers (:meth:`ConsentBasis.covers_unit`, checked by the router once it
knows the unit it addresses): the patient's consent covers the units it names by HSA-id, or
every unit of a kind it names without one; a legal basis without consent (menprövning,
nödsituation) is about the kind of receiver the law lets the data reach, so it covers any unit
of each kind it names, an HSA-id beside it notwithstanding.

The rules the intake applies (:func:`basis_violations`), each naming a field, never a value:

- ``consent-scope``       the basis does not cover the message's family;
- ``consent-recipients``  the basis does not cover every receiver of the family;
- ``consent-recorded``    the basis (or its withdrawal) is recorded in the future;
- ``consent-withdrawal-family``  a withdrawn basis (``withdrawnAt``) outside the family
  ``consent-withdrawal``, or that family without one;
- ``consent-withdrawn``   the patient withdrew consent for this stay: every later document
  of the stay is refused (:mod:`services.messaging.withdrawals`, the adapter's state).

A withdrawal is a message of its own (family ``consent-withdrawal``): its Consent has status
``inactive`` and ``provision.period.end`` the moment of withdrawal, and it is routed to the
receivers of the stay so they are told; any other message whose Consent is not active is
held by the router.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.messaging.envelope import System
from services.messaging.families import family_of
from services.messaging.fhir_parts import (
    TranslationError,
    arr,
    instant,
    known,
    maybe_instant,
    one,
    resolve,
    text,
)
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.vocabulary import (
    CONSENT_BASIS_SYSTEM,
    MESSAGE_FAMILY_SYSTEM,
    UNIT_KIND_SYSTEM,
)

KINDS = {
    "samtycke": "Samtycke från patienten",
    "menprovning": "Menprövning: uppgiften lämnas utan samtycke efter sekretessprövning",
    "nodsituation": "Nödsituation",
}
# the kind of unit each system is: what a recipient must name for the system to be covered
UNIT_KINDS = {
    System.TAKECARE: "hospital",
    System.PRIMARY_CARE: "primary-care",
    System.TRESERVA: "municipality",
}
CONSENT_SCOPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }
    ]
}
CONSENT_CATEGORY = {
    "coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]
}
RECIPIENT_ROLE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}
FAMILY_CLASS_SYSTEM = MESSAGE_FAMILY_SYSTEM
WITHDRAWAL_FAMILY = "consent-withdrawal"  # the family by which a withdrawal is sent on


@dataclass(frozen=True, slots=True)
class Recipient:
    unit_kind: str  # a UNIT_KINDS value
    hsa_id: str | None = None  # narrows the kind to one unit


@dataclass(frozen=True, slots=True)
class ConsentBasis:
    """The neutral form of a native consent block."""

    kind: str  # a KINDS key
    recorded_by_name: str
    recorded_by_hsa_id: str
    recorded_at: datetime
    scope: tuple[str, ...]  # family names
    recipients: tuple[Recipient, ...]
    withdrawn_at: datetime | None = None  # the patient withdrew consent for the stay

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def covers_unit(self, destination: System, unit_hsa: str) -> bool:
        """Whether the basis covers the unit ``unit_hsa`` of ``destination``'s kind (see
        the module docstring)."""
        named = [r for r in self.recipients if r.unit_kind == UNIT_KINDS.get(destination)]
        if self.kind != "samtycke" or any(r.hsa_id is None for r in named):
            return bool(named)
        return any(r.hsa_id == unit_hsa for r in named)

    def covers(self, family: str, destinations: tuple[System, ...]) -> bool:
        """Whether the basis covers ``family`` to ``destinations``; the withdrawal of a
        basis is always within its scope (the receivers must be told)."""
        in_scope = family in self.scope or family == WITHDRAWAL_FAMILY
        return in_scope and not _uncovered(self, destinations)


@dataclass(frozen=True, slots=True)
class BasisViolation:
    field: str  # the native field, relative to the consent block
    rule: str
    message: str


def _uncovered(basis: ConsentBasis, destinations: tuple[System, ...]) -> list[System]:
    kinds = {r.unit_kind for r in basis.recipients}
    return [d for d in destinations if UNIT_KINDS[d] not in kinds]


def basis_violations(
    basis: ConsentBasis,
    *,
    family: str,
    destinations: tuple[System, ...],
    now: datetime,
) -> list[BasisViolation]:
    """What keeps ``basis`` from covering a message of ``family`` to ``destinations``."""
    found = []
    if basis.withdrawn != (family == WITHDRAWAL_FAMILY):
        found.append(
            BasisViolation(
                "withdrawnAt",
                "consent-withdrawal-family",
                "a withdrawal is sent as a consent withdrawal, and only there",
            )
        )
    if family not in basis.scope and family != WITHDRAWAL_FAMILY:
        found.append(
            BasisViolation(
                "scope", "consent-scope", "the consent or legal basis does not cover this family"
            )
        )
    if _uncovered(basis, destinations):
        found.append(
            BasisViolation(
                "recipients",
                "consent-recipients",
                "the consent or legal basis does not cover every receiver of this family",
            )
        )
    if basis.recorded_at > now:
        found.append(
            BasisViolation(
                "recordedAt",
                "consent-recorded",
                "the consent or legal basis is recorded in the future",
            )
        )
    if basis.withdrawn_at is not None and basis.withdrawn_at > now:
        found.append(
            BasisViolation(
                "withdrawnAt", "consent-recorded", "the withdrawal is recorded in the future"
            )
        )
    return found


# --- the FHIR Consent resource -----------------------------------------------------------------


def consent_resource(
    basis: ConsentBasis, *, patient: str, organization: str | None
) -> dict[str, Any]:
    """The ``Consent`` of ``basis``; ``patient`` and ``organization`` are the fullUrls of the
    message's Patient and sending Organization."""
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "inactive" if basis.withdrawn else "active",
        "scope": CONSENT_SCOPE,
        "category": [
            CONSENT_CATEGORY,
            {"coding": [_kind(basis.kind)]},
        ],
        "patient": {"reference": patient},
        "dateTime": basis.recorded_at.isoformat(),
        "performer": [
            {
                "identifier": {"system": HSA_ID_SYSTEM, "value": basis.recorded_by_hsa_id},
                "display": basis.recorded_by_name,
            }
        ],
        "policyRule": {"coding": [_kind(basis.kind)]},
        "provision": {
            "type": "permit",
            "period": {"start": basis.recorded_at.isoformat()}
            | ({} if basis.withdrawn_at is None else {"end": basis.withdrawn_at.isoformat()}),
            "actor": [_actor(r) for r in basis.recipients],
            "class": [{"system": FAMILY_CLASS_SYSTEM, "code": f} for f in basis.scope],
        },
    }
    if organization is not None:
        resource["organization"] = [{"reference": organization}]
    return resource


def consent_of(
    basis: ConsentBasis, ref: Callable[[str], str], *, organization: str = "organization"
) -> dict[str, Any]:
    """The ``Consent`` of a message whose Patient has the role ``patient`` and whose sending
    unit the role ``organization``; the translators put it under the role ``consent`` and
    name it in ``MessageHeader.focus``."""
    return consent_resource(basis, patient=ref("patient"), organization=ref(organization))


def _kind(kind: str) -> dict[str, str]:
    return {"system": CONSENT_BASIS_SYSTEM, "code": kind, "display": KINDS[kind]}


def _actor(recipient: Recipient) -> dict[str, Any]:
    kind = {"system": UNIT_KIND_SYSTEM, "code": recipient.unit_kind}
    reference: dict[str, Any] = {"type": "Organization", "display": recipient.unit_kind}
    if recipient.hsa_id is not None:
        reference["identifier"] = {"system": HSA_ID_SYSTEM, "value": recipient.hsa_id}
    return {
        "role": {**RECIPIENT_ROLE, "coding": [*RECIPIENT_ROLE["coding"], kind]},
        "reference": reference,
    }


# --- reading -----------------------------------------------------------------------------------


def read_consent(doc: dict[str, Any]) -> ConsentBasis:
    """The basis a FHIR message carries: the Consent its MessageHeader.focus points to.
    Raise :class:`TranslationError` when there is none or it is incomplete."""
    header = one(doc, "MessageHeader")
    found = [resolve(doc, header, f"focus.{i}") for i in range(len(arr(header, "focus")))]
    consent = next((r for r in found if r.get("resourceType") == "Consent"), None)
    if consent is None:
        raise TranslationError("MessageHeader.focus names no Consent")
    status = known(_STATUSES, text(consent, "status"), "Consent.status")
    recipients = tuple(
        Recipient(
            known(_UNIT_KINDS, _coded(arr(actor, "role.coding"), UNIT_KIND_SYSTEM), "actor.role"),
            _identifier(actor.get("reference")),
        )
        for actor in arr(consent, "provision.actor")
    )
    kind = _coded(arr(consent, "policyRule.coding"), CONSENT_BASIS_SYSTEM)
    return ConsentBasis(
        kind=known(_KINDS, kind, "Consent.policyRule"),
        recorded_by_name=text(consent, "performer.0.display"),
        recorded_by_hsa_id=text(consent, "performer.0.identifier.value"),
        recorded_at=instant(consent, "dateTime"),
        scope=tuple(
            str(c.get("code"))
            for c in arr(consent, "provision.class")
            if c.get("system") == FAMILY_CLASS_SYSTEM
        ),
        recipients=recipients,
        withdrawn_at=_withdrawn_at(consent, withdrawn=status),
    )


def _withdrawn_at(consent: dict[str, Any], *, withdrawn: bool) -> datetime | None:
    """When an inactive Consent was withdrawn; an inactive one without it is unreadable
    (fail closed: never taken for an active one)."""
    if not withdrawn:
        return None
    at = maybe_instant(consent, "provision.period.end")
    if at is None:
        raise TranslationError("an inactive Consent lacks provision.period.end")
    return at


_STATUSES = {"active": False, "inactive": True}  # → withdrawn
_UNIT_KINDS = {kind: kind for kind in UNIT_KINDS.values()}
_KINDS = {kind: kind for kind in KINDS}


def _coded(codings: list[Any], system: str) -> str | None:
    found = next((c for c in codings if isinstance(c, dict) and c.get("system") == system), None)
    return None if found is None or not isinstance(found.get("code"), str) else found["code"]


def _identifier(reference: Any) -> str | None:
    if not isinstance(reference, dict) or not isinstance(reference.get("identifier"), dict):
        return None
    value = reference["identifier"].get("value")
    return value if isinstance(value, str) else None


def basis_holds(event_code: str, source: str, doc: dict[str, Any]) -> bool:
    """Whether ``doc`` carries an active basis that covers its family and every receiver of
    it from ``source``; False when it carries none or it cannot be read."""
    family = family_of(event_code)
    if family is None:
        return False
    try:
        basis = read_consent(doc)
        sender = System(source)
    except (TranslationError, ValueError):
        return False
    # a withdrawal travels only as a withdrawal, which is routed so the receivers are told
    expected = family.name == WITHDRAWAL_FAMILY
    return basis.withdrawn == expected and basis.covers(family.name, family.destinations(sender))
