"""The genforge dashboard: ``st.navigation`` over Home and the page of every installed suite.

Pages are not listed here: each suite's descriptor (``genforge.suite.Suite.page``) names its page module
in ``genforge.dashboards.views``, so a new suite appears once it is installed. Each page gets the URL
path of its suite's name (``/ecg``, ``/finance``). Launch with ``genforge dashboard``.
"""

from __future__ import annotations

import streamlit as st

from genforge.dashboards.common import HOME, discover_pages

st.set_page_config(page_title="genforge", page_icon="🧬", layout="wide")


def _page(path: str, title: str, icon: str | None, url_path: str | None = None,
          default: bool = False) -> st.Page:
    kwargs = {"title": title, "default": default}
    if url_path:
        kwargs["url_path"] = url_path
    try:
        return st.Page(path, icon=icon, **kwargs)
    except Exception:  # an ICON Streamlit does not accept must not take the whole app down
        return st.Page(path, **kwargs)


pages = [_page(str(HOME), "Home", ":material/home:", default=True)]
pages += [_page(str(info.path), info.title, info.icon, info.suite or None) for info in discover_pages()]
st.navigation(pages).run()
