"""``compare`` on RSA / CKA / Procrustes and layer profiles: read, tested, reported, drawn."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from brainmis.analysis.measure_agreement import direction_verdict
from brainmis.analysis.results import read_run_results
from brainmis.cli import main
from brainmis.errors import BrainmisInputError

N_LAYERS = 4


def plant_measures(study: Path) -> dict[Path, dict[str, float]]:
    """Write brain_similarity.json and brain_layers.json into every run of ``study``: RSA and
    CKA rise with the run's ridge mean r, Procrustes falls with it (a planted disagreement);
    the layer profile peaks at layer 2 with the run's ridge mean there. Returns run -> values."""
    rng = np.random.default_rng(3)
    planted = {}
    for brain_file in sorted(study.rglob("evaluation/brain_alignment.json")):
        ridge = json.loads(brain_file.read_text())
        mean, epoch = ridge["mean"], ridge["epoch"]
        values = {
            "rsa": 0.5 * mean + rng.normal(0, 0.002),
            "cka": 0.3 + mean + rng.normal(0, 0.002),
            "procrustes": 0.6 - mean + rng.normal(0, 0.002),
        }
        similarity = {
            "epoch": epoch,
            "layer": N_LAYERS - 1,
            "metrics": {name: {"all": value, "per_roi": {}} for name, value in values.items()},
        }
        earlier = {"epoch": 0, "metrics": {name: {"all": -1.0} for name in values}}
        document = {"latest_epoch": epoch, "epochs": {"0": earlier, str(epoch): similarity}}
        (brain_file.parent / "brain_similarity.json").write_text(json.dumps(document))
        layers = {
            str(layer): {"ridge_mean": mean * (1 - abs(layer - 2) / 4), "cka": 0.3, "rsa": None}
            for layer in range(N_LAYERS)
        }
        profile = {"epoch": epoch, "n_hidden_states": N_LAYERS, "layers": layers}
        (brain_file.parent / "brain_layers.json").write_text(
            json.dumps({"latest_epoch": epoch, "epochs": {str(epoch): profile}})
        )
        planted[brain_file.parent.parent] = values
    return planted


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_compare_tests_reports_and_draws_the_other_measures(small_study, tmp_path):
    planted = plant_measures(small_study)
    some_run = next(iter(planted))
    results = read_run_results(some_run)
    assert results.similarity == pytest.approx(planted[some_run])  # the latest epoch's
    assert sorted(results.layers) == [0, 1, 2, 3] and np.isnan(results.layers[0]["rsa"])

    out = tmp_path / "out"
    assert main(["compare", str(small_study), "--out", str(out)]) == 0
    runs = read_csv(out / "runs.csv")
    by_path = {Path(row["path"]).resolve(): row for row in runs}
    for run, values in planted.items():
        row = by_path[run.resolve()]
        for name, value in values.items():
            assert float(row[f"brain_{name}"]) == pytest.approx(value, abs=1e-9)

    paired = read_csv(out / "paired_tests.csv")
    tuned_vs_misaligned = {
        row["metric"]: float(row["mean_difference"])
        for row in paired
        if row["model"] == "gpt2"
        and {row["condition_a"], row["condition_b"]} == {"tuned", "misaligned"}
    }
    ridge = tuned_vs_misaligned["brain_alignment"]
    assert np.sign(tuned_vs_misaligned["brain_rsa"]) == np.sign(ridge) != 0
    assert np.sign(tuned_vs_misaligned["brain_procrustes"]) == -np.sign(ridge)

    report = (out / "report.md").read_text()
    assert "Other measures against the ridge" in report
    assert "disagree on: brain_procrustes on preserving vs misaligned" in report
    section = report.split("Other measures against the ridge")[1].split("\n#")[0]
    assert "| disagree |" in section and "| agree |" in section
    for model in ("gpt2", "bert"):
        assert (out / "figures" / f"layer_profile_{model}-hp.png").stat().st_size > 1000


def test_direction_verdicts():
    assert direction_verdict(0.1, 0.02) == "agree"
    assert direction_verdict(-0.1, 0.02) == "disagree"
    assert direction_verdict(0.1, float("nan")) == "n/a"
    assert direction_verdict(0.0, 0.3) == "n/a"


def test_malformed_similarity_file_names_the_file(small_study):
    run = next(iter(plant_measures(small_study)))
    path = run / "evaluation" / "brain_similarity.json"
    path.write_text(json.dumps({"epochs": {"1": {"metrics": {"cka": {"all": "high"}}}}}))
    with pytest.raises(BrainmisInputError, match=r"brain_similarity.json: 'metrics.cka'"):
        read_run_results(run)
