"""``brainmis compare`` end to end through ``brainmis.cli.main`` on synthetic run matrices."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from brainmis.analysis.comparison import ComparisonOptions, compare_study
from brainmis.analysis.results import read_run_results
from brainmis.analysis.runs import discover_runs, find_run_folders
from brainmis.analysis.study import build_study_matrix
from brainmis.cli import main
from brainmis.commands.compare import parse_contrasts

TABLES = (
    "runs.csv",
    "condition_summary.csv",
    "paired_tests.csv",
    "probing_scores.csv",
    "probing_task_tests.csv",
    "probing_win_rates.csv",
    "contrasts.csv",
    "missing.csv",
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def full_comparison(full_study, tmp_path_factory) -> tuple[Path, Path, str]:
    """Run the command once on the complete matrix; return (study, out, stdout)."""
    root, _ = full_study
    out = tmp_path_factory.mktemp("compare") / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["compare", str(root), "--out", str(out)])
    assert code == 0
    return root, out, buffer.getvalue()


def test_every_output_is_written(full_comparison):
    _, out, _ = full_comparison
    for name in (*TABLES, "comparison.json", "report.md", "report.html", "summary.txt"):
        assert (out / name).is_file(), name
    figures = sorted(path.name for path in (out / "figures").iterdir())
    assert figures == [
        "brain_alignment_gpt2-hp.png",
        "probing_gpt2-hp.png",
        "tradeoff_gpt2-hp.png",
        "training_curves_gpt2-hp.png",
    ]
    for figure in (out / "figures").iterdir():
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    for name in figures:
        assert f"](figures/{name})" in markdown
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "<table>" in html and "preserving vs misaligned" in html
    assert json.loads((out / "comparison.json").read_text())["settings"][0]["n_runs_used"] == 24


def test_condition_means_match_the_run_files(full_comparison):
    root, out, _ = full_comparison
    expected: dict[tuple[str, str], list[float]] = {}
    for run in find_run_folders(root):
        condition = json.loads((run / "run_manifest.json").read_text())["identity"]["condition"]
        lm = json.loads((run / "evaluation" / "lm.json").read_text())["lm_loss"]
        brain = json.loads((run / "evaluation" / "brain_alignment.json").read_text())["mean"]
        expected.setdefault((condition, "lm_loss"), []).append(lm)
        expected.setdefault((condition, "brain_alignment"), []).append(brain)
    rows = {(r["condition"], r["metric"]): r for r in read_csv(out / "condition_summary.csv")}
    for key, values in expected.items():
        row = rows[key]
        assert int(row["n"]) == 6 and int(row["n_runs"]) == 6  # one fold: a run per subject
        assert float(row["mean"]) == pytest.approx(np.mean(values))
        assert float(row["sem"]) == pytest.approx(np.std(values, ddof=1) / np.sqrt(6))


def test_latest_epoch_is_used(full_comparison):
    _, out, _ = full_comparison
    runs = read_csv(out / "runs.csv")
    assert len(runs) == 24
    assert {row["probing_epoch"] for row in runs} == {"1"}
    assert {row["brain_epoch"] for row in runs} == {"1"}
    assert min(float(row["probing_score"]) for row in runs) > 0.6  # epoch 0 was ~0.2 lower


def test_planted_effects_come_out_in_the_contrasts(full_comparison):
    _, out, _ = full_comparison
    contrasts = read_csv(out / "contrasts.csv")
    aggregates = [r for r in contrasts if r["scope"] in ("overall", "mean_of_subfields")]
    overall = {
        (r["condition_a"], r["condition_b"]): r for r in contrasts if r["scope"] == "overall"
    }
    assert set(overall) == {("preserving", "misaligned"), ("tuned", "preserving")}
    assert len(aggregates) == 2 * 2
    for row in aggregates:
        assert float(row["difference"]) > 0
        assert int(row["n_subjects"]) == 6
        assert row["alternative"] == "two-sided"
        # all 6 subjects positive: exact two-sided Wilcoxon p = 2 / 2**6
        assert float(row["p"]) == pytest.approx(2 / 64)
        assert row["p_holm"] == ""  # aggregates are not part of the Holm family
        assert float(row["win_rate_a"]) > 0.8 and float(row["win_rate_b"]) < 0.05
    subfields = [r for r in contrasts if r not in aggregates]
    assert len(subfields) == 2 * 5
    # five subfields each at p = 1/32: Holm multiplies the smallest by 5 and keeps it monotone
    assert all(float(r["p_holm"]) == pytest.approx(5 / 32) for r in subfields)
    paired = {
        (r["metric"], r["condition_a"], r["condition_b"]): r
        for r in read_csv(out / "paired_tests.csv")
    }
    brain = paired[("brain_alignment", "preserving", "misaligned")]
    assert int(brain["n_pairs"]) == 6
    assert float(brain["mean_difference"]) > 0.05 and float(brain["p_t"]) < 1e-3
    assert float(brain["p_wilcoxon"]) == pytest.approx(2 / 2**6)


def test_the_printed_table(full_comparison):
    _, out, stdout = full_comparison
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("condition"))
    assert lines[header].split() == (
        ["condition", "LM", "loss", "brain", "r", "probing", "(task", "mean)", "probing"]
        + ["(subfield", "mean)", "rank", "(task", "mean)", "rank", "(subfield", "mean)"]
        + ["subjects"]
    )
    assert [lines[header + k].split()[0] for k in range(1, 5)] == [
        "pretrained",
        "preserving",
        "misaligned",
        "tuned",
    ]
    assert "preserving vs misaligned (differences a - b)" in stdout
    assert "tuned vs preserving (differences a - b)" in stdout
    assert stdout.startswith((out / "summary.txt").read_text().strip()[:40])


def test_incomplete_matrix_is_refused_before_writing(small_study, tmp_path, capsys):
    victim = find_run_folders(small_study)[0]
    shutil.rmtree(victim)
    out = tmp_path / "out"
    code = main(["compare", str(small_study), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err.splitlines()
    assert error[0].startswith(f"brainmis compare: error: {small_study}: incomplete run matrix")
    assert "1 of 24 runs missing" in error[0]
    assert error[1].startswith("  missing: model=bert dataset=hp subject=F fold=0")
    assert error[1].endswith("no run found")
    assert not out.exists()


def test_allow_incomplete_goes_on_and_says_what_it_dropped(small_study, tmp_path, capsys):
    victim = find_run_folders(small_study)[0]
    manifest = json.loads((victim / "run_manifest.json").read_text())
    (victim / "run_manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    out = tmp_path / "out"
    code = main(["compare", str(small_study), "--out", str(out), "--allow-incomplete"])
    assert code == 0
    captured = capsys.readouterr()
    assert "dropped 1 of 24 cells" in captured.err
    assert "not complete: running" in captured.err
    assert len(read_csv(out / "runs.csv")) == 23
    missing = read_csv(out / "missing.csv")
    assert [(m["model"], m["subject"], m["fold"]) for m in missing] == [("bert", "F", "0")]
    assert "Dropped (incomplete matrix" in (out / "report.md").read_text()
    # two models: contrasts are also pooled over both settings
    pooled = [r for r in read_csv(out / "contrasts.csv") if r["model"] == "all"]
    assert {(r["condition_a"], r["condition_b"]) for r in pooled} == {
        ("preserving", "misaligned"),
        ("tuned", "preserving"),
    }
    # each subject once: the two models of a subject are averaged into one pair
    assert {int(r["n_subjects"]) for r in pooled if r["scope"] == "overall"} == {2}
    assert "== all settings pooled" in captured.out


def test_non_empty_out_is_refused(small_study, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["compare", str(small_study), "--out", str(out)]) == 2
    assert "output folder exists and is not empty" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == ["keep.txt"]


def test_unknown_contrast_condition_is_refused(small_study, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["compare", str(small_study), "--out", str(out), "--contrasts", "tuned:lm_only"])
    assert code == 2
    assert "no runs of condition(s) lm_only" in capsys.readouterr().err
    assert not out.exists()


def test_explicit_contrast_orientation(small_study):
    matrix = build_study_matrix(discover_runs([small_study]), read_run_results)
    options = ComparisonOptions(contrasts=parse_contrasts(["tuned:misaligned"], matrix, True))
    comparison = compare_study(matrix, options)
    pairs = {(row.model, row.condition_a, row.condition_b) for row in comparison.contrasts}
    assert pairs == {(model, "tuned", "misaligned") for model in ("bert", "gpt2", "all")}
    overall = [row for row in comparison.contrasts if row.scope == "overall"]
    assert all(row.difference > 0 for row in overall)
    oriented = {(row.condition_a, row.condition_b) for row in comparison.paired_tests}
    assert ("tuned", "misaligned") in oriented and ("misaligned", "tuned") not in oriented


def test_a_damaged_result_file_stops_before_writing(small_study, tmp_path, capsys):
    victim = find_run_folders(small_study)[-1]
    np.save(victim / "evaluation" / "brain_r_epoch1.npy", np.zeros((2, 2)))
    out = tmp_path / "out"
    assert main(["compare", str(small_study), "--out", str(out)]) == 2
    assert "brain_r_epoch1.npy: expected a 1-D float array" in capsys.readouterr().err
    assert not out.exists()
