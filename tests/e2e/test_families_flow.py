"""Every message family, in both directions, travels through the running stack (real
processes, real sockets, Tansu) from one simulated journal to the other and is confirmed by
that journal's receipt. Versioned documents keep their newest version current."""

import random
from datetime import datetime

import pytest

from sandbox.simulators.samples.medication_list import sample_takecare_medication_list
from services.messaging.contracts import violations
from services.messaging.envelope import System
from services.messaging.families import FAMILIES

pytestmark = [pytest.mark.e2e, pytest.mark.shared_stack, pytest.mark.broker_independent]

PRIMARY_CARE_INBOX = "primary-care/$process-message"

# (source, family) → (destination, journal API path, destination contract)
ROUTES = {
    ("takecare", "admission-notice"): ("treserva", "inskrivningsmeddelanden", "admission-notice"),
    ("takecare", "discharge-readiness"): ("treserva", "utskrivningsklar", "discharge-readiness"),
    ("takecare", "discharge-notice"): ("treserva", "utskrivningsmeddelanden", "discharge-notice"),
    ("takecare", "medication-list"): ("treserva", "lakemedelslistor", "medication-list"),
    ("takecare", "sip-update"): ("treserva", "sip", "sip-update"),
    ("takecare", "consent-withdrawal"): (
        "treserva",
        "aterkallade-samtycken",
        "consent-withdrawal",
    ),
    ("takecare", "process-interrupted"): (
        "treserva",
        "avbrott-utskrivningsprocess",
        "process-interrupted",
    ),
    ("takecare", "transfer"): ("treserva", "forflyttningar", "transfer"),
    ("takecare", "patient-deceased"): ("treserva", "avlidna", "patient-deceased"),
    ("takecare", "administrative-message"): (
        "treserva",
        "administrativa-meddelanden",
        "administrative-message",
    ),
    ("treserva", "medication-list"): ("takecare", "medication-lists", "medication-list"),
    ("treserva", "sip-update"): ("takecare", "sip-updates", "sip-update"),
    ("treserva", "administrative-message"): (
        "takecare",
        "administrative-messages",
        "administrative-message",
    ),
}


def _travel(scenario, source):
    sent = {
        family: scenario.emit(source, family, count=2) for (src, family) in ROUTES if src == source
    }
    assert len(sent) >= 2
    for family, message_ids in sent.items():
        destination, path, contract = ROUTES[(source, family)]
        for message_id in message_ids:
            detail = scenario.wait_for_state(message_id, "confirmed", timeout_s=30)
            # from the catalogue: primary care gets the hospital's notices, not what is between
            # the hospital unit and the municipal unit only (the administrative message)
            (catalogued,) = [f for f in FAMILIES if f.name == family]
            expected = {d.value for d in catalogued.destinations(System(source))}
            assert destination in expected, family
            assert {d["destination"] for d in detail["deliveries"]} == expected, family
            record = scenario.journal(destination, f"{path}/{message_id}")
            assert record is not None, f"{destination} does not hold the {family} {message_id}"
            native = {
                k: v
                for k, v in record.items()
                if k not in {"kind", "recordId", "receivedAt", "current", "receivingUnit"}
            }
            assert violations(f"{destination}/{contract}.schema.json", native) == [], family
            if "primary-care" in expected:
                inbox = scenario.journal(
                    "primary-care", f"primary-care/$process-message/{message_id}"
                )
                assert inbox is not None and inbox["resourceType"] == "Bundle", family


def test_every_takecare_family_reaches_treserva_and_is_confirmed(scenario):
    _travel(scenario, "takecare")


def test_every_treserva_family_reaches_takecare_and_is_confirmed(scenario):
    _travel(scenario, "treserva")


def test_an_older_medication_list_after_a_newer_one_is_filed_never_applied(scenario):
    rng = random.Random(11)
    now = datetime.now().astimezone()
    newer = sample_takecare_medication_list(rng, now=now, list_id="LL-4711", version=2)
    older = sample_takecare_medication_list(rng, now=now, list_id="LL-4711", version=1)
    newer_id = scenario.post_event("takecare", "medication-lists", newer)
    scenario.wait_for_state(newer_id, "confirmed", timeout_s=30)
    older_id = scenario.post_event("takecare", "medication-lists", older)
    detail = scenario.wait_for_state(older_id, "confirmed", timeout_s=30)
    assert detail["superseded_by"] == newer_id
    reasons = [t["reason"] for t in scenario.delivery(detail, "treserva")["transitions"]]
    assert f"routed as superseded by {newer_id}" in reasons
    filed = scenario.journal("treserva", f"lakemedelslistor/{older_id}")
    assert filed["ersattAv"] == newer_id and filed["current"] is False
    current = scenario.journal("treserva", "lakemedelslistor/current/LL-4711")
    assert current["meddelandeId"] == newer_id and current["version"] == 2
