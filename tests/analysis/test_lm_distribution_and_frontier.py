"""Held-out LM loss as distributions and the removal frontier, through `brainmis compare` on
synthetic run folders with planted numbers (``brainmis.analysis.lm_distribution``,
``brainmis.analysis.frontier``)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from synthetic_study import StudySpec, run_folder, write_synthetic_study

from brainmis.analysis.frontier import interpolate_along
from brainmis.commands.compare import compare_runs
from brainmis.run_folder.layout import LM_WINDOWS_COLUMNS, LM_WINDOWS_FILE

SUBJECTS = ("F", "H", "I", "J", "K", "L")
SHIFT = 0.15  # planted: every window of misaligned is this much worse (nats/token)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def fast_spec(conditions: tuple[str, ...], subjects: tuple[str, ...] = SUBJECTS) -> StudySpec:
    return StudySpec(
        conditions=conditions,
        subjects=subjects,
        folds=(0,),
        write_events=False,
        write_per_voxel=False,
        write_probing=False,
    )


def write_windows(folder: Path, losses: np.ndarray) -> None:
    with (folder / "evaluation" / LM_WINDOWS_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LM_WINDOWS_COLUMNS)
        for window, loss in enumerate(losses):
            writer.writerow([100 + window, f"{loss:.6f}", 40])


def test_window_quantiles_detect_a_shift_and_not_an_identical_distribution(tmp_path):
    root = tmp_path / "study"
    write_synthetic_study(root, fast_spec(("preserving", "misaligned", "tuned")))
    rng = np.random.default_rng(3)
    for subject in SUBJECTS:
        base = 3.0 + rng.gamma(4.0, 0.15, size=300)  # the subject's test windows
        for condition in ("preserving", "misaligned", "tuned"):
            shift = SHIFT if condition == "misaligned" else 0.0
            losses = base + shift + rng.normal(0, 0.05, size=base.size)
            write_windows(run_folder(root, "gpt2", "hp", condition, subject, 0), losses)
    result = compare_runs([root], tmp_path / "out")
    quantiles = read_csv(tmp_path / "out" / "lm_distribution.csv")
    median = {row["condition"]: float(row["mean"]) for row in quantiles if row["level"] == "q50"}
    assert median["misaligned"] - median["preserving"] == pytest.approx(SHIFT, abs=0.02)
    assert {row["n_subjects"] for row in quantiles} == {"6"}
    tests = {
        (row["condition_a"], row["condition_b"], row["level"]): row
        for row in read_csv(tmp_path / "out" / "lm_distribution_tests.csv")
    }
    for level in ("q05", "q25", "q50", "q75", "q95"):
        shifted = tests[("preserving", "misaligned", level)]
        assert float(shifted["difference"]) == pytest.approx(-SHIFT, abs=0.03)
        assert float(shifted["p_wilcoxon"]) == pytest.approx(2 / 64)  # 6 of 6 subjects
        assert float(shifted["ci_high"]) < 0
        same = tests[("tuned", "preserving", level)]
        assert float(same["p_wilcoxon"]) > 0.05 and abs(float(same["difference"])) < 0.02
        assert float(same["ci_low"]) < 0 < float(same["ci_high"])
    pairs = read_csv(tmp_path / "out" / "lm_distribution_pairs.csv")
    d = {(r["condition_a"], r["condition_b"]): [] for r in pairs}
    for row in pairs:
        d[(row["condition_a"], row["condition_b"])].append(float(row["ks_d"]))
        assert row["same_windows"] == "True"
    assert min(d[("preserving", "misaligned")]) > 3 * max(d[("tuned", "preserving")])
    assert "held-out LM loss per window" in result.summary
    assert "preserving - misaligned: q05 -0.1" in result.summary
    assert (tmp_path / "out" / "figures" / "lm_distribution_gpt2-hp.png").stat().st_size > 5000
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Held-out LM loss per window (distributions)" in report


def test_no_window_files_no_distribution_outputs(tmp_path):
    write_synthetic_study(tmp_path / "study", fast_spec(("preserving", "misaligned")))
    result = compare_runs([tmp_path / "study"], tmp_path / "out")
    assert not (tmp_path / "out" / "lm_distribution.csv").exists()
    assert "per window" not in result.summary


def test_interpolation_along_a_sweep():
    xs, ys = [0.2, 0.5, 1.0, 2.0, 3.0], [0.01, 0.03, 0.06, 0.10, 0.12]
    assert interpolate_along(xs, ys, 0.75)[:2] == ("interpolated", pytest.approx(0.045))
    assert interpolate_along(xs, ys, 2.0)[1] == pytest.approx(0.10)
    assert interpolate_along(xs, ys, 5.0)[0] == "above the sweep"
    assert interpolate_along(xs, ys, 0.1)[0] == "below the sweep"
    # not monotone: the first crossing in parameter order
    status, y, segment, t = interpolate_along([0.0, 2.0, 1.0], [0.0, 0.2, 0.4], 1.5)
    assert (segment, y) == (0, pytest.approx(0.15))


# Planted frontier: preserving r 0.20, LM loss 3.00; (condition, config) -> (LM loss, brain r).
LAMBDAS = {
    0.01: (3.006, 0.19),
    0.02: (3.015, 0.17),
    0.05: (3.03, 0.14),
    0.1: (3.06, 0.10),
    0.2: (3.09, 0.08),
}
BUDGET = (3.024, 0.15)  # lm_budget 0.01: +0.8%, drop 0.05


def plant(folder: Path, lm_loss: float, brain: float, model: dict) -> None:
    evaluation = folder / "evaluation"
    (evaluation / "lm.json").write_text(json.dumps({"epoch": 1, "lm_loss": lm_loss}))
    record = json.loads((evaluation / "brain_alignment.json").read_text())
    record["mean"] = brain
    (evaluation / "brain_alignment.json").write_text(json.dumps(record))
    config = {"seed_everything": 42, "model": {"pretrained_path": "ckpt/tiny-gpt2", **model}}
    (folder / "config.yaml").write_text(json.dumps(config))


def test_frontier_interpolates_planted_numbers_and_draws_the_figure(tmp_path):
    names = {f"misaligned-lambda{value:g}": value for value in LAMBDAS}
    conditions = ("preserving", *names, "misaligned-budget0.01")
    root = tmp_path / "study"
    subjects = SUBJECTS[:3]  # no bootstrap needed here: 3 subjects keep compare fast
    write_synthetic_study(root, fast_spec(conditions, subjects))
    for index, subject in enumerate(subjects):
        offset = 0.01 * index  # a subject effect on brain r, shared by its conditions

        def run(condition: str, subject: str = subject) -> Path:
            return run_folder(root, "gpt2", "hp", condition, subject, 0)

        plant(run("preserving"), 3.0, 0.20 + offset, {"condition": "preserving"})
        for name, value in names.items():
            lm_loss, brain = LAMBDAS[value]
            plant(
                run(name), lm_loss, brain + offset, {"condition": "misaligned", "grl_lambda": value}
            )
        budget = {"condition": "misaligned", "lm_budget": 0.01}
        plant(run("misaligned-budget0.01"), BUDGET[0], BUDGET[1] + offset, budget)
    result = compare_runs([root], tmp_path / "out")
    points = read_csv(tmp_path / "out" / "frontier_points.csv")
    by_condition = {row["condition"]: row for row in points}
    assert set(by_condition) == {*names, "misaligned-budget0.01"}
    lambda_point = by_condition["misaligned-lambda0.05"]
    assert float(lambda_point["lm_change_pct"]) == pytest.approx(1.0)
    assert float(lambda_point["brain_drop"]) == pytest.approx(0.06)
    assert float(lambda_point["brain_drop_sem"]) == pytest.approx(0.0, abs=1e-9)
    # preserving ran with the default lambda 0.05: the same recipe is its matched control
    assert lambda_point["reference"] == "matched" and lambda_point["n_subjects"] == "3"
    assert by_condition["misaligned-lambda0.1"]["reference"] == "setting"
    assert lambda_point["line"] == "misaligned, fixed lambda"
    targets = {
        (row["line"], float(row["target_lm_change_pct"])): row
        for row in read_csv(tmp_path / "out" / "frontier.csv")
    }
    expected = {0.5: 0.03, 1.0: 0.06, 2.0: 0.10}
    for target, drop in expected.items():
        row = targets[("misaligned, fixed lambda", target)]
        assert row["status"] == "interpolated" and float(row["brain_drop"]) == pytest.approx(drop)
        assert row["n_subjects"] == "3"
    assert float(targets[("misaligned, fixed lambda", 2.0)]["parameter"]) == pytest.approx(0.1)
    assert targets[("misaligned, fixed lambda", 5.0)]["status"] == "above the sweep"
    assert targets[("misaligned, fixed lambda", 5.0)]["brain_drop"] == ""
    assert targets[("misaligned, LM budget", 0.5)]["status"] == "below the sweep"
    share = float(targets[("misaligned, fixed lambda", 1.0)]["brain_drop_pct"])
    assert math.isfinite(share) and 0 < share < 100
    assert (tmp_path / "out" / "figures" / "frontier.png").stat().st_size > 5000
    assert "removal frontier" in result.summary
    assert "Removal frontier" in (tmp_path / "out" / "report.html").read_text()


def test_frontier_reference_is_the_same_fold(tmp_path):
    """Held-out LM loss differs between folds (another test run): a run's LM change is taken
    against preserving of its own fold, even when the other fold's run is missing."""
    import shutil

    conditions = ("preserving", "misaligned-lambda0.01", "misaligned-lambda0.1")
    root = tmp_path / "study"
    subjects = SUBJECTS[:3]
    spec = fast_spec(conditions, subjects)
    spec.folds = (0, 1)
    write_synthetic_study(root, spec)
    for subject in subjects:
        for fold, base in ((0, 3.0), (1, 4.0)):
            plant(run_folder(root, "gpt2", "hp", "preserving", subject, fold), base, 0.2,
                  {"condition": "preserving"})  # fmt: skip
            for name, value, rise in (("misaligned-lambda0.01", 0.01, 1.01),
                                      ("misaligned-lambda0.1", 0.1, 1.03)):  # fmt: skip
                plant(run_folder(root, "gpt2", "hp", name, subject, fold), base * rise, 0.15,
                      {"condition": "misaligned", "grl_lambda": value})  # fmt: skip
    for subject in subjects:  # fold 1 of the lambda-0.1 runs is missing
        shutil.rmtree(run_folder(root, "gpt2", "hp", "misaligned-lambda0.1", subject, 1).parent)
    compare_runs([root], tmp_path / "out", allow_incomplete=True)
    points = {row["condition"]: row for row in read_csv(tmp_path / "out" / "frontier_points.csv")}
    assert float(points["misaligned-lambda0.01"]["lm_change_pct"]) == pytest.approx(1.0)
    # against the mean of both folds' preserving (3.5) it would read -11.7%
    assert float(points["misaligned-lambda0.1"]["lm_change_pct"]) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("0,3.1,40\n0,3.2,40\n", "a window index appears twice"),
        ("0,-0.5,40\n", "window 0: LM loss -0.5"),
        ("0,inf,40\n", "window 0: LM loss inf"),
        ("0,3.1,-2\n", "over -2 tokens"),
        ("0,abc,40\n", "not a per-window LM loss table"),
    ],
)
def test_bad_window_files_are_one_line_naming_the_file_once(tmp_path, rows, problem):
    from brainmis.analysis.lm_distribution import read_lm_windows
    from brainmis.errors import BrainmisInputError

    path = tmp_path / LM_WINDOWS_FILE
    path.write_text(",".join(LM_WINDOWS_COLUMNS) + "\n" + rows)
    with pytest.raises(BrainmisInputError) as error:
        read_lm_windows(path)
    line = str(error.value)
    assert problem in line and line.count(str(path)) == 1 and "\n" not in line
