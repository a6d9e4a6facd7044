"""The ECG dashboard page, headless with Streamlit's AppTest: a real record, the threshold, a bad record."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "pages" / "ecg.py"


@pytest.fixture
def records(mitdb: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "records"
    folder.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb / f"119.{ext}", folder / f"119.{ext}")
    # a broken record beside it: header promises 650000 samples, the file is cut short
    (folder / "bad.hea").write_text((mitdb / "119.hea").read_text().replace("119", "bad"))
    (folder / "bad.dat").write_bytes((mitdb / "119.dat").read_bytes()[:5000])
    return folder


def _app(monkeypatch, model: Path, records: Path) -> AppTest:
    monkeypatch.setenv("GENFORGE_ECG_MODEL", str(model))
    monkeypatch.setenv("GENFORGE_ECG_RECORDS", str(records))
    return AppTest.from_file(str(PAGE), default_timeout=120)


def test_page_scores_a_record_and_reacts_to_the_threshold(monkeypatch, small_model, records) -> None:
    _, model = small_model
    at = _app(monkeypatch, model, records)
    at.run()
    assert not at.exception, at.exception
    at.radio(key="peaks").set_value("reference").run()
    at.selectbox(key="record").set_value("119").run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["beats"] == "1,987"  # every annotated beat of record 119
    flagged_before = int(metrics["flagged"].replace(",", ""))
    assert flagged_before > 300  # record 119 has 444 premature ventricular beats
    slider = at.slider(key="threshold")
    slider.set_value(slider.max).run()
    assert int({m.label: m.value for m in at.metric}["flagged"].replace(",", "")) < flagged_before
    assert len(at.get("plotly_chart")) >= 3  # signal, scores, most anomalous beats


def test_bad_record_shows_an_error_and_the_page_keeps_working(monkeypatch, small_model, records) -> None:
    _, model = small_model
    at = _app(monkeypatch, model, records)
    at.run()
    at.selectbox(key="record").set_value("bad").run()
    assert not at.exception
    assert any("bad.dat: truncated" in e.value for e in at.error)
    at.selectbox(key="record").set_value("119").run()  # still usable afterwards
    assert not at.exception and not at.error


def test_missing_model_explains_what_to_do(monkeypatch, records, tmp_path: Path) -> None:
    at = _app(monkeypatch, tmp_path / "no-model", records)
    at.run()
    assert not at.exception
    assert any("genforge ecg train" in i.value for i in at.info)
