"""RunManifestCallback: running -> complete / failed, identity, checksum, refusal, attempts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from launch_helpers import TinyData, TinyModel
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.loggers import TensorBoardLogger

from brainmis.errors import BrainmisInputError
from brainmis.launch.manifest import RunManifestCallback
from brainmis.run_folder.layout import MANIFEST_FILE
from brainmis.run_folder.manifest import read_manifest, run_status


def make_trainer(run_root: Path, *callbacks: Callback, max_epochs: int = 1) -> Trainer:
    return Trainer(
        max_epochs=max_epochs,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(run_root, name="", version="run"),
        default_root_dir=run_root / "run",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


class SeeStatus(Callback):
    """Records the manifest status while training runs."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def on_train_batch_end(self, trainer, *args) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(run_status(trainer.log_dir))


class Boom(Callback):
    def on_train_batch_end(self, trainer, *args) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated failure\nwith two lines")


def test_complete_run_manifest(tmp_path: Path, fake_bundle: Path) -> None:
    seed_everything(7)
    see = SeeStatus()
    callback = RunManifestCallback(identity={"dataset": "hp", "seed": 42}, run_id="r1")
    trainer = make_trainer(tmp_path, callback, see)
    trainer.fit(TinyModel(condition="misaligned"), TinyData(bundle_path=fake_bundle, fold=1))
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None
    assert see.seen == ["running", "running"]
    assert manifest.status == "complete"
    assert manifest.run_id == "r1"
    assert manifest.identity == {
        "model": "tiny-gpt2",  # folder name of pretrained_path
        "dataset": "hp",  # given: wins over the datamodule's dataset_name
        "subject": "F",
        "fold": 1,
        "condition": "misaligned",
        "seed": 42,
    }
    expected = hashlib.sha256((fake_bundle / "manifest.json").read_bytes()).hexdigest()
    assert manifest.data["checksum"] == expected
    assert manifest.data["bundle"] == str(fake_bundle)
    assert manifest.config["model"]["condition"] == "misaligned"
    assert manifest.config["data"]["fold"] == 1
    assert manifest.config["trainer"]["max_epochs"] == 1
    assert manifest.versions["torch"] and manifest.versions["lightning"]
    assert manifest.slurm is None
    assert len(manifest.attempts) == 1
    attempt = manifest.attempts[0]
    assert attempt["status"] == "complete" and attempt["duration_s"] >= 0
    assert manifest.created and manifest.updated and attempt["started"] and attempt["ended"]
    raw = json.loads((tmp_path / "run" / MANIFEST_FILE).read_text())
    assert raw["identity"]["subject"] == "F" and raw["status"] == "complete"


def test_identity_inferred_without_overrides(tmp_path: Path) -> None:
    seed_everything(3)
    trainer = make_trainer(tmp_path, RunManifestCallback())
    trainer.fit(TinyModel(), TinyData(fold=2))
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None
    assert manifest.identity == {
        "model": "tiny-gpt2",
        "dataset": "synthetic-hp",
        "subject": "F",
        "fold": 2,
        "condition": "tuned",
        "seed": 3,
    }
    assert manifest.data["checksum"] is None


def test_failed_run_records_the_error(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, RunManifestCallback(), Boom())
    with pytest.raises(RuntimeError, match="simulated failure"):
        trainer.fit(TinyModel(), TinyData())
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None and manifest.status == "failed"
    assert manifest.error == "RuntimeError: simulated failure with two lines"
    assert manifest.attempts[-1]["status"] == "failed"


def test_restart_appends_an_attempt_and_complete_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        make_trainer(tmp_path, RunManifestCallback(), Boom()).fit(TinyModel(), TinyData())
    make_trainer(tmp_path, RunManifestCallback()).fit(TinyModel(), TinyData())
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None and manifest.status == "complete" and manifest.error is None
    assert [a["status"] for a in manifest.attempts] == ["failed", "complete"]
    before = (tmp_path / "run" / MANIFEST_FILE).read_text()
    with pytest.raises(BrainmisInputError, match="holds a complete run"):
        make_trainer(tmp_path, RunManifestCallback()).fit(TinyModel(), TinyData())
    assert (tmp_path / "run" / MANIFEST_FILE).read_text() == before
    make_trainer(tmp_path, RunManifestCallback(allow_complete=True)).fit(TinyModel(), TinyData())
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None and len(manifest.attempts) == 3


def test_slurm_ids_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # Lightning: not a batch SLURM job
    make_trainer(tmp_path, RunManifestCallback()).fit(TinyModel(), TinyData())
    manifest = read_manifest(tmp_path / "run")
    assert manifest is not None and manifest.slurm is not None
    assert manifest.slurm["job_id"] == "4242" and manifest.slurm["restart_count"] == 1
    assert manifest.attempts[0]["slurm_restart_count"] == 1


def test_bad_manifests_and_identity_keys(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BrainmisInputError, match="run_manifest.json: not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"identity": {}, "status": "done"}))
    with pytest.raises(BrainmisInputError, match="status 'done'"):
        read_manifest(tmp_path)
    with pytest.raises(BrainmisInputError, match="unknown identity keys"):
        RunManifestCallback(identity={"subjekt": "F"})
