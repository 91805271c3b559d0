"""A broker restart loses nothing. Tansu keeps nothing on disk: a restart wipes every topic,
offset and consumer group; the services notice the new broker epoch, restart themselves
(crash-only), recreate the topics and re-publish from their outboxes. Apache Kafka keeps its
log: the epoch is unchanged and nothing is re-published. Either way nothing accepted is lost
or applied twice."""

import time

import pytest

from tests.support.reliability import (
    assert_promise,
    post,
    wait_all_confirmed,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def test_a_broker_restart_loses_nothing_and_duplicates_nothing(scenario, supervised):
    before = post(scenario, 15)
    wait_all_confirmed(scenario, [m for m, _ in before[:5]], timeout_s=30)
    in_flight = post(scenario, 15)  # some of these are still on their way
    supervised.kill(supervised.broker)
    restarted = time.monotonic()
    supervised.restart(supervised.broker)
    after = post(scenario, 15)  # accepted while the services recover: the outbox holds them
    posted = before + in_flight + after
    assert_promise(
        scenario,
        posted,
        "broker restart (Tansu loses all its data; Apache Kafka keeps its log)",
        restarted,
        timeout_s=180,
    )
    if supervised.apache is not None:
        # A durable broker kept its log and its epoch: no service re-published its window
        # (Tansu's restart makes every service re-publish, which the same test proves safe).
        for name in ("router", "adapter_takecare", "adapter_treserva"):
            assert "re-publishing" not in supervised.child(name).log_path.read_text()
