"""A deterministic guard on what each page sends: the Plotly specs of a fresh load stay within the load
budget and every chart within the step budget (a slider step resends the charts that depend on it).

Sizes are deterministic, unlike times, so this cannot flake on a loaded machine; benchmarks/browser.py
measures the bytes over the websocket and the times in a real browser.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parents[2] / "pages"
LOAD_BUDGET = 500 * 1024  # bytes of chart specs on a fresh load
CHART_BUDGET = 150 * 1024  # bytes of any one chart: the most a single control's step can resend
SMALL = {"n": "200", "epochs": "20"}

VIEWS = [
    ("loss_shapes", {}),
    ("loss_shapes", {"task": "binary"}),
    ("loss_shapes", {"task": "regression"}),
    ("loss_shapes", {"mode": "sweep"}),
    ("loss_shapes", {"view": "derivative"}),
    ("loss_shapes", {"view": "weight"}),
    ("loss_shapes", {"view": "simplex"}),
    ("train_compare", {**SMALL, "trained": "1"}),
    ("train_compare", {**SMALL, "trained": "1", "dataset": "blobs", "K": "10"}),
    ("train_compare", {**SMALL, "trained": "1", "losses": "cross_entropy,focal,gce,mae_prob,brier,nce"}),
    ("train_compare", {**SMALL, "trained": "1", "dataset": "sine", "losses": "squared,huber"}),
    ("landscape", SMALL),
    ("landscape", {**SMALL, "grid": "101"}),
    ("calibration", SMALL),
    ("rl", {}),
    ("label_noise", {}),
    ("distillation", SMALL),  # before Train: where the students start
    ("distillation", {**SMALL, "trained": "1"}),
    ("neural_collapse", {**SMALL, "trained": "1", "dataset": "blobs", "K": "4"}),
    ("calibration", {**SMALL, "margin_losses": "logistic,hinge,exponential", "losses": "cross_entropy"}),
    ("embeddings", {}),
    ("embeddings", {**SMALL, "trained": "1", "dataset": "blobs"}),
    (
        "embeddings",
        {
            "n": "1200",
            "epochs": "5",
            "trained": "1",
            "dataset": "blobs",
            "K": "10",
            "dim": "3",
            "losses": "info_nce,supcon,align_uniform,circle,multi_similarity,decoupled_contrastive",
        },
    ),
]


@pytest.mark.parametrize(("page", "query"), VIEWS, ids=[f"{p}-{'&'.join(q)}" for p, q in VIEWS])
def test_page_charts_stay_within_the_byte_budget(
    page: str, query: dict[str, str], tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("LOSSVIZ_STORE", str(tmp_path))  # the label-noise study reads the result store
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=300)
    at.query_params.update(query)
    at.run()
    assert not at.exception
    sizes = [len(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert sizes, "the view draws no chart"
    assert max(sizes) <= CHART_BUDGET, [f"{s / 1024:.0f} KB" for s in sizes]
    assert sum(sizes) <= LOAD_BUDGET, [f"{s / 1024:.0f} KB" for s in sizes]
    for chart in at.get("plotly_chart"):  # drawn through lossviz.ui.charts: margins reserved, laid out once
        margin = json.loads(chart.proto.spec)["layout"].get("margin", {})
        assert {"l", "r", "b"} <= set(margin), margin
