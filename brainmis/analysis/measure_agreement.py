"""Do RSA, CKA and Procrustes point the same way as the ridge? One verdict per condition pair.

For each setting (and the pooled rows) and each pair of conditions a vs b that ``compare``
tested, the paired test of an encoder-free measure (``brain_rsa``, ``brain_cka``,
``brain_procrustes``; :mod:`brainmis.evaluation.brain.similarity`) is set beside the paired
test of the ridge's mean voxel r (``brain_alignment``) over the same subjects. The verdict
compares the signs of the two mean differences a - b over subjects: ``agree`` (same sign),
``disagree`` (opposite signs) or ``n/a`` (a difference is zero or missing). The measure's
interval and p-value stay beside it, so an "agree" on a tiny, uncertain difference reads as
what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from brainmis.analysis.comparison import SIMILARITY_UNIT_METRICS, Comparison, PairedTestRow

REFERENCE_METRIC = "brain_alignment"


@dataclass(frozen=True)
class AgreementRow:
    """One measure's direction against the ridge's for one condition pair (differences a - b,
    means over subjects of the subject means; CI: the measure's bootstrap 95% interval)."""

    model: str
    dataset: str
    condition_a: str
    condition_b: str
    metric: str
    n_pairs: int
    ridge_difference: float
    difference: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float
    verdict: str


def direction_verdict(reference: float, difference: float) -> str:
    """``agree`` when both differences have the same sign, ``disagree`` when opposite,
    ``n/a`` when either is zero or not finite."""
    if not (math.isfinite(reference) and math.isfinite(difference)):
        return "n/a"
    if reference == 0 or difference == 0:
        return "n/a"
    return "agree" if (reference > 0) == (difference > 0) else "disagree"


def measure_agreement(comparison: Comparison) -> list[AgreementRow]:
    """Every (setting, pair, encoder-free measure) with a paired test beside the ridge's."""
    reference: dict[tuple[str, str, str, str], PairedTestRow] = {
        (row.model, row.dataset, row.condition_a, row.condition_b): row
        for row in comparison.paired_tests
        if row.metric == REFERENCE_METRIC
    }
    rows = []
    for row in comparison.paired_tests:
        if row.metric not in SIMILARITY_UNIT_METRICS or row.n_pairs == 0:
            continue
        ridge = reference.get((row.model, row.dataset, row.condition_a, row.condition_b))
        ridge_difference = math.nan if ridge is None else ridge.mean_difference
        rows.append(
            AgreementRow(
                model=row.model,
                dataset=row.dataset,
                condition_a=row.condition_a,
                condition_b=row.condition_b,
                metric=row.metric,
                n_pairs=row.n_pairs,
                ridge_difference=ridge_difference,
                difference=row.mean_difference,
                ci_low=row.ci_low,
                ci_high=row.ci_high,
                p_wilcoxon=row.p_wilcoxon,
                verdict=direction_verdict(ridge_difference, row.mean_difference),
            )
        )
    return rows


def agreement_sentence(rows: list[AgreementRow]) -> str:
    """One line: how many (pair, measure) directions agree with the ridge, and which do not."""
    if not rows:
        return "No encoder-free measures were evaluated (evaluate-brain --metrics)."
    agree = sum(row.verdict == "agree" for row in rows)
    decided = sum(row.verdict != "n/a" for row in rows)
    against = [
        f"{row.metric} on {row.condition_a} vs {row.condition_b}"
        for row in rows
        if row.verdict == "disagree"
    ]
    sentence = f"{agree} of {decided} measure x pair directions agree with the ridge"
    return sentence + (f"; they disagree on: {', '.join(against)}." if against else ".")
