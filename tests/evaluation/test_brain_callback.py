"""BrainAlignmentCallback during a short fit: evaluations, logs and run-folder files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from brainmis.evaluation.brain.alignment import AlignmentData, model_window_features
from brainmis.evaluation.brain.callback import BrainAlignmentCallback
from brainmis.evaluation.brain.encoding import evaluate_brain_alignment


def test_run_folder_files(fitted_run):
    log_dir, callback, datamodule = fitted_run
    folder = log_dir / "evaluation"
    record = json.loads((folder / "brain_alignment.json").read_text())
    assert record["epoch"] == 1  # the latest evaluation: after the only epoch
    assert record["n_voxels"] == datamodule.n_voxels
    assert set(record) >= {"mean", "median", "nc_normalized", "per_roi", "leakage_mlp"}
    assert [entry["epoch"] for entry in record["history"]] == [0, 1]
    baseline = np.load(folder / "brain_r_epoch0.npy")
    after = np.load(folder / "brain_r_epoch1.npy")
    assert baseline.shape == after.shape == (datamodule.n_voxels,)
    assert record["mean"] == pytest.approx(after.mean())
    assert set(record["per_roi"]) == set(datamodule.roi_masks)
    from brainmis.analysis.results import read_brain_alignment  # the comparison's reader

    summary = read_brain_alignment(folder / "brain_alignment.json")
    assert summary.epoch == 1 and summary.per_voxel_file == folder / "brain_r_epoch1.npy"
    # three steps at lr 1e-2 change the LoRA weights, so the features and the scores move
    assert not np.allclose(baseline, after)


def test_scores_use_true_targets_of_the_fold(fitted_run):
    """The fit trained on shuffled targets (preserving); the callback's ridge is fitted and
    scored against the true targets of the fold: an independent evaluation of the final
    weights against the true targets gives its r, one against the shuffled ones does not."""
    from brainmis.models.checkpoint import load_checkpoint_module

    log_dir, callback, datamodule = fitted_run
    assert not np.array_equal(datamodule.targets, datamodule.true_targets)
    test_windows = datamodule.window_runs == datamodule.test_run
    assert np.array_equal(datamodule.targets[test_windows], datamodule.true_targets[test_windows])
    alignment = callback.last_alignment
    assert alignment is not None and alignment.epoch == 1
    assert alignment.ridge.test_runs == [datamodule.test_run]

    (checkpoint,) = (log_dir / "checkpoints").glob("*.ckpt")
    module = load_checkpoint_module(checkpoint).module
    features = model_window_features(
        module.backbone, AlignmentData.from_datamodule(datamodule), layer=module.feature_layer
    )

    def r_against(targets: np.ndarray) -> np.ndarray:
        return evaluate_brain_alignment(
            features,
            targets,
            datamodule.window_runs,
            test_runs=datamodule.test_run,
            alphas=[1.0, 100.0, 1e4],
        ).r

    written = np.load(log_dir / "evaluation" / "brain_r_epoch1.npy")
    np.testing.assert_allclose(written, alignment.ridge.r)
    np.testing.assert_allclose(written, r_against(datamodule.true_targets), atol=1e-5)
    shuffled_r = r_against(datamodule.targets)
    assert np.abs(written - shuffled_r).max() > 0.05


def test_logged_scalars_and_histogram(fitted_run):
    log_dir, _, datamodule = fitted_run
    csv_files = list((log_dir.parent.parent / "csv").rglob("metrics.csv"))
    assert len(csv_files) == 1
    rows = list(csv.DictReader(csv_files[0].open()))
    logged = {key for row in rows for key, value in row.items() if value != ""}
    expected = {"brain_alignment/mean", "brain_alignment/median", "brain_alignment/seconds"}
    expected |= {f"brain_alignment/roi/{name}" for name in datamodule.roi_masks}
    if datamodule.noise_ceiling is not None:
        expected.add("brain_alignment/nc_normalized")
    assert expected <= logged
    means = [float(row["brain_alignment/mean"]) for row in rows if row["brain_alignment/mean"]]
    assert len(means) == 2  # baseline and after the first epoch
    seconds = [float(r["brain_alignment/seconds"]) for r in rows if r["brain_alignment/seconds"]]
    assert all(value > 0 for value in seconds)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"histograms": 0})
    events.Reload()
    assert "brain_alignment/r" in events.Tags()["histograms"]
    assert len(events.Histograms("brain_alignment/r")) == 2


def test_baseline_is_the_untrained_model(fitted_run, tiny_gpt2_path):
    from brainmis.models.backbone import load_backbone

    log_dir, _, datamodule = fitted_run
    features = model_window_features(
        load_backbone(tiny_gpt2_path).model, AlignmentData.from_datamodule(datamodule)
    )
    expected = evaluate_brain_alignment(
        features,
        datamodule.true_targets,
        datamodule.window_runs,
        test_runs=datamodule.test_run,
        alphas=[1.0, 100.0, 1e4],
    )
    np.testing.assert_allclose(
        np.load(log_dir / "evaluation" / "brain_r_epoch0.npy"), expected.r, atol=1e-5
    )


def test_settings_are_checked():
    with pytest.raises(ValueError, match="every_n_epochs"):
        BrainAlignmentCallback(every_n_epochs=-1)
