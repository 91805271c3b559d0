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

Pure: reads the parsed Bundle, no I/O.
"""

from __future__ import annotations

from typing import Any

from services.messaging.consent import basis_holds
from services.messaging.families import family_of
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
