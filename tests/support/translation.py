"""TakeCare's admission notice translated to the FHIR message the router consumes."""

import json

from sandbox.contracts_cli import FIXTURE_NOW, FIXTURE_REGIONAL_RESERVE_OID
from services.adapter_takecare.families.admission_notice import INBOUND, to_bundle
from services.messaging.envelope import to_json


def _translate(doc):
    return json.loads(
        to_json(
            to_bundle(
                INBOUND.parse(
                    doc, now=FIXTURE_NOW, regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID
                ),
                now=FIXTURE_NOW,
                regional_reserve_oid=FIXTURE_REGIONAL_RESERVE_OID,
            )
        )
    )
