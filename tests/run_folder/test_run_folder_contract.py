"""brainmis.run_folder: the run folder's names, identity and manifest, owned in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.identity import IDENTITY_FIELDS, RunIdentity
from brainmis.run_folder.layout import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    MANIFEST_FILE,
    brain_r_file,
    last_checkpoint,
)
from brainmis.run_folder.manifest import RunManifest, read_manifest, run_status, write_manifest

REPO = Path(__file__).resolve().parents[2]
IDENTITY = RunIdentity("gpt2", "hp", "F", 2, "tuned", 42)


def test_identity_fields_name_the_dataclass_in_order() -> None:
    assert tuple(IDENTITY.as_dict()) == IDENTITY_FIELDS
    assert IDENTITY.setting == ("gpt2", "hp") and IDENTITY.unit == ("F", 2, 42)
    assert IDENTITY.run_id == "gpt2-hp-tuned-subF-fold2-seed42"
    assert IDENTITY.label() == "model=gpt2 dataset=hp subject=F fold=2 condition=tuned seed=42"
    assert RunIdentity.from_mapping(IDENTITY.as_dict(), None) == IDENTITY


def test_identity_from_a_mapping_checks_every_field() -> None:
    with pytest.raises(BrainmisInputError, match="f.json: run identity lacks subject, seed"):
        RunIdentity.from_mapping({**IDENTITY.as_dict(), "subject": "", "seed": None}, "f.json")
    with pytest.raises(BrainmisInputError, match="fold and seed must be integers"):
        RunIdentity.from_mapping({**IDENTITY.as_dict(), "fold": "two"}, "f.json")


def test_manifest_round_trip_and_status(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None and run_status(tmp_path) is None
    path = write_manifest(RunManifest(identity=IDENTITY.as_dict(), status="complete"), tmp_path)
    assert path == tmp_path / MANIFEST_FILE
    assert not [p for p in tmp_path.iterdir() if p != path]  # no temporary file left
    for where in (tmp_path, path):
        manifest = read_manifest(where)
        assert manifest is not None and manifest.status == "complete"
        assert manifest.run_identity(path) == IDENTITY
    assert run_status(tmp_path) == "complete"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a run manifest must be a mapping, got list"),
        (json.dumps({"identity": {}}), "run manifest lacks status"),
        (json.dumps({"identity": [], "status": "complete"}), "'identity' must be an object"),
        (json.dumps({"identity": {}, "status": "done"}), "status 'done' is not one of"),
    ],
)
def test_the_one_manifest_reader_refuses_in_one_line(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / MANIFEST_FILE).write_text(content)
    with pytest.raises(BrainmisInputError, match=problem) as raised:
        read_manifest(tmp_path)
    assert str(raised.value).startswith(str(tmp_path / MANIFEST_FILE))


def test_an_incomplete_identity_is_refused_only_where_a_whole_one_is_needed(
    tmp_path: Path,
) -> None:
    write_manifest(RunManifest(identity={"model": "m"}, status="running"), tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.status == "running"
    with pytest.raises(BrainmisInputError, match="run identity lacks dataset"):
        manifest.run_identity(tmp_path / MANIFEST_FILE)


def test_per_epoch_names_and_checkpoint_path() -> None:
    assert brain_r_file(3) == "brain_r_epoch3.npy"
    assert last_checkpoint("run") == Path("run") / "checkpoints" / "last.ckpt"


def test_shipped_trainers_save_the_checkpoints_the_layout_names() -> None:
    """ModelCheckpoint callbacks of the shipped trainer configs write last.ckpt / best.ckpt."""
    names = {Path(LAST_CHECKPOINT).stem, Path(BEST_CHECKPOINT).stem}
    for config in sorted((REPO / "configs" / "shared").glob("trainer_*.yaml")):
        callbacks = yaml.safe_load(config.read_text()).get("callbacks") or []
        saved = {
            callback["init_args"]["filename"]
            for callback in callbacks
            if callback["class_path"].endswith("ModelCheckpoint")
        }
        assert saved and saved <= names, config.name
        assert Path(LAST_CHECKPOINT).stem in saved, config.name
