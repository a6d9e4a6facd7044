"""The dashboard shell under Streamlit's AppTest: navigation, Home, and every discovered page."""

from __future__ import annotations

from pathlib import Path

import pytest

from genforge.dashboards.common import PAGES_DIR, discover_pages, page_constants, read_run, result_runs

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"


def run_app(monkeypatch, results: Path) -> AppTest:
    monkeypatch.setenv("GENFORGE_RESULTS", str(results))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_home_shows_latest_results(tmp_path, make_results, monkeypatch):
    make_results(tmp_path, "demo-20250101-000000")
    newest = make_results(tmp_path, "demo-20260101-000000")
    (newest / "metrics.json").touch()
    at = run_app(monkeypatch, tmp_path)
    assert at.title[0].value == "genforge"
    assert at.selectbox[0].value == newest
    table = at.dataframe[-1].value
    assert list(table["family"]) == ["vae", "transformer"]
    assert table["value"].tolist() == [0.87, 2.1]
    assert any("To be, or not to be" in c.value for c in at.code)
    assert any(e.label.startswith("ecg") for e in at.expander)


def test_home_without_results_is_friendly(tmp_path, monkeypatch):
    at = run_app(monkeypatch, tmp_path / "nothing-here")
    assert any("genforge demo" in i.value for i in at.info)
    assert not at.error


def test_home_with_corrupt_metrics_shows_error(tmp_path, make_results, monkeypatch):
    run = make_results(tmp_path)
    (run / "metrics.json").write_text("{ not json")
    at = run_app(monkeypatch, tmp_path)
    assert any("unreadable" in e.value for e in at.error)


def test_page_discovery_reads_constants_without_import(tmp_path):
    (tmp_path / "home.py").write_text("raise SystemExit('home is not a discovered page')\n")
    (tmp_path / "_private.py").write_text("")
    (tmp_path / "zeta_suite.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "alpha.py").write_text("TITLE = 'Alpha tools'\nICON: str = '🅰️'\nimport nonexistent_module\n")
    pages = discover_pages(tmp_path)
    assert [(p.path.name, p.title, p.icon) for p in pages] == [
        ("alpha.py", "Alpha tools", "🅰️"), ("zeta_suite.py", "Zeta Suite", None)]
    assert page_constants(tmp_path / "missing.py") == {}


def test_result_runs_newest_first(tmp_path, make_results):
    old = make_results(tmp_path, "demo-a")
    new = make_results(tmp_path, "demo-b")
    import os

    os.utime(old / "metrics.json", (1, 1))
    assert result_runs(tmp_path) == [new, old]
    assert read_run(new).family_rows()[0]["family"] == "vae"


ALL_PAGES = ["home", *(p.path.stem for p in discover_pages())]


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_opens(page, tmp_path, monkeypatch):
    """Each page found in dashboards/pages renders without an exception (suite pages included)."""
    at = run_app(monkeypatch, tmp_path)
    at.switch_page(str((PAGES_DIR / f"{page}.py").relative_to(APP.parent)))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
