"""The verdict of a ground-truth world: did the comparison find what the world planted?

``world_expectations(world)`` lists what a correct pipeline must show on a world of
``brainmis.data.synthetic.worlds``; ``judge(comparison, world)`` measures each expectation on
a finished comparison (one setting, the subject as unit) and says PASS or FAIL.

- ``probed`` and ``semantic`` (the brain responds to properties that the ``targeted`` tasks
  test): brain r and the targeted tasks' score are lower after misalignment than in the
  preserving control (one-sided Wilcoxon across subjects, p < 0.05); the untargeted tasks'
  mean score moves by at most one point (0.01); misaligned LM loss is within 5% of
  preserving's; the targeted tasks are not lower after tuning than in preserving (mean
  difference >= 0).
- ``unprobed`` (the brain responds to a random partition of the vocabulary): brain r is lower
  after misalignment (p < 0.05); no task group differs, and (a stricter, separate check) no
  subfield differs (two-sided Wilcoxon, Holm-corrected p >= 0.05 across the groups, and
  across the subfields); LM loss as above.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from brainmis.analysis.comparison import Comparison, ContrastRow, PairedTestRow
from brainmis.analysis.probing_stats import AGGREGATE_SCOPES
from brainmis.data.synthetic.worlds import TARGETED, UNTARGETED

ALPHA = 0.05
UNTARGETED_TOLERANCE = 0.01  # one probing point
LM_LOSS_TOLERANCE = 0.05  # relative


@dataclass(frozen=True)
class Expectation:
    """One check: ``name`` (what is expected), ``effect`` (what is measured, with units),
    ``value`` and ``p`` (NaN when the check has no test), ``passed``."""

    name: str
    effect: str
    value: float
    p: float
    passed: bool

    def to_json(self) -> dict:
        return {
            key: (None if isinstance(v, float) and math.isnan(v) else v)
            for key, v in asdict(self).items()
        }


def _paired(comparison: Comparison, metric: str, pair: tuple[str, str]) -> PairedTestRow | None:
    for row in comparison.paired_tests:
        if (row.metric, row.condition_a, row.condition_b) == (metric, *pair) and row.model != "all":
            return row
    return None


def _group(comparison: Comparison, scope: str, pair: tuple[str, str]) -> ContrastRow | None:
    for row in comparison.group_contrasts:
        if (row.scope, row.condition_a, row.condition_b) == (scope, *pair) and row.model != "all":
            return row
    return None


def _missing(name: str) -> Expectation:
    return Expectation(
        name, "not computed (condition or result missing)", math.nan, math.nan, False
    )


def _brain_drop(comparison: Comparison) -> Expectation:
    name = "brain r: misaligned < preserving (Wilcoxon p < 0.05)"
    row = _paired(comparison, "brain_alignment", ("preserving", "misaligned"))
    if row is None:
        return _missing(name)
    return Expectation(
        name,
        f"preserving - misaligned = {row.mean_difference:+.3f} r",
        row.mean_difference,
        row.p_wilcoxon,
        row.mean_difference > 0 and row.p_wilcoxon < ALPHA,
    )


def _lm_loss(comparison: Comparison) -> Expectation:
    name = "LM loss: misaligned within 5% of preserving"
    row = _paired(comparison, "lm_loss", ("preserving", "misaligned"))
    if row is None:
        return _missing(name)
    relative = row.mean_b / row.mean_a - 1
    return Expectation(
        name,
        f"misaligned / preserving - 1 = {100 * relative:+.1f}%",
        relative,
        row.p_wilcoxon,
        abs(relative) <= LM_LOSS_TOLERANCE,
    )


def _group_check(
    comparison: Comparison, name: str, scope: str, pair: tuple[str, str], passes
) -> Expectation:
    """The expectation ``name`` on the task group ``scope`` of ``pair``; ``passes(row)``
    says whether the group's row meets it."""
    row = _group(comparison, scope, pair)
    if row is None:
        return _missing(name)
    return Expectation(
        name,
        f"{pair[0]} - {pair[1]} = {row.difference:+.3f} score",
        row.difference,
        row.p,
        passes(row),
    )


def _targeted_drop(comparison: Comparison) -> Expectation:
    return _group_check(
        comparison,
        "targeted tasks: misaligned < preserving (Wilcoxon p < 0.05)",
        TARGETED,
        ("preserving", "misaligned"),
        lambda row: row.difference > 0 and row.p < ALPHA,
    )


def _untargeted_flat(comparison: Comparison) -> Expectation:
    return _group_check(
        comparison,
        "untargeted tasks: |misaligned - preserving| <= 0.01",
        UNTARGETED,
        ("preserving", "misaligned"),
        lambda row: abs(row.difference) <= UNTARGETED_TOLERANCE,
    )


def _tuned_not_lower(comparison: Comparison) -> Expectation:
    return _group_check(
        comparison,
        "targeted tasks: tuned >= preserving (mean difference >= 0)",
        TARGETED,
        ("tuned", "preserving"),
        lambda row: row.difference >= 0,
    )


def _none_differs(name: str, rows: list[ContrastRow], kind: str) -> Expectation:
    """PASS when no row of preserving vs misaligned has Holm p < ALPHA."""
    pair = ("preserving", "misaligned")
    rows = [
        row
        for row in rows
        if (row.condition_a, row.condition_b) == pair
        and row.model != "all"
        and row.scope not in AGGREGATE_SCOPES
    ]
    if not rows:
        return _missing(name)
    smallest = min(rows, key=lambda row: row.p_holm)
    return Expectation(
        name,
        f"smallest Holm p: {smallest.scope} ({smallest.difference:+.3f} score), "
        f"{len(rows)} {kind} tested",
        smallest.difference,
        smallest.p_holm,
        all(row.p_holm >= ALPHA for row in rows),
    )


def _no_group_differs(comparison: Comparison) -> Expectation:
    name = "no task group differs (two-sided, Holm p >= 0.05)"
    return _none_differs(name, comparison.group_contrasts, "groups")


def _no_subfield_differs(comparison: Comparison) -> Expectation:
    name = "no subfield differs (two-sided, Holm p >= 0.05)"
    return _none_differs(name, comparison.contrasts, "subfields")


def judge(comparison: Comparison, world: str) -> list[Expectation]:
    """Every expectation of ``world`` measured on ``comparison`` (see the module docstring)."""
    if world == "unprobed":
        return [
            _brain_drop(comparison),
            _no_group_differs(comparison),
            _no_subfield_differs(comparison),
            _lm_loss(comparison),
        ]
    checks = [_brain_drop(comparison), _targeted_drop(comparison), _untargeted_flat(comparison)]
    checks.append(_lm_loss(comparison))
    if any(row.condition_a == "tuned" for row in comparison.group_contrasts):
        checks.append(_tuned_not_lower(comparison))
    return checks


def verdict_table(checks: list[Expectation]) -> str:
    """The printed verdict: one line per expectation with its effect, p and PASS/FAIL."""
    width = max(len(check.name) for check in checks)
    lines = [f"{'expectation':<{width}}  {'measured':<44}  {'p':>7}  verdict"]
    for check in checks:
        p = "-" if math.isnan(check.p) else f"{check.p:.4f}"
        lines.append(
            f"{check.name:<{width}}  {check.effect:<44}  {p:>7}  {'PASS' if check.passed else 'FAIL'}"
        )
    return "\n".join(lines)
