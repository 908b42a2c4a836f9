"""Issue 16's must-show: the bootstrap intervals that ``compare`` reports cover the planted
effect of a synthetic study matrix in at least 90% of 100 seeded studies.

Each study: 8 subjects, preserving and misaligned, one fold. The brain alignment of
preserving is misaligned's + 0.12 + a subject-specific effect drawn from N(0, 0.02), so the
population mean difference is 0.12 (the subjects' own effects average to it only in
expectation); every run adds fold and voxel noise. Probing: misaligned 0.03 below preserving
on every task, plus probe-seed noise. The run folders are written and read like real ones
and compared by ``compare_study``, the code behind ``brainmis compare``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_study import BRAIN_MEAN, PROBING_EFFECT, StudySpec, write_synthetic_study

from brainmis.analysis.comparison import ComparisonOptions, compare_study
from brainmis.analysis.probing_stats import OVERALL
from brainmis.analysis.results import read_run_results
from brainmis.analysis.runs import discover_runs
from brainmis.analysis.study import build_study_matrix

SUBJECTS = ("F", "H", "I", "J", "K", "L", "M", "N")
PLANTED_BRAIN = BRAIN_MEAN["preserving"] - BRAIN_MEAN["misaligned"]
PLANTED_PROBING = PROBING_EFFECT["preserving"] - PROBING_EFFECT["misaligned"]
STUDIES = 100


def one_study(root: Path, seed: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The brain-r and overall-probing intervals of preserving - misaligned in one study."""
    rng = np.random.default_rng(1000 + seed)
    spec = StudySpec(
        conditions=("preserving", "misaligned"),
        subjects=SUBJECTS,
        folds=(0,),
        tasks_per_subfield=2,
        probe_seeds=(0, 1, 2),
        n_voxels=50,
        random_seed=seed,
        brain_effect={("preserving", s): float(rng.normal(0, 0.02)) for s in SUBJECTS},
        write_events=False,
        write_per_voxel=False,
    )
    write_synthetic_study(root, spec)
    matrix = build_study_matrix(discover_runs([root]), read_run_results)
    comparison = compare_study(matrix, ComparisonOptions())
    brain = next(
        row
        for row in comparison.paired_tests
        if row.metric == "brain_alignment" and row.model != "all"
    )
    probing = next(row for row in comparison.contrasts if row.scope == OVERALL)
    return (brain.ci_low, brain.ci_high), (probing.ci_low, probing.ci_high)


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_planted_effect_in_90_percent_of_100_studies(tmp_path):
    brain_hits = probing_hits = 0
    brain_widths = []
    for seed in range(STUDIES):
        (b_low, b_high), (p_low, p_high) = one_study(tmp_path / f"study{seed}", seed)
        assert b_low < b_high and p_low < p_high
        brain_hits += b_low <= PLANTED_BRAIN <= b_high
        probing_hits += p_low <= PLANTED_PROBING <= p_high
        brain_widths.append(b_high - b_low)
    assert brain_hits / STUDIES >= 0.90, brain_hits
    assert probing_hits / STUDIES >= 0.90, probing_hits
    # ... and not by being wide: the subjects' differences spread by about 0.03 (s.d.: the
    # planted 0.02, fold noise 0.01 and 50 voxels' noise 0.014 in each of two runs), so a 95%
    # interval of their mean over 8 subjects spans about 2 * 2.4 * 0.03 / sqrt(8) = 0.05
    assert np.mean(brain_widths) < 0.08, np.mean(brain_widths)
