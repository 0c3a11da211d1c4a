"""The served app in a real browser: `streamlit run app.py`, opened in the system Chromium via Playwright."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LOSSVIZ_CHROMIUM", "/usr/bin/chromium")
# How long to wait for the server, a page or an element: a bound that catches a hang, not a speed target (a
# loaded two-core machine once took longer than 15 s to draw the first chart).
WAIT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_health(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


@pytest.fixture
def served_app():
    port = _free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(url, process, timeout=WAIT_MS / 1000)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.browser
def test_loss_shapes_renders_in_chromium(served_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{served_app}/?task=binary&losses=logistic,hinge", timeout=WAIT_MS)
            page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
            page.get_by_role("heading", name="Loss shapes").first.wait_for(timeout=WAIT_MS)
            assert "lossviz" in page.title()
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator(".js-plotly-plot").count() == 1  # the open view only
            # the page mirrors its state into the URL (the settings that differ from the defaults)
            page.wait_for_url(re.compile(r"task=binary"), timeout=WAIT_MS)
            assert "losses=logistic%2Chinge" in page.url or "losses=logistic,hinge" in page.url
        finally:
            browser.close()


def _browser(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


@pytest.mark.browser
def test_a_page_opened_directly_shows_the_apps_navigation_and_keeps_settings(served_app):
    """A fresh server asked for /train_compare shows app.py's navigation (not one built from pages/), and a
    setting made there survives a visit to another page, although Streamlit drops the widget's own state."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{served_app}/train_compare?epochs=30&n=60", timeout=WAIT_MS)
            page.get_by_role("heading", name="Train & compare").first.wait_for(timeout=WAIT_MS)
            nav = page.locator('[data-testid="stSidebarNav"]')
            # the app's own titles and sections: a navigation built from pages/ says "app", "landscape", ...
            nav.get_by_text("Loss landscape", exact=True).wait_for(timeout=WAIT_MS)
            assert nav.get_by_text("app", exact=True).count() == 0
            shown = page.get_by_role("slider", name="Epochs").get_attribute("aria-valuetext")
            nav.get_by_text("Loss shapes", exact=True).click()
            page.get_by_role("heading", name="Loss shapes").first.wait_for(timeout=WAIT_MS)
            nav.get_by_text("Train & compare", exact=True).click()
            page.get_by_role("heading", name="Train & compare").first.wait_for(timeout=WAIT_MS)
            page.wait_for_url(re.compile(r"epochs=30"), timeout=WAIT_MS)
            assert page.get_by_role("slider", name="Epochs").get_attribute("aria-valuetext") == shown == "30"
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()


@pytest.mark.browser
def test_a_view_tab_is_built_when_opened_and_kept_in_the_url(served_app):
    """Loss shapes builds only its open view: a click on a tab reruns the page with that view's chart, writes
    it to the URL, and the choice survives a visit to another page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(served_app, timeout=WAIT_MS)
            page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
            assert page.locator(".js-plotly-plot").count() == 1
            page.get_by_role("tab", name="Derivative").click()
            page.wait_for_url(re.compile(r"view=derivative"), timeout=WAIT_MS)
            page.locator(".js-plotly-plot .gtitle", has_text="Derivative").wait_for(timeout=WAIT_MS)
            assert page.locator(".js-plotly-plot").count() == 1
            nav = page.locator('[data-testid="stSidebarNav"]')
            nav.get_by_text("Calibration", exact=True).click()
            page.get_by_role("heading", name="Calibration").first.wait_for(timeout=WAIT_MS)
            nav.get_by_text("Loss shapes", exact=True).click()
            page.wait_for_url(re.compile(r"view=derivative"), timeout=WAIT_MS)
            tab = page.get_by_role("tab", name="Derivative")
            assert tab.get_attribute("aria-selected") == "true"
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
