"""The ECG dashboard page, headless with Streamlit's AppTest: a real record, the threshold, bad records,
and uploads (good WFDB and CSV files, and every kind of bad upload giving one message)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "views" / "ecg.py"


@pytest.fixture
def records(mitdb: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "records"
    folder.mkdir()
    for name in ("119", "100"):  # 100 is one of the small model's training records
        for ext in ("hea", "dat", "atr"):
            shutil.copy(mitdb / f"{name}.{ext}", folder / f"{name}.{ext}")
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
    assert not any("patient-adapted" in c.value for c in at.caption)  # 119 was not in training
    at.selectbox(key="record").set_value("100").run()
    assert not at.exception and not at.error
    assert any("patient-adapted" in c.value for c in at.caption)  # the same-record term speaks


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


# ------------------------------------------------------------------------------------------ uploads
# Streamlit 1.67's AppTest drives st.file_uploader (``set_value`` with (name, bytes, mime) tuples), so the
# upload path is tested through the page itself, with the bytes of a real MIT-BIH record.
BIN, CSV = "application/octet-stream", "text/csv"


@pytest.fixture
def upload_page(monkeypatch, small_model, tmp_path: Path) -> AppTest:
    _, model = small_model
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the page's upload copies go here
    at = _app(monkeypatch, model, tmp_path / "no-records")
    at.run()
    at.radio(key="source").set_value("upload").run()
    assert not at.exception and not at.error
    return at


def _upload(at: AppTest, files: list[tuple[str, bytes, str]], fs: float | None = None) -> AppTest:
    if fs is not None:
        at.number_input(key="fs_upload").set_value(fs)
    return at.file_uploader(key="upload").set_value(files).run()


def _wfdb_files(mitdb: Path, name: str = "119", exts=("hea", "dat", "atr")) -> list[tuple[str, bytes, str]]:
    return [(f"{name}.{ext}", (mitdb / f"{name}.{ext}").read_bytes(), BIN) for ext in exts]


def _mlii_csv(mitdb: Path, minutes: float = 2.0) -> bytes:
    import pandas as pd
    import wfdb

    x = wfdb.rdrecord(str(mitdb / "119"), channel_names=["MLII"], sampto=int(minutes * 60 * 360)).p_signal
    return pd.DataFrame({"MLII": x[:, 0]}).to_csv(index=False).encode()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_upload_of_a_wfdb_record_is_scored(upload_page: AppTest, mitdb: Path) -> None:
    at = _upload(upload_page, _wfdb_files(mitdb))
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    metrics = _metrics(at)
    assert metrics["record"] == "119 (MLII)"
    assert 1900 < int(metrics["beats"].replace(",", "")) < 2100  # 1,987 annotated beats, detected here
    assert int(metrics["flagged"].replace(",", "")) > 300  # 444 premature ventricular beats
    assert len(at.dataframe) == 1  # per reference class: the .atr came with the upload


def test_upload_of_a_csv_is_scored_at_the_rate_given(upload_page: AppTest, mitdb: Path) -> None:
    at = _upload(upload_page, [("ecg.csv", _mlii_csv(mitdb), CSV)], fs=360)
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    metrics = _metrics(at)
    assert metrics["record"] == "ecg (MLII)"
    assert 120 < int(metrics["beats"].replace(",", "")) < 160  # 2 minutes of a ~70 bpm record


def _truncated(mitdb: Path) -> list[tuple[str, bytes, str]]:
    hea, dat, _ = _wfdb_files(mitdb)
    return [hea, ("119.dat", dat[1][:5000], BIN)]


def _wrong_rate(mitdb: Path) -> list[tuple[str, bytes, str]]:
    hea, dat, atr = _wfdb_files(mitdb)
    first, rest = hea[1].decode().split("\n", 1)
    return [("119.hea", (first.replace(" 360 ", " 60 ", 1) + "\n" + rest).encode(), BIN), dat, atr]


_JUNK = np.random.default_rng(3).integers(0, 256, 6000, dtype=np.uint8).tobytes()
BAD_UPLOADS = {
    "truncated dat": (_truncated, r"^119\.dat: truncated: header says 650000 samples, file holds only 1666$"),
    "dat without hea": (
        lambda m: _wfdb_files(m, exts=("dat", "atr")),
        r"^upload: 119\.dat has no header; upload 119\.hea with it",
    ),
    "nan csv": (
        lambda m: [("nan.csv", b"MLII\n" + b"nan\n" * 8000, CSV)],
        r"^nan\.csv: column 'MLII' has 8000 missing/NaN samples \(first at sample 0\)",
    ),
    "empty csv": (lambda m: [("empty.csv", b"", CSV)], r"^empty\.csv: file is empty"),
    "empty hea": (lambda m: [("empty.hea", b"", BIN)], r"^empty\.hea: header file is empty"),
    "binary csv": (lambda m: [("junk.csv", _JUNK, CSV)], r"^junk\.csv: not a text table \(binary content\)"),
    "binary hea+dat": (
        lambda m: [("junk.hea", _JUNK, BIN), ("junk.dat", _JUNK, BIN)],
        r"^junk\.hea: not a readable WFDB header",
    ),
    "two records": (
        lambda m: [*_wfdb_files(m, "100", ("hea", "dat")), *_wfdb_files(m, "119", ("hea", "dat"))],
        r"^upload: 2 records \(100, 119\); upload one record at a time$",
    ),
    "header rate wrong": (
        _wrong_rate,
        r"^119\.hea: median heart rate \d+ bpm \(reference beats\) at the header's 60 Hz; "
        r"is the sampling rate right\?",
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_gives_one_clear_message(upload_page: AppTest, mitdb: Path, case: str) -> None:
    make, message = BAD_UPLOADS[case]
    at = _upload(upload_page, make(mitdb))
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and re.search(message, errors[0]), errors
    assert "genforge-ecg-upload" not in errors[0]  # the file as uploaded, not its temporary copy
    assert not at.metric  # nothing scored


def test_csv_upload_at_a_wrong_rate_is_caught_and_the_page_recovers(upload_page: AppTest, mitdb: Path):
    csv = [("ecg.csv", _mlii_csv(mitdb), CSV)]
    at = _upload(upload_page, csv, fs=60)
    assert not at.exception
    assert [e.value for e in at.error] and re.search(
        r"^ecg\.csv: no QRS energy at the given fs=60 Hz", at.error[0].value
    )
    at = _upload(at, csv, fs=360)  # the right rate: scored, no message left over
    assert not at.exception and not at.error and _metrics(at)["record"] == "ecg (MLII)"


def test_uploads_are_pruned_to_the_most_recent(upload_page: AppTest, mitdb: Path, tmp_path: Path):
    store = tmp_path / "genforge-ecg-uploads"
    store.mkdir()
    for i in range(12):  # earlier uploads, oldest first
        old = store / f"old{i:02d}"
        old.mkdir()
        (old / "x.csv").write_text("MLII\n0\n")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    at = _upload(upload_page, [("ecg.csv", _mlii_csv(mitdb, minutes=1.0), CSV)], fs=360)
    assert not at.exception and not at.error, [e.value for e in at.error]
    kept = sorted(p.name for p in store.iterdir())
    assert len(kept) == 8  # the page's UPLOAD_KEEP
    assert "old11" in kept and "old04" not in kept  # the newest stay, the oldest go
    assert any(list(p.glob("ecg.csv")) for p in store.iterdir())  # this upload is among them


def test_page_opens_on_the_latest_demo_and_refuses_its_model_for_real_records(
    monkeypatch, mitdb: Path, tmp_path: Path
) -> None:
    """With no model named, the page opens on the newest demo run under the results folder (its model and
    SIMULATED records); that model is refused for a real recording, with the reason."""
    from genforge.ecg import train_demo_model

    results = tmp_path / "results"
    train_demo_model(results / "demo-old" / "ecg", minutes=3.0, max_steps=20)
    newest = results / "ecg-demo-new"
    train_demo_model(newest, minutes=3.0, max_steps=20)
    os.utime(results / "demo-old" / "ecg" / "model" / "config.json", (1_000_000, 1_000_000))
    monkeypatch.delenv("GENFORGE_ECG_MODEL", raising=False)
    monkeypatch.delenv("GENFORGE_ECG_RECORDS", raising=False)
    monkeypatch.setenv("GENFORGE_RESULTS", str(results))
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.text_input(key="model_dir").value == str(newest / "model")
    assert at.text_input(key="folder").value == str(newest / "records")
    assert {m.label: m.value for m in at.metric}["record"].startswith("SIMULATED_train")
    real = tmp_path / "real"
    real.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb / f"100.{ext}", real / f"100.{ext}")
    at.text_input(key="folder").set_value(str(real)).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "trained on SIMULATED ECG only" in errors[0], errors
    assert not at.metric  # nothing scored
