"""Figures of the two LM-loss analyses of ``brainmis compare`` (matplotlib Agg).

- ``lm_distribution_<setting>.png`` (``brainmis.analysis.lm_distribution``): per condition
  the distribution of the held-out windows' LM losses: each run's empirical CDF (thin) and
  the subject-averaged quantile function (thick: the mean over subjects of each subject's
  quantiles at 1..99%), with the 5/50/95% levels marked.
- ``frontier.png`` (``brainmis.analysis.frontier``): brain-alignment drop against LM-loss
  change, both against the preserving control of the same subject; one marker per point
  (mean over subjects, bars: s.e.m. over subjects) labelled with its parameter, lines
  joining the points of a sweep in parameter order, each run's operating point as a faint
  dot, the target LM changes of ``frontier.csv`` as dotted verticals.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from brainmis.analysis.figures import DPI, condition_colour  # noqa: E402
from brainmis.analysis.frontier import TARGET_LM_CHANGES, Frontier  # noqa: E402
from brainmis.analysis.lm_distribution import CURVE_LEVELS, LMDistributions  # noqa: E402

LINE_COLOURS = ("#d62728", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#2ca02c", "#e377c2")


def _distribution_colour(condition: str, shown: list[str]) -> str:
    """The paper conditions' colours with up to 5 others; beyond that (a sweep's many named
    conditions) a distinct tab10 colour per condition, preserving keeping its blue."""
    if len(shown) <= 6:
        return condition_colour(condition, shown)
    if condition == "preserving":
        return condition_colour(condition, shown)
    others = [name for name in shown if name != "preserving"]
    palette = plt.get_cmap("tab10").colors[1:] + plt.get_cmap("Dark2").colors
    return matplotlib.colors.to_hex(palette[others.index(condition) % len(palette)])


def plot_lm_distribution(
    distributions: LMDistributions, key: tuple[str, str], conditions: list[str], path: Path
) -> bool:
    """The window-loss distributions of one setting ``key = (model, dataset)``."""
    by_condition = distributions.runs.get(key)
    if not by_condition:
        return False
    figure, axis = plt.subplots(figsize=(6.4, 4.6))
    levels = np.array(CURVE_LEVELS)
    shown = [c for c in conditions if c in by_condition]
    for condition in shown:
        colour = _distribution_colour(condition, shown)
        for windows in by_condition[condition].values():
            losses = np.sort(windows.lm_loss)
            cdf = np.arange(1, losses.size + 1) / losses.size
            axis.step(losses, cdf, where="post", color=colour, alpha=0.25, linewidth=0.8)
        curve = distributions.curves[key][condition]
        n = len({unit[0] for unit in by_condition[condition]})
        axis.plot(curve, levels, color=colour, linewidth=2.2, label=f"{condition} (n={n})")
        marks = [int(np.argmin(np.abs(levels - q))) for q in (0.05, 0.5, 0.95)]
        axis.plot(curve[marks], levels[marks], "o", color=colour, markersize=4)
    axis.set_xlabel("held-out LM loss of a window (nats/token)")
    axis.set_ylabel("cumulative share of windows")
    axis.set_title(
        f"LM loss per held-out window ({key[0]}, {key[1]})\n"
        "thin: each run's ECDF; thick: mean over subjects of the quantiles",
        fontsize=10,
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return True


def _parameter_label(method: str, parameter: float) -> str:
    if method == "none":
        return ""
    return f"λ={parameter:g}" if method == "lambda" else f"budget {parameter * 100:g}%"


def plot_frontier(frontier: Frontier, path: Path) -> bool:
    """The removal frontier of every line (see the module docstring)."""
    if not frontier.points:
        return False
    figure, axis = plt.subplots(figsize=(7.0, 5.0))
    for target in TARGET_LM_CHANGES:
        axis.axvline(target, color="#999999", linestyle=":", linewidth=0.8, zorder=0)
    axis.axhline(0.0, color="#555555", linewidth=0.8, zorder=0)
    axis.axvline(0.0, color="#555555", linewidth=0.8, zorder=0)
    for position, line in enumerate(frontier.lines()):
        colour = LINE_COLOURS[position % len(LINE_COLOURS)]
        points = frontier.line_points(line)
        runs = [(x, y) for name, x, y in frontier.run_values if name == line]
        if runs:
            xs, ys = zip(*runs, strict=True)
            axis.scatter(xs, ys, s=10, color=colour, alpha=0.3, zorder=2)
        x = np.array([p.lm_change_pct for p in points])
        y = np.array([p.brain_drop for p in points])
        axis.plot(x, y, "-", color=colour, linewidth=1.5, zorder=3, label=line)
        axis.errorbar(
            x,
            y,
            xerr=np.nan_to_num([p.lm_change_pct_sem for p in points]),
            yerr=np.nan_to_num([p.brain_drop_sem for p in points]),
            fmt="o" if points[0].method == "lambda" else "s",
            color=colour,
            markersize=6,
            capsize=3,
            zorder=4,
        )
        most = max(p.n_subjects for p in frontier.points)
        for point in points:
            fewer = f" (n={point.n_subjects})" if point.n_subjects < most else ""
            axis.annotate(
                _parameter_label(point.method, point.parameter) + fewer,
                (point.lm_change_pct, point.brain_drop),
                textcoords="offset points",
                xytext=(5, 5) if point.method == "lambda" else (6, -11),  # budgets below
                fontsize=7,
                color=colour,
            )
    counts = sorted({point.n_subjects for point in frontier.points})
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    axis.set_xlabel("held-out LM-loss change vs preserving (%)")
    axis.set_ylabel("brain-alignment drop vs preserving (Δ mean voxel r)")
    axis.set_title(
        f"Removal frontier: mean over subjects (n={n}) ± s.e.m.; faint dots: runs\n"
        f"dotted: LM-change targets of frontier.csv ({', '.join(f'+{t:g}%' for t in TARGET_LM_CHANGES)})",
        fontsize=9,
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return True
