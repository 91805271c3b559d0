"""Addressing by unit over real sockets (issue 20): a router whose unit directory is the
fictive three-municipality region (contracts/units/halland.json) sends each admission notice
to the home-care unit of the patient's municipality and to the listed vårdcentral, and a
patient of Halmstad never reaches Varberg's or Falkenberg's unit; a municipality the
directory does not know is dead-lettered with its reason, never sent to another's."""

import random
from pathlib import Path

import pytest

from sandbox.scenario import Scenario
from tests.support.stacks import e2e_settings, running

pytestmark = [pytest.mark.e2e]

HALLAND = Path(__file__).resolve().parents[2] / "contracts" / "units" / "halland.json"
HALMSTAD_HOME_CARE = "SE2120000000-HMSHSV"
VC_ANDERSBERG = "SE2321000115-VCANDE"


@pytest.fixture
def scenario(tmp_path, stack_db):
    settings = e2e_settings(tmp_path, stack_db, router_env={"ALERT_UNIT_DIRECTORY": str(HALLAND)})
    with running(settings) as stack:
        s = Scenario(stack, random.Random(20))
        try:
            yield s
        finally:
            s.close()


def patient(scenario, municipality, listed):
    from sandbox.simulators.samples.people import takecare_patient

    found = takecare_patient(scenario.rng)
    return {**found, "municipalityOfResidence": municipality, "listedPrimaryCareUnit": listed}


def test_a_halmstad_patient_reaches_only_halmstads_units(scenario):
    message_id, _ = scenario.post_admission(patient=patient(scenario, "1380", VC_ANDERSBERG))
    detail = scenario.wait_for_state(message_id, "confirmed", timeout_s=20)
    units = {d["destination"]: d["receiver_unit_hsa"] for d in detail["deliveries"]}
    assert units == {"treserva": HALMSTAD_HOME_CARE, "primary-care": VC_ANDERSBERG}
    stored = scenario.journal("treserva", f"inskrivningsmeddelanden/{message_id}")
    assert stored["mottagandeEnhet"] == stored["receivingUnit"] == HALMSTAD_HOME_CARE
    for other in ("SE2120000001-FBGHSV", "SE2120000002-VBGHSV"):
        assert scenario.journal("treserva", f"inskrivningsmeddelanden?unit={other}")["count"] == 0

    unknown, _ = scenario.post_admission(patient=patient(scenario, "0180", VC_ANDERSBERG))
    found = scenario.wait_for_state(unknown, "dead_letter", timeout_s=20, destination="treserva")
    assert "unaddressable" in scenario.delivery(found, "treserva")["last_error"]
    assert scenario.journal("treserva", f"inskrivningsmeddelanden/{unknown}") is None
