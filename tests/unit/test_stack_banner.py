"""``make run``'s banner names every sandbox credential a newcomer needs, the simulated
journals' API tokens included (issue 18: they were documented nowhere)."""

from pathlib import Path

from sandbox.simulators.subscriber import SANDBOX_SUBSCRIBER_SECRET
from sandbox.simulators.takecare import TakeCareSimSettings
from sandbox.simulators.treserva import TreservaSimSettings
from sandbox.stack import Stack, StackSettings, banner
from services.adapter_takecare.settings import SANDBOX_INTAKE_TOKEN
from services.adapter_treserva.settings import SANDBOX_INTAKE_TOKEN as TRESERVA_INTAKE
from services.messaging.sandbox_secrets import APPROVER_TOKEN
from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from services.router.settings import SANDBOX_OPS_TOKEN


def test_the_banner_names_every_sandbox_credential(tmp_path: Path):
    text = banner(Stack(StackSettings(data_dir=tmp_path), echo=lambda _: None))
    for credential in (
        SANDBOX_INTAKE_TOKEN,
        TRESERVA_INTAKE,
        SANDBOX_OPS_TOKEN,
        APPROVER_TOKEN,
        *SANDBOX_PASSWORDS.values(),
        SANDBOX_SUBSCRIBER_SECRET,
        TreservaSimSettings().api_token,
        TakeCareSimSettings().api_token,
        TakeCareSimSettings().primary_care_token,
    ):
        assert credential in text, credential


def test_the_stack_adds_its_second_admin_to_the_api_clients_it_is_given():
    import json

    from sandbox.stack import APPROVER, with_approver
    from services.messaging.keys import hash_key

    given = json.dumps({"probe-viewer": {"role": "viewer", "key_hashes": ["a" * 64]}})
    clients = json.loads(with_approver(given))
    assert set(clients) == {"probe-viewer", APPROVER}
    assert clients[APPROVER] == {"role": "admin", "key_hashes": [hash_key(APPROVER_TOKEN)]}
    own = json.dumps({APPROVER: {"role": "admin", "key_hashes": ["b" * 64]}})
    assert json.loads(with_approver(own))[APPROVER]["key_hashes"] == ["b" * 64]
