"""The dashboard shell under Streamlit's AppTest: navigation, Home, and every discovered page."""

from __future__ import annotations

from pathlib import Path

import pytest

from genforge.dashboards.common import VIEWS_DIR, discover_pages, page_constants, read_run, result_runs
from genforge.suite import Suite

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


def test_pages_come_from_suite_descriptors_without_import(tmp_path, monkeypatch):
    """A suite's page is found from its descriptor; TITLE/ICON in the file override, nothing is imported."""
    import sys

    alpha = "TITLE = 'Alpha tools'\nICON: str = '🅰️'\nimport nonexistent_module\n"
    (tmp_path / "alpha_page.py").write_text(alpha)
    (tmp_path / "zeta_page.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    suites = {
        "alpha": Suite("alpha", "Alpha", "a", "x:app", "x:run_demo", (), page="alpha_page"),
        "nopage": Suite("nopage", "No page", "n", "x:app", "x:run_demo", ()),
        "missing": Suite("missing", "Missing", "m", "x:app", "x:run_demo", (), page="no_such_page_module"),
        "zeta": Suite("zeta", "Zeta suite", "z", "x:app", "x:run_demo", (), page="zeta_page", icon="🔧"),
    }
    monkeypatch.setattr("genforge.suite.installed_suites", lambda: suites)
    pages = discover_pages()
    assert [(p.path.name, p.title, p.icon, p.suite) for p in pages] == [
        ("alpha_page.py", "Alpha tools", "🅰️", "alpha"), ("zeta_page.py", "Zeta suite", "🔧", "zeta")]
    assert "alpha_page" not in sys.modules and "zeta_page" not in sys.modules
    assert page_constants(tmp_path / "missing.py") == {}


def test_no_pages_folder_for_streamlit_to_discover():
    """Streamlit lists a ``pages/`` folder beside the main script as its own navigation; there is none."""
    assert not (APP.parent / "pages").exists()


def test_result_runs_newest_first(tmp_path, make_results):
    old = make_results(tmp_path, "demo-a")
    new = make_results(tmp_path, "demo-b")
    import os

    os.utime(old / "metrics.json", (1, 1))
    assert result_runs(tmp_path) == [new, old]
    assert read_run(new).family_rows()[0]["family"] == "vae"


ALL_PAGES = ["home", *(p.path.stem for p in discover_pages())]
assert len(ALL_PAGES) >= 3, "the ecg and finance pages should be found through their suites"


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_opens(page, tmp_path, monkeypatch):
    """Each page (Home and every suite's) renders without an exception."""
    at = run_app(monkeypatch, tmp_path)
    at.switch_page(str((VIEWS_DIR / f"{page}.py").relative_to(APP.parent)))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
