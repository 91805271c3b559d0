"""kill -9 of a service in the middle of its work; the supervisor starts it again."""

import time

import pytest

from tests.support.reliability import assert_promise, post

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def test_router_killed_in_the_middle_of_a_batch(scenario, supervised):
    posted = post(scenario, 20)  # the router is busy with these
    supervised.kill("router")
    killed = time.monotonic()
    posted += post(scenario, 20)  # accepted while the router is down: they wait in Kafka
    assert_promise(scenario, posted, "router killed (kill -9) mid-batch", killed, timeout_s=180)


def test_adapter_killed_between_the_post_and_the_recorded_result(scenario, supervised):
    scenario.set_treserva_fault("slow", slow_s=0.3)  # POSTs are in flight when the kill lands
    posted = post(scenario, 20)
    time.sleep(1.0)
    supervised.kill("adapter_treserva")
    killed = time.monotonic()
    scenario.set_treserva_fault("none")
    posted += post(scenario, 10)
    assert_promise(
        scenario, posted, "adapter_treserva killed (kill -9) during POSTs", killed, timeout_s=180
    )
