"""Run discovery, grouping into the expected matrix, and the result readers' bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from brainmis.analysis.results import (
    read_brain_alignment,
    read_lm_result,
    read_per_voxel_r,
    read_probing_scores,
    read_run_results,
)
from brainmis.analysis.runs import discover_runs, find_run_folders, read_run
from brainmis.analysis.study import (
    IncompleteMatrixError,
    build_study_matrix,
    ordered_conditions,
    require_complete,
)
from brainmis.errors import BrainmisInputError
from brainmis.run_folder.identity import RunIdentity


def test_discovery_finds_every_run_below_a_root(small_study: Path):
    runs = discover_runs([small_study])
    assert len(runs) == 2 * 3 * 2 * 2
    identities = {run.identity for run in runs}
    assert len(identities) == len(runs)
    assert RunIdentity("gpt2", "hp", "F", 0, "tuned", 42) in identities
    assert all(run.status == "complete" and run.source == "run_manifest.json" for run in runs)


def test_discovery_accepts_run_folders_and_overlapping_roots(small_study: Path):
    one = next(iter(find_run_folders(small_study / "gpt2")))
    runs = discover_runs([one, small_study / "gpt2", one.parent])
    assert len(runs) == 3 * 2 * 2  # each folder once
    assert [run.path for run in discover_runs([one])] == [one.resolve()]


def test_discovery_does_not_search_inside_a_run(small_study: Path):
    run = find_run_folders(small_study)[0]
    nested = run / "evaluation" / "stray"
    nested.mkdir()
    (nested / "run_manifest.json").write_text("{}")
    assert nested not in find_run_folders(small_study)


def test_discovery_errors(tmp_path: Path):
    with pytest.raises(BrainmisInputError, match="does not exist"):
        discover_runs([tmp_path / "absent"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BrainmisInputError, match="no run folders found"):
        discover_runs([tmp_path / "empty"])


def test_lightning_config_is_the_fallback_identity(tmp_path: Path):
    run = tmp_path / "lightning_logs" / "version_3"
    (run / "evaluation").mkdir(parents=True)
    config = {
        "seed_everything": 42,
        "model": {"pretrained_path": "/models/gpt2-tiny/", "condition": "misaligned"},
        "data": {"init_args": {"bundle_path": "/data/hp_bundle", "subject": "F", "fold": 2}},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    discovered = read_run(run)
    assert discovered.identity == RunIdentity("gpt2-tiny", "hp_bundle", "F", 2, "misaligned", 42)
    assert discovered.status == "unknown"  # no fit-end file yet
    (run / "evaluation" / "lm.json").write_text(json.dumps({"epoch": 0, "lm_loss": 3.0}))
    assert read_run(run).status == "complete"
    # a config.yaml with no training output beside it is not a run
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yaml").write_text("model: {}\n")
    assert find_run_folders(tmp_path) == [run]


def test_incomplete_config_identity_is_named(tmp_path: Path):
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"condition": "tuned"}}))
    with pytest.raises(BrainmisInputError, match="config.yaml: run identity lacks model, dataset"):
        read_run(tmp_path)


def test_bad_manifests_are_named(small_study: Path):
    run = find_run_folders(small_study)[0]
    manifest = run / "run_manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(BrainmisInputError, match="run_manifest.json: not valid JSON"):
        read_run(run)
    manifest.write_text(json.dumps({"identity": {"model": "gpt2"}, "status": "complete"}))
    with pytest.raises(BrainmisInputError, match="lacks dataset, subject, fold, condition, seed"):
        read_run(run)
    identity = {"model": "m", "dataset": "d", "subject": "F", "fold": "x", "condition": "c"}
    manifest.write_text(json.dumps({"identity": {**identity, "seed": 1}, "status": "complete"}))
    with pytest.raises(BrainmisInputError, match="fold and seed must be integers"):
        read_run(run)


def test_matrix_groups_settings_and_is_complete(small_study: Path):
    matrix = build_study_matrix(discover_runs([small_study]), read_run_results)
    assert [(s.model, s.dataset) for s in matrix.settings] == [("bert", "hp"), ("gpt2", "hp")]
    setting = matrix.settings[0]
    assert setting.conditions == ["preserving", "misaligned", "tuned"]
    assert (setting.subjects, setting.folds, setting.seeds) == (["F", "H"], [0, 1], [42])
    assert setting.result_kinds == ["lm", "brain", "probing"]
    assert matrix.n_cells == 24 and not matrix.missing
    require_complete(matrix, small_study)  # no error


def test_missing_failed_and_resultless_runs_are_missing_cells(small_study: Path):
    folders = find_run_folders(small_study)
    shutil.rmtree(folders[0])
    manifest = folders[1] / "run_manifest.json"
    values = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**values, "status": "failed"}))
    (folders[2] / "evaluation" / "probing.csv").unlink()
    matrix = build_study_matrix(discover_runs([small_study]), read_run_results)
    reasons = sorted(cell.reason.split(" (")[0].split(":")[0] for cell in matrix.missing)
    assert reasons == [
        "complete but without evaluation/probing.csv",
        "no run found",
        "not complete",
    ]
    assert len(matrix.runs) == 24 - 3
    with pytest.raises(IncompleteMatrixError) as raised:
        require_complete(matrix, small_study)
    lines = str(raised.value).splitlines()
    assert lines[0] == (
        f"{small_study}: incomplete run matrix: 3 of 24 runs missing (listed below); complete "
        "them, or pass --allow-incomplete to compare what is there"
    )
    assert len(lines) == 4 and all(line.startswith("  missing: model=") for line in lines[1:])
    assert isinstance(raised.value, BrainmisInputError)


def test_two_complete_runs_of_one_cell_are_refused(small_study: Path):
    run = find_run_folders(small_study)[0]
    shutil.copytree(run, run.parent / "version_1")
    with pytest.raises(BrainmisInputError, match="several complete runs share the identity"):
        build_study_matrix(discover_runs([small_study]), read_run_results)


def test_a_failed_attempt_beside_a_complete_one_is_fine(small_study: Path):
    run = find_run_folders(small_study)[0]
    retry = run.parent / "version_1"
    shutil.copytree(run, retry)
    manifest = json.loads((run / "run_manifest.json").read_text())
    (run / "run_manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))
    matrix = build_study_matrix(discover_runs([small_study]), read_run_results)
    assert not matrix.missing
    assert retry.resolve() in {loaded.run.path for loaded in matrix.runs}


def test_conditions_follow_the_paper_order():
    assert ordered_conditions(["tuned", "zeta", "misaligned", "alpha", "preserving"]) == [
        "preserving",
        "misaligned",
        "tuned",
        "alpha",
        "zeta",
    ]


def test_probing_reader_keeps_the_latest_epoch(small_study: Path):
    run = find_run_folders(small_study)[0]
    probing = read_probing_scores(run / "evaluation" / "probing.csv")
    assert probing.epoch == 1
    assert probing.metrics() == {"accuracy", "macro_f1", "pearson"}
    scores = probing.scores["syntax-task0"]["accuracy"]
    assert sorted(scores) == [0, 1, 2, 3, 4]
    assert min(scores.values()) > 0.4  # epoch 0 was planted 0.2 lower
    assert probing.subfields["semantics-regression"] == "semantics"


def test_result_readers_name_the_bad_file(tmp_path: Path):
    lm = tmp_path / "lm.json"
    lm.write_text(json.dumps({"epoch": 2, "lm_loss": float("nan")}))
    with pytest.raises(BrainmisInputError, match="lm.json: 'lm_loss' is not finite"):
        read_lm_result(lm)
    lm.write_text(json.dumps({"epoch": -1, "lm_loss": 3.0}))
    with pytest.raises(BrainmisInputError, match="'epoch' must be a non-negative integer"):
        read_lm_result(lm)
    brain = tmp_path / "brain_alignment.json"
    brain.write_text(json.dumps({"epoch": 0, "mean": "high"}))
    with pytest.raises(BrainmisInputError, match="'mean' must be a number"):
        read_brain_alignment(brain)
    brain.write_text(json.dumps({"epoch": 0, "mean": 0.2}))
    assert read_brain_alignment(brain).per_voxel_file is None
    probing = tmp_path / "probing.csv"
    probing.write_text("run,epoch,task,seed,metric,score\nx,0,t,0,accuracy,0.5\n")
    with pytest.raises(BrainmisInputError, match="probing.csv: missing column"):
        read_probing_scores(probing)
    probing.write_text("run,epoch,task,subfield,seed,metric,score\nx,0,t,syntax,0,accuracy,high\n")
    with pytest.raises(BrainmisInputError, match="probing.csv: line 2"):
        read_probing_scores(probing)
    probing.write_text(
        "run,epoch,task,subfield,seed,metric,score\n"
        "x,0,t,syntax,0,accuracy,0.5\nx,0,t,semantics,1,accuracy,0.6\n"
    )
    with pytest.raises(BrainmisInputError, match="listed under subfields"):
        read_probing_scores(probing)


def test_per_voxel_reader_refuses_bad_arrays(tmp_path: Path):
    good = tmp_path / "brain_r_epoch0.npy"
    np.save(good, np.array([0.1, np.nan, -0.2], dtype=np.float32))
    np.testing.assert_allclose(read_per_voxel_r(good), [0.1, -0.2], rtol=1e-6)
    matrix = tmp_path / "two_d.npy"
    np.save(matrix, np.zeros((2, 3)))
    with pytest.raises(BrainmisInputError, match="two_d.npy: expected a 1-D float array"):
        read_per_voxel_r(matrix)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"r": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BrainmisInputError, match="objects.npy: not a readable .npy"):
        read_per_voxel_r(pickled)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.array([0.5, 1.5]))
    with pytest.raises(BrainmisInputError, match=r"outside \[-1, 1\]"):
        read_per_voxel_r(outside)
