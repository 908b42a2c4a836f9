"""Every number of a condition comparison, computed from a filled study matrix.

The subject is the unit of replication for every test (DESIGN 5). Within a setting (model,
dataset) each per-run metric (``UNIT_METRICS``: LM loss, brain alignment, probing scores) is
first averaged over the folds and training seeds of a subject; condition summaries are the
mean and s.e.m. over subjects, and paired t-tests and Wilcoxon signed-rank tests between two
conditions pair the subjects (each subject's mean over the (fold, seed) units that both
conditions have). Probing follows ``brainmis.analysis.probing_stats`` (wins per task over
probe seeds, win rates, rank-normalised scores, Wilcoxon across subjects with Holm over
subfields).

Every paired test and contrast also reports its effect: the mean difference over subjects
with a percentile bootstrap 95% interval (subjects resampled) and Cohen's d_z
(``brainmis.analysis.statistics.paired_effect``).

A contrast "a vs b" asks whether a is higher than b (differences are a - b); with
``alternative="greater"`` its brain-alignment and probing tests are one-sided (a > b). LM
loss tests, and pairs of conditions that are not contrasts, are always two-sided; every row
records the alternative it used.

Pooling ("all"): when several settings have a metric, the settings (models) of one
(dataset, subject) are averaged first, so each (dataset, subject) is one pair: a person is
never counted twice, and the subjects of different datasets are different people.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from brainmis.analysis import probing_stats
from brainmis.analysis.probing_stats import (
    AGGREGATE_SCOPES,
    MEAN_OF_SUBFIELDS,
    OVERALL,
    ProbingTable,
    nan_mean,
)
from brainmis.analysis.results import VOXEL_COUNT_KEYS, RunResults
from brainmis.analysis.statistics import (
    holm_correction,
    mean_and_sem,
    paired_effect,
    paired_t_test,
    wilcoxon_signed_rank,
)
from brainmis.analysis.study import SettingMatrix, StudyMatrix
from brainmis.analysis.task_groups import TaskGroups
from brainmis.run_folder.identity import IDENTITY_FIELDS, RunIdentity

PAPER_CONTRASTS = (("preserving", "misaligned"), ("tuned", "preserving"))
POOLED = "all"
# The alternatives a contrast may be tested with (a contrast is oriented: "less" = swap a, b).
CONTRAST_ALTERNATIVES = ("two-sided", "greater")

# Per-run metrics compared between conditions: name -> description (with units).
UNIT_METRICS = {
    "lm_loss": "held-out LM loss (nats/token)",
    "brain_alignment": "brain alignment, mean voxel r (fresh ridge)",
    "brain_alignment_median": "brain alignment, median voxel r",
    "brain_alignment_nc_normalized": "mean over voxels with ceiling > 0 of r / ceiling",
    "brain_alignment_nc_ratio_of_means": "mean voxel r / mean noise ceiling (voxels with a ceiling)",
    "brain_alignment_nc_median": "median over voxels with ceiling > 0 of r / ceiling",
    "brain_rsa": "RSA: Spearman r of the TR x TR RDMs of features and responses (held-out run)",
    "brain_cka": "linear CKA of features and responses (held-out run)",
    "brain_procrustes": "orthogonal Procrustes similarity 1 - d^2/2 (held-out run)",
    "probing_score": "probing score, overall = mean over tasks",
    "probing_score_mean_of_subfields": "probing score, mean of the subfield means",
    "probing_rank_score": "rank-normalised probing score, overall = mean over tasks",
    "probing_rank_score_mean_of_subfields": "rank-normalised probing score, mean of subfields",
}
# Metrics whose tests stay two-sided whatever ``--alternative`` says: the paper expects no
# difference in LM loss between the conditions.
TWO_SIDED_METRICS = frozenset({"lm_loss"})

Unit = tuple[str, int, int]  # (subject, fold, training seed): RunIdentity.unit
SubjectKey = tuple[str, str]  # (dataset, subject): one person


@dataclass(frozen=True)
class ComparisonOptions:
    """How to compare: contrasts (a, b), test settings and the probing metric preference."""

    contrasts: tuple[tuple[str, str], ...] = PAPER_CONTRASTS
    alpha: float = 0.05
    equal_var: bool = False
    zero_method: str = "wilcox"
    alternative: str = "two-sided"
    metric_preference: tuple[str, ...] = probing_stats.DEFAULT_METRICS
    task_groups: TaskGroups | None = None

    def __post_init__(self) -> None:
        if self.alternative not in CONTRAST_ALTERNATIVES:
            raise ValueError(
                f"alternative must be one of {CONTRAST_ALTERNATIVES}, got {self.alternative!r} "
                "(contrasts are oriented: for 'less', swap the conditions of the contrast)"
            )

    def alternative_for(self, metric: str, pair: tuple[str, str]) -> str:
        """The alternative of the tests of ``metric`` between ``pair = (a, b)``: the option for
        a contrast, two-sided for LM loss and for pairs that are not contrasts."""
        if metric in TWO_SIDED_METRICS or pair not in self.contrasts:
            return "two-sided"
        return self.alternative


@dataclass(frozen=True)
class RunRow:
    """One run's row of ``runs.csv``: its identity (the ``IDENTITY_FIELDS`` of
    ``brainmis.run_folder.identity``, first and in that order) and its per-run results."""

    model: str
    dataset: str
    subject: str
    fold: int
    condition: str
    seed: int
    path: str
    lm_epoch: int
    lm_loss: float
    brain_epoch: int
    brain_alignment: float
    brain_alignment_median: float
    brain_alignment_nc_normalized: float
    brain_alignment_nc_ratio_of_means: float
    brain_alignment_nc_median: float
    n_voxels: int
    ceiling_source: str
    ceiling_threshold: float
    n_voxels_total: int
    n_non_finite_dropped: int
    n_constant_dropped: int
    n_in_roi: int
    n_above_ceiling: int
    n_selected: int
    probing_epoch: int
    probing_score: float
    probing_score_mean_of_subfields: float
    probing_rank_score: float
    probing_rank_score_mean_of_subfields: float
    # encoder-free measures (brain_similarity.json, all voxels); NaN when not evaluated
    brain_rsa: float = math.nan
    brain_cka: float = math.nan
    brain_procrustes: float = math.nan

    @property
    def identity(self) -> RunIdentity:
        return RunIdentity(**{name: getattr(self, name) for name in IDENTITY_FIELDS})


@dataclass(frozen=True)
class ConditionSummaryRow:
    """Mean ± s.e.m. over subjects (``n``) of the subject means (``n_runs`` runs in all)."""

    model: str
    dataset: str
    condition: str
    metric: str
    n: int
    n_runs: int
    mean: float
    sem: float


@dataclass(frozen=True)
class PairedTestRow:
    """Paired tests over subjects (``n_pairs``; pooled rows: (dataset, subject) pairs)."""

    model: str
    dataset: str
    metric: str
    condition_a: str
    condition_b: str
    alternative: str
    n_pairs: int
    mean_a: float
    mean_b: float
    mean_difference: float
    ci_low: float
    ci_high: float
    effect_size_dz: float
    t: float
    p_t: float
    wilcoxon_r_plus: float
    wilcoxon_r_minus: float
    p_wilcoxon: float


@dataclass(frozen=True)
class ProbingScoreRow:
    model: str
    dataset: str
    condition: str
    scope: str
    n_subjects: int
    score_mean: float
    score_sem: float
    rank_score_mean: float
    rank_score_sem: float


@dataclass(frozen=True)
class TaskTestRow:
    model: str
    dataset: str
    condition_a: str
    condition_b: str
    subject: str
    fold: int
    seed: int
    task: str
    subfield: str
    metric: str
    mean_a: float
    mean_b: float
    t: float
    df: float
    p_a_greater: float
    p_b_greater: float
    win_a: bool
    win_b: bool


@dataclass(frozen=True)
class WinRateRow:
    model: str
    dataset: str
    condition_a: str
    condition_b: str
    subject: str
    fold: int
    seed: int
    scope: str
    win_rate_a: float
    win_rate_b: float


@dataclass(frozen=True)
class ContrastRow:
    """A contrast a vs b in one scope: subject means, win rates and the Wilcoxon test."""

    model: str
    dataset: str
    condition_a: str
    condition_b: str
    scope: str
    alternative: str
    n_subjects: int
    score_a: float
    score_b: float
    difference: float
    ci_low: float
    ci_high: float
    effect_size_dz: float
    win_rate_a: float
    win_rate_b: float
    wilcoxon_r_plus: float
    wilcoxon_r_minus: float
    p: float
    p_holm: float
    # Bootstrap interval over tasks of win_rate_a - win_rate_b (NaN: pooled settings, the
    # groups-versus-rest rows, a scope of one task).
    win_difference_ci_low: float = math.nan
    win_difference_ci_high: float = math.nan


@dataclass
class Comparison:
    """All tables of a comparison, plus the probing arrays the figures draw from."""

    options: ComparisonOptions
    matrix: StudyMatrix
    runs: list[RunRow] = field(default_factory=list)
    condition_summaries: list[ConditionSummaryRow] = field(default_factory=list)
    paired_tests: list[PairedTestRow] = field(default_factory=list)
    probing_scores: list[ProbingScoreRow] = field(default_factory=list)
    task_tests: list[TaskTestRow] = field(default_factory=list)
    win_rates: list[WinRateRow] = field(default_factory=list)
    contrasts: list[ContrastRow] = field(default_factory=list)
    group_contrasts: list[ContrastRow] = field(default_factory=list)
    probing_tables: dict[tuple[str, str], ProbingTable] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _value(number: float | None) -> float:
    return math.nan if number is None else float(number)


def condition_pairs(
    conditions: list[str], contrasts: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """Every unordered pair of ``conditions`` once, oriented as in ``contrasts`` where listed."""
    pairs = [pair for pair in contrasts if pair[0] in conditions and pair[1] in conditions]
    covered = {frozenset(pair) for pair in pairs}
    for pair in itertools.combinations(conditions, 2):
        if frozenset(pair) not in covered:
            pairs.append(pair)
    return pairs


def subject_means(by_unit: dict[Unit, float]) -> dict[str, list[float]]:
    """``unit -> value`` grouped by subject: ``subject -> [values of its folds and seeds]``."""
    grouped: dict[str, list[float]] = {}
    for (subject, _, _), value in sorted(by_unit.items()):
        grouped.setdefault(subject, []).append(value)
    return grouped


def paired_subject_means(
    by_unit_a: dict[Unit, float], by_unit_b: dict[Unit, float]
) -> dict[str, tuple[float, float]]:
    """Per subject, the means of a and of b over the (fold, seed) units both conditions have.

    Matching the units keeps fold effects out of a subject's difference when a cell is missing
    (``--allow-incomplete``); with a complete matrix it is the plain subject mean of each.
    """
    common = sorted(set(by_unit_a) & set(by_unit_b))
    grouped: dict[str, list[tuple[float, float]]] = {}
    for unit in common:
        grouped.setdefault(unit[0], []).append((by_unit_a[unit], by_unit_b[unit]))
    return {
        subject: (float(np.mean([a for a, _ in pairs])), float(np.mean([b for _, b in pairs])))
        for subject, pairs in grouped.items()
    }


def pool_settings(
    per_setting: list[dict[SubjectKey, tuple[float, ...]]],
) -> dict[SubjectKey, tuple[float, ...]]:
    """Average the values of one (dataset, subject) over the settings (models) that have it.

    Each input maps a (dataset, subject) to a tuple of values (e.g. the subject means of a
    and b); the output has one entry per (dataset, subject), each value the NaN-ignoring mean
    of that position over the settings, so a person is one pair however many models saw them.
    """
    grouped: dict[SubjectKey, list[tuple[float, ...]]] = {}
    for values in per_setting:
        for key, value in values.items():
            grouped.setdefault(key, []).append(value)
    return {
        key: tuple(float(v) for v in nan_mean(np.array(values, dtype=float), axis=0))
        for key, values in sorted(grouped.items())
    }


@dataclass
class _SettingProbing:
    table: ProbingTable
    scores: np.ndarray
    rank_scores: np.ndarray


def _setting_probing(setting: SettingMatrix, options: ComparisonOptions) -> _SettingProbing | None:
    table = probing_stats.build_probing_table(
        setting.runs, setting.conditions, options.metric_preference
    )
    if table is None:
        return None
    return _SettingProbing(
        table, probing_stats.subfield_scores(table), probing_stats.rank_normalised_scores(table)
    )


_NO_COUNTS = dict.fromkeys(VOXEL_COUNT_KEYS, -1)
SIMILARITY_UNIT_METRICS = {"brain_rsa": "rsa", "brain_cka": "cka", "brain_procrustes": "procrustes"}


def _similarity_values(results: RunResults) -> dict[str, float]:
    """The run's ``brain_rsa``, ``brain_cka``, ``brain_procrustes`` (NaN when absent)."""
    measured = results.similarity or {}
    return {
        metric: measured.get(name, math.nan) for metric, name in SIMILARITY_UNIT_METRICS.items()
    }


def _unit_values(
    setting: SettingMatrix, probing: _SettingProbing | None
) -> tuple[list[RunRow], dict[str, dict[str, dict[Unit, float]]]]:
    """One RunRow per run, and metric -> condition -> unit -> value."""
    rows, values = [], {metric: {} for metric in UNIT_METRICS}
    probing_values = dict.fromkeys(
        (
            "probing_score",
            "probing_score_mean_of_subfields",
            "probing_rank_score",
            "probing_rank_score_mean_of_subfields",
        ),
        math.nan,
    )
    for loaded in setting.runs:
        identity, results = loaded.identity, loaded.results
        brain = results.brain
        run_probing = dict(probing_values)
        if probing is not None and results.probing is not None:
            c = probing.table.conditions.index(identity.condition)
            u = probing.table.units.index(identity.unit)
            overall = probing.table.scopes.index(OVERALL)
            of_subfields = probing.table.scopes.index(MEAN_OF_SUBFIELDS)
            run_probing = {
                "probing_score": float(probing.scores[c, u, overall]),
                "probing_score_mean_of_subfields": float(probing.scores[c, u, of_subfields]),
                "probing_rank_score": float(probing.rank_scores[c, u, overall]),
                "probing_rank_score_mean_of_subfields": float(
                    probing.rank_scores[c, u, of_subfields]
                ),
            }
        selection = None if brain is None else brain.voxel_selection
        counts = _NO_COUNTS if selection is None else selection.counts
        row = RunRow(
            **identity.as_dict(),
            path=str(loaded.run.path),
            lm_epoch=-1 if results.lm_epoch is None else results.lm_epoch,
            lm_loss=_value(results.lm_loss),
            brain_epoch=-1 if brain is None else brain.epoch,
            brain_alignment=math.nan if brain is None else brain.mean,
            brain_alignment_median=math.nan if brain is None else brain.median,
            brain_alignment_nc_normalized=math.nan if brain is None else brain.nc_normalized,
            brain_alignment_nc_ratio_of_means=(
                math.nan if brain is None else brain.nc_ratio_of_means
            ),
            brain_alignment_nc_median=math.nan if brain is None else brain.nc_median,
            n_voxels=-1 if brain is None else brain.n_voxels,
            ceiling_source="" if selection is None else selection.ceiling_source,
            ceiling_threshold=math.nan if selection is None else selection.threshold,
            n_voxels_total=counts["total"],
            n_non_finite_dropped=counts["non_finite_dropped"],
            n_constant_dropped=counts["zero_variance_dropped"],
            n_in_roi=counts["in_roi"],
            n_above_ceiling=counts["above_ceiling"],
            n_selected=counts["selected"],
            probing_epoch=-1 if results.probing is None else results.probing.epoch,
            **run_probing,
            **_similarity_values(results),
        )
        rows.append(row)
        for metric in UNIT_METRICS:
            value = getattr(row, metric)
            if math.isfinite(value):
                values[metric].setdefault(identity.condition, {})[identity.unit] = value
    return rows, values


def _paired_row(
    model: str,
    dataset: str,
    metric: str,
    pair: tuple[str, str],
    by_subject: dict[SubjectKey, tuple[float, ...]],
    options: ComparisonOptions,
) -> PairedTestRow:
    """Paired t-test and Wilcoxon over the subjects (or pooled subjects) of ``by_subject``."""
    keys = sorted(key for key, (a, b) in by_subject.items() if math.isfinite(a - b))
    a = np.array([by_subject[key][0] for key in keys])
    b = np.array([by_subject[key][1] for key in keys])
    alternative = options.alternative_for(metric, pair)
    t_test = paired_t_test(a, b, alternative=alternative)
    signed_rank = wilcoxon_signed_rank(
        a, b, zero_method=options.zero_method, alternative=alternative
    )
    effect = paired_effect(a - b)
    return PairedTestRow(
        model=model,
        dataset=dataset,
        metric=metric,
        condition_a=pair[0],
        condition_b=pair[1],
        alternative=alternative,
        n_pairs=len(keys),
        mean_a=float(a.mean()) if keys else math.nan,
        mean_b=float(b.mean()) if keys else math.nan,
        mean_difference=t_test.mean_difference,
        ci_low=effect.ci_low,
        ci_high=effect.ci_high,
        effect_size_dz=effect.dz,
        t=t_test.t,
        p_t=t_test.p,
        wilcoxon_r_plus=signed_rank.r_plus,
        wilcoxon_r_minus=signed_rank.r_minus,
        p_wilcoxon=signed_rank.p if keys else math.nan,
    )


def _probing_score_rows(setting: SettingMatrix, probing: _SettingProbing) -> list[ProbingScoreRow]:
    """Mean ± s.e.m. over subjects of the subject-mean scores, per condition and scope."""
    rows = []
    table = probing.table
    scores = probing_stats.subject_means(table, probing.scores)
    ranks = probing_stats.subject_means(table, probing.rank_scores)
    for c, condition in enumerate(table.conditions):
        for s, scope in enumerate(table.scopes):
            score = mean_and_sem(scores[c, :, s])
            rank = mean_and_sem(ranks[c, :, s])
            if score.n == 0:
                continue
            rows.append(
                ProbingScoreRow(
                    setting.model,
                    setting.dataset,
                    condition,
                    scope,
                    score.n,
                    score.mean,
                    score.sem,
                    rank.mean,
                    rank.sem,
                )
            )
    return rows


# Per scope, (dataset, subject) -> (score a, score b, win rate a, win rate b).
_ContrastData = dict[str, dict[SubjectKey, tuple[float, float, float, float]]]
# Per scope, the bootstrap interval over tasks of the win-rate difference a - b.
_WinIntervals = dict[str, tuple[float, float]]


def _win_intervals(table: ProbingTable, wins: probing_stats.PairWins) -> _WinIntervals:
    low, high = probing_stats.win_difference_intervals(table, wins)
    return {scope: (float(low[s]), float(high[s])) for s, scope in enumerate(table.scopes)}


def _pair_tables(
    setting: SettingMatrix,
    probing: _SettingProbing,
    pair: tuple[str, str],
    options: ComparisonOptions,
    comparison: Comparison,
) -> tuple[_ContrastData, _WinIntervals]:
    """Task tests and win rates of one pair; returns its subject-level values per scope and
    the win-rate intervals over tasks.

    A subject's scores are its means over the units where both conditions have the scope.
    """
    table = probing.table
    wins = probing_stats.pair_wins(table, pair[0], pair[1], options.alpha, options.equal_var)
    means = probing_stats.seed_means(table)
    a_index, b_index = table.conditions.index(pair[0]), table.conditions.index(pair[1])
    for u, (subject, fold, seed) in enumerate(table.units):
        for t, task in enumerate(table.tasks):
            if not wins.tested[u, t]:
                continue
            comparison.task_tests.append(
                TaskTestRow(
                    setting.model,
                    setting.dataset,
                    pair[0],
                    pair[1],
                    subject,
                    fold,
                    seed,
                    task,
                    table.task_subfields[t],
                    table.metrics[t],
                    float(means[a_index, u, t]),
                    float(means[b_index, u, t]),
                    float(wins.t[u, t]),
                    float(wins.df[u, t]),
                    float(wins.p_a_greater[u, t]),
                    float(wins.p_b_greater[u, t]),
                    bool(wins.win_a[u, t]),
                    bool(wins.win_b[u, t]),
                )
            )
    rate_a, rate_b = probing_stats.win_rates(table, wins)
    for u, (subject, fold, seed) in enumerate(table.units):
        for s, scope in enumerate(table.scopes):
            if math.isnan(rate_a[u, s]):
                continue
            comparison.win_rates.append(
                WinRateRow(
                    setting.model,
                    setting.dataset,
                    pair[0],
                    pair[1],
                    subject,
                    fold,
                    seed,
                    scope,
                    float(rate_a[u, s]),
                    float(rate_b[u, s]),
                )
            )
    data = _contrast_data(setting.dataset, probing, pair, rate_a, rate_b)
    return data, _win_intervals(table, wins)


def _contrast_data(
    dataset: str,
    probing: _SettingProbing,
    pair: tuple[str, str],
    rate_a: np.ndarray,
    rate_b: np.ndarray,
) -> _ContrastData:
    """Subject-level (score a, score b, win rate a, win rate b) of one pair per scope; a
    subject's scores are its means over the units where both conditions have the scope."""
    table = probing.table
    a_index, b_index = table.conditions.index(pair[0]), table.conditions.index(pair[1])
    units_a, units_b = probing.scores[a_index], probing.scores[b_index]
    both = np.isfinite(units_a) & np.isfinite(units_b)
    subject_a = probing_stats.subject_means(table, np.where(both, units_a, np.nan))
    subject_b = probing_stats.subject_means(table, np.where(both, units_b, np.nan))
    subject_wins_a = probing_stats.subject_means(table, rate_a)
    subject_wins_b = probing_stats.subject_means(table, rate_b)
    data: _ContrastData = {}
    for s, scope in enumerate(table.scopes):
        by_subject = data.setdefault(scope, {})
        for j, subject in enumerate(table.subjects):
            if math.isfinite(subject_a[j, s]) and math.isfinite(subject_b[j, s]):
                by_subject[(dataset, subject)] = (
                    float(subject_a[j, s]),
                    float(subject_b[j, s]),
                    float(subject_wins_a[j, s]),
                    float(subject_wins_b[j, s]),
                )
    return data


def _contrast_rows(
    model: str,
    dataset: str,
    pair: tuple[str, str],
    data: _ContrastData,
    options: ComparisonOptions,
    win_intervals: _WinIntervals | None = None,
) -> list[ContrastRow]:
    """One row per scope; Holm across the subfields, each aggregate scope tested on its own."""
    win_intervals = win_intervals or {}
    subfields = sorted(scope for scope in data if scope not in AGGREGATE_SCOPES)
    scopes = subfields + [scope for scope in AGGREGATE_SCOPES if scope in data]
    alternative = options.alternative_for("probing_score", pair)
    raw = []
    for scope in scopes:
        keys = sorted(data[scope])
        values = np.array([data[scope][key] for key in keys], dtype=float).reshape(-1, 4)
        test = wilcoxon_signed_rank(
            values[:, 0], values[:, 1], zero_method=options.zero_method, alternative=alternative
        )
        raw.append((scope, values, test))
    subfield_p = [
        test.p if values.size else math.nan
        for scope, values, test in raw
        if scope not in AGGREGATE_SCOPES
    ]
    adjusted = iter(holm_correction(subfield_p))
    rows = []
    for scope, values, test in raw:
        p = test.p if values.size else math.nan
        p_holm = math.nan if scope in AGGREGATE_SCOPES else float(next(adjusted))
        score_a = float(values[:, 0].mean()) if values.size else math.nan
        score_b = float(values[:, 1].mean()) if values.size else math.nan
        effect = paired_effect(values[:, 0] - values[:, 1])
        rows.append(
            ContrastRow(
                model,
                dataset,
                pair[0],
                pair[1],
                scope,
                alternative,
                len(values),
                score_a,
                score_b,
                score_a - score_b,
                effect.ci_low,
                effect.ci_high,
                effect.dz,
                mean_and_sem(values[:, 2]).mean,
                mean_and_sem(values[:, 3]).mean,
                test.r_plus,
                test.r_minus,
                p,
                p_holm,
                *win_intervals.get(scope, (math.nan, math.nan)),
            )
        )
    return rows


def _regrouped(probing: _SettingProbing, label_of: dict[str, str]) -> _SettingProbing:
    """The same scores with every task's subfield replaced by its label (a task group)."""
    table = replace(probing.table, task_subfields=[label_of[task] for task in probing.table.tasks])
    return _SettingProbing(
        table, probing_stats.subfield_scores(table), probing_stats.rank_normalised_scores(table)
    )


def _labelled_data(
    dataset: str,
    probing: _SettingProbing,
    label_of: dict[str, str],
    pair: tuple[str, str],
    options: ComparisonOptions,
) -> tuple[_ContrastData, _WinIntervals]:
    """Subject-level contrast data of ``pair`` per label (no aggregate scopes), and the
    win-rate intervals over tasks."""
    grouped = _regrouped(probing, label_of)
    wins = probing_stats.pair_wins(
        grouped.table, pair[0], pair[1], options.alpha, options.equal_var
    )
    rate_a, rate_b = probing_stats.win_rates(grouped.table, wins)
    data = _contrast_data(dataset, grouped, pair, rate_a, rate_b)
    labelled = {scope: values for scope, values in data.items() if scope not in AGGREGATE_SCOPES}
    return labelled, _win_intervals(grouped.table, wins)


def versus_rest_label(group: str) -> str:
    """The scope of the test "did the tasks of ``group`` change more than the others?"."""
    return f"{group} vs rest"


def _task_group_data(
    dataset: str, probing: _SettingProbing, pair: tuple[str, str], options: ComparisonOptions
) -> tuple[_ContrastData, _ContrastData, _WinIntervals]:
    """Per task group, the subjects' scores of a and b; per named group, the subjects'
    change a - b in the group against the change in every other task (win rates NaN); and
    the groups' win-rate intervals over tasks."""
    groups = options.task_groups
    tasks = probing.table.tasks
    by_group, intervals = _labelled_data(
        dataset, probing, {t: groups.group_of(t) for t in tasks}, pair, options
    )
    versus_rest: _ContrastData = {}
    for group in groups.named_groups:
        labels = {t: group if groups.group_of(t) == group else "rest" for t in tasks}
        split, _ = _labelled_data(dataset, probing, labels, pair, options)
        if group not in split or "rest" not in split:
            continue
        common = sorted(set(split[group]) & set(split["rest"]))
        versus_rest[versus_rest_label(group)] = {
            key: (
                split[group][key][0] - split[group][key][1],
                split["rest"][key][0] - split["rest"][key][1],
                math.nan,
                math.nan,
            )
            for key in common
        }
    return by_group, versus_rest, intervals


def _task_group_rows(
    model: str,
    dataset: str,
    pair: tuple[str, str],
    data: tuple[_ContrastData, _ContrastData, _WinIntervals],
    options: ComparisonOptions,
) -> list[ContrastRow]:
    """Rows of the groups (Holm across the groups), then of each named group against the
    rest (Holm across those)."""
    by_group, versus_rest, intervals = data
    rows = _contrast_rows(model, dataset, pair, by_group, options, intervals) if by_group else []
    if versus_rest:
        rows += _contrast_rows(model, dataset, pair, versus_rest, options)
    return rows


def _condition_summaries(
    setting: SettingMatrix, values: dict[str, dict[str, dict[Unit, float]]]
) -> list[ConditionSummaryRow]:
    """Mean ± s.e.m. over subjects of each subject's mean over its folds and seeds."""
    rows = []
    for metric, by_condition in values.items():
        for condition in setting.conditions:
            if condition not in by_condition:
                continue
            grouped = subject_means(by_condition[condition])
            summary = mean_and_sem([float(np.mean(v)) for v in grouped.values()])
            rows.append(
                ConditionSummaryRow(
                    setting.model,
                    setting.dataset,
                    condition,
                    metric,
                    summary.n,
                    sum(len(v) for v in grouped.values()),
                    summary.mean,
                    summary.sem,
                )
            )
    return rows


def compare_study(matrix: StudyMatrix, options: ComparisonOptions) -> Comparison:
    """Compute every table of the comparison of ``matrix`` (see the module docstring)."""
    comparison = Comparison(options=options, matrix=matrix)
    pooled_paired: dict[tuple[str, tuple[str, str]], list[dict[SubjectKey, tuple]]] = {}
    pooled_probing: dict[tuple[str, str], list[_ContrastData]] = {}
    pooled_groups: dict[
        tuple[str, str], list[tuple[_ContrastData, _ContrastData, _WinIntervals]]
    ] = {}
    for setting in matrix.settings:
        probing = _setting_probing(setting, options)
        rows, values = _unit_values(setting, probing)
        comparison.runs.extend(rows)
        comparison.condition_summaries.extend(_condition_summaries(setting, values))
        pairs = condition_pairs(setting.conditions, options.contrasts)
        for metric, by_condition in values.items():
            for pair in pairs:
                if pair[0] not in by_condition or pair[1] not in by_condition:
                    continue
                by_subject = {
                    (setting.dataset, subject): means
                    for subject, means in paired_subject_means(
                        by_condition[pair[0]], by_condition[pair[1]]
                    ).items()
                }
                comparison.paired_tests.append(
                    _paired_row(setting.model, setting.dataset, metric, pair, by_subject, options)
                )
                pooled_paired.setdefault((metric, pair), []).append(by_subject)
        if probing is None:
            comparison.notes.append(
                f"model={setting.model} dataset={setting.dataset}: no probing results"
            )
            continue
        comparison.probing_tables[(setting.model, setting.dataset)] = probing.table
        comparison.probing_scores.extend(_probing_score_rows(setting, probing))
        for pair in pairs:
            data, intervals = _pair_tables(setting, probing, pair, options, comparison)
            if pair in options.contrasts:
                comparison.contrasts.extend(
                    _contrast_rows(setting.model, setting.dataset, pair, data, options, intervals)
                )
                pooled_probing.setdefault(pair, []).append(data)
                if options.task_groups is not None:
                    group_data = _task_group_data(setting.dataset, probing, pair, options)
                    comparison.group_contrasts.extend(
                        _task_group_rows(setting.model, setting.dataset, pair, group_data, options)
                    )
                    pooled_groups.setdefault(pair, []).append(group_data)
    for (metric, pair), per_setting in pooled_paired.items():
        if len(per_setting) > 1:
            comparison.paired_tests.append(
                _paired_row(POOLED, POOLED, metric, pair, pool_settings(per_setting), options)
            )
    for pair in options.contrasts:
        per_setting = pooled_probing.get(pair, [])
        if len(per_setting) > 1:
            scopes = {scope for data in per_setting for scope in data}
            pooled = {
                scope: pool_settings([data.get(scope, {}) for data in per_setting])
                for scope in scopes
            }
            comparison.contrasts.extend(_contrast_rows(POOLED, POOLED, pair, pooled, options))
        per_setting_groups = pooled_groups.get(pair, [])
        if len(per_setting_groups) > 1:
            pooled_pair = tuple(
                {
                    scope: pool_settings([data[part].get(scope, {}) for data in per_setting_groups])
                    for scope in {scope for data in per_setting_groups for scope in data[part]}
                }
                for part in (0, 1)
            ) + ({},)
            comparison.group_contrasts.extend(
                _task_group_rows(POOLED, POOLED, pair, pooled_pair, options)
            )
    for pair in options.contrasts:
        if not any(
            row.condition_a == pair[0] and row.condition_b == pair[1]
            for row in comparison.contrasts
        ):
            comparison.notes.append(
                f"contrast {pair[0]} vs {pair[1]}: not computed (needs both conditions with probing results)"
            )
    return comparison
