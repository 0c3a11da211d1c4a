"""Time every page of the served app in headless Chromium against a minimal Streamlit page in the same run.

Serves app.py and a one-slider, one-chart reference page on free 127.0.0.1 ports, finds the app's pages in its
sidebar navigation, and measures per page: a fresh load (to the first Plotly chart and to idle, websocket
bytes), one slider or toggle step (to idle, websocket bytes), a click on the second view tab where a page
has tabs (to idle, websocket bytes; ratio to the reference's step), and on every page with a Train button its
default run (on Train & compare every preset too): click to first chart, click to idle, caches cleared first;
and Loss landscape's view changes one after another (grid, span, axes, test set, log, a click on a surface,
3-D), each timed to idle. Medians of --repeats runs.
Run: `python benchmarks/browser.py [--repeats 3] [--quick] [--pages a,b] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LOSSVIZ_CHROMIUM", "/usr/bin/chromium")
HOST = "127.0.0.1"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # every host name other than 127.0.0.1 fails to resolve: the browser can only reach the two servers
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}",
]
VIEWPORT = {"width": 1400, "height": 1000}
TRAIN_PATH = "train_compare"  # the page whose presets are timed as runs too
LANDSCAPE_PATH = "landscape"
LANDSCAPE_TARGET_S = 1.5  # the issue's budget for each of the landscape's view changes, warm
TRAIN_BUTTON = "Train"  # pages whose training takes seconds wait for this button (lossviz.ui.page)
DEFAULT_RUN = "default (Train)"
REFERENCE = "reference"
FOUR_CHARTS = "four_charts"
SIDEBAR = "sidebar"

# The minimal page every figure is compared with: one slider, one 100-point line that depends on it. With
# ?charts=4 the same server draws four charts of four 200-point lines each, all depending on the slider: the
# floor of Streamlit + Plotly for a page that shows four views of one computation. With ?sidebar=1 it draws
# the minimal page beside the app's own sidebar (Train & compare's controls): what a rerun costs a page with
# those controls before it draws anything. Both are reported for context (the targets stay ratios to the
# minimal page).
REFERENCE_SCRIPT = textwrap.dedent(
    """\
    import numpy as np
    import plotly.graph_objects as go
    import streamlit as st

    k = st.slider("frequency", 1.0, 10.0, 3.0)
    if st.query_params.get("sidebar") == "1":
        from lossviz.ui import experiment_fields as xf
        from lossviz.ui.page import Page

        losses = {"multiclass": ("cross_entropy", "gce", "apl_nce_rce")}
        xf.sidebar(Page("floor", "The app's sidebar", ""), losses)
    if st.query_params.get("charts") == "4":
        x = np.linspace(0.0, 1.0, 200)
        for chart in range(4):
            lines = [go.Scatter(x=x, y=np.sin(2 * np.pi * (k + chart + j / 4) * x)) for j in range(4)]
            st.plotly_chart(go.Figure(lines), key=f"chart{chart}")
    else:
        x = np.linspace(0.0, 1.0, 100)
        st.plotly_chart(go.Figure(go.Scatter(x=x, y=np.sin(2 * np.pi * k * x))))
    """
)

# Installed in every page before its scripts run. All times are Date.now()-style epoch milliseconds, the same
# clock as time.time() here. firstChart: a visible .js-plotly-plot not marked data-lv-seen (charts present
# before a click are marked); mutation / longTask: the last DOM change and the end of the last main-thread
# task over 50 ms (Plotly drawing); input: the last keydown or click, i.e. when the step or press happened.
INIT_JS = """
(() => {
  const lv = (window.__lv = {firstChart: null, mutation: 0, longTask: 0, input: 0});
  const chart = () => {
    if (lv.firstChart !== null) return;
    for (const el of document.querySelectorAll('.js-plotly-plot:not([data-lv-seen])')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) { lv.firstChart = Date.now(); return; }
    }
  };
  new MutationObserver(() => { lv.mutation = Date.now(); chart(); })
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        lv.longTask = Math.max(lv.longTask, performance.timeOrigin + e.startTime + e.duration);
      }
    }).observe({type: 'longtask', buffered: true});
  } catch (err) {}
  for (const kind of ['keydown', 'click']) {
    document.addEventListener(kind, () => { lv.input = Date.now(); }, true);
  }
})();
"""
POLL_JS = """() => ({
  running: document.querySelector('[data-testid="stStatusWidget"]') !== null,
  mutation: window.__lv ? window.__lv.mutation : 0,
  longTask: window.__lv ? window.__lv.longTask : 0,
  now: Date.now(),
})"""
MARK_CHARTS_JS = """() => {
  window.__lv.firstChart = null;
  document.querySelectorAll('.js-plotly-plot').forEach((el) => { el.dataset.lvSeen = '1'; });
}"""


def now_ms() -> float:
    return time.time() * 1e3


# -- servers ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(script: Path, cwd: Path, *extra: str, timeout: float = 60.0) -> Iterator[str]:
    """`streamlit run script [extra flags]` on a free 127.0.0.1 port until the block ends; yields its URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
        "--server.headless", "true", "--server.address", HOST, "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false", *extra,
    ]  # fmt: skip
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"streamlit run {script.name} exited with {process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit run {script.name} did not answer at {url} within {timeout} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


# -- one browser page with its network activity -----------------------------------------------------------


@dataclass
class Probe:
    """A fresh browser context and page, with websocket bytes received and the last network activity."""

    context: Any
    page: Any
    ws_bytes: int = 0
    frames_received: int = 0
    last_network: float = 0.0  # epoch ms of the last websocket frame or HTTP request start/end
    inflight: set = field(default_factory=set)
    blocked: list = field(default_factory=list)  # requests to anything but 127.0.0.1 (refused by resolver)

    @classmethod
    def open(cls, browser: Any) -> Probe:
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(INIT_JS)
        probe = cls(context, context.new_page())
        probe.page.on("websocket", probe._on_websocket)
        probe.page.on("request", probe._on_request)
        probe.page.on("requestfinished", probe._on_request_done)
        probe.page.on("requestfailed", probe._on_request_done)
        return probe

    def _on_websocket(self, ws: Any) -> None:
        ws.on("framereceived", self._on_frame_received)
        ws.on("framesent", lambda _payload: self._touch())

    def _on_frame_received(self, payload: str | bytes) -> None:
        self.ws_bytes += len(payload.encode() if isinstance(payload, str) else payload)
        self.frames_received += 1
        self._touch()

    def _on_request(self, request: Any) -> None:
        if urllib.parse.urlsplit(request.url).hostname not in (HOST, None):
            self.blocked.append(request.url)
        self.inflight.add(request)
        self._touch()

    def _on_request_done(self, request: Any) -> None:
        self.inflight.discard(request)
        self._touch()

    def _touch(self) -> None:
        self.last_network = now_ms()

    def reset(self) -> None:
        """Start counting websocket bytes and frames afresh (before a step or a click)."""
        self.ws_bytes = 0
        self.frames_received = 0

    def close(self) -> None:
        self.context.close()

    def settle(
        self, start: float, *, quiet_s: float, timeout_s: float, need_frame: bool = True
    ) -> float | None:
        """Seconds from start to idle, or None on timeout.

        Idle: Streamlit's running indicator is gone, no request is in flight, and for quiet_s there was no
        websocket frame, HTTP request, DOM change or long main-thread task; the time reported is that of the
        last such activity. need_frame: a frame must have been received since reset() (the rerun started).
        """
        deadline = time.monotonic() + timeout_s
        last_running = start
        while time.monotonic() < deadline:
            state = self.page.evaluate(POLL_JS)
            now = now_ms()
            if state["running"]:
                last_running = now
            last = max(start, last_running, self.last_network, state["mutation"], state["longTask"])
            started = self.frames_received > 0 or not need_frame
            if started and not state["running"] and not self.inflight and now - last >= 1e3 * quiet_s:
                return (last - start) / 1e3
            self.page.wait_for_timeout(50)
        return None

    def lv(self, key: str) -> float | None:
        value = self.page.evaluate(f"() => window.__lv && window.__lv.{key}")
        return float(value) if value else None

    def exceptions(self) -> int:
        return self.page.locator('[data-testid="stException"]').count()


# -- measurements -----------------------------------------------------------------------------------------


@dataclass
class Options:
    quiet_s: float
    timeout_s: float


def fresh_load(browser: Any, url: str, opt: Options) -> tuple[Probe, dict[str, Any]]:
    """Open url in a fresh context: seconds to the first chart and to idle, websocket KB received."""
    probe = Probe.open(browser)
    start = now_ms()
    probe.page.goto(url, wait_until="commit", timeout=1e3 * opt.timeout_s)
    idle = probe.settle(start, quiet_s=opt.quiet_s, timeout_s=opt.timeout_s)
    chart = probe.lv("firstChart")
    return probe, {
        "chart_s": None if chart is None else (chart - start) / 1e3,
        "idle_s": idle,
        "kb": probe.ws_bytes / 1e3,
        "exceptions": probe.exceptions(),
    }


def find_control(page: Any) -> tuple[str, Any, str] | None:
    """The first visible slider in the main area, else in the sidebar; else the first visible toggle or
    checkbox (a control in a collapsed expander is not drawn, and a key press on it changes nothing)."""
    areas = ('[data-testid="stMain"]', '[data-testid="stSidebar"]')
    kinds = (
        ("slider", 'input[type="range"], [role="slider"]'),
        ("toggle", 'input[type="checkbox"], [role="switch"], [role="checkbox"]'),
    )
    for kind, selector in kinds:
        for area in areas:
            found = page.locator(f"{area} :is({selector})").filter(visible=True)
            if found.count():
                control = found.first
                label = control.get_attribute("aria-label") or ""
                if not label:
                    label = control.evaluate("e => (e.closest('label') || e).innerText || ''").strip()
                side = "sidebar" if "Sidebar" in area else "main"
                return kind, control, f"{kind} '{label[:40]}' ({side})"
    return None


def _slider_direction(control: Any, presses: int) -> str:
    """ArrowRight, unless the slider has no room for `presses` steps to the right."""
    try:
        value, high = float(control.input_value()), float(control.get_attribute("max"))
        step = float(control.get_attribute("step") or 1)
        return "ArrowRight" if value + presses * step <= high + 1e-9 else "ArrowLeft"
    except (TypeError, ValueError):
        return "ArrowRight"


def timed(probe: Probe, action: Any, opt: Options) -> dict[str, Any]:
    """Run action (a keypress or click): seconds from the input event to idle, websocket KB received."""
    probe.reset()
    before = now_ms()
    action()
    start = probe.lv("input") or before
    idle = probe.settle(start, quiet_s=opt.quiet_s, timeout_s=opt.timeout_s)
    return {"idle_s": idle, "kb": probe.ws_bytes / 1e3}


def press(probe: Probe, control: Any, key: str, opt: Options) -> dict[str, Any]:
    """Focus the control, press key once: seconds from the keydown to idle, websocket KB received."""
    control.focus()
    return timed(probe, lambda: probe.page.keyboard.press(key), opt)


def has_train_button(probe: Probe) -> bool:
    return probe.page.get_by_role("button", name=TRAIN_BUTTON, exact=True).count() > 0


def switch_view(probe: Probe, opt: Options) -> dict[str, Any]:
    """Click the page's second view tab (pages build only the open tab, so a click reruns the page and draws
    that view): seconds to idle and websocket KB. Nothing measured on a page without tabs."""
    tabs = probe.page.get_by_role("tab")
    if tabs.count() < 2:
        return {"tab": None, "idle_s": None, "kb": None}
    tab = tabs.nth(1)
    return {"tab": tab.inner_text().strip(), **timed(probe, tab.click, opt)}


def landscape_changes(page: Any) -> list[tuple[str, Any]]:
    """Loss landscape's view changes, in an order in which each is possible (a click needs the 2-D view):
    (name, action). Each changes the view to one the server has not computed in this load."""

    def key(name: str, press: str) -> Any:
        def act() -> None:
            control = page.get_by_role("slider", name=name)
            control.focus()
            page.keyboard.press(press)

        return act

    def toggle(name: str) -> Any:
        def act() -> None:
            page.locator('[data-testid="stMain"] label').filter(
                has_text=re.compile(rf"^{re.escape(name)}$")
            ).click()

        return act

    def radio(option: str) -> Any:
        return lambda: page.get_by_text(option, exact=True).click()

    def click_surface() -> None:
        # the first panel's plot area, off-centre: Plotly selects the nearest of its invisible grid nodes
        area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        page.mouse.click(area["x"] + 0.3 * area["width"], area["y"] + 0.3 * area["height"])

    return [
        ("grid", key("Grid", "ArrowRight")),
        ("span", key("Span", "ArrowLeft")),
        ("axes: PCA", radio("PCA of the trajectory")),
        ("loss on the test set", radio("Test set")),
        ("log scale", toggle("Log scale")),
        ("click a point", click_surface),
        ("3-D", toggle("3-D")),
    ]


def measure_landscape(browser: Any, url: str, repeats: int, opt: Options) -> dict[str, Any]:
    """Each view change of Loss landscape, after a warm-up load; repeat r starts from direction seed r + 1,
    so no repeat finds the surfaces of an earlier one in the cache."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(repeats + 1):  # r = 0 warms the server up and is not reported
        probe, _ = fresh_load(browser, f"{url}?dir_seed={r + 1}", opt)
        try:
            for name, action in landscape_changes(probe.page):
                result = timed(probe, action, opt)
                if r:
                    runs.setdefault(name, []).append(result)
                    print(f"[{r}/{repeats}] {LANDSCAPE_PATH} {name}: {fmt(result['idle_s'], '.2f')} s, "
                          f"{result['kb']:.1f} KB", flush=True)  # fmt: skip
        finally:
            probe.close()
    return {
        name: {"runs": rows, "median": {k: median([x[k] for x in rows]) for k in ("idle_s", "kb")}}
        for name, rows in runs.items()
    }


def step(probe: Probe, repeat: int, opt: Options) -> dict[str, Any]:
    """One slider (or toggle) step to a value this server has not computed yet.

    Repeat r first moves the slider r steps (values earlier repeats computed: cached reruns, timed as
    'cached'), then times the step to the next value. A toggle has two states: only its first repeat is
    uncached.
    """
    found = find_control(probe.page)
    if found is None:
        return {"control": None, "idle_s": None, "kb": None, "cached_idle_s": None}
    kind, control, label = found
    if kind == "toggle":
        result = press(probe, control, "Space", opt)
        return {"control": label, **result, "cached_idle_s": None, "cached": repeat > 0}
    key = _slider_direction(control, repeat + 1)
    cached = [press(probe, control, key, opt)["idle_s"] for _ in range(repeat)]
    value = control.input_value()
    result = press(probe, control, key, opt)
    cached = [c for c in cached if c is not None]
    return {
        "control": label,
        **result,
        "from_to": f"{value} -> {control.input_value()}",
        "cached_idle_s": cached[-1] if cached else None,
        "cached": False,
    }


def clear_caches(probe: Probe, opt: Options) -> bool:
    """The main menu's 'Clear cache' (st.cache_data and st.cache_resource, for every session).

    The menu offers it in developer mode only: the Train & compare runs are measured on a server started
    with --client.toolbarMode developer. False when the item is missing.
    """
    page = probe.page
    page.locator('[data-testid="stMainMenu"]').first.click()
    item = page.locator('[data-testid="stMainMenuItem-clearCache"]')
    try:
        item.wait_for(timeout=5_000)
    except Exception:  # not in developer mode, or the menu changed
        page.keyboard.press("Escape")
        return False
    item.click()
    button = page.get_by_role("button", name="Clear caches")
    button.wait_for(timeout=5_000)
    button.click()
    page.get_by_role("dialog").wait_for(state="detached", timeout=10_000)
    probe.settle(now_ms(), quiet_s=opt.quiet_s, timeout_s=opt.timeout_s, need_frame=False)
    return True


def click_run(browser: Any, url: str, button_text: str, opt: Options, exact: bool) -> dict[str, Any]:
    """Fresh load, clear caches, click: seconds from the click to the first new chart and to idle."""
    probe, load = fresh_load(browser, url, opt)
    try:
        cleared = clear_caches(probe, opt)
        page = probe.page
        if exact:
            button = page.get_by_role("button", name=button_text, exact=True)
        else:
            button = page.locator("button").filter(has_text=re.compile(r"^\s*" + re.escape(button_text)))
        button = button.first
        button.wait_for(timeout=10_000)
        page.evaluate(MARK_CHARTS_JS)
        probe.reset()
        before = now_ms()
        button.click()
        start = probe.lv("input") or before
        idle = probe.settle(start, quiet_s=opt.quiet_s, timeout_s=opt.timeout_s)
        chart = probe.lv("firstChart")
        return {
            "first_s": None if chart is None else (chart - start) / 1e3,
            "done_s": idle,
            "kb": probe.ws_bytes / 1e3,
            "caches_cleared": cleared,
            "exceptions": probe.exceptions(),
            "load_idle_s": load["idle_s"],
        }
    finally:
        probe.close()


# -- discovery, summary, report ---------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def discover_pages(browser: Any, app: str, opt: Options) -> list[dict[str, str]]:
    """The pages of the app's navigation, read from the home page's sidebar links."""
    probe = Probe.open(browser)
    try:
        probe.page.goto(app, wait_until="commit", timeout=1e3 * opt.timeout_s)
        probe.page.locator('[data-testid="stSidebarNav"] a').first.wait_for(timeout=1e3 * opt.timeout_s)
        probe.settle(now_ms(), quiet_s=opt.quiet_s, timeout_s=opt.timeout_s, need_frame=False)
        more = probe.page.locator('[data-testid="stSidebarNavViewButton"]')
        if more.count() and "more" in more.first.inner_text().lower():
            more.first.click()
        links = probe.page.locator('[data-testid="stSidebarNav"] a').evaluate_all(
            "els => els.map(e => [e.getAttribute('href'), e.innerText])"
        )
    finally:
        probe.close()
    pages = []
    for href, text in links:
        title = [line for line in text.splitlines() if line.strip()][-1].strip()  # after the icon's name
        path = urllib.parse.urlsplit(urllib.parse.urljoin(app + "/", href)).path.strip("/")
        pages.append({"key": path or slug(title), "path": path, "title": title})
    return pages


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(value: float | None, reference: float | None) -> float | None:
    return None if value is None or not reference else value / reference


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": nproc or str(os.cpu_count()),
        "cpu": model or platform.processor(),
        "os": platform.platform(),
    }


def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def print_tables(results: dict[str, Any]) -> None:
    ref = results["pages"][REFERENCE]["median"]
    print("\n| page | load → first chart | × ref | load → idle | × ref | load KB | step control | "
          "step → idle | × ref | step KB | step, cached value | second tab | tab → idle | × ref | "
          "tab KB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results["pages"].values():
        m = row["median"]
        print(
            f"| {row['title']} | {fmt(m['load_chart_s'], '.2f', ' s')} | "
            f"{fmt(ratio(m['load_chart_s'], ref['load_chart_s']))} | {fmt(m['load_idle_s'], '.2f', ' s')} | "
            f"{fmt(ratio(m['load_idle_s'], ref['load_idle_s']))} | {fmt(m['load_kb'], '.0f')} | "
            f"{row['control'] or '—'} | {fmt(m['step_idle_s'], '.2f', ' s')} | "
            f"{fmt(ratio(m['step_idle_s'], ref['step_idle_s']))} | {fmt(m['step_kb'], '.1f')} | "
            f"{fmt(m['cached_step_idle_s'], '.2f', ' s')} | {row.get('tab') or '—'} | "
            f"{fmt(m.get('tab_idle_s'), '.2f', ' s')} | "
            f"{fmt(ratio(m.get('tab_idle_s'), ref['step_idle_s']))} | "
            f"{fmt(m.get('tab_kb'), '.1f')} |"
        )
    if results["landscape"]:
        print("\n| Loss landscape view change | to idle | KB |")
        print("|---|---|---|")
        for name, row in results["landscape"].items():
            m = row["median"]
            print(f"| {name} | {fmt(m['idle_s'], '.2f', ' s')} | {fmt(m['kb'], '.1f')} |")
    if results["train"]:
        print("\n| page | run | click → first chart | click → idle (done) | KB | caches cleared |")
        print("|---|---|---|---|---|---|")
        for row in results["train"].values():
            m = row["median"]
            print(
                f"| {row['page']} | {row['run']} | {fmt(m['first_s'], '.2f', ' s')} | "
                f"{fmt(m['done_s'], '.2f', ' s')} | "
                f"{fmt(m['kb'], '.0f')} | {'yes' if all(row['caches_cleared']) else 'no'} |"
            )


def check_targets(results: dict[str, Any]) -> list[str]:
    """One line per target: met / missed, with the numbers."""
    lines = []
    ref = results["pages"][REFERENCE]["median"]

    def verdict(ok: bool | None) -> str:
        return "unmeasured" if ok is None else ("met" if ok else "MISSED")

    for key, row in results["pages"].items():
        if key in (REFERENCE, FOUR_CHARTS, SIDEBAR):
            continue
        m = row["median"]
        r_step = ratio(m["step_idle_s"], ref["step_idle_s"])
        ok = None if r_step is None or m["step_kb"] is None else r_step <= 1.5 and m["step_kb"] <= 150
        lines.append(
            f"{row['title']}: step <= 1.5x ref and <= 150 KB: {verdict(ok)} "
            f"({fmt(r_step)}x, {fmt(m['step_kb'], '.1f')} KB)"
        )
        if row.get("tab"):  # a tab is a view control: the step budget applies to it too
            r_tab = ratio(m["tab_idle_s"], ref["step_idle_s"])
            ok = None if r_tab is None or m["tab_kb"] is None else r_tab <= 1.5 and m["tab_kb"] <= 150
            lines.append(
                f"{row['title']}: tab '{row['tab']}' <= 1.5x ref step and <= 150 KB: {verdict(ok)} "
                f"({fmt(r_tab)}x, {fmt(m['tab_kb'], '.1f')} KB)"
            )
        r_load = ratio(m["load_idle_s"], ref["load_idle_s"])
        ok = None if r_load is None else r_load <= 1.5 and m["load_kb"] <= 500
        lines.append(
            f"{row['title']}: load to idle <= 1.5x ref and <= 500 KB: {verdict(ok)} "
            f"({fmt(r_load)}x, {fmt(m['load_kb'], '.0f')} KB; to first chart "
            f"{fmt(ratio(m['load_chart_s'], ref['load_chart_s']))}x)"
        )
    for name, row in results["landscape"].items():
        s = row["median"]["idle_s"]
        ok = None if s is None else s <= LANDSCAPE_TARGET_S
        lines.append(f"Loss landscape, {name}: <= {LANDSCAPE_TARGET_S} s warm: {verdict(ok)} ({fmt(s)} s)")
    for row in results["train"].values():
        m = row["median"]
        if row["run"] == DEFAULT_RUN and row["path"] == TRAIN_PATH:  # the issue's target for this run
            ok = (
                None
                if m["first_s"] is None or m["done_s"] is None
                else m["first_s"] <= 1 and m["done_s"] <= 3
            )
            target = "first chart <= 1 s, done <= 3 s"
        else:  # the issue: "within 10 s, or shown coarse first" (the pages draw their runs live)
            first, done = m["first_s"], m["done_s"]
            ok = None if done is None else done <= 10 or (first is not None and first <= 1)
            target = "done <= 10 s, or a first (live) chart <= 1 s"
        lines.append(
            f"{row['page']}, {row['run']}: {target}: {verdict(ok)} "
            f"({fmt(m['first_s'], '.2f')} s, {fmt(m['done_s'], '.2f')} s)"
        )
    return lines


def measure_pages(browser: Any, targets: list[dict[str, str]], repeats: int, opt: Options) -> dict[str, Any]:
    """Per target: fresh loads and slider/toggle steps, `repeats` times, after one unmeasured warm-up load."""
    for target in targets:  # the measured loads find imports and the server's caches warm
        probe, load = fresh_load(browser, target["url"], opt)
        probe.close()
        print(f"warm-up {target['key']}: idle after {fmt(load['idle_s'], '.2f', ' s')}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {t["key"]: [] for t in targets}
    for r in range(repeats):  # targets interleaved, so a change in machine load spreads over all of them
        for target in targets:
            probe, load = fresh_load(browser, target["url"], opt)
            try:
                trains = has_train_button(probe)  # before the step and the tab click change the page
                moved = step(probe, r, opt)
                switched = switch_view(probe, opt)
            finally:
                probe.close()
            runs[target["key"]].append({"load": load, "step": moved, "tab": switched, "trains": trains})
            errors = f"; {load['exceptions']} exception(s)!" if load["exceptions"] else ""
            print(
                f"[{r + 1}/{repeats}] {target['key']}: load chart {fmt(load['chart_s'], '.2f')} s, "
                f"idle {fmt(load['idle_s'], '.2f')} s, {load['kb']:.0f} KB; step {moved['control']} "
                f"{moved.get('from_to', '')}: {fmt(moved['idle_s'], '.2f')} s, "
                f"{fmt(moved['kb'], '.1f')} KB; tab {switched['tab']}: {fmt(switched['idle_s'], '.2f')} s"
                f"{errors}",
                flush=True,
            )
    results = {}
    for target in targets:
        rows = runs[target["key"]]
        results[target["key"]] = {
            "title": target["title"],
            "url_path": urllib.parse.urlsplit(target["url"]).path,
            "control": rows[0]["step"]["control"],
            "tab": rows[0]["tab"]["tab"],
            "train_button": rows[0]["trains"],
            "runs": rows,
            "median": {
                "load_chart_s": median([x["load"]["chart_s"] for x in rows]),
                "load_idle_s": median([x["load"]["idle_s"] for x in rows]),
                "load_kb": median([x["load"]["kb"] for x in rows]),
                "step_idle_s": median([x["step"]["idle_s"] for x in rows]),
                "step_kb": median([x["step"]["kb"] for x in rows]),
                "cached_step_idle_s": median([x["step"]["cached_idle_s"] for x in rows]),
                "tab_idle_s": median([x["tab"]["idle_s"] for x in rows]),
                "tab_kb": median([x["tab"]["kb"] for x in rows]),
            },
        }
    return results


def measure_train(
    browser: Any, url: str, buttons: list[tuple[str, str, bool]], repeats: int, opt: Options
) -> dict[str, Any]:
    """Per button (name, text, exact match): click to first chart and to done, from cold caches."""
    where = urllib.parse.urlsplit(url).path.strip("/")
    warm = click_run(browser, url, buttons[0][1], opt, buttons[0][2])  # imports and torch kernels warm
    print(f"warm-up {where} {buttons[0][0]}: done after {fmt(warm['done_s'], '.2f', ' s')}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in buttons}
    for r in range(repeats):
        for name, text, exact in buttons:
            run = click_run(browser, url, text, opt, exact)
            runs[name].append(run)
            print(
                f"[{r + 1}/{repeats}] {where} {name}: first chart {fmt(run['first_s'], '.2f')} s, "
                f"done {fmt(run['done_s'], '.2f')} s, {run['kb']:.0f} KB"
                + ("" if run["caches_cleared"] else " (caches NOT cleared)")
                + (f"; {run['exceptions']} exception(s)!" if run["exceptions"] else ""),
                flush=True,
            )
    return {
        name: {
            "runs": rows,
            "caches_cleared": [x["caches_cleared"] for x in rows],
            "median": {k: median([x[k] for x in rows]) for k in ("first_s", "done_s", "kb")},
        }
        for name, rows in runs.items()
    }


# -- main -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements per figure (median reported)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, no presets")
    parser.add_argument("--pages", default="", help="comma-separated page keys (URL path; home: its title)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--quiet", type=float, default=0.5, help="seconds without activity that mean idle")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for any one idle")
    args = parser.parse_args()
    repeats = 1 if args.quick else max(args.repeats, 1)
    opt = Options(quiet_s=args.quiet, timeout_s=args.timeout)

    import plotly
    import streamlit
    from playwright.sync_api import sync_playwright

    from lossviz.presets import PRESETS

    began = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "python": platform.python_version(),
            "streamlit": streamlit.__version__,
            "plotly": plotly.__version__,
        },
        "repeats": repeats,
        "quiet_s": opt.quiet_s,
        "pages": {},
        "landscape": {},
        "train": {},
    }
    print(f"machine: {results['machine']['nproc']} CPUs, {results['machine']['cpu']}")
    print(f"load average before: {results['loadavg_before']}")
    print(f"Streamlit {streamlit.__version__}, Plotly {plotly.__version__}, repeats {repeats}", flush=True)

    with tempfile.TemporaryDirectory(prefix="lossviz-browser-") as tmp, contextlib.ExitStack() as stack:
        reference_script = Path(tmp) / "reference.py"
        reference_script.write_text(REFERENCE_SCRIPT)
        reference = stack.enter_context(served(reference_script, Path(tmp)))
        p = stack.enter_context(sync_playwright())
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        stack.callback(browser.close)
        results["versions"]["chromium"] = browser.version

        with served(ROOT / "app.py", ROOT) as app:
            pages = discover_pages(browser, app, opt)
            print("pages found: " + ", ".join(f"{pg['key']} (/{pg['path']})" for pg in pages), flush=True)
            wanted = {k.strip() for k in args.pages.split(",") if k.strip()}
            unknown = wanted - {pg["key"] for pg in pages}
            if unknown:
                raise SystemExit(
                    f"--pages: unknown {sorted(unknown)}; pages are {[pg['key'] for pg in pages]}"
                )
            pages = [pg for pg in pages if not wanted or pg["key"] in wanted]
            targets = [
                {"key": REFERENCE, "title": "minimal page (reference)", "url": reference + "/"},
                {"key": FOUR_CHARTS, "title": "bare page, 4 charts (floor)", "url": reference + "/?charts=4"},
                {
                    "key": SIDEBAR,
                    "title": "bare page, the app's sidebar (floor)",
                    "url": reference + "/?sidebar=1",
                },
            ]
            targets += [
                {"key": pg["key"], "title": pg["title"], "url": f"{app}/{pg['path']}"} for pg in pages
            ]
            results["pages"] = measure_pages(browser, targets, repeats, opt)
            if any(pg["path"] == LANDSCAPE_PATH for pg in pages):
                results["landscape"] = measure_landscape(browser, f"{app}/{LANDSCAPE_PATH}", repeats, opt)

        trainable = [pg for pg in pages if results["pages"][pg["key"]]["train_button"]]
        # a second app server, whose main menu offers 'Clear cache': every run starts from cold caches
        with served(ROOT / "app.py", ROOT, "--client.toolbarMode", "developer") as app:
            for pg in trainable:
                buttons = [(DEFAULT_RUN, TRAIN_BUTTON, True)]
                if pg["path"] == TRAIN_PATH and not args.quick:
                    buttons += [(f"preset {key}", preset.title, False) for key, preset in PRESETS.items()]
                runs = measure_train(browser, f"{app}/{pg['path']}", buttons, repeats, opt)
                for name, row in runs.items():
                    results["train"][f"{pg['key']} {name}"] = {"page": pg["title"], "path": pg["path"],
                                                               "run": name, **row}  # fmt: skip

    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.monotonic() - began, 1)
    results["targets"] = check_targets(results)
    print_tables(results)
    print("\nTargets:")
    for line in results["targets"]:
        print("  " + line)
    print(f"\nload average after: {results['loadavg_after']}; total {results['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
