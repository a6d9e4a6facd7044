"""Real-browser tests of `genforge dashboard`: Chromium opens Home and, on a fresh server, each suite page
by its URL; no exception box, no Streamlit page list of its own, no stray "None"; SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium missing: install it with `apt-get install -y chromium`"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url}/_stcore/health did not answer ok within {timeout} s")


def start_dashboard(results: Path) -> tuple[subprocess.Popen, str]:
    """`genforge dashboard` on a free port (its own process group), once healthy."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genforge", "dashboard", "--port", str(port), "--results", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except Exception:
        stop_group(proc)
        raise
    return proc, url


def stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def suite_pages() -> list[tuple[str, str]]:
    from genforge.dashboards.common import discover_pages

    return [(info.suite, info.title) for info in discover_pages()]


@needs_chromium
@pytest.mark.parametrize(("suite", "title"), suite_pages())
def test_each_page_opens_by_url_on_a_fresh_server(suite, title, tmp_path):
    """Opening /<suite> directly (a bookmark, a link) shows our navigation and the page, nothing else."""
    sync_api = pytest.importorskip("playwright.sync_api")
    proc, url = start_dashboard(tmp_path / "no-results")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{url}/{suite}", timeout=60_000)
            page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=60_000)
            heading = page.locator('[data-testid="stMain"] h1, [data-testid="stMain"] h2').first
            heading.wait_for(timeout=60_000)
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
            page.screenshot(path=str(tmp_path / f"{suite}.png"))
            nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
            assert title in nav and "Home" in nav
            assert "app" not in nav.split(), f"Streamlit's own page list is showing: {nav!r}"
            assert page.locator('[data-testid="stException"]').count() == 0
            texts = page.locator('[data-testid="stElementContainer"]').evaluate_all(
                "els => els.map(e => e.textContent.trim())")
            assert "None" not in texts, "a stray 'None' element (a value rendered by Streamlit's magic)"
            width = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
            assert width > 900, f"narrow layout ({width:.0f} px): the page config did not apply"
            browser.close()
    finally:
        stop_group(proc)


def test_sigterm_stops_the_server(tmp_path):
    """SIGTERM to `genforge dashboard` (not its group) must not leave Streamlit serving the port."""
    proc, url = start_dashboard(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            except OSError:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the Streamlit server still answers after SIGTERM to genforge dashboard")
    finally:
        stop_group(proc)


@needs_chromium
def test_home_renders_in_chromium(tmp_path, make_results):
    sync_api = pytest.importorskip("playwright.sync_api")
    make_results(tmp_path / "results")
    proc, url = start_dashboard(tmp_path / "results")  # the real command: `streamlit run <installed app.py>`
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(url, timeout=60_000)
            page.get_by_text("Latest demo results").wait_for(timeout=60_000)
            page.get_by_text("To be, or not to be").wait_for(timeout=60_000)
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)
            shot = tmp_path / "home.png"
            page.screenshot(path=str(shot))
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stImage"] img').count() >= 1
            browser.close()
        assert shot.stat().st_size > 10_000
    finally:  # stop genforge and the streamlit server it started (one process group)
        stop_group(proc)
