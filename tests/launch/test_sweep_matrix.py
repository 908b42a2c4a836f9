"""Matrix files: parsing, validation, expansion and config composition."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from brainmis.errors import BrainmisInputError
from brainmis.launch.sweep_matrix import compose_config, load_matrix

REPO = Path(__file__).resolve().parents[2]


def write_matrix(folder: Path, **entries: object) -> Path:
    values: dict[str, object] = {
        "name": "t",
        "config": "base_{condition}.yaml",
        "models": ["m1"],
        "datasets": {"d1": {"subjects": ["A", "B"], "folds": [0, 1]}},
        "conditions": ["tuned", "misaligned"],
    }
    values.update(entries)
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    for condition in ("tuned", "misaligned"):
        (folder / f"base_{condition}.yaml").write_text("trainer: {max_epochs: 1}\n")
    return path


def test_paper_matrix_is_the_whole_experiment() -> None:
    matrix = load_matrix(REPO / "configs" / "sweeps" / "paper.yaml")
    runs = matrix.runs()
    # 3 models x 3 conditions x (8 HP + 6 Moth subjects) x 4 folds x 1 seed
    assert len(runs) == 3 * 3 * (8 + 6) * 4 == 504
    assert len({run.run_id for run in runs}) == len(runs)
    assert {run.identity.model for run in runs} == {"bert", "gpt2", "llama"}
    assert {run.identity.condition for run in runs} == {"misaligned", "preserving", "tuned"}
    assert {run.identity.subject for run in runs if run.identity.dataset == "moth"} == {
        "01", "02", "03", "04", "05", "06"
    }  # fmt: skip
    assert {run.identity.seed for run in runs} == {42}
    first = runs[0]
    assert first.base_config == (REPO / "configs" / "bert_hp_misaligned.yaml").resolve()
    assert first.overrides["data.subject"] == "F"
    assert first.overrides["model.condition"] == "misaligned"
    assert matrix.slurm.gpus_per_node == 1


def test_demo_matrix_is_two_conditions_by_two_subjects() -> None:
    matrix = load_matrix(REPO / "configs" / "sweeps" / "demo.yaml")
    runs = matrix.runs()
    assert [(run.identity.condition, run.identity.subject) for run in runs] == [
        ("misaligned", "F"),
        ("misaligned", "H"),
        ("preserving", "F"),
        ("preserving", "H"),
    ]
    assert matrix.slurm.max_concurrent == 2


def test_overrides_are_layered_in_order(tmp_path: Path) -> None:
    path = write_matrix(
        tmp_path,
        models={"m1": {"model.lr": 1.0, "trainer.max_epochs": 3}},
        datasets={"d1": {"subjects": ["A"], "folds": [2], "overrides": {"data.bundle": "x"}}},
        conditions={"tuned": {}, "misaligned": {"model.condition": "misaligned", "model.lr": 2}},
        overrides={"trainer.max_epochs": 5, "model.lr": 0.5},
        seeds=[1, 2],
    )
    runs = load_matrix(path).runs()
    assert len(runs) == 1 * 1 * 2 * 1 * 2
    tuned, misaligned = runs[0], runs[2]
    assert tuned.overrides == {
        "trainer.max_epochs": 3,
        "model.lr": 1.0,
        "data.bundle": "x",
        "model.condition": "tuned",
        "data.subject": "A",
        "data.fold": 2,
        "seed_everything": 1,
    }
    assert misaligned.overrides["model.lr"] == 2
    assert misaligned.run_id == "m1-d1-misaligned-subA-fold2-seed1"


def test_compose_config_sets_nested_keys_without_touching_the_base() -> None:
    base = {"model": {"lr": 1, "lora": {"r": 8}}, "trainer": {"max_epochs": 5}}
    composed = compose_config(base, {"model.lora.r": 4, "data.fold": 1, "seed_everything": 7})
    assert composed == {
        "model": {"lr": 1, "lora": {"r": 4}},
        "trainer": {"max_epochs": 5},
        "data": {"fold": 1},
        "seed_everything": 7,
    }
    assert base["model"]["lora"]["r"] == 8


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ({"modles": ["x"]}, "unknown keys"),
        ({"models": []}, "non-empty list"),
        ({"models": ["a", "a"]}, "twice"),
        ({"models": ["bad name"]}, "not a safe name"),
        ({"seeds": ["x"]}, "not an integer"),
        ({"datasets": {"d1": {"subjects": ["A"]}}}, "missing 'folds'"),
        ({"datasets": {"d1": {"subjects": ["A"], "folds": [-1]}}}, "folds must be >= 0"),
        ({"config": "base_{nope}.yaml"}, "may only use"),
        ({"overrides": {"a..b": 1}}, "not a dotted config key"),
        ({"slurm": {"gpus": 1}}, "slurm: unknown keys"),
        ({"slurm": {"max_concurrent": 0}}, "max_concurrent must be >= 1"),
        ({"keys": {"subjekt": "data.subject"}}, "'keys' may only set"),
    ],
)
def test_bad_matrices_name_the_file_and_problem(
    tmp_path: Path, entries: dict[str, object], problem: str
) -> None:
    path = write_matrix(tmp_path, **entries)
    with pytest.raises(BrainmisInputError) as error:
        load_matrix(path)
    assert str(error.value).startswith(str(path))
    assert problem in str(error.value)


def test_missing_base_config_is_reported(tmp_path: Path) -> None:
    path = write_matrix(tmp_path, conditions=["tuned", "preserving"])
    matrix = load_matrix(path)
    with pytest.raises(BrainmisInputError, match="base config not found: .*base_preserving"):
        matrix.check_configs_exist()


def test_missing_or_broken_matrix_file(tmp_path: Path) -> None:
    with pytest.raises(BrainmisInputError, match="matrix file not found"):
        load_matrix(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [a\n")
    with pytest.raises(BrainmisInputError, match="not valid YAML"):
        load_matrix(broken)
