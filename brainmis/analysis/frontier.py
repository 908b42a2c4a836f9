"""The removal frontier: how much brain alignment a method removes for how much LM loss.

A point is one (setting, condition) of the comparison whose runs share a reversal recipe:
its method is ``lambda`` (a fixed reversal strength, ``model.grl_lambda``; the ramp's
maximum under the ``dann`` schedule) or ``budget`` (``model.lm_budget``, the controller's
relative LM-loss budget), or ``none`` for the conditions without reversal (``tuned``,
``lm_only``: one point each, no parameter), read from each run's LightningCLI ``config.yaml``; its parameter is
that value. Points of one method, base condition (``model.condition``), dataset and backbone
(the ``model.pretrained_path`` folder name) form a line, ordered by the parameter: a sweep.

Both axes are against the ``preserving`` control of the same subject (the same training
pressure without brain information), so the pretrained model's drift under fine-tuning is
not counted as removal. Per run, with the subject's reference (brain r_p, LM loss L_p):

- brain-alignment drop: ``r_p - r`` (mean voxel r of the fresh ridge read-out), and as a
  share of the reference ``100 (r_p - r) / r_p`` (%);
- LM-loss change: ``100 (L / L_p - 1)`` (%, relative, held-out run).

The reference of a run is the mean over preserving runs of its subject, of its own fold and
seed where there are such (held-out LM loss differs between folds: another test run), chosen
in this order: of the same setting with the same lambda and budget (``matched``), of the same setting
(``setting``), of the same dataset and backbone in any setting (``backbone``). A subject's
value is the mean over its folds and seeds; a point is the mean over subjects with the
s.e.m. over subjects (the subject is the unit of replication; the error bars are subject
spread, not window or fold spread). Preserving is the reference, so it is no point.

``frontier.csv``: for each line and target LM change (``TARGET_LM_CHANGES``, %) the drop
found by linear interpolation along the sweep (between the two consecutive parameter values
whose LM changes bracket the target; the first such segment in parameter order), on the
subject-averaged points, with the interpolated parameter; ``n_subjects`` and ``*_sem`` come
from interpolating each subject's own line the same way. A target outside the sweep's LM
changes is not extrapolated (empty, with ``status`` saying which side). ``frontier_points.csv``
holds the points. Without a line of two or more points (no sweep) there is no frontier
and none of its files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainmis.analysis.comparison import Comparison, RunRow
from brainmis.analysis.statistics import mean_and_sem
from brainmis.analysis.tables import write_csv
from brainmis.errors import BrainmisInputError
from brainmis.run_folder.layout import CONFIG_FILE
from brainmis.structured_files import read_mapping

REFERENCE_CONDITION = "preserving"
TARGET_LM_CHANGES = (0.5, 1.0, 2.0, 5.0)  # percent above the reference's held-out LM loss
FRONTIER_FILE = "frontier.csv"
FRONTIER_POINTS_FILE = "frontier_points.csv"
FRONTIER_FIGURE = "frontier.png"
# Conditions without reversal: method "none", a single point without a parameter.
UNREVERSED_CONDITIONS = ("tuned", "lm_only", "pretrained")
DEFAULT_GRL_LAMBDA = 0.05  # brainmis.models.module.BrainMisalignmentModule's default


@dataclass(frozen=True)
class Recipe:
    """What a run's config says about its reversal: base condition, method, parameter."""

    backbone: str
    condition: str
    method: str  # "lambda" | "budget" | "none" (tuned, lm_only)
    parameter: float
    grl_lambda: float
    lm_budget: float | None


def _model_section(config: dict[str, Any]) -> dict[str, Any]:
    model = config.get("model") or {}
    if isinstance(model, dict) and isinstance(model.get("init_args"), dict):
        model = {**model, **model["init_args"]}
    return model if isinstance(model, dict) else {}


def read_recipe(run_dir: Path, condition: str) -> Recipe:
    """The run's ``Recipe`` from its ``config.yaml`` (absent: the module defaults and the
    identity's condition)."""
    path = Path(run_dir) / CONFIG_FILE
    model = _model_section(read_mapping(path, "LightningCLI config")) if path.is_file() else {}
    try:
        grl_lambda = float(model.get("grl_lambda", DEFAULT_GRL_LAMBDA))
        budget = model.get("lm_budget")
        budget = None if budget is None else float(budget)
    except (TypeError, ValueError) as error:
        raise BrainmisInputError(path, f"model.grl_lambda / model.lm_budget: {error}") from None
    backbone = Path(str(model.get("pretrained_path", ""))).name or "-"
    base = str(model.get("condition") or condition)
    if base in UNREVERSED_CONDITIONS:  # no reversal: grl_lambda means nothing here
        method, parameter = "none", math.nan
    else:
        method, parameter = ("budget", budget) if budget is not None else ("lambda", grl_lambda)
    return Recipe(backbone, base, method, parameter, grl_lambda, budget)


@dataclass(frozen=True)
class FrontierPoint:
    """One (setting, condition): means over ``n_subjects`` and their s.e.m."""

    line: str
    model: str
    dataset: str
    condition: str
    method: str
    parameter: float
    reference: str
    n_subjects: int
    n_runs: int
    lm_change_pct: float
    lm_change_pct_sem: float
    brain_drop: float
    brain_drop_sem: float
    brain_drop_pct: float
    brain_drop_pct_sem: float
    reference_brain: float
    reference_lm_loss: float


@dataclass(frozen=True)
class FrontierTargetRow:
    """The drop a line reaches at one target LM change (linear interpolation)."""

    line: str
    dataset: str
    method: str
    target_lm_change_pct: float
    status: str  # "interpolated" | "below the sweep" | "above the sweep"
    parameter: float
    brain_drop: float
    brain_drop_pct: float
    n_subjects: int
    brain_drop_sem: float
    brain_drop_pct_sem: float


@dataclass
class Frontier:
    """``points``; ``subject_values[(line, condition, model)]``: subject -> (lm %, drop, drop %);
    ``run_values``: per run (line, lm %, drop) - the operating points."""

    points: list[FrontierPoint] = field(default_factory=list)
    targets: list[FrontierTargetRow] = field(default_factory=list)
    subject_values: dict[tuple[str, str, str], dict[str, tuple[float, float, float]]] = field(
        default_factory=dict
    )
    run_values: list[tuple[str, float, float]] = field(default_factory=list)

    def lines(self) -> list[str]:
        return list(dict.fromkeys(point.line for point in self.points))

    def line_points(self, line: str) -> list[FrontierPoint]:
        """The points of ``line`` in parameter order."""
        members = [point for point in self.points if point.line == line]
        return sorted(members, key=lambda point: (point.parameter, point.model, point.condition))


def _line_name(recipe: Recipe, dataset: str, qualify: bool) -> str:
    method = {"lambda": ", fixed lambda", "budget": ", LM budget"}.get(recipe.method, "")
    label = f"{recipe.condition}{method}"
    return f"{label} ({recipe.backbone}, {dataset})" if qualify else label


def _reference_rows(
    row: RunRow, recipe: Recipe, references: list[tuple[RunRow, Recipe]]
) -> tuple[str, list[RunRow]]:
    same_subject = [
        (other, r)
        for other, r in references
        if (other.dataset, other.subject) == (row.dataset, row.subject)
    ]
    # the same fold and seed first: held-out LM loss differs between folds (other test run)
    same_unit = [(o, r) for o, r in same_subject if (o.fold, o.seed) == (row.fold, row.seed)]
    same_subject = same_unit or same_subject
    same_setting = [(o, r) for o, r in same_subject if o.model == row.model]
    matched = [
        o
        for o, r in same_setting
        if (r.grl_lambda, r.lm_budget) == (recipe.grl_lambda, recipe.lm_budget)
    ]
    if matched:
        return "matched", matched
    if same_setting:
        return "setting", [o for o, _ in same_setting]
    backbone = [o for o, r in same_subject if r.backbone == recipe.backbone]
    return ("backbone", backbone) if backbone else ("none", [])


def removal_frontier(comparison: Comparison) -> Frontier | None:
    """The frontier of ``comparison``'s runs; None without a preserving run, or without a
    line of two or more points (a sweep)."""
    rows = [
        row
        for row in comparison.runs
        if math.isfinite(row.lm_loss) and math.isfinite(row.brain_alignment)
    ]
    recipes = {row.path: read_recipe(Path(row.path), row.condition) for row in rows}
    references = [
        (row, recipes[row.path])
        for row in rows
        if recipes[row.path].condition == REFERENCE_CONDITION
    ]
    others = [row for row in rows if recipes[row.path].condition != REFERENCE_CONDITION]
    if not references or not others:
        return None
    qualify = len({(row.dataset, recipes[row.path].backbone) for row in rows}) > 1
    frontier = Frontier()
    groups: dict[tuple[str, str, str], list[RunRow]] = {}
    for row in others:
        groups.setdefault((row.model, row.dataset, row.condition), []).append(row)
    for (model, dataset, condition), members in groups.items():
        recipe = recipes[members[0].path]
        if len({recipes[row.path] for row in members}) > 1:
            raise BrainmisInputError(
                Path(members[0].path),
                f"the runs of {model}/{dataset}/{condition} differ in their reversal recipe "
                "(condition, grl_lambda or lm_budget): give each recipe its own condition name",
            )
        line = _line_name(recipe, dataset, qualify)
        per_subject: dict[str, list[tuple[float, float, float]]] = {}
        reference_kinds: set[str] = set()
        brain_refs, lm_refs = [], []
        for row in members:
            kind, reference = _reference_rows(row, recipe, references)
            if not reference:
                continue
            reference_kinds.add(kind)
            brain_ref = float(np.mean([r.brain_alignment for r in reference]))
            lm_ref = float(np.mean([r.lm_loss for r in reference]))
            brain_refs.append(brain_ref)
            lm_refs.append(lm_ref)
            lm_change = 100.0 * (row.lm_loss / lm_ref - 1.0)
            drop = brain_ref - row.brain_alignment
            drop_pct = 100.0 * drop / brain_ref if brain_ref != 0 else math.nan
            per_subject.setdefault(row.subject, []).append((lm_change, drop, drop_pct))
            frontier.run_values.append((line, lm_change, drop))
        if not per_subject:
            continue
        subject_means = {s: tuple(np.mean(v, axis=0)) for s, v in per_subject.items()}
        frontier.subject_values[(line, condition, model)] = subject_means
        columns = list(zip(*subject_means.values(), strict=True))
        lm, drop, drop_pct = (mean_and_sem(column) for column in columns)
        frontier.points.append(
            FrontierPoint(
                line,
                model,
                dataset,
                condition,
                recipe.method,
                recipe.parameter,
                "+".join(sorted(reference_kinds)),
                lm.n,
                sum(map(len, per_subject.values())),
                lm.mean,
                lm.sem,
                drop.mean,
                drop.sem,
                drop_pct.mean,
                drop_pct.sem,
                float(np.mean(brain_refs)),
                float(np.mean(lm_refs)),
            )
        )
    if not any(len(frontier.line_points(line)) >= 2 for line in frontier.lines()):
        return None  # no sweep: the tradeoff figure already shows single points
    for line in frontier.lines():
        frontier.targets += _target_rows(frontier, line)
    return frontier


def interpolate_along(
    xs: list[float], ys: list[float], target: float
) -> tuple[str, float, int, float]:
    """Walk the polyline ``(xs, ys)`` in order; at the first segment whose x-range holds
    ``target``, return ``("interpolated", y, segment, t)`` (``t`` in [0, 1] along it); else
    ``("below the sweep" | "above the sweep", nan, -1, nan)``."""
    for i in range(len(xs) - 1):
        x0, x1 = xs[i], xs[i + 1]
        if min(x0, x1) <= target <= max(x0, x1):
            t = 0.0 if x1 == x0 else (target - x0) / (x1 - x0)
            return "interpolated", ys[i] + t * (ys[i + 1] - ys[i]), i, t
    if len(xs) == 1 and xs[0] == target:
        return "interpolated", ys[0], 0, 0.0
    side = "below the sweep" if target < min(xs) else "above the sweep"
    return side, math.nan, -1, math.nan


def _target_rows(frontier: Frontier, line: str) -> list[FrontierTargetRow]:
    points = frontier.line_points(line)
    xs = [p.lm_change_pct for p in points]
    rows = []
    for target in TARGET_LM_CHANGES:
        status, drop, segment, t = interpolate_along(xs, [p.brain_drop for p in points], target)
        _, drop_pct, _, _ = interpolate_along(xs, [p.brain_drop_pct for p in points], target)
        parameter = math.nan
        if segment >= 0:
            p0 = points[segment].parameter
            p1 = points[min(segment + 1, len(points) - 1)].parameter
            parameter = p0 + t * (p1 - p0)
        subject_drops, subject_pcts = [], []
        subjects = sorted(
            {s for p in points for s in frontier.subject_values[(line, p.condition, p.model)]}
        )
        for subject in subjects:
            values = [
                frontier.subject_values[(line, p.condition, p.model)].get(subject) for p in points
            ]
            if any(value is None for value in values):
                continue  # a subject without the whole sweep has no line of its own
            sx = [value[0] for value in values]
            own = interpolate_along(sx, [value[1] for value in values], target)
            own_pct = interpolate_along(sx, [value[2] for value in values], target)
            if own[0] == "interpolated":
                subject_drops.append(own[1])
                subject_pcts.append(own_pct[1])
        spread, spread_pct = mean_and_sem(subject_drops), mean_and_sem(subject_pcts)
        rows.append(
            FrontierTargetRow(
                line,
                points[0].dataset,
                points[0].method,
                target,
                status,
                parameter,
                drop,
                drop_pct,
                spread.n,
                spread.sem,
                spread_pct.sem,
            )
        )
    return rows


def write_frontier_tables(frontier: Frontier, out_dir: Path) -> list[str]:
    """Write ``frontier.csv`` and ``frontier_points.csv``; return their names."""
    write_csv(frontier.targets, FrontierTargetRow, out_dir / FRONTIER_FILE)
    write_csv(frontier.points, FrontierPoint, out_dir / FRONTIER_POINTS_FILE)
    return [FRONTIER_FILE, FRONTIER_POINTS_FILE]


def _number(value: float, digits: int = 3, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _setting_label(point: FrontierPoint) -> str:
    if point.method == "none":
        return point.condition
    return f"{point.method} {point.parameter:g} ({point.condition})"


def summary_lines(frontier: Frontier) -> list[str]:
    """The printed summary's section: each line's points and its drop at the targets."""
    lines = ["== removal frontier (vs preserving of the same subject; mean over subjects)"]
    for line in frontier.lines():
        lines.append(f"{line}:")
        for p in frontier.line_points(line):
            lines.append(
                f"  {_setting_label(p)}: LM {_number(p.lm_change_pct, 2, True)}%"
                f"  brain r drop {_number(p.brain_drop, 3, True)} ({_number(p.brain_drop_pct, 0, True)}%)"
                f"  n={p.n_subjects}"
            )
        cells = [
            f"+{row.target_lm_change_pct:g}%: "
            + (
                f"{_number(row.brain_drop, 3, True)}"
                if row.status == "interpolated"
                else row.status
            )
            for row in frontier.targets
            if row.line == line
        ]
        lines.append("  drop at LM change " + "; ".join(cells))
    lines.append(
        "(drop = preserving's brain r - the condition's, LM change = relative to preserving's "
        f"held-out LM loss; at a target: linear interpolation along the sweep; {FRONTIER_FILE})"
    )
    return lines
