"""The ``noise_adversary`` condition runs through ``brainmis fit --config`` (its demo config)
and ``brainmis compare`` like the paper's conditions."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from brainmis.cli import main

REPO = Path(__file__).resolve().parents[2]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # two more fits with the demo callbacks, then compare: ~45 s on 2 cores
def test_noise_adversary_fits_and_compare_lists_it(fitted_study, tmp_path):
    """Two short noise_adversary fits (the fitted study's model, data and settings) beside
    the fitted study's misaligned and preserving runs: compare lists them with their values
    and pairs them with preserving over the 2 subjects."""
    runs_dir = tmp_path / "runs"
    shutil.copytree(fitted_study, runs_dir)
    model, cache = fitted_study.parent / "tiny-gpt2", fitted_study.parent / "cache"
    for subject in ("F", "H"):
        code = main(
            [
                "fit",
                "--config",
                str(REPO / "configs" / "demo" / "noise_adversary.yaml"),
                f"--model.pretrained_path={model}",
                f"--data.cache_dir={cache}",
                f"--data.subject={subject}",
                "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=1",
                "--trainer.num_sanity_val_steps=0",
                "--trainer.enable_model_summary=false",
                "--probing.tasks=[negation]",
                "--probing.max_items=30",
                f"--trainer.default_root_dir={runs_dir / f'noise_adversary_sub-{subject}'}",
            ]
        )
        assert code == 0, subject
    manifest = json.loads(
        next((runs_dir / "noise_adversary_sub-F").rglob("run_manifest.json")).read_text()
    )
    assert manifest["config"]["data"]["noise_targets"] is True
    assert manifest["config"]["data"]["shuffle_targets"] is False
    out = tmp_path / "out"
    assert main(["compare", str(runs_dir), "--out", str(out)]) == 0
    rows = [row for row in read_csv(out / "runs.csv") if row["condition"] == "noise_adversary"]
    assert sorted(row["subject"] for row in rows) == ["F", "H"]
    for row in rows:
        evaluation = Path(row["path"]) / "evaluation"
        lm = json.loads((evaluation / "lm.json").read_text())
        brain = json.loads((evaluation / "brain_alignment.json").read_text())
        assert float(row["lm_loss"]) == pytest.approx(lm["lm_loss"])
        assert float(row["brain_alignment"]) == pytest.approx(brain["mean"])
    paired = read_csv(out / "paired_tests.csv")
    with_noise = [
        row
        for row in paired
        if row["metric"] == "brain_alignment"
        and {row["condition_a"], row["condition_b"]} == {"preserving", "noise_adversary"}
    ]
    assert with_noise and int(with_noise[0]["n_pairs"]) == 2
