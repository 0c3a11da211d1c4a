"""Figures of the Loss Shapes view: curves on a natural axis, swept families, the K=3 simplex heat map, and
the page's text: panel titles, the properties table's rows and help, long formulas broken into lines.

Numpy and lossviz.results in, go.Figure (or plain text and rows) out; colours from lossviz.figures.palette.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from lossviz.figures.palette import color_for, lean, legend_below, sequential_colors, styled_figure
from lossviz.results import Curve, Surface

Series = Literal["value", "derivative", "weight"]
BATCH_DASH = "dash"  # batch-level losses (Curve.batch) are drawn dashed: a whole batch, not one sample
# What each column of the properties table checks (its help text); "calibrated" only for binary losses.
CHECKS = {
    "bounded": "|L| stops growing over 10⁴ × the plotted range (checked numerically).",
    "convex": "Second differences ≥ 0 on the plotted range of the model output (logit margin for p_y).",
    "calibrated": "Binary margin losses: convex with φ'(0) < 0 (Bartlett et al. 2006); n/a when not convex.",
    "symmetric": "Σ_k L(z, k) constant over random logits (classification); L(r) = L(−r) (regression).",
}
MARKS = {True: "✓", False: "✗", None: "n/a"}
# Long formulas break into lines at (top-level text, end of its line, start of the next).
BREAKS = (
    (r",\ ", ",", ""),
    (r",\quad ", ",", ""),
    (r";\ ", ";", ""),
    (r"\ \text{", "", r"\text{"),
    (" = ", "", "= "),
)
PAIRS = ("{}", "()", "[]", (r"\begin", r"\end"))  # a break inside any of these is not top-level


# ------------------------------------------------------------------------------------------------- text


def break_latex(latex: str, width: int = 50) -> str:
    """A formula over `width` characters broken into centred lines at its top-level BREAKS (at ` = ` only
    after a long left side, in a line with no text or environment), so a narrow column does not clip it."""
    lines = [latex]
    for at, end, start in BREAKS:
        broken: list[str] = []
        for line in lines:
            parts: list[str] = []
            for part in line.split(at):
                if parts and any(parts[-1].count(a) != parts[-1].count(b) for a, b in PAIRS):
                    parts[-1] += at + part  # that break sits inside a group
                else:
                    parts.append(part)
            keep = at == " = " and (len(parts[0]) < 20 or r"\text" in line or r"\begin" in line)
            if len(line) <= width or keep:
                parts = [line]
            broken += [start * (i > 0) + p + end * (i < len(parts) - 1) for i, p in enumerate(parts)]
        lines = broken
    return lines[0] if len(lines) == 1 else r"\begin{gathered}" + r" \\ ".join(lines) + r"\end{gathered}"


def panel_titles(value_title: str, derivative: str, reference: str | None) -> dict[str, dict[str, str]]:
    """Titles of the curve panels by series: value, derivative, and weight vs the reference loss if any."""
    panels = {
        "value": dict(title=value_title, y_title="loss L", y_name="L"),
        "derivative": dict(
            title=f"Derivative {derivative} (autograd)", y_title=derivative, y_name=derivative
        ),
    }
    if reference:
        weight = f"|∇L| / |∇ {reference}|"
        panels["weight"] = dict(
            title=f"Relative sample weight vs {reference}", y_title=weight, y_name="weight"
        )
    return panels


def property_columns(binary: bool) -> list[str]:
    """The checks the properties table shows: 'calibrated' only for binary margin losses."""
    return [k for k in CHECKS if k != "calibrated" or binary]


def property_rows(
    rows: Mapping[str, Mapping[str, Any]], first: str, *, binary: bool, derivative: str
) -> list[dict[str, Any]]:
    """The properties table: one row per label of loss_properties results, ✓/✗/n/a marks, value and slope."""
    if not rows:
        return []
    some = next(iter(rows.values()))
    origin, slope = f"L at {some['origin']}", f"slope {derivative} at origin"
    checks = property_columns(binary)
    return [
        {first: label, **{k: MARKS[r[k]] for k in checks}, origin: r["value_at_0"], slope: r["slope_at_0"]}
        for label, r in rows.items()
    ]


# ------------------------------------------------------------------------------------------------ curves


def _series(curve: Curve, series: Series) -> np.ndarray:
    if series == "value":
        return curve.y
    if series == "derivative":
        if curve.dy is None:
            raise ValueError(f"curve {curve.name!r} has no derivative")
        return curve.dy
    if series == "weight":
        if curve.weight is None:
            raise ValueError(f"curve {curve.name!r} has no weight series (regression curves have none)")
        return curve.weight
    raise ValueError(f"series must be one of ('value', 'derivative', 'weight'), got {series!r}")


def robust_range(
    arrays: Sequence[np.ndarray], spread: float = 2.5, floor: float | None = None
) -> list[float]:
    """A y range showing every curve's shape: one curve exploding does not flatten the rest.

    The top is at most `spread` x the median of the per-curve maxima (the full data stays in the hover).
    """
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return [0.0, 1.0]
    highs = np.array([a.max() for a in finite])
    lows = np.array([a.min() for a in finite])
    scale = max(float(np.median([np.abs(a).max() for a in finite])), 1e-12)  # a typical curve's size
    top = min(float(highs.max()), spread * scale) if highs.max() > 0 else float(highs.max())
    bottom = max(float(lows.min()), -spread * scale) if lows.min() < 0 else float(lows.min())
    if floor is not None:
        bottom = min(bottom, floor)
    pad = 0.05 * max(top - bottom, 1e-9)
    return [bottom - pad, top + pad]


def _hover(symbol: str, y_name: str, extra: str = "") -> str:
    return (
        f"<b>%{{fullData.name}}</b><br>{symbol} = %{{x:.4g}}{extra}<br>{y_name} = %{{y:.5g}}<extra></extra>"
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


def _customdata(curve: Curve) -> tuple[np.ndarray | None, str]:
    """(customdata, hover line) adding p_y and the logit margin to multiclass curves; the one that is the
    x axis itself is read from x, not sent twice."""
    if curve.p_y is None or curve.margin is None:
        return None, ""
    if _same(curve.p_y, curve.x):  # the p_y axis
        return lean(curve.margin), "<br>logit margin = %{customdata:.3f}"
    if _same(curve.margin, curve.x):  # the logit-margin axis
        return lean(curve.p_y), "<br>p_y = %{customdata:.4f}"
    data = lean(np.stack([curve.p_y, curve.margin], axis=-1))  # (P, 2)
    return data, "<br>p_y = %{customdata[0]:.4f}, logit margin = %{customdata[1]:.3f}"


def _line(curve: Curve, y: np.ndarray, color: str, width: float, symbol: str, y_name: str) -> go.Scatter:
    customdata, extra = _customdata(curve)
    return go.Scatter(
        x=lean(curve.x),
        y=lean(y),
        mode="lines",
        name=curve.label or curve.name,
        line=dict(color=color, width=width, dash=BATCH_DASH if curve.batch else None),
        customdata=customdata,
        hovertemplate=_hover(symbol, y_name, extra),
    )


def curves_figure(
    *,
    curves: Sequence[Curve],
    series: Series = "value",
    title: str = "",
    x_title: str = "",
    y_title: str = "",
    symbol: str = "x",
    y_name: str = "L",
    height: int = 420,
) -> go.Figure:
    """Several losses overlaid on one axis, each in its loss colour; batch-level losses (Curve.batch) dashed.

    Each Curve is one entry: its name gives the colour, its label the legend text (the name when empty).
    """
    fig = styled_figure(title, x_title, y_title, height)
    ys = [_series(curve, series) for curve in curves]
    for curve, y in zip(curves, ys, strict=True):
        fig.add_trace(_line(curve, y, color_for(curve.name), 2.5, symbol, y_name))
    _finish(fig, series, ys)
    legend_below(fig, [c.label or c.name for c in curves], axis_title=bool(x_title))
    return fig


def sweep_figure(
    *,
    curves: Sequence[Curve],
    series: Series = "value",
    title: str = "",
    x_title: str = "",
    y_title: str = "",
    symbol: str = "x",
    y_name: str = "L",
    height: int = 420,
) -> go.Figure:
    """A family of curves of one loss (one per swept value, in order), coloured along the sequential scale."""
    fig = styled_figure(title, x_title, y_title, height)
    colors = sequential_colors(max(1, len(curves)))
    ys = [_series(curve, series) for curve in curves]
    for curve, y, color in zip(curves, ys, colors, strict=True):
        fig.add_trace(_line(curve, y, color, 2.2, symbol, y_name))
    _finish(fig, series, ys)
    legend_below(fig, [c.label or c.name for c in curves], axis_title=bool(x_title))
    return fig


def _finish(fig: go.Figure, series: Series, ys: list[np.ndarray]) -> None:
    if series == "weight":
        low, high = robust_range(ys, floor=0.0)
        fig.update_yaxes(range=[max(low, -0.05), min(max(high, 1.5), 5.0)])
        fig.add_hline(
            y=1.0,
            line=dict(color="#555", width=1, dash="dot"),
            annotation_text="reference loss = 1",
            annotation_position="bottom right",
            annotation_font_size=11,
        )
    else:
        fig.update_yaxes(range=robust_range(ys, floor=0.0 if series == "value" else None))


def _triangle() -> tuple[list[float], list[float]]:
    """The simplex's outline with p_y as the vertical coordinate (the top vertex at p_y = 1)."""
    return [0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0]


def simplex_figure(
    *,
    surface: Surface,
    title: str = "",
    vertex_labels: tuple[str, str, str] = ("y (true class)", "class 2", "class 3"),
    value_name: str = "L",
    height: int = 460,
) -> go.Figure:
    """Ternary heat map of a K=3 loss over the probability simplex, true class at the top vertex.

    surface.z is the loss, NaN outside the triangle; surface.probs (ny, nx, 3), when set, feeds the hover.
    The vertical coordinate is p_y = ys / (√3/2), drawn at aspect √3/2 so the triangle stays equilateral and
    the hover reads p_y from y: only (p_2, p_3) travel as customdata, at float32.
    """
    h = math.sqrt(3.0) / 2.0
    fig = styled_figure(title, "", "", height)
    finite = surface.z[np.isfinite(surface.z)]
    zmax = float(np.quantile(finite, 0.97)) if finite.size else 1.0
    zmin = float(finite.min()) if finite.size else 0.0
    customdata = None
    if surface.probs is not None:  # (ny, nx, 2) = (p_2, p_3); p_y is y
        # zeros, not NaN, outside the triangle (no hover there): NaN's base64 is full of '/', which the
        # chart's JSON escapes to six characters
        customdata = lean(np.nan_to_num(surface.probs[..., 1:], nan=0.0))
    fig.add_trace(
        go.Contour(
            x=lean(surface.xs),
            y=lean(np.asarray(surface.ys) / h),
            z=lean(surface.z),
            zmin=zmin,
            zmax=max(zmax, zmin + 1e-9),
            zauto=False,
            ncontours=16,
            contours=dict(coloring="heatmap", showlines=True),
            line=dict(width=0.6, color="rgba(255,255,255,0.55)"),
            connectgaps=False,
            colorscale="Viridis",
            colorbar=dict(title=dict(text=value_name), thickness=14),
            customdata=customdata,
            hovertemplate=(
                "p_y = %{y:.3f}<br>p_2 = %{customdata[0]:.3f}<br>p_3 = %{customdata[1]:.3f}"
                f"<br>{value_name} = %{{z:.4g}}<extra></extra>"
                if customdata is not None
                else f"{value_name} = %{{z:.4g}}<extra></extra>"
            ),
            hoverongaps=False,
        )
    )
    tx, ty = _triangle()
    fig.add_trace(go.Scatter(x=tx, y=ty, mode="lines", line=dict(color="#333", width=1.5), hoverinfo="skip"))
    for (x, y, anchor, shift), text in zip(
        [(0.5, 1.0, "bottom", 6), (0.0, 0.0, "top", -6), (1.0, 0.0, "top", -6)], vertex_labels, strict=True
    ):
        fig.add_annotation(
            x=x, y=y, text=text, showarrow=False, yanchor=anchor, yshift=shift, font=dict(size=12)
        )
    fig.update_xaxes(visible=False, range=[-0.08, 1.08])
    pad = 0.08 / h  # the same 0.08 margin as on x, in units of p_y
    fig.update_yaxes(visible=False, range=[-pad, 1.0 + pad], scaleanchor="x", scaleratio=h)
    fig.update_layout(showlegend=False, hovermode="closest")
    return fig
