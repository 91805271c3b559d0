"""Messages the router stores but must not route. Secrecy between region and municipality
(OSL 25 and 26 kap.) lets health data pass only with the patient's consent or a documented
legal basis (``Family.needs_consent``, true for every family). A message is held when it
carries no active basis (its ``Consent``, :mod:`services.messaging.consent`) that covers its
family and every receiver of it, when the basis cannot be read, when the patient withdrew
consent, and, for a SIP, when the SIP's own consent says not given. Such a message gets no
delivery at all (no journal, no webhook, no topic beyond the inbound one it came on); it is
kept with ``message.unrouted_reason`` and a log line naming only ids and the reason.

The adapters refuse such a message at their intake already; this is the second lock, for a
message that reaches the inbound topic some other way.

Two holds need more than the message itself, and the router applies them when it knows more
(:func:`services.router.routing.deliveries.accept_messages`), with a ``consent_hold``
incident for IT operations:

- the unit the router addresses (:mod:`.addressing`) is not among the basis's recipients
  (:func:`unit_hold`): the whole message is held, as for a basis that misses a receiver;
- the patient withdrew consent for the message's stay (a ``consent-withdrawal`` message with
  the same case id was accepted before, or earlier in the batch): every later message of the
  stay is held, whichever side sends it. The TakeCare adapter refuses such a document at its
  intake already (``consent-withdrawn``); Treserva's documents (an admission answer, a
  ready-to-receive, a read receipt naming its case) are held here.

Pure: reads the parsed Bundle, no I/O.
"""

from __future__ import annotations

from typing import Any

from services.messaging.consent import basis_holds, read_consent
from services.messaging.envelope import System
from services.messaging.families import family_of
from services.messaging.fhir_parts import TranslationError
from services.messaging.sip import consent_given

NO_CONSENT = "not routed: the patient has not consented to sharing (samtycke saknas)"
NO_BASIS = (
    "not routed: no consent or legal basis covers this family and its receivers "
    "(samtycke eller rättslig grund saknas)"
)


def routing_hold(event_code: str, bundle: dict[str, Any] | None, source: str) -> str | None:
    """Why a message from ``source`` must not be routed, or None to route it. A message
    that cannot be read counts as without a basis; so does an unknown event."""
    family = family_of(event_code)
    if family is None or not family.needs_consent:
        return None
    if bundle is None:
        return NO_BASIS
    if family.name == "sip-update" and not consent_given(bundle):
        return NO_CONSENT
    if not basis_holds(event_code, source, bundle):
        return NO_BASIS
    return None


UNIT_NOT_COVERED = (
    "not routed: the consent does not cover the unit the message would be addressed to "
    "(samtycket omfattar inte den mottagande enheten)"
)
STAY_WITHDRAWN = (
    "not routed: the patient withdrew consent for this stay (samtycket återkallat för "
    "vårdtillfället)"
)


def unit_hold(
    event_code: str, bundle: dict[str, Any] | None, destination: str, unit_hsa: str | None
) -> str | None:
    """Why a message must not go to ``unit_hsa``, the unit the router addressed for
    ``destination``, or None: its basis covers that unit
    (:meth:`services.messaging.consent.ConsentBasis.covers_unit`). A destination that names no
    unit is :func:`routing_hold`'s alone; a basis that cannot be read holds it. A family that
    needs no basis (a cancellation, which goes only where its message went) is never held."""
    family = family_of(event_code)
    if unit_hsa is None or (family is not None and not family.needs_consent):
        return None
    try:
        system = System(destination)
        basis = read_consent(bundle) if bundle is not None else None
    except (TranslationError, ValueError):
        return UNIT_NOT_COVERED
    if basis is None or not basis.covers_unit(system, unit_hsa):
        return UNIT_NOT_COVERED
    return None
