"""The unit directory: the shipped file validates, the sample units resolve, telefontid."""

import json
from datetime import UTC, datetime

import pytest

from sandbox.simulators.samples.people import HOSPITAL_UNITS, MUNICIPAL_UNITS, PRIMARY_CARE_UNITS
from services.router.alerting.unit_directory import (
    GOTLAND_PATH,
    UnitDirectory,
    UnitDirectoryError,
    UnitKind,
)

pytestmark = pytest.mark.alerts


@pytest.fixture(scope="module")
def directory():
    return UnitDirectory.load(GOTLAND_PATH)


@pytest.mark.parametrize(
    ("units", "kind"),
    [
        (HOSPITAL_UNITS, UnitKind.HOSPITAL_WARD),
        (MUNICIPAL_UNITS, UnitKind.HOME_CARE),
        (PRIMARY_CARE_UNITS, UnitKind.PRIMARY_CARE),
    ],
)
def test_every_sample_unit_resolves_with_its_name(directory, units, kind):
    for hsa_id, name in units:
        unit = directory.unit(hsa_id)
        assert unit is not None, hsa_id
        assert (unit.name, unit.kind) == (name, kind)
        assert unit.phone.startswith("0498-")
        assert unit.email.endswith("@example.se")


def test_each_destination_system_has_a_default_receiving_unit(directory):
    assert directory.receiving_unit("treserva").name == "Hemsjukvården Gotland, mottagning"
    assert directory.receiving_unit("primary-care").kind is UnitKind.PRIMARY_CARE
    assert directory.receiving_unit("takecare").kind is UnitKind.HOSPITAL_WARD
    # the unit a message names wins over the default; an unknown one falls back to it
    named = directory.receiving_unit("treserva", "SE2120000803-HTJS")
    assert named.name == "Hemtjänsten Södra Gotland"
    assert (
        directory.receiving_unit("treserva", "SE0000000000-NONE").hsa_id
        == (directory.destinations["treserva"])
    )
    assert directory.receiving_unit("sub-0123abcd") is None


def test_telefontid_in_local_time(directory):
    norr = directory.unit("SE2120000803-HSJV")  # vardagar 07–21
    assert norr.hours_text() == "vardagar 07–21"
    monday_0630_local = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)  # 06.30 CET
    monday_0700_local = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert not norr.is_open(monday_0630_local, directory.tz)
    assert norr.is_open(monday_0700_local, directory.tz)
    assert not norr.is_open(saturday, directory.tz)
    assert norr.next_opening(saturday, directory.tz) == monday_0700_local
    assert norr.next_opening(monday_0700_local, directory.tz) == monday_0700_local
    ward = directory.unit("SE2321000222-MED3")
    assert ward.always_open and ward.is_open(saturday, directory.tz)
    assert ward.hours_text() == "dygnet runt"
    # summer time: 07.00 local is 05.00 UTC
    assert norr.is_open(datetime(2026, 6, 1, 5, 0, tzinfo=UTC), directory.tz)


def _data():
    return json.loads(GOTLAND_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["units"][0].update(phone="12345"), "phone"),
        (lambda d: d["units"][0].update(hsaId="MED3"), "hsaId"),
        (lambda d: d["units"][0].update(kind="pharmacy"), "kind"),
        (lambda d: d["units"][0].update(hours=[]), "hours"),
        (
            lambda d: d["units"][0].update(
                hours=[{"days": "vardagar", "from": "21:00", "to": "07:00"}]
            ),
            "ends after",
        ),
        (lambda d: d["units"].append(dict(d["units"][0])), "listed twice"),
        (lambda d: d["destinations"].update(treserva="SE2120000803-GONE"), "not in the directory"),
        (lambda d: d["units"][0].update(fax="0498-00 00 00"), "fax"),
    ],
)
def test_a_directory_that_does_not_validate_is_refused(change, complaint):
    data = _data()
    change(data)
    with pytest.raises(UnitDirectoryError, match=complaint):
        UnitDirectory.from_json(data)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(UnitDirectoryError, match="cannot read"):
        UnitDirectory.load(tmp_path / "nowhere.json")
