"""Messages the router stores but must not route: a family shared only with the patient's
consent (SIP, ``Family.needs_consent``: secrecy between region and municipality, OSL 25 and
26 kap.) whose message says consent is not given, or does not say. Such a message gets no
delivery at all (no journal, no webhook, no topic beyond the inbound one it came on); it is
kept with ``message.unrouted_reason`` and a log line naming only ids and the reason.

Pure: reads the parsed Bundle, no I/O.
"""

from __future__ import annotations

from typing import Any

from services.messaging.families import family_of
from services.messaging.sip import consent_given

NO_CONSENT = "not routed: the patient has not consented to sharing (samtycke saknas)"


def routing_hold(event_code: str, bundle: dict[str, Any] | None) -> str | None:
    """Why a message must not be routed, or None to route it. A message of a consent family
    that cannot be read counts as without consent."""
    family = family_of(event_code)
    if family is None or not family.needs_consent:
        return None
    if bundle is not None and consent_given(bundle):
        return None
    return NO_CONSENT
