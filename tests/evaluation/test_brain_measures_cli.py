"""``evaluate-brain --metrics ... --layers ...``: the similarity and layer-profile files."""

from __future__ import annotations

import json

import pytest

from brainmis.cli import main as brainmis_main
from brainmis.errors import BrainmisInputError
from brainmis.evaluation.brain.measures import add_epoch_record, read_epoch_records, resolve_layers


def pretrained_arguments(model, bundle, out, *extra):
    return [
        "evaluate-brain",
        "--model",
        str(model),
        "--data-bundle",
        str(bundle),
        "--fold",
        "1",
        "--context-trs",
        "3",
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


def test_metrics_and_all_layers_write_one_entry_per_layer(tiny_gpt2_path, brain_bundle, tmp_path):
    out = tmp_path / "measures"
    extra = ["--metrics", "ridge,rsa,cka,procrustes", "--layers", "all"]
    assert brainmis_main(pretrained_arguments(tiny_gpt2_path, brain_bundle, out, *extra)) == 0
    alignment = json.loads((out / "brain_alignment.json").read_text())

    similarity = json.loads((out / "brain_similarity.json").read_text())
    assert similarity["latest_epoch"] == 0 and list(similarity["epochs"]) == ["0"]
    record = similarity["epochs"]["0"]
    assert record["layer"] == 2 and record["test_run"] == 1 and record["n_test_trs"] > 3
    assert set(record["metrics"]) == {"rsa", "cka", "procrustes"}
    for name, score in record["metrics"].items():
        assert -1.0 <= score["all"] <= 1.0, name
        assert set(score["per_roi"]) == set(alignment["per_roi"])

    layers = json.loads((out / "brain_layers.json").read_text())["epochs"]["0"]
    assert layers["n_hidden_states"] == 3 and sorted(layers["layers"]) == ["0", "1", "2"]
    for entry in layers["layers"].values():
        assert set(entry) >= {"ridge_mean", "rsa", "cka", "procrustes"}
    # the last layer's profile entry is the same evaluation as the run's own layer
    last = layers["layers"]["2"]
    assert last["ridge_mean"] == pytest.approx(alignment["mean"], abs=1e-9)
    assert last["cka"] == pytest.approx(record["metrics"]["cka"]["all"], abs=1e-12)
    assert layers["layers"]["0"]["ridge_mean"] != pytest.approx(alignment["mean"], abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", "ridge,foo"], "--metrics: got foo; choose a comma list from ridge"),
        (["--layers", "99"], "--layers 99: the model has hidden states 0..2"),
        (["--layers", "two"], "--layers two: expected 'all' or a comma list"),
    ],
)
def test_bad_metrics_or_layers_exit_2_with_one_line_and_write_nothing(
    tiny_gpt2_path, brain_bundle, tmp_path, capsys, extra, message
):
    out = tmp_path / "refused"
    assert brainmis_main(pretrained_arguments(tiny_gpt2_path, brain_bundle, out, *extra)) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_epoch_records_accumulate_and_replace(tmp_path):
    path = tmp_path / "brain_layers.json"
    add_epoch_record(path, {"epoch": 2, "value": 1}, "layer-profile record")
    add_epoch_record(path, {"epoch": 0, "value": 2}, "layer-profile record")
    add_epoch_record(path, {"epoch": 2, "value": 3}, "layer-profile record")
    assert json.loads(path.read_text())["latest_epoch"] == 2
    assert read_epoch_records(path, "x") == {
        0: {"epoch": 0, "value": 2},
        2: {"epoch": 2, "value": 3},
    }
    path.write_text('{"epochs": {"one": {}}}')
    with pytest.raises(BrainmisInputError, match="brain_layers.json: 'epochs' must map epoch"):
        read_epoch_records(path, "layer-profile record")


def test_resolve_layers_normalises_negative_indices():
    assert resolve_layers("all", 4) == (0, 1, 2, 3)
    assert resolve_layers("-1, 0,3", 4) == (0, 3)
    assert resolve_layers(None, 4) == ()
    with pytest.raises(BrainmisInputError, match="layers -5: the model has hidden states 0..3"):
        resolve_layers([-5], 4, option="layers")
