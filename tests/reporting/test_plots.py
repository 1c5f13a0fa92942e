"""Plots a reader understands without the log, read back from the figures matplotlib drew (not their pixels): a
title that says what was measured, BM25 and ΘT as reference lines, the chosen trial inside the axes, axes named as
the paper names them, and one style for every plot."""

import math

import pytest

from taskvec_ir.pipeline.selection.choice import Choice, Fold, curve_plot
from taskvec_ir.reporting.plots import STYLE, heading, layer_norms_plot, sensitivity_plot

TITLE = heading("cranfield", "minilm_demo", "dev", 67)
# The chosen trial lies at the corner of the data: α and λ at their largest, the best value.
TRIALS = [
    {"number": 0, "value": 0.31, "lam": 0.2, "params": {"alpha.value": 0.0, "lam.value": 0.2}},
    {"number": 1, "value": 0.35, "lam": 0.5, "params": {"alpha.value": 0.5, "lam.value": 0.5}},
    {"number": 2, "value": 0.42, "lam": 1.0, "params": {"alpha.value": 1.0, "lam.value": 1.0}},
]


def chosen_inside_axes(ax, marker) -> bool:
    """The chosen marker's circle (size s, in points²) lies wholly inside the axes' box, in display pixels."""
    ax.figure.canvas.draw()
    box = ax.get_window_extent()
    radius = math.sqrt(marker.get_sizes()[0]) / 2 * ax.figure.dpi / 72
    (x, y), *_ = ax.transData.transform(marker.get_offsets())
    return box.x0 < x - radius and x + radius < box.x1 and box.y0 < y - radius and y + radius < box.y1


def test_a_sweeps_plot_says_what_was_measured_shows_the_baselines_and_the_chosen_trial(tmp_path):
    fig = sensitivity_plot(TRIALS, tmp_path / "s.png", "ndcg@10", 2, TITLE, {"BM25": 0.28, "ΘT": 0.33})
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert fig._suptitle.get_text() == "cranfield dev (67 queries) · minilm_demo"
    alpha, lam = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert alpha.get_xlabel() == "α" and lam.get_xlabel() == "λ (BM25 weight)"
    for ax, x in ((alpha, 1.0), (lam, 1.0)):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"BM25: 0.2800", "ΘT: 0.3300"}
        assert list(lines["BM25: 0.2800"].get_ydata()) == [0.28, 0.28]
        assert list(lines["ΘT: 0.3300"].get_ydata()) == [0.33, 0.33]
        (chosen,) = [c for c in ax.collections if c.get_label() == "chosen"]
        assert chosen.get_offsets().tolist() == [[x, 0.42]] and not chosen.get_clip_on()
        assert chosen_inside_axes(ax, chosen)
    assert fig.axes[-1].get_ylabel() == "λ (BM25 weight)"  # the α panel's colour bar


def test_the_selection_curve_has_the_title_and_its_chosen_alpha_inside_the_axes(tmp_path):
    curve = [{"fold": None, "alpha": a, "lam": 0.3, "value": v} for a, v in ((0.0, 0.2), (0.5, 0.25), (1.0, 0.3))]
    choice = Choice("nqc", "nqc on dev", [Fold(None, 1.0, 0.3)], curve)
    fig = curve_plot(choice, tmp_path / "c.png", TITLE)
    (ax,) = fig.axes
    assert ax.get_title().splitlines() == [TITLE, "selection=nqc (chosen α circled)"] and ax.get_xlabel() == "α"
    (chosen,) = ax.collections
    assert chosen.get_offsets().tolist() == [[1.0, 0.3]] and chosen_inside_axes(ax, chosen)


@pytest.mark.parametrize("plot", ["sensitivity", "curve", "layers"])
def test_every_plot_has_the_one_style(plot, tmp_path):
    if plot == "sensitivity":
        fig = sensitivity_plot(TRIALS, tmp_path / "p.png", "ndcg@10", 2, TITLE, {"BM25": 0.28})
    elif plot == "curve":
        curve = [{"fold": None, "alpha": a, "lam": 0.3, "value": a} for a in (0.0, 1.0)]
        fig = curve_plot(Choice("nqc", "nqc", [Fold(None, 1.0, 0.3)], curve), tmp_path / "p.png", TITLE)
    else:
        norms = {"vectors": {"domain": {"layer_norms": {"0": 1.0, "1": 2.0}, "norm_ratio": 0.1}}}
        fig = layer_norms_plot(norms, tmp_path / "p.png")
    assert fig.dpi == STYLE["figure.dpi"]
    for ax in (ax for ax in fig.axes if ax.get_label() != "<colorbar>"):
        assert ax.yaxis.get_gridlines()[0].get_visible()  # the light grid
        assert ax.yaxis.get_gridlines()[0].get_alpha() == STYLE["grid.alpha"]
        legend = ax.get_legend()
        assert legend.get_texts()[0].get_fontsize() == pytest.approx(
            fig.axes[0].xaxis.label.get_fontsize() * 0.833, 0.01
        )
