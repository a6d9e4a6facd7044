"""The geo page under Streamlit's AppTest: the Baltimore map and clusters, then a fitted model's draws."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "dashboards" / "views" / "geo.py"


def test_page_maps_and_fit():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric[0].label == "global Moran's I of the target" and float(at.metric[0].value) > 0.3
    assert any("Fit a model" in i.value for i in at.info)
    at.select_slider[0].set_value(100)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert "MIE of the mean of draws" in labels and "best-MIE step" in labels
    at.slider[1].set_value(3).run()  # the draw selector
    assert not at.exception, [e.value for e in at.exception]
