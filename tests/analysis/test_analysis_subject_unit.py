"""The subject as the unit of replication: planted per-subject effects through `brainmis compare`.

Every p-value the command writes for LM loss and brain alignment must equal scipy's on the
per-subject means (folds and training seeds averaged within a subject), with n = subjects;
pooled "all" rows count each (dataset, subject) once; ``--alternative greater`` makes the
brain and probing tests of a contrast one-sided and leaves LM loss two-sided.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from synthetic_study import StudySpec, write_synthetic_study

from brainmis.analysis.comparison import (
    SIMILARITY_UNIT_METRICS,
    UNIT_METRICS,
    ComparisonOptions,
    compare_study,
)
from brainmis.analysis.results import read_brain_alignment, read_run_results
from brainmis.analysis.runs import discover_runs, find_run_folders
from brainmis.analysis.statistics import holm_correction
from brainmis.analysis.study import build_study_matrix
from brainmis.cli import main
from brainmis.errors import BrainmisInputError

# the synthetic studies write no brain_similarity.json: those metrics have no values to test
WRITTEN_METRICS = set(UNIT_METRICS) - set(SIMILARITY_UNIT_METRICS)
SUBJECTS = ("F", "H", "I", "J", "K", "L")
# Planted: brain alignment of preserving = misaligned + this subject's effect (+ fold noise).
EFFECTS = {"F": 0.004, "H": 0.025, "I": 0.040, "J": 0.015, "K": 0.060, "L": 0.030}
PAIR = ("preserving", "misaligned")


def planted_spec(**changes) -> StudySpec:
    """6 subjects x 4 folds x (preserving, misaligned); only the planted effect differs."""
    values = dict(
        conditions=PAIR,
        subjects=SUBJECTS,
        folds=(0, 1, 2, 3),
        brain_means={"preserving": 0.2, "misaligned": 0.2},
        brain_effect={("preserving", subject): effect for subject, effect in EFFECTS.items()},
        fold_noise=0.02,
        voxel_noise=0.05,
        n_voxels=40,
        tasks_per_subfield=1,
        probe_seeds=(0, 1, 2),
        write_events=False,
        write_per_voxel=False,
        newer_brain_keys=True,
        random_seed=3,
    )
    values.update(changes)
    return StudySpec(**values)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def run_values(root: Path) -> list[dict]:
    """Identity, LM loss and brain alignment of every run, read straight from its files."""
    rows = []
    for folder in find_run_folders(root):
        identity = json.loads((folder / "run_manifest.json").read_text())["identity"]
        lm = json.loads((folder / "evaluation" / "lm.json").read_text())["lm_loss"]
        brain = json.loads((folder / "evaluation" / "brain_alignment.json").read_text())
        rows.append({**identity, "lm_loss": lm, "brain_alignment": brain["mean"]})
    return rows


def subject_means(rows: list[dict], metric: str, condition: str, key=("subject",)) -> dict:
    """Mean of ``metric`` per ``key`` (default: subject) over everything else."""
    grouped: dict[tuple, list[float]] = {}
    for row in rows:
        if row["condition"] == condition:
            grouped.setdefault(tuple(row[k] for k in key), []).append(row[metric])
    return {k: float(np.mean(v)) for k, v in sorted(grouped.items())}


def paired_row(rows: list[dict[str, str]], metric: str, model: str = "gpt2") -> dict[str, str]:
    (row,) = [
        r
        for r in rows
        if (r["model"], r["metric"], r["condition_a"], r["condition_b"]) == (model, metric, *PAIR)
    ]
    return row


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path]:
    """The planted study and the output of `brainmis compare --alternative greater` on it."""
    root = tmp_path_factory.mktemp("planted") / "study"
    write_synthetic_study(root, planted_spec())
    out = root.parent / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["compare", str(root), "--out", str(out), "--alternative", "greater"])
    assert code == 0
    return root, out


def test_planted_effect_p_values_are_those_of_the_subject_means(planted):
    root, out = planted
    runs = run_values(root)
    assert len(runs) == 6 * 4 * 2
    rows = read_csv(out / "paired_tests.csv")
    a = np.array(list(subject_means(runs, "brain_alignment", "preserving").values()))
    b = np.array(list(subject_means(runs, "brain_alignment", "misaligned").values()))
    brain = paired_row(rows, "brain_alignment")
    assert brain["alternative"] == "greater"
    assert int(brain["n_pairs"]) == 6
    assert float(brain["mean_difference"]) == pytest.approx(np.mean(a - b))
    # the planted effect is recovered (fold and voxel noise average out to ~0.01)
    assert float(brain["mean_difference"]) == pytest.approx(
        np.mean(list(EFFECTS.values())), abs=0.02
    )
    assert float(brain["p_t"]) == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    assert float(brain["p_wilcoxon"]) == pytest.approx(
        stats.wilcoxon(a, b, alternative="greater").pvalue
    )
    # the old unit of (subject, fold) pairs would have given a different (much smaller) p
    unit_a = [r["brain_alignment"] for r in sorted(runs, key=_unit) if r["condition"] == PAIR[0]]
    unit_b = [r["brain_alignment"] for r in sorted(runs, key=_unit) if r["condition"] == PAIR[1]]
    by_unit = stats.ttest_rel(unit_a, unit_b, alternative="greater").pvalue
    assert by_unit < float(brain["p_t"]) / 2
    # the effect beside the p-values: d_z of the subject differences, and a bootstrap interval
    # over subjects that holds the observed mean difference
    assert float(brain["effect_size_dz"]) == pytest.approx(np.mean(a - b) / np.std(a - b, ddof=1))
    assert float(brain["ci_low"]) < float(brain["mean_difference"]) < float(brain["ci_high"])
    assert float(brain["ci_high"]) - float(brain["ci_low"]) < 4 * np.std(a - b, ddof=1)

    lm = paired_row(rows, "lm_loss")
    lm_a = np.array(list(subject_means(runs, "lm_loss", "preserving").values()))
    lm_b = np.array(list(subject_means(runs, "lm_loss", "misaligned").values()))
    assert lm["alternative"] == "two-sided" and int(lm["n_pairs"]) == 6
    assert float(lm["p_t"]) == pytest.approx(stats.ttest_rel(lm_a, lm_b).pvalue)
    assert float(lm["p_wilcoxon"]) == pytest.approx(stats.wilcoxon(lm_a, lm_b).pvalue)
    # every per-run metric has its subject-level test
    assert {r["metric"] for r in rows} == WRITTEN_METRICS
    assert {int(r["n_pairs"]) for r in rows} == {6}


def _unit(row: dict) -> tuple:
    return (row["subject"], row["fold"], row["seed"])


def test_condition_summaries_are_over_subjects(planted):
    root, out = planted
    runs = run_values(root)
    summaries = {(r["condition"], r["metric"]): r for r in read_csv(out / "condition_summary.csv")}
    for condition in PAIR:
        means = list(subject_means(runs, "brain_alignment", condition).values())
        row = summaries[(condition, "brain_alignment")]
        assert (int(row["n"]), int(row["n_runs"])) == (6, 24)
        assert float(row["mean"]) == pytest.approx(np.mean(means))
        assert float(row["sem"]) == pytest.approx(stats.sem(means))
    assert {int(r["n_subjects"]) for r in read_csv(out / "probing_scores.csv")} == {6}
    assert len(read_csv(out / "runs.csv")) == 48  # the per-run rows stay per run


def test_probing_contrast_alternative_and_scopes(planted):
    _, out = planted
    contrasts = read_csv(out / "contrasts.csv")
    assert {r["alternative"] for r in contrasts} == {"greater"}
    assert {int(r["n_subjects"]) for r in contrasts} == {6}
    scopes = [r["scope"] for r in contrasts]
    assert scopes[-2:] == ["overall", "mean_of_subfields"]
    subfields = [r for r in contrasts if r["scope"] not in ("overall", "mean_of_subfields")]
    assert len(subfields) == 5
    expected = holm_correction([float(r["p"]) for r in subfields])
    assert [float(r["p_holm"]) for r in subfields] == pytest.approx(list(expected))
    assert all(r["p_holm"] == "" for r in contrasts if r not in subfields)
    # probing preserving vs misaligned: effect +0.03 per task in every subject -> one-sided 1/64
    overall = next(r for r in contrasts if r["scope"] == "overall")
    assert float(overall["p"]) == pytest.approx(1 / 64)


def test_overall_is_the_mean_over_tasks(planted):
    """runs.csv probing_score = mean over tasks, the other scope = mean of subfield means."""
    _, out = planted
    row = read_csv(out / "runs.csv")[0]
    results = read_run_results(Path(row["path"]))
    by_subfield: dict[str, list[float]] = {}
    task_means = []
    for task, by_metric in results.probing.scores.items():
        metric = "accuracy" if "accuracy" in by_metric else "pearson"
        value = float(np.mean(list(by_metric[metric].values())))
        task_means.append(value)
        by_subfield.setdefault(results.probing.subfields[task], []).append(value)
    # semantics has 2 tasks (one regression), the other subfields 1: the two means differ
    assert float(row["probing_score"]) == pytest.approx(np.mean(task_means))
    of_subfields = np.mean([np.mean(v) for v in by_subfield.values()])
    assert float(row["probing_score_mean_of_subfields"]) == pytest.approx(of_subfields)
    assert abs(np.mean(task_means) - of_subfields) > 1e-6


def test_scopes_are_named_in_the_printed_table_and_report(planted):
    _, out = planted
    summary = (out / "summary.txt").read_text()
    assert "probing (task mean)" in summary and "probing (subfield mean)" in summary
    assert "(greater; n=6 subjects)" in summary and "(two-sided; n=6 subjects)" in summary
    report = (out / "report.md").read_text()
    assert "overall (mean of tasks) (rank)" in report and "mean of subfields (rank)" in report
    assert "| preserving vs misaligned | overall (mean of tasks) | greater | 6 |" in report


def test_voxel_selection_and_nc_variants(planted):
    root, out = planted
    runs = read_csv(out / "runs.csv")
    row = runs[0]
    brain = json.loads((Path(row["path"]) / "evaluation" / "brain_alignment.json").read_text())
    selection = brain["voxel_selection"]
    assert row["ceiling_source"] == "inter_subject"
    assert float(row["ceiling_threshold"]) == 0.05
    for column, key in (
        ("n_in_roi", "in_roi"),
        ("n_above_ceiling", "above_ceiling"),
        ("n_selected", "selected"),
        ("n_constant_dropped", "zero_variance_dropped"),
    ):
        assert int(row[column]) == selection["counts"][key]
    assert float(row["brain_alignment_nc_ratio_of_means"]) == pytest.approx(
        brain["nc_ratio_of_means"]
    )
    assert float(row["brain_alignment_nc_median"]) == pytest.approx(brain["nc_median"])
    report = (out / "report.md").read_text()
    section = report.split("## Voxel selection")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| hp |")]
    assert len(table) == 6  # one row per subject, not per run
    assert table[0].startswith(
        "| hp | F | inter_subject | 0.050 | 1000 | 0 | 3 | 400 | 300 | 250 |"
    )
    assert table[0].endswith("| 8 |")  # 2 conditions x 4 folds share it


def test_older_brain_files_without_the_new_keys(tmp_path):
    path = tmp_path / "brain_alignment.json"
    path.write_text(json.dumps({"epoch": 0, "mean": 0.2}))
    old = read_brain_alignment(path)
    assert np.isnan(old.nc_ratio_of_means) and np.isnan(old.nc_median)
    assert old.voxel_selection is None
    path.write_text(
        json.dumps(
            {"epoch": 0, "mean": 0.2, "nc_ratio_of_means": None, "nc_median": None,
             "voxel_selection": {"ceiling_source": "repeats", "threshold": None,
                                 "counts": {"selected": 7}}}
        )
    )  # fmt: skip
    partial = read_brain_alignment(path)
    assert np.isnan(partial.nc_ratio_of_means)
    assert partial.voxel_selection.ceiling_source == "repeats"
    assert np.isnan(partial.voxel_selection.threshold)
    assert partial.voxel_selection.counts["selected"] == 7
    assert partial.voxel_selection.counts["in_roi"] == -1
    for bad, message in (
        ({"voxel_selection": [1]}, "'voxel_selection' must be an object"),
        ({"voxel_selection": {"counts": {"selected": 1.5}}}, "counts.selected' must be a non"),
        ({"voxel_selection": {"threshold": "high"}}, "threshold' must be a number or null"),
        ({"nc_median": "x"}, "'nc_median' must be a number"),
    ):
        path.write_text(json.dumps({"epoch": 0, "mean": 0.2, **bad}))
        with pytest.raises(BrainmisInputError, match=message):
            read_brain_alignment(path)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> Path:
    """2 models x the same 6 subjects x 2 folds; brain and probing effects as planted."""
    root = tmp_path_factory.mktemp("two_models") / "study"
    write_synthetic_study(root, planted_spec(models=("gpt2", "bert"), folds=(0, 1)))
    return root


def test_pooled_contrast_counts_each_subject_once(two_models):
    matrix = build_study_matrix(discover_runs([two_models]), read_run_results)
    comparison = compare_study(matrix, ComparisonOptions(alternative="greater"))
    pooled = [row for row in comparison.paired_tests if row.model == "all"]
    assert {row.metric for row in pooled} == WRITTEN_METRICS
    assert {row.n_pairs for row in pooled} == {6}  # not 2 models x 6 = 12
    runs = run_values(two_models)
    # per subject: mean over both models and both folds (a complete matrix: equal weights)
    a = np.array(list(subject_means(runs, "brain_alignment", "preserving").values()))
    b = np.array(list(subject_means(runs, "brain_alignment", "misaligned").values()))
    brain = next(row for row in pooled if row.metric == "brain_alignment")
    assert brain.p_t == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    assert brain.p_wilcoxon == pytest.approx(stats.wilcoxon(a, b, alternative="greater").pvalue)
    contrasts = [row for row in comparison.contrasts if row.model == "all"]
    assert contrasts and {row.n_subjects for row in contrasts} == {6}
    per_model = [row for row in comparison.contrasts if row.model != "all"]
    assert {row.n_subjects for row in per_model} == {6}
    # probing pooled overall: Wilcoxon on the subjects' probing scores averaged over models
    probing = {}
    for row in comparison.runs:
        probing.setdefault((row.condition, row.subject), []).append(row.probing_score)
    pa = [np.mean(probing[("preserving", s)]) for s in SUBJECTS]
    pb = [np.mean(probing[("misaligned", s)]) for s in SUBJECTS]
    overall = next(row for row in contrasts if row.scope == "overall")
    assert overall.score_a == pytest.approx(np.mean(pa))
    assert overall.p == pytest.approx(stats.wilcoxon(pa, pb, alternative="greater").pvalue)


def test_pooling_over_datasets_keeps_their_subjects_apart(tmp_path):
    """The same subject name in two datasets is two people: pooled n = 2 x 3."""
    root = tmp_path / "study"
    spec = planted_spec(
        datasets=("hp", "moth"), subjects=("F", "H", "I"), folds=(0,), write_probing=False
    )
    write_synthetic_study(root, spec)
    matrix = build_study_matrix(discover_runs([root]), read_run_results)
    comparison = compare_study(matrix, ComparisonOptions())
    pooled = [row for row in comparison.paired_tests if row.model == "all"]
    assert pooled and {row.n_pairs for row in pooled} == {6}
    runs = run_values(root)
    key = ("dataset", "subject")
    a = np.array(list(subject_means(runs, "brain_alignment", "preserving", key).values()))
    b = np.array(list(subject_means(runs, "brain_alignment", "misaligned", key).values()))
    brain = next(row for row in pooled if row.metric == "brain_alignment")
    assert brain.p_t == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_training_seeds_are_averaged_within_a_subject(tmp_path):
    root = tmp_path / "study"
    spec = planted_spec(subjects=("F", "H", "I"), folds=(0, 1), seeds=(1, 2), write_probing=False)
    write_synthetic_study(root, spec)
    matrix = build_study_matrix(discover_runs([root]), read_run_results)
    comparison = compare_study(matrix, ComparisonOptions())
    summary = next(r for r in comparison.condition_summaries if r.metric == "brain_alignment")
    assert (summary.n, summary.n_runs) == (3, 12)
    runs = run_values(root)
    a = np.array(list(subject_means(runs, "brain_alignment", "preserving").values()))
    b = np.array(list(subject_means(runs, "brain_alignment", "misaligned").values()))
    brain = next(r for r in comparison.paired_tests if r.metric == "brain_alignment")
    assert brain.n_pairs == 3
    assert brain.p_t == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_a_missing_cell_pairs_the_units_both_conditions_have(two_models, tmp_path):
    """--allow-incomplete: subject F keeps its pair, from the folds both conditions have."""
    root = tmp_path / "study"
    shutil.copytree(two_models / "gpt2", root / "gpt2")
    victim = root / "gpt2" / "hp" / "misaligned" / "sub-F_fold-0" / "version_0"
    shutil.rmtree(victim.parent)
    matrix = build_study_matrix(discover_runs([root]), read_run_results)
    assert len(matrix.missing) == 1
    comparison = compare_study(matrix, ComparisonOptions())
    brain = next(r for r in comparison.paired_tests if r.metric == "brain_alignment")
    assert brain.n_pairs == 6
    runs = [r for r in run_values(root) if not (r["subject"] == "F" and r["fold"] == 0)]
    a = np.array(list(subject_means(runs, "brain_alignment", "preserving").values()))
    b = np.array(list(subject_means(runs, "brain_alignment", "misaligned").values()))
    assert brain.mean_difference == pytest.approx(np.mean(a - b))
    assert brain.p_wilcoxon == pytest.approx(stats.wilcoxon(a, b).pvalue)


def test_alternative_applies_to_contrasts_only(tmp_path):
    """Brain and probing tests of a contrast follow --alternative; LM loss and the pair that
    is no contrast (misaligned vs tuned) stay two-sided."""
    root = tmp_path / "study"
    conditions = ("preserving", "misaligned", "tuned")
    spec = planted_spec(
        conditions=conditions, subjects=SUBJECTS[:4], folds=(0, 1), brain_means={}, brain_effect={}
    )
    spec.brain_means.update({"preserving": 0.24, "misaligned": 0.12, "tuned": 0.30})
    write_synthetic_study(root, spec)
    matrix = build_study_matrix(discover_runs([root]), read_run_results)
    two_sided = compare_study(matrix, ComparisonOptions())
    greater = compare_study(matrix, ComparisonOptions(alternative="greater"))
    for row_2, row_1 in zip(two_sided.paired_tests, greater.paired_tests, strict=True):
        assert (row_2.model, row_2.metric, row_2.condition_a) == (
            row_1.model,
            row_1.metric,
            row_1.condition_a,
        )
        assert row_2.alternative == "two-sided"
        contrast = (row_1.condition_a, row_1.condition_b) in greater.options.contrasts
        if row_1.metric == "lm_loss" or not contrast:
            assert row_1.alternative == "two-sided" and row_1.p_t == row_2.p_t
        else:
            assert row_1.alternative == "greater"
            # planted a > b: one-sided t p is half the two-sided one
            assert row_1.mean_difference > 0
            assert row_1.p_t == pytest.approx(row_2.p_t / 2)
            assert row_1.p_wilcoxon <= row_2.p_wilcoxon
    assert {row.alternative for row in greater.contrasts} == {"greater"}
    assert {row.alternative for row in two_sided.contrasts} == {"two-sided"}
    with pytest.raises(ValueError, match="swap the conditions"):
        ComparisonOptions(alternative="less")


def test_cli_refuses_alternative_less(tmp_path, capsys):
    code = main(["compare", str(tmp_path), "--out", str(tmp_path / "out"), "--alternative", "less"])
    err = capsys.readouterr().err
    assert code == 2 and "invalid choice: 'less'" in err and len(err.strip().splitlines()) == 1
