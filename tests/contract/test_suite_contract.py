"""The suite contract, checked for every installed suite (a new suite passes it or CI is red).

For each suite registered under ``genforge.suites``: its descriptor loads, its CLI answers ``--help``, its
demo runs in quick mode on embedded data and writes only under its folder, its page renders under
Streamlit's AppTest, its README exists, and each of its estimators is a scikit-learn estimator
(``clone``, ``NotFittedError`` before ``fit``) whose outputs survive a save/load round trip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genforge.estimator import SuiteEstimator
from genforge.suite import discover, installed_suites

SUITES = installed_suites()
ESTIMATORS = [(name, path) for name, suite in SUITES.items() for path in suite.estimators]
APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"


def test_every_registered_suite_loads():
    broken = {s.name: s.error for s in discover() if s.suite is None}
    assert not broken, broken
    assert {"ecg", "finance"} <= set(SUITES)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_cli_help(name, capsys):
    from genforge.cli import SUITE_STATUS, main

    assert SUITE_STATUS.get(name) == "loaded", SUITE_STATUS.get(name)
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Commands" in out and "demo" in out


@pytest.mark.parametrize("name", sorted(SUITES))
def test_readme_exists(name):
    readme = SUITES[name].readme_path()
    assert readme.is_file(), f"{name}: {readme} is missing"
    text = readme.read_text(encoding="utf-8")
    assert len(text.splitlines()) >= 10 and f"genforge {name}" in text


@pytest.mark.parametrize("name", sorted(SUITES))
def test_quick_demo_runs_on_embedded_data(name, tmp_path, monkeypatch):
    monkeypatch.setenv("GENFORGE_DATA", str(tmp_path / "no-reference-data"))  # embedded data only
    out = tmp_path / "demo"
    metrics = SUITES[name].run_demo(out, quick=True)
    assert isinstance(metrics, dict) and metrics, "run_demo must return its headline metrics"
    assert [p.name for p in tmp_path.iterdir()] == ["demo"], "the demo wrote outside its folder"
    assert any(out.rglob("*")), "the demo wrote no result files"


@pytest.mark.parametrize("name", sorted(n for n, s in SUITES.items() if s.page))
def test_page_renders(name, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from genforge.dashboards.common import module_file

    monkeypatch.setenv("GENFORGE_RESULTS", str(tmp_path))
    page = module_file(SUITES[name].page)
    assert page is not None and page.is_file(), f"{name}: page module {SUITES[name].page} not found"
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page(str(page.relative_to(APP.parent)))
    at.run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize(("suite", "path"), ESTIMATORS, ids=[p.split(":")[-1] for _, p in ESTIMATORS])
def test_estimator_clone_and_round_trip(suite, path, tmp_path):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    from genforge.suite import resolve

    cls = resolve(path)
    assert issubclass(cls, SuiteEstimator), f"{path} does not derive from genforge.estimator.SuiteEstimator"
    example = cls.example()
    est = cls(**example.params)
    assert est.get_params()["device"] in ("auto", "cpu") or "device" not in est.get_params()
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        example.probe(twin)
    assert est.fit(*example.fit_args, **example.fit_kwargs) is est
    before = example.probe(est)
    est.save(tmp_path / "model")
    loaded = cls.load(tmp_path / "model")
    assert loaded.get_params() == {**est.get_params(), "device": loaded.device}
    after = example.probe(loaded)
    _assert_same(before, after)


def _assert_same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-5, atol=1e-6)
