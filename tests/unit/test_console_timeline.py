"""The message timeline: every transition and attempt, oldest first, with HTTP status and
latency; at one instant an attempt follows the transition that dispatched it."""

from datetime import UTC, datetime, timedelta

from services.router.ops.console.timeline import hops

T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def at(seconds):
    return (T + timedelta(seconds=seconds)).isoformat()


def move(frm, to, seconds, reason):
    return {"from_state": frm, "to_state": to, "at": at(seconds), "reason": reason}


def test_hops_interleave_transitions_and_attempts_in_time_order():
    detail = {
        "deliveries": [
            {
                "destination": "treserva",
                "transitions": [
                    move(None, "pending", 0, "routed"),
                    move("pending", "dispatched", 0, "a1"),
                    move("dispatched", "pending", 2, "retry"),
                    move("pending", "dispatched", 5, "a2"),
                    move("dispatched", "sent", 5.2, "ok"),
                ],
                "attempts_log": [
                    {"attempt_no": 1, "dispatched_at": at(0), "completed_at": at(1.5),
                     "outcome": "transient-error", "detail": "HTTP 503"},
                    {"attempt_no": 2, "dispatched_at": at(5), "completed_at": at(5.2),
                     "outcome": "ok", "detail": "HTTP 201 in 180 ms"},
                ],
            }
        ]
    }  # fmt: skip
    found = [(h.kind, h.what, h.http_status, h.latency_ms) for h in hops(detail)]
    assert found == [
        ("transition", "– → pending", None, None),
        ("transition", "pending → dispatched", None, None),
        ("attempt", "#1", 503, 1500),
        ("transition", "dispatched → pending", None, None),
        ("transition", "pending → dispatched", None, None),
        ("attempt", "#2", 201, 200),
        ("transition", "dispatched → sent", None, None),
    ]


def test_an_attempt_still_in_flight_has_no_latency():
    detail = {
        "deliveries": [
            {
                "destination": "primary-care",
                "transitions": [],
                "attempts_log": [
                    {"attempt_no": 1, "dispatched_at": at(0), "completed_at": None,
                     "outcome": None, "detail": None},
                ],
            }
        ]
    }  # fmt: skip
    (hop,) = hops(detail)
    assert (hop.outcome, hop.latency_ms, hop.http_status) == ("in flight", None, None)
