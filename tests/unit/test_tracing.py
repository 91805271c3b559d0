"""W3C traceparent: parse, format, next hop; malformed values start a new trace."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.messaging import tracing
from services.messaging.tracing import TraceContext

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SHAPE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def test_a_valid_traceparent_is_read_and_formatted_back():
    context = tracing.parse(VALID)
    assert context == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1)
    assert context.traceparent == VALID


def test_the_next_hop_keeps_the_trace_and_flags_with_a_new_span():
    parent = tracing.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    assert parent is not None
    child = parent.child()
    assert (child.trace_id, child.flags) == (parent.trace_id, 0)
    assert child.span_id != parent.span_id and SHAPE.fullmatch(child.traceparent)


def test_continue_or_start_continues_a_valid_value():
    hop = tracing.continue_or_start(VALID)
    assert hop.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert hop.span_id != "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 fields
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # trace too short
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        "19010101-1234",  # a personnummer-looking value is not a trace either
    ],
)
def test_malformed_values_are_ignored_and_a_new_trace_starts(value):
    assert tracing.parse(value) is None
    assert tracing.trace_id_of(value) is None
    hop = tracing.continue_or_start(value)
    assert SHAPE.fullmatch(hop.traceparent)
    assert hop.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_later_version_may_carry_more_fields():
    context = tracing.parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
    assert context is not None and context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert context.traceparent.startswith("00-")  # we write the version we know


def test_record_headers_give_the_next_hop():
    assert tracing.from_headers({"traceparent": VALID}).trace_id == VALID[3:35]
    assert SHAPE.fullmatch(tracing.from_headers({}).traceparent)


def test_new_traces_are_random():
    assert len({tracing.new_trace().trace_id for _ in range(50)}) == 50


@given(st.text(max_size=80))
def test_parse_never_raises(value):
    context = tracing.parse(value)
    assert context is None or SHAPE.fullmatch(context.traceparent)


def test_log_fields_name_the_trace_and_span():
    context = tracing.new_trace()
    assert context.log_fields() == {"trace_id": context.trace_id, "span_id": context.span_id}
