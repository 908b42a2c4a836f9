"""PNG figures of a comparison, one set per setting (model, dataset), drawn with matplotlib Agg.

- ``probing_<setting>.png``: probing score and rank-normalised score per subfield and
  condition, then "overall (mean of tasks)" and "mean of subfields" (bars: mean over
  subjects of the subject means, whiskers: s.e.m.).
- ``brain_alignment_<setting>.png``: distribution of per-voxel r (fresh ridge read-out,
  pooled over the runs of a condition) as violins, run means as dots.
- ``training_curves_<setting>.png``: L_lm, L_ba and brain r over training steps per
  condition (mean over runs, s.e.m. band), from the TensorBoard event files.
- ``tradeoff_<setting>.png``: brain alignment against LM loss per condition (DESIGN 8: the
  price in LM loss of a change in brain alignment, made visible); runs as faint dots,
  condition means ± s.e.m. over subject means.
- ``task_groups_<setting>.png`` (``compare --task-groups``): per contrast, the probing
  change a - b of every task group and of each named group against the rest, with its 95%
  bootstrap interval over subjects and its Holm-corrected p.
- ``layer_profile_<setting>.png``: the ridge's mean voxel r (and each encoder-free measure
  evaluated) per hidden layer (0 = embeddings), per condition: mean over subjects of the
  subject means (folds, seeds averaged) ± s.e.m. (``brain_layers.json``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from brainmis.analysis.comparison import Comparison  # noqa: E402
from brainmis.analysis.curves import Curve, average_curves  # noqa: E402
from brainmis.analysis.probing_stats import AGGREGATE_SCOPES, scope_label  # noqa: E402
from brainmis.analysis.results import read_per_voxel_r  # noqa: E402
from brainmis.analysis.study import SettingMatrix  # noqa: E402

CONDITION_COLOURS = {
    "pretrained": "#7f7f7f",
    "lm_only": "#8c564b",
    "preserving": "#1f77b4",
    "misaligned": "#d62728",
    "tuned": "#2ca02c",
}
_EXTRA_COLOURS = ("#9467bd", "#ff7f0e", "#17becf", "#bcbd22", "#e377c2")
DPI = 110


@dataclass(frozen=True)
class Figure:
    """A written figure: its kind, setting and path relative to the output folder."""

    kind: str
    model: str
    dataset: str
    path: str
    caption: str


def condition_colour(condition: str, conditions: list[str]) -> str:
    """A fixed colour per paper condition; other conditions take the next extra colour."""
    if condition in CONDITION_COLOURS:
        return CONDITION_COLOURS[condition]
    others = [name for name in conditions if name not in CONDITION_COLOURS]
    return _EXTRA_COLOURS[others.index(condition) % len(_EXTRA_COLOURS)]


def setting_slug(model: str, dataset: str) -> str:
    """A file-name-safe ``<model>_<dataset>``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", f"{model}_{dataset}").strip("-")


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _save_with_condition_legend(
    figure: plt.Figure, title: str, shown: list[str], conditions: list[str], path: Path
) -> None:
    """Title, one row of condition colours under it, then save and close."""
    handles = [Patch(color=condition_colour(name, conditions), label=name) for name in shown]
    figure.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.94),
        ncol=max(1, len(handles)),
        fontsize=8,
        frameon=False,
    )
    figure.suptitle(title, fontsize=10, y=0.99)
    figure.tight_layout(rect=(0, 0, 1, 0.9))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def plot_probing(comparison: Comparison, setting: SettingMatrix, path: Path) -> bool:
    """Grouped bars of probing score and rank-normalised score per subfield and condition."""
    rows = [
        row
        for row in comparison.probing_scores
        if (row.model, row.dataset) == (setting.model, setting.dataset)
    ]
    if not rows:
        return False
    table = comparison.probing_tables[(setting.model, setting.dataset)]
    scopes, conditions = table.scopes, [c for c in setting.conditions if c in table.conditions]
    lookup = {(row.condition, row.scope): row for row in rows}
    figure, axes = plt.subplots(1, 2, figsize=(max(9.0, 2.2 * len(scopes)), 4.6))
    width = 0.8 / max(1, len(conditions))
    positions = np.arange(len(scopes))
    panels = (
        ("score_mean", "score_sem", "probing score"),
        ("rank_score_mean", "rank_score_sem", "rank-normalised score"),
    )
    for axis, (mean_name, sem_name, label) in zip(axes, panels, strict=True):
        for index, condition in enumerate(conditions):
            means = [getattr(lookup.get((condition, s)), mean_name, np.nan) for s in scopes]
            sems = [getattr(lookup.get((condition, s)), sem_name, np.nan) for s in scopes]
            offset = (index - (len(conditions) - 1) / 2) * width
            axis.bar(
                positions + offset,
                means,
                width,
                yerr=np.nan_to_num(sems),
                capsize=2,
                color=condition_colour(condition, setting.conditions),
                label=condition,
            )
        axis.set_xticks(positions, [scope_label(s) for s in scopes], rotation=30, ha="right")
        axis.set_ylabel(label)
        axis.axvline(len(scopes) - len(AGGREGATE_SCOPES) - 0.5, color="0.7", linewidth=0.8)
        axis.grid(axis="y", alpha=0.3)
    finite = [row.score_mean - row.score_sem for row in rows if np.isfinite(row.score_sem)]
    low = min(finite + [row.score_mean for row in rows])
    high = max(row.score_mean + np.nan_to_num(row.score_sem) for row in rows)
    margin = max(0.02, 0.15 * (high - low))
    axes[0].set_ylim(max(0.0, low - margin) if low >= 0 else low - margin, high + margin)
    axes[1].set_ylim(0, 1.05)
    metrics = ", ".join(sorted(set(table.metrics)))
    title = (
        f"Probing ({setting.model}, {setting.dataset}; {len(table.tasks)} tasks, {metrics}; "
        f"mean ± s.e.m. over {len(table.subjects)} subjects)"
    )
    _save_with_condition_legend(figure, title, conditions, setting.conditions, path)
    return True


def plot_brain_alignment(setting: SettingMatrix, path: Path) -> bool:
    """Violins of per-voxel r per condition (pooled over runs) with each run's mean as a dot."""
    per_condition: dict[str, list[np.ndarray]] = {}
    for loaded in setting.runs:
        brain = loaded.results.brain
        if brain is not None and brain.per_voxel_file is not None:
            values = read_per_voxel_r(brain.per_voxel_file)
            if values.size:
                per_condition.setdefault(loaded.identity.condition, []).append(values)
    conditions = [c for c in setting.conditions if c in per_condition]
    if not conditions:
        return False
    figure, axis = plt.subplots(figsize=(max(5.0, 1.5 * len(conditions) + 2), 4.2))
    pooled = [np.concatenate(per_condition[c]) for c in conditions]
    positions = np.arange(1, len(conditions) + 1)
    parts = axis.violinplot(pooled, positions, showmedians=True, showextrema=False, widths=0.8)
    for body, condition in zip(parts["bodies"], conditions, strict=True):
        body.set_facecolor(condition_colour(condition, setting.conditions))
        body.set_alpha(0.45)
    parts["cmedians"].set_color("black")
    rng = np.random.default_rng(0)
    for position, condition in zip(positions, conditions, strict=True):
        run_means = [values.mean() for values in per_condition[condition]]
        jitter = rng.uniform(-0.12, 0.12, size=len(run_means))
        axis.scatter(position + jitter, run_means, s=14, color="black", zorder=3)
    axis.axhline(0, color="0.6", linewidth=0.8)
    axis.set_xticks(positions, conditions)
    axis.set_ylabel("per-voxel Pearson r (held-out run)")
    n_runs = sum(len(per_condition[c]) for c in conditions)
    axis.set_title(
        f"Brain alignment ({setting.model}, {setting.dataset}): voxels pooled over {n_runs} runs;"
        "\ndots: run means, line: median",
        fontsize=10,
    )
    axis.grid(axis="y", alpha=0.3)
    _save(figure, path)
    return True


_CURVE_PANELS = (
    ("L_lm (LM loss)", (("train/lm_loss", "-", "train"), ("val/lm_loss", "--", "val"))),
    ("L_ba (brain loss = -mean r)", (("train/brain_loss", "-", "train"),)),
    (
        "brain r",
        (
            ("train/brain_r", "-", "head, train"),
            ("val/brain_r", "--", "head, val"),
            ("brain_alignment/mean", ":", "fresh ridge"),
        ),
    ),
)


def plot_training_curves(
    setting: SettingMatrix, path: Path, read_curves: Callable[[Path], dict[str, Curve]]
) -> bool:
    """L_lm, L_ba and brain r over steps per condition: mean over runs with an s.e.m. band."""
    curves = {loaded.run.path: read_curves(loaded.run.path) for loaded in setting.runs}
    if not any(curves.values()):
        return False
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    drawn_conditions: list[str] = []
    for axis, (title, tags) in zip(axes, _CURVE_PANELS, strict=True):
        styles = []
        for condition in setting.conditions:
            colour = condition_colour(condition, setting.conditions)
            runs = [loaded for loaded in setting.runs if loaded.identity.condition == condition]
            for tag, style, label in tags:
                members = [curves[run.run.path][tag] for run in runs if tag in curves[run.run.path]]
                if not members:
                    continue
                steps, mean, sem = average_curves(members)
                marker = "o" if steps.size <= 12 else None
                axis.plot(steps, mean, style, color=colour, marker=marker, markersize=3)
                band = np.isfinite(sem)
                axis.fill_between(
                    steps[band],
                    (mean - sem)[band],
                    (mean + sem)[band],
                    color=colour,
                    alpha=0.15,
                    linewidth=0,
                )
                if condition not in drawn_conditions:
                    drawn_conditions.append(condition)
                if (style, label) not in styles:
                    styles.append((style, label))
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if len(styles) > 1:
            handles = [
                Line2D([], [], color="black", linestyle=style, label=label)
                for style, label in styles
            ]
            axis.legend(handles=handles, fontsize=7)
        elif not styles:
            axis.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axis.transAxes)
    title = f"Training curves ({setting.model}, {setting.dataset}; mean ± s.e.m. over runs)"
    _save_with_condition_legend(figure, title, drawn_conditions, setting.conditions, path)
    return True


def _sem(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def plot_tradeoff(comparison: Comparison, setting: SettingMatrix, path: Path) -> bool:
    """Brain alignment against LM loss: runs as faint dots, condition means with s.e.m. bars."""
    runs = [
        row
        for row in comparison.runs
        if (row.model, row.dataset) == (setting.model, setting.dataset)
        and np.isfinite(row.lm_loss)
        and np.isfinite(row.brain_alignment)
    ]
    if not runs:
        return False
    figure, axis = plt.subplots(figsize=(5.6, 4.4))
    for condition in setting.conditions:
        members = [row for row in runs if row.condition == condition]
        if not members:
            continue
        colour = condition_colour(condition, setting.conditions)
        lm = np.array([row.lm_loss for row in members])
        ba = np.array([row.brain_alignment for row in members])
        axis.scatter(lm, ba, s=12, color=colour, alpha=0.35)
        subjects = sorted({row.subject for row in members})
        lm_subject = np.array([lm[[r.subject == s for r in members]].mean() for s in subjects])
        ba_subject = np.array([ba[[r.subject == s for r in members]].mean() for s in subjects])
        axis.errorbar(
            lm_subject.mean(),
            ba_subject.mean(),
            xerr=_sem(lm_subject),
            yerr=_sem(ba_subject),
            fmt="o",
            color=colour,
            markersize=7,
            capsize=3,
            label=condition,
        )
    axis.set_xlabel("held-out LM loss (nats/token)")
    axis.set_ylabel("brain alignment (mean voxel r)")
    axis.set_title(
        f"Brain alignment vs LM loss ({setting.model}, {setting.dataset})"
        "\ndots: runs; markers: mean ± s.e.m. over subjects",
        fontsize=10,
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    _save(figure, path)
    return True


def plot_task_groups(comparison: Comparison, setting: SettingMatrix, path: Path) -> bool:
    """Per contrast a panel: the change a - b of each task group (bars, 95% CI whiskers over
    subjects; hatched: a named group's change minus the rest's), Holm p above each bar."""
    key = (setting.model, setting.dataset)
    rows = [row for row in comparison.group_contrasts if (row.model, row.dataset) == key]
    pairs = list(dict.fromkeys((row.condition_a, row.condition_b) for row in rows))
    if not pairs:
        return False
    width = max(6.0, len(pairs) * (1.6 + 0.7 * len(rows) / len(pairs)))
    figure, axes = plt.subplots(1, len(pairs), figsize=(width, 4.3), squeeze=False)
    for axis, pair in zip(axes[0], pairs, strict=True):
        members = [row for row in rows if (row.condition_a, row.condition_b) == pair]
        x = np.arange(len(members))
        difference = np.array([row.difference for row in members])
        low = np.array([row.ci_low for row in members])
        high = np.array([row.ci_high for row in members])
        has_interval = np.isfinite(low) & np.isfinite(high)
        versus_rest = [row.scope.endswith(" vs rest") for row in members]
        bars = axis.bar(x, difference, color=condition_colour(pair[0], setting.conditions), alpha=0.75)
        for bar, hatched in zip(bars, versus_rest, strict=True):
            if hatched:
                bar.set_hatch("//")
        axis.errorbar(
            x[has_interval],
            difference[has_interval],
            yerr=[
                (difference - low)[has_interval],
                (high - difference)[has_interval],
            ],
            fmt="none",
            ecolor="black",
            capsize=3,
        )
        tops = np.where(has_interval, np.fmax(high, difference), difference)
        span = float(np.nanmax(np.abs(np.r_[low[has_interval], high[has_interval], difference])) or 1.0)
        for xi, top, row in zip(x, tops, members, strict=True):
            label = f"p={row.p_holm:.3g}" if np.isfinite(row.p_holm) else ""
            axis.text(xi, max(top, 0.0) + 0.04 * span, label, ha="center", fontsize=7)
        axis.axhline(0.0, color="black", linewidth=0.8)
        axis.set_xticks(x, [row.scope for row in members], rotation=30, ha="right", fontsize=8)
        axis.set_ylim(-1.25 * span, 1.35 * span)
        axis.set_title(f"{pair[0]} - {pair[1]} (n={members[0].n_subjects})", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("probing score change a - b")
    figure.suptitle(
        f"Probing change per task group ({setting.model}, {setting.dataset})\n"
        "mean over subjects, 95% CI over subjects, Holm p; hatched: group minus rest",
        fontsize=10,
    )
    _save(figure, path)
    return True


LAYER_MEASURE_LABELS = {
    "ridge_mean": "ridge: mean voxel r",
    "rsa": "RSA (Spearman r of RDMs)",
    "cka": "linear CKA",
    "procrustes": "Procrustes similarity",
}


def layer_profiles(setting: SettingMatrix) -> dict[str, dict[str, dict[int, list[float]]]]:
    """measure -> condition -> layer -> subject means (over that subject's runs)."""
    collected: dict[tuple[str, str, int, str], list[float]] = {}
    for loaded in setting.runs:
        for layer, entry in (loaded.results.layers or {}).items():
            for measure in LAYER_MEASURE_LABELS:
                value = entry.get(measure, np.nan)
                if np.isfinite(value):
                    key = (measure, loaded.identity.condition, layer, loaded.identity.subject)
                    collected.setdefault(key, []).append(value)
    profiles: dict[str, dict[str, dict[int, list[float]]]] = {}
    for (measure, condition, layer, _), values in sorted(collected.items()):
        by_layer = profiles.setdefault(measure, {}).setdefault(condition, {})
        by_layer.setdefault(layer, []).append(float(np.mean(values)))
    return profiles


def plot_layer_profile(setting: SettingMatrix, path: Path) -> bool:
    """Each measure against the hidden layer per condition: mean ± s.e.m. over subjects."""
    profiles = layer_profiles(setting)
    measures = [measure for measure in LAYER_MEASURE_LABELS if measure in profiles]
    if not measures:
        return False
    figure, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.8), squeeze=False)
    drawn: list[str] = []
    n_subjects = 0
    for axis, measure in zip(axes[0], measures, strict=True):
        for condition in setting.conditions:
            by_layer = profiles[measure].get(condition)
            if not by_layer:
                continue
            layers = np.array(sorted(by_layer))
            values = [np.array(by_layer[layer]) for layer in layers]
            mean = np.array([v.mean() for v in values])
            sem = np.array([_sem(v) for v in values])
            n_subjects = max(n_subjects, max(v.size for v in values))
            colour = condition_colour(condition, setting.conditions)
            axis.errorbar(layers, mean, yerr=sem, color=colour, marker="o", markersize=3, capsize=2)
            if condition not in drawn:
                drawn.append(condition)
        axis.set_title(LAYER_MEASURE_LABELS[measure], fontsize=10)
        axis.set_xlabel("hidden layer (0 = embeddings)")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    title = (
        f"Layer profile ({setting.model}, {setting.dataset}; held-out run; mean ± s.e.m. over "
        f"{n_subjects} subjects)"
    )
    _save_with_condition_legend(figure, title, drawn, setting.conditions, path)
    return True


def write_figures(
    comparison: Comparison, out_dir: Path, read_curves: Callable[[Path], dict[str, Curve]]
) -> list[Figure]:
    """Draw every figure of every setting into ``out_dir/figures``; return what was written."""
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for setting in comparison.matrix.settings:
        slug = setting_slug(setting.model, setting.dataset)
        name = f"{setting.model}, {setting.dataset}"
        plans = (
            (
                "probing",
                lambda p, s=setting: plot_probing(comparison, s, p),
                f"Probing score per subfield and condition ({name}).",
            ),
            (
                "brain_alignment",
                lambda p, s=setting: plot_brain_alignment(s, p),
                f"Distribution of per-voxel brain alignment per condition ({name}).",
            ),
            (
                "training_curves",
                lambda p, s=setting: plot_training_curves(s, p, read_curves),
                f"Training curves of L_lm, L_ba and brain r per condition ({name}).",
            ),
            (
                "tradeoff",
                lambda p, s=setting: plot_tradeoff(comparison, s, p),
                f"Brain alignment against LM loss per condition ({name}).",
            ),
            (
                "task_groups",
                lambda p, s=setting: plot_task_groups(comparison, s, p),
                f"Probing change per task group and contrast ({name}).",
            ),
            (
                "layer_profile",
                lambda p, s=setting: plot_layer_profile(s, p),
                f"Brain alignment per hidden layer and condition ({name}).",
            ),
        )
        for kind, draw, caption in plans:
            path = figure_dir / f"{kind}_{slug}.png"
            if draw(path):
                written.append(
                    Figure(
                        kind,
                        setting.model,
                        setting.dataset,
                        str(path.relative_to(out_dir)),
                        caption,
                    )
                )
    return written
