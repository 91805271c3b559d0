"""Webhook subscriptions through the running stack (real processes, real sockets, Tansu): a
subscription made through the router's API by one admin and activated by a second receives
admission notices posted to the TakeCare adapter, signed, exactly once, with the same retry
guarantees as a journal; while pending it receives nothing."""

import time

import pytest

from sandbox.scenario import wait_for
from sandbox.simulators.subscriber import PATH as SUBSCRIBER_PATH
from sandbox.simulators.subscriber import SANDBOX_SUBSCRIBER_SECRET
from services.messaging.sandbox_secrets import APPROVER_TOKEN, OPS_TOKEN
from services.messaging.signing import verify

pytestmark = [pytest.mark.e2e, pytest.mark.shared_stack]


def _received(scenario, message_id):
    return [r for r in scenario.subscriber_received() if r["messageId"] == message_id]


def test_a_subscriber_receives_an_admission_once_signed_and_it_is_confirmed(scenario):
    duplicates_before = scenario.subscriber_stats()["duplicates"]
    sub_id = scenario.subscribe(["admission-notice"], sources=["takecare"])
    message_id, _ = scenario.post_admission()
    detail = scenario.wait_for_state(message_id, "confirmed", timeout_s=15, destination=sub_id)
    assert {d["destination"] for d in detail["deliveries"]} == {
        "treserva",
        "primary-care",
        sub_id,
    }
    hook = scenario.delivery(detail, sub_id)
    assert hook["attempts"] == 1
    assert [t["to_state"] for t in hook["transitions"]] == ["pending", "dispatched", "confirmed"]
    (got,) = _received(scenario, message_id)
    assert got["event"] == "admission-notice" and got["subscription"] == sub_id
    assert got["contentType"] == "application/fhir+json" and got["resourceType"] == "Bundle"
    body = got["rawBody"].encode()
    assert verify(SANDBOX_SUBSCRIBER_SECRET, body, got["signature"], now=time.time())
    assert scenario.subscriber_stats()["duplicates"] == duplicates_before
    # the journals are served as before
    scenario.wait_for_state(message_id, "confirmed", timeout_s=15)


def test_a_failing_subscriber_is_retried_and_gets_the_notice_exactly_once(scenario):
    before = scenario.subscriber_stats()
    sub_id = scenario.subscribe(["admission-notice"])
    scenario.set_fault("subscriber", "error")
    message_id, _ = scenario.post_admission()

    def failed_twice():
        found = scenario.message(message_id)
        if found and any(d["destination"] == sub_id for d in found["deliveries"]):
            log = scenario.delivery(found, sub_id)["attempts_log"]
            return found if [a["outcome"] for a in log].count("transient-error") >= 2 else None
        return None

    wait_for("two failed attempts to the subscriber", failed_twice, timeout_s=15)
    assert _received(scenario, message_id) == []
    scenario.set_fault("subscriber", "none")
    detail = scenario.wait_for_state(message_id, "confirmed", timeout_s=20, destination=sub_id)
    outcomes = [a["outcome"] for a in scenario.delivery(detail, sub_id)["attempts_log"]]
    assert outcomes[0] == "transient-error" and outcomes[-1] == "ok"
    assert len(_received(scenario, message_id)) == 1
    stats = scenario.subscriber_stats()
    assert stats["errors"] - before["errors"] >= 2 and stats["stored"] - before["stored"] == 1


def test_a_subscription_switched_off_gets_no_new_deliveries(scenario):
    sub_id = scenario.subscribe(["admission-notice"])
    first, _ = scenario.post_admission()
    scenario.wait_for_state(first, "confirmed", timeout_s=15, destination=sub_id)
    scenario.set_subscription_status(sub_id, "off")
    second, _ = scenario.post_admission()
    detail = scenario.wait_for_state(second, "confirmed", timeout_s=15)
    assert {d["destination"] for d in detail["deliveries"]} == {"treserva", "primary-care"}
    ours = {first, second}
    assert [r["messageId"] for r in scenario.subscriber_received() if r["messageId"] in ours] == [
        first
    ]


def test_a_pending_subscription_gets_nothing_until_a_second_admin_activates_it(scenario):
    router = scenario.stack.router_url
    created = scenario.http.post(
        f"{router}/api/v1/subscriptions",
        json={
            "name": "awaiting its second admin",
            "criteria": {"events": ["admission-notice"]},
            "channel": {
                "type": "rest-hook",
                "endpoint": f"{scenario.stack.subscriber_sim_url}{SUBSCRIBER_PATH}",
            },
            "secret": SANDBOX_SUBSCRIBER_SECRET,
        },
        headers={"authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert created.status_code == 201 and created.json()["status"] == "pending"
    sub_id = created.json()["id"]
    scenario.subscriptions.append(sub_id)  # switched off when the test ends
    activate = f"{router}/api/v1/subscriptions/{sub_id}/activate"
    same_admin = scenario.http.post(activate, headers={"authorization": f"Bearer {OPS_TOKEN}"})
    assert same_admin.status_code == 403
    before, _ = scenario.post_admission()
    detail = scenario.wait_for_state(before, "confirmed", timeout_s=15)
    assert sub_id not in {d["destination"] for d in detail["deliveries"]}
    second = scenario.http.post(activate, headers={"authorization": f"Bearer {APPROVER_TOKEN}"})
    assert second.status_code == 200 and second.json()["activatedBy"] == "approver"
    after, _ = scenario.post_admission()
    scenario.wait_for_state(after, "confirmed", timeout_s=15, destination=sub_id)
    got = {r["messageId"] for r in scenario.subscriber_received()}
    assert after in got and before not in got
