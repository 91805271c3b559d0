"""One FHIR validator server for a whole `make test` (tests/support/validator_session.py), and
batch mode asking a running server (sandbox/fhir_validator_process.py): the pure parts."""

from sandbox.fhir_validator_process import rows_from_outcome
from services.messaging.fhir_validator import outcome_from_rows
from tests.support.validator_session import commands


def test_commands_are_split_on_and_then() -> None:
    argv = ["py", "-m", "pytest", "-k", "a and b", "--and-then", "py", "-m", "pytest", "x"]
    assert commands(argv) == [["py", "-m", "pytest", "-k", "a and b"], ["py", "-m", "pytest", "x"]]
    assert commands(["--and-then", "a", "--and-then"]) == [["a"]]
    assert commands([]) == []


def test_a_servers_outcome_reads_as_the_batch_rows_it_would_have_printed() -> None:
    rows = (
        {
            "severity": "error",
            "code": "structure",
            "message": "Unknown element 'colour'",
            "expression": "Bundle.entry[0].resource.colour",
            "location": "Bundle.entry[0].resource.colour",
        },
        {"severity": "warning", "code": "processing", "message": "Unknown code system"},
    )
    assert rows_from_outcome(outcome_from_rows(rows)) == rows


def test_no_issues_is_no_row() -> None:
    assert rows_from_outcome(outcome_from_rows(())) == ()
