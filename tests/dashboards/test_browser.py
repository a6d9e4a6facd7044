"""Real-browser smoke test: `genforge dashboard` serves the app; Chromium opens Home; no exception box."""

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

pytestmark = pytest.mark.skipif(
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


def test_home_renders_in_chromium(tmp_path, make_results):
    sync_api = pytest.importorskip("playwright.sync_api")
    make_results(tmp_path / "results")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(  # the real command, which runs `streamlit run <installed app.py>` headless
        [sys.executable, "-m", "genforge", "dashboard", "--port", str(port),
         "--results", str(tmp_path / "results")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        wait_healthy(url, proc)
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
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
