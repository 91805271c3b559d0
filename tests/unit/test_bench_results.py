"""The end-to-end benchmark keeps Tansu's figures and Apache Kafka's in files of their own."""

import json
from pathlib import Path

import pytest

from bench import e2e


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    tansu, apache = tmp_path / "results.json", tmp_path / "results-apache.json"
    monkeypatch.setattr(e2e, "RESULTS", tansu)
    monkeypatch.setattr(e2e, "RESULTS_APACHE", apache)
    monkeypatch.setattr(e2e, "ROOT", tmp_path)
    monkeypatch.setattr(e2e, "git_commit", lambda: "0" * 40)
    monkeypatch.setitem(e2e.BROKER, "kind", "tansu")
    return tansu, apache


def test_an_apache_run_never_overwrites_tansus_figures(results: tuple[Path, Path]) -> None:
    tansu, apache = results
    e2e.write_results("drain", {"msgs_per_s": 30.0})
    e2e.BROKER["kind"] = "apache"
    e2e.write_results("drain", {"msgs_per_s": 12.0})
    assert json.loads(tansu.read_text())["drain"]["msgs_per_s"] == 30.0
    assert json.loads(apache.read_text())["drain"]["msgs_per_s"] == 12.0
