"""The permutation test in the run folder: ``brainmis evaluate-brain`` and the callback."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from brainmis.cli import main as brainmis_main


def pretrained_evaluation(tiny_gpt2_path, datamodule, out, *extra: str) -> list[str]:
    return [
        "evaluate-brain",
        "--model",
        str(tiny_gpt2_path),
        "--data-bundle",
        str(datamodule.bundle_path),
        "--fold",
        str(datamodule.test_run),
        "--context-trs",
        str(datamodule.context_trs),
        "--alphas",
        "1",
        "100",
        "10000",
        "--device",
        "cpu",
        "--out",
        str(out),
        *extra,
    ]


def test_evaluate_brain_writes_p_q_and_the_record(fitted_run, tiny_gpt2_path, tmp_path, capsys):
    _, _, datamodule = fitted_run
    out = tmp_path / "tested"
    extra = ["--permutations", "300", "--permutation-block", "4", "--fdr-q", "0.1"]
    assert brainmis_main(pretrained_evaluation(tiny_gpt2_path, datamodule, out, *extra)) == 0
    assert "significant (q <= 0.1, 300 block permutations)" in capsys.readouterr().out
    names = {path.name for path in out.iterdir()}
    assert {"brain_p_epoch0.npy", "brain_q_epoch0.npy", "brain_r_epoch0.npy"} <= names
    p, q = np.load(out / "brain_p_epoch0.npy"), np.load(out / "brain_q_epoch0.npy")
    r = np.load(out / "brain_r_epoch0.npy")
    assert p.shape == q.shape == r.shape
    assert p.min() >= 1 / 301 and p.max() <= 1
    np.testing.assert_allclose(q, false_discovery_control(p))
    test = json.loads((out / "brain_alignment.json").read_text())["significance"]
    assert (test["permutations"], test["block_trs"], test["fdr_q"]) == (300, 4, 0.1)
    assert test["n_significant"] == int((q <= 0.1).sum()) and test["n_voxels"] == r.size
    rois = datamodule.roi_masks
    assert set(test["per_roi"]) == set(rois)
    for name, mask in rois.items():
        assert test["per_roi"][name]["n_significant"] == int((q[mask] <= 0.1).sum())


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--permutations", "-1"], "--permutations -1: must be 0 (off) or a positive count"),
        (["--fdr-q", "2"], "--fdr-q 2.0: must be a false discovery rate between 0 and 1"),
        (["--permutation-block", "0"], "--permutation-block 0: must be a positive number"),
        (["--permutation-block", "500"], "fewer than 2 blocks to permute"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    fitted_run, tiny_gpt2_path, tmp_path, capsys, option, message
):
    _, _, datamodule = fitted_run
    out = tmp_path / "refused"
    assert brainmis_main(pretrained_evaluation(tiny_gpt2_path, datamodule, out, *option)) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_callback_writes_the_test_of_every_evaluation(fitted_run):
    log_dir, callback, _ = fitted_run
    evaluation = log_dir / "evaluation"
    record = json.loads((evaluation / "brain_alignment.json").read_text())
    assert record["significance"]["permutations"] == 1000
    for epoch in (0, 1):
        p = np.load(evaluation / f"brain_p_epoch{epoch}.npy")
        assert p.shape == np.load(evaluation / f"brain_r_epoch{epoch}.npy").shape
    shares = [entry["share_significant"] for entry in record["history"]]
    assert len(shares) == 2 and all(0 <= share <= 1 for share in shares)
    assert record["significance"]["share_significant"] == shares[-1]
    metrics = (log_dir.parent.parent / "csv" / "version_0" / "metrics.csv").read_text()
    rows = list(csv.DictReader(metrics.splitlines()))
    logged = [row["brain_alignment/share_significant"] for row in rows]
    assert [float(value) for value in logged if value] == pytest.approx(shares)


def test_callback_refuses_bad_options_naming_its_argument():
    from brainmis.errors import BrainmisInputError
    from brainmis.evaluation.brain.callback import BrainAlignmentCallback

    with pytest.raises(BrainmisInputError, match="^fdr_q 1.5: must be a false discovery rate"):
        BrainAlignmentCallback(fdr_q=1.5)
    with pytest.raises(BrainmisInputError, match="^permutation_block 0: must be a positive"):
        BrainAlignmentCallback(permutation_block=0)
    assert BrainAlignmentCallback(permutations=0).significance is None
