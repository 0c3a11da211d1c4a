"""The app entry point under AppTest: page config, navigation to the default page, the shared sidebar."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app.py"


def test_app_runs_and_opens_loss_shapes_by_default():
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Loss shapes"
    assert len(at.get("plotly_chart")) == 1 and at.tabs[0].label == "Loss"  # the open view only
    assert any("About" in e.label for e in at.sidebar.expander)


def test_app_reruns_after_a_widget_change_on_the_default_page():
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.radio(key="shapes.task").set_value("regression").run()
    assert not at.exception
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "residual" in figure["layout"]["xaxis"]["title"]["text"]
    assert at.query_params["task"] == "regression"


def test_app_restores_a_view_from_its_url():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"task": "binary", "losses": "logistic,hinge"})
    at.run()
    assert not at.exception and not at.warning
    assert at.multiselect(key="shapes.losses.binary").value == ["logistic", "hinge"]


def test_every_page_file_is_in_the_navigation():
    # st.navigation does not auto-discover pages/: a page missing from app.py is unreachable
    source = APP.read_text()
    pages = sorted(p.name for p in (APP.parent / "pages").glob("*.py"))
    assert pages and all(f'PAGES / "{name}"' in source for name in pages), pages


def test_app_switches_to_every_page_without_exception():
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    for name in sorted(page.name for page in (APP.parent / "pages").glob("*.py")):  # every page
        at.switch_page(f"pages/{name}").run()
        assert not at.exception, (name, at.exception)
        assert at.title, name


def test_no_page_has_a_bare_expression_that_streamlit_would_print():
    """A bare non-call expression (like `a(), b()`, a tuple) is printed by Streamlit's magic: it once showed a
    DeltaGenerator's docs on Train & compare. Magic is off in .streamlit/config.toml; this keeps pages clean
    too."""
    import ast

    for path in sorted((APP.parent / "pages").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and not isinstance(node.value, (ast.Call, ast.Await)):
                is_docstring = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                assert is_docstring, f"{path.name}:{node.lineno} is a bare expression"


def test_server_settings_keep_a_rerun_from_waiting_for_the_garbage_collector():
    """Streamlit's full gc.collect() after every rerun held the GIL for 0.1-0.25 s while the rerun's messages
    waited to be sent (0.34 s slider steps instead of 0.10 s, benchmarks/browser.py); warm_up freezes the
    server's long-lived objects so that Python's own full collections stay short too."""
    import gc

    import tomllib

    import lossviz.ui

    config = tomllib.loads((APP.parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    try:
        assert lossviz.ui.freeze_long_lived_objects() > 10_000  # torch, pandas, Plotly, Streamlit
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
