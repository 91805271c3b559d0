"""The receiving unit reaches the journal (issue 20): the adapter that delivers stamps
``MessageHeader.destination.receiver`` (an Organization by HSA-id) from the signed delivery
command's receiver-unit header, and Treserva's native document names it in mottagandeEnhet.
The router forwards the Bundle as the source built and signed it."""

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from services.adapter_takecare.primary_care import destination
from services.adapter_treserva.families.read_receipt import TreservaReadReceipt
from services.adapter_treserva.service import DESTINATION
from services.messaging import topics
from services.messaging.contracts import violations
from services.messaging.delivery import DeliveryDeps, handle_delivery_batch
from services.messaging.envelope import RECEIVER_UNIT_HEADER
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.journal_client import FakeJournalClient
from services.messaging.kafka import IncomingRecord
from tests.support.treserva import NOW, fhir

HOME_CARE_VARBERG = "SE2120000002-VBGHSV"
VC_FALKENBERG = "SE2321000115-VCFBG"
FIXTURES = Path(__file__).resolve().parents[2] / "contracts" / "fixtures"
READ_RECEIPTS = FIXTURES / "takecare" / "read-receipt"  # the hospital's, as FHIR
TRESERVA_READ_RECEIPTS = FIXTURES / "treserva" / "read-receipt"


def command(bundle, system, unit=None):
    headers = {
        "message-id": bundle["entry"][0]["resource"]["id"],
        "attempt": "1",
        "delivery-id": "3",
    }
    if unit is not None:
        headers[RECEIVER_UNIT_HEADER] = unit
    return IncomingRecord(
        topics.outbound(system), 0, 1, "p" * 32, json.dumps(bundle).encode(), headers
    )


def receivers(bundle):
    header = bundle["entry"][0]["resource"]
    return {d["endpoint"]: d.get("receiver") for d in header["destination"]}


async def test_primary_care_gets_the_fhir_message_addressed_to_the_listed_vardcentral(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=destination("tc")
    )
    bundle = fhir("personnummer-full.input.json")
    await handle_delivery_batch([command(bundle, "primary-care", VC_FALKENBERG)], deps=deps)
    ((_, _, document),) = client.calls
    found = receivers(document)
    assert found["urn:carebridge:system:primary-care"] == {
        "type": "Organization",
        "identifier": {"system": HSA_ID_SYSTEM, "value": VC_FALKENBERG},
    }
    assert found["urn:carebridge:system:treserva"] is None  # only its own destination
    Bundle.model_validate(document)  # still a valid FHIR R4 message


async def test_treserva_gets_the_municipalitys_unit_in_its_native_document(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=DESTINATION
    )
    bundle = fhir("personnummer-full.input.json")
    await handle_delivery_batch([command(bundle, "treserva", HOME_CARE_VARBERG)], deps=deps)
    ((path, _, document),) = client.calls
    assert path == "/api/v1/inskrivningsmeddelanden"
    assert document["mottagandeEnhet"] == HOME_CARE_VARBERG
    assert violations("treserva/admission-notice.schema.json", document) == []


async def test_a_command_without_a_unit_is_delivered_as_before(sessions):
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=DESTINATION
    )
    await handle_delivery_batch(
        [command(fhir("personnummer-full.input.json"), "treserva")], deps=deps
    )
    ((_, _, document),) = client.calls
    assert "mottagandeEnhet" not in document


async def test_the_hospitals_read_receipt_reaches_treserva_with_the_unit(sessions):
    # found by tests/e2e/test_whole_stay.py: the read-receipt contract had no mottagandeEnhet,
    # so every read receipt addressed to a home-care unit was refused (422) and dead-lettered
    client = FakeJournalClient()
    deps = DeliveryDeps(
        sessions=sessions, client=client, clock=lambda: NOW, destination=DESTINATION
    )
    bundle = json.loads(
        (READ_RECEIPTS / "sip-last-av-avdelningen.fhir.json").read_text(encoding="utf-8")
    )
    await handle_delivery_batch([command(bundle, "treserva", HOME_CARE_VARBERG)], deps=deps)
    ((path, _, document),) = client.calls
    assert path == "/api/v1/laskvittenser"
    assert document["mottagandeEnhet"] == HOME_CARE_VARBERG
    assert violations("treserva/read-receipt.schema.json", document) == []


def test_treserva_may_not_name_a_receiving_unit_on_its_own_read_receipt():
    sent = json.loads(
        (TRESERVA_READ_RECEIPTS / "inskrivningsmeddelande-last-sommartid.input.json").read_text(
            encoding="utf-8"
        )
    )
    with pytest.raises(ValidationError):
        TreservaReadReceipt.model_validate(sent | {"mottagandeEnhet": HOME_CARE_VARBERG})
