"""``RunManifestCallback``: a fit records ``run_manifest.json`` in its run folder.

The file's contract, reader and writer are ``brainmis.run_folder.manifest``; this module fills it
during a fit: the identity (``brainmis.run_folder.identity``), status ``running | complete |
failed``, the resolved config, the data bundle checksum, package versions, the git commit,
SLURM ids and timings. ``brainmis compare`` finds runs by it; ``brainmis sweep`` skips runs
whose status is ``complete``.

A requeued or restarted run writes into the same folder: the manifest keeps one entry per
attempt under ``attempts`` and its top-level status follows the latest attempt. A folder whose
manifest already says ``complete`` is refused (no silent overwrite of a finished run).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from brainmis.errors import BrainmisInputError
from brainmis.launch.slurm import slurm_job_from_env
from brainmis.run_folder.identity import IDENTITY_FIELDS
from brainmis.run_folder.layout import CONFIG_FILE, MANIFEST_FILE
from brainmis.run_folder.manifest import (
    RunManifest,
    json_fallback,
    now_iso,
    read_manifest,
    write_manifest,
)

VERSIONED_PACKAGES = (
    "brainmis",
    "torch",
    "lightning",
    "transformers",
    "peft",
    "tokenizers",
    "numpy",
    "scipy",
    "jsonargparse",
)


def package_versions(names: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (``None`` if not installed), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(folder: Path | str | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout holding ``folder`` (default: this package).

    ``{}`` when the code does not live in a git checkout or git is not installed.
    """
    folder = Path(__file__).resolve().parent if folder is None else Path(folder)

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def _plain(values: Any) -> Any:
    """hparams (AttributeDict, nested) as plain JSON-ready containers."""
    if isinstance(values, dict):
        return {str(key): _plain(value) for key, value in values.items()}
    if isinstance(values, (list, tuple)):
        return [_plain(value) for value in values]
    if values is None or isinstance(values, (bool, int, float, str)):
        return values
    return json_fallback(values)


def _trainer_settings(trainer: pl.Trainer, log_dir: Path) -> dict[str, Any]:
    """What the trainer was asked to do (``log_dir`` given: reading it is a collective)."""
    return {
        "max_epochs": trainer.max_epochs,
        "max_steps": trainer.max_steps,
        "precision": str(trainer.precision),
        "accelerator": type(trainer.accelerator).__name__,
        "strategy": type(trainer.strategy).__name__,
        "world_size": trainer.world_size,
        "num_nodes": trainer.num_nodes,
        "num_devices": trainer.num_devices,
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "gradient_clip_val": trainer.gradient_clip_val,
        "default_root_dir": trainer.default_root_dir,
        "log_dir": str(log_dir),
    }


class RunManifestCallback(Callback):
    """Writes ``run_manifest.json`` into the run's log dir (``trainer.log_dir``), rank 0 only.

    Status ``running`` at setup of a fit, ``complete`` at fit end, ``failed`` (with the error
    in one line) when the fit raises. ``identity`` entries given here win over what is read
    from the module and the datamodule (``brainmis sweep`` passes the matrix values).

    Args:
        identity: any of ``model, dataset, subject, fold, condition, seed`` to record as is.
        run_id: a name for the run (the sweep's run id).
        allow_complete: accept a folder whose manifest already says ``complete`` (the new
            fit's attempt is appended); by default such a folder is refused.
    """

    def __init__(
        self,
        identity: dict[str, Any] | None = None,
        run_id: str | None = None,
        allow_complete: bool = False,
    ) -> None:
        unknown = sorted(set(identity or {}) - set(IDENTITY_FIELDS))
        if unknown:
            raise BrainmisInputError(
                None, f"RunManifestCallback: unknown identity keys {unknown}; use {IDENTITY_FIELDS}"
            )
        self.identity = dict(identity or {})
        self.run_id = run_id
        self.allow_complete = allow_complete
        self.manifest: RunManifest | None = None
        self.folder: Path | None = None
        self._attempt_started = 0.0

    # --- what the run is -----------------------------------------------------------------

    def infer_identity(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        """Identity from the module/datamodule, overridden by the values given at init."""
        module_hp = dict(getattr(pl_module, "hparams", {}) or {})
        datamodule = getattr(trainer, "datamodule", None)
        data_hp = dict(getattr(datamodule, "hparams", {}) or {})
        model = module_hp.get("model_name") or module_hp.get("pretrained_path")
        if isinstance(model, (str, Path)) and model:
            model = Path(str(model).rstrip("/")).name
        subject = getattr(getattr(datamodule, "subject", None), "name", None)
        inferred = {
            "model": model,
            "dataset": getattr(datamodule, "dataset_name", None),
            "subject": subject if subject is not None else data_hp.get("subject"),
            "fold": data_hp.get("fold", getattr(datamodule, "test_run", None)),
            "condition": getattr(pl_module, "condition", module_hp.get("condition")),
            "seed": _global_seed(),
        }
        inferred.update(self.identity)
        return {key: _plain(inferred.get(key)) for key in IDENTITY_FIELDS}

    def data_record(self, trainer: pl.Trainer) -> dict[str, Any]:
        """Where the data came from and its bundle checksum (``None`` without a bundle)."""
        datamodule = getattr(trainer, "datamodule", None)
        bundle_path = getattr(datamodule, "bundle_path", None)
        record: dict[str, Any] = {
            "bundle": None if bundle_path is None else str(bundle_path),
            "checksum": None,
            "n_voxels": _plain(getattr(datamodule, "n_voxels", None)),
        }
        if bundle_path is not None:
            from brainmis.data.bundle import bundle_checksum

            record["checksum"] = bundle_checksum(bundle_path)
        return record

    def refuse_complete(self, folder: Path) -> RunManifest | None:
        """The manifest of ``folder`` (None without one); raise if it says ``complete`` and
        ``allow_complete`` is off. ``brainmis fit`` calls this before the trainer writes
        anything into the folder; ``setup`` calls it again."""
        previous = read_manifest(folder)
        if previous is not None and previous.status == "complete" and not self.allow_complete:
            raise BrainmisInputError(
                folder / MANIFEST_FILE,
                "this run folder holds a complete run; refusing to train into it again "
                "(choose a new folder, or set allow_complete to append a new attempt)",
            )
        return previous

    # --- Lightning hooks -----------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # ``trainer.log_dir`` broadcasts from rank 0: read it here, on every rank, once
        folder = Path(trainer.log_dir or trainer.default_root_dir)
        previous = self.refuse_complete(folder)  # every rank checks: all refuse together
        self._attempt_started = time.time()
        if not trainer.is_global_zero:
            return
        self.folder = folder
        slurm = slurm_job_from_env()
        identity = self.infer_identity(trainer, pl_module)
        attempt = {
            "started": now_iso(),
            "ended": None,
            "duration_s": None,
            "status": "running",
            "slurm_restart_count": None if slurm is None else slurm.restart_count,
            "slurm_job_id": None if slurm is None else slurm.job_id,
        }
        manifest = previous or RunManifest(identity=identity, created=now_iso())
        manifest.identity = identity
        manifest.status = "running"
        manifest.error = None
        manifest.run_id = self.run_id or manifest.run_id or folder.name
        manifest.seed = identity["seed"]
        manifest.config = {
            "model": _plain(getattr(pl_module, "hparams", {})),
            "data": _plain(getattr(getattr(trainer, "datamodule", None), "hparams", {})),
            "trainer": _plain(_trainer_settings(trainer, folder)),
            "config_file": CONFIG_FILE,
        }
        manifest.data = self.data_record(trainer)
        manifest.versions = package_versions()
        manifest.git = git_state()
        manifest.host = {"hostname": socket.gethostname(), "platform": platform.platform()}
        manifest.slurm = None if slurm is None else slurm.as_dict()
        manifest.attempts = [*manifest.attempts, attempt]
        self.manifest = manifest
        write_manifest(manifest, folder)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish("complete", None)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        message = " ".join(f"{type(exception).__name__}: {exception}".split())
        self._finish("failed", message[:500])

    def _finish(self, status: str, error: str | None) -> None:
        if self.manifest is None or self.folder is None:
            return
        ended = time.time()
        attempt = self.manifest.attempts[-1]
        attempt.update(
            ended=now_iso(), duration_s=round(ended - self._attempt_started, 3), status=status
        )
        self.manifest.status = status
        self.manifest.error = error
        write_manifest(self.manifest, self.folder)
        self.manifest = None


def _global_seed() -> int | None:
    value = os.environ.get("PL_GLOBAL_SEED")
    return None if value is None else int(value)
