"""Where the dashboard's Streamlit script is: registered under the entry-point group ``genforge.apps`` so
that ``genforge dashboard`` finds it without the core importing the dashboards package."""

from __future__ import annotations

from pathlib import Path


def app_path() -> Path:
    """The installed ``genforge/dashboards/app.py``."""
    return Path(__file__).resolve().parent / "app.py"
