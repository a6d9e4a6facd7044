"""The Finance page's scenario and loan-book tabs, driven through their buttons with tiny budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_page import none_boxes  # tests/finance is on sys.path (pytest prepend mode)

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "views" / "finance.py"


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=240).run()


def test_scenario_tab_trains_and_shows_paths_and_stylized_facts(app: AppTest) -> None:
    app.number_input(key="scen_steps").set_value(20)
    app.number_input(key="scen_paths").set_value(10)
    app.number_input(key="scen_length").set_value(30)
    app.button(key="scen_train").click().run()
    assert not app.exception, app.exception
    assert none_boxes(app) == []
    scenarios = app.tabs[1]
    assert not scenarios.error, [e.value for e in scenarios.error]
    # fan chart, return histogram, ACF of |r|
    assert len(scenarios.get("plotly_chart")) >= 3


def test_loan_tab_synthesizes_a_book_with_a_quality_score(app: AppTest) -> None:
    app.number_input(key="loan_steps").set_value(20)
    app.number_input(key="loan_n").set_value(50)
    app.button(key="loan_train").click().run()
    assert not app.exception, app.exception
    assert none_boxes(app) == []
    loans = app.tabs[2]
    assert not loans.error, [e.value for e in loans.error]
    quality = [m for m in loans.metric if m.label == "quality"]
    assert quality and 0.0 <= float(quality[0].value) <= 1.0
