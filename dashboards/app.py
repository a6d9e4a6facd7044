"""The genforge dashboard: ``st.navigation`` over Home and one page per ``pages/*.py``.

Pages are discovered, not listed: a suite adds ``dashboards/pages/<suite>.py`` (optionally with
module-level ``TITLE = "..."`` and ``ICON = "..."``, read without importing the page) and it
appears here, sorted by file name. Launch with ``genforge dashboard``.
"""

from __future__ import annotations

import streamlit as st

from genforge.dashboards.common import HOME, discover_pages

st.set_page_config(page_title="genforge", page_icon="🧬", layout="wide")


def _page(path: str, title: str, icon: str | None, default: bool = False) -> st.Page:
    try:
        return st.Page(path, title=title, icon=icon, default=default)
    except Exception:  # an ICON Streamlit does not accept must not take the whole app down
        return st.Page(path, title=title, default=default)


pages = [_page(str(HOME), "Home", ":material/home:", default=True)]
pages += [_page(str(info.path), info.title, info.icon) for info in discover_pages()]
st.navigation(pages).run()
