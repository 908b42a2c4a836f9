"""``brainmis compare`` on run folders of real fits (``fitted_study``: ``brainmis fit`` with the
demo configs), not on hand-written ones."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from brainmis.cli import main


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_compare_on_real_fits(fitted_study, tmp_path):
    """``compare`` on run folders that ``brainmis fit`` wrote (not hand-written ones): every
    run has its LM, brain and probing values, the brain test pairs the 2 subjects, and the
    report and figures are written."""
    out = tmp_path / "out"
    assert main(["compare", str(fitted_study), "--out", str(out)]) == 0
    runs = read_csv(out / "runs.csv")
    assert {(row["condition"], row["subject"]) for row in runs} == {
        (condition, subject) for condition in ("misaligned", "preserving") for subject in "FH"
    }
    assert len(runs) == 4
    for row in runs:
        evaluation = Path(row["path"]) / "evaluation"
        lm = json.loads((evaluation / "lm.json").read_text())
        brain = json.loads((evaluation / "brain_alignment.json").read_text())
        assert float(row["lm_loss"]) == pytest.approx(lm["lm_loss"])
        assert float(row["brain_alignment"]) == pytest.approx(brain["mean"])
        assert 0.0 <= float(row["probing_score"]) <= 1.0
        assert row["lm_epoch"] == row["brain_epoch"] == row["probing_epoch"] == "1"
        assert (row["model"], row["dataset"], row["fold"]) == ("tiny-gpt2", "synthetic-hp", "0")
    paired = {
        (r["metric"], r["condition_a"], r["condition_b"]): r
        for r in read_csv(out / "paired_tests.csv")
    }
    for metric in ("lm_loss", "brain_alignment", "probing_score"):
        assert int(paired[(metric, "preserving", "misaligned")]["n_pairs"]) == 2, metric
    for name in ("report.md", "report.html", "summary.txt", "comparison.json"):
        assert (out / name).is_file(), name
    figures = sorted(path.name for path in (out / "figures").iterdir())
    assert figures == [
        f"{kind}_tiny-gpt2-synthetic-hp.png"
        for kind in ("brain_alignment", "lm_distribution", "probing", "tradeoff", "training_curves")
    ]
    for figure in (out / "figures").iterdir():
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "preserving vs misaligned" in (out / "report.html").read_text()
