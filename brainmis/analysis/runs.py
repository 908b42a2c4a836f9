"""Finding run folders and reading who they are.

A run folder is a folder with a ``run_manifest.json`` (written by
``brainmis.launch.manifest``), or, failing that, a LightningCLI ``config.yaml`` beside
training output (an ``evaluation/`` folder or TensorBoard event files). The identity of a run
is ``(model, dataset, subject, fold, condition, seed)``; its status is ``complete``,
``running``, ``failed`` or, for a folder without a manifest, ``complete`` when its fit-end
file ``evaluation/lm.json`` exists and ``unknown`` otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from brainmis.errors import BrainmisInputError

MANIFEST_NAME = "run_manifest.json"
CONFIG_NAME = "config.yaml"
EVALUATION_DIR = "evaluation"
IDENTITY_FIELDS = ("model", "dataset", "subject", "fold", "condition", "seed")
EVENT_FILE_PREFIX = "events.out.tfevents"

# Where a LightningCLI config keeps each identity field, in order of preference.
_CONFIG_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "model": (("model", "model_name"), ("model", "name"), ("model", "pretrained_path")),
    "dataset": (
        ("data", "dataset"),
        ("data", "dataset_name"),
        ("data", "bundle_path"),
        ("data", "bundle"),
        ("data", "data_dir"),
    ),
    "subject": (("data", "subject"),),
    "fold": (("data", "fold"),),
    "condition": (("model", "condition"),),
    "seed": (("seed_everything",),),
}


@dataclass(frozen=True, order=True)
class RunIdentity:
    """Who a run is. ``setting`` = (model, dataset); ``unit`` = (subject, fold, seed)."""

    model: str
    dataset: str
    subject: str
    fold: int
    condition: str
    seed: int

    @property
    def setting(self) -> tuple[str, str]:
        return (self.model, self.dataset)

    @property
    def unit(self) -> tuple[str, int, int]:
        return (self.subject, self.fold, self.seed)

    def label(self) -> str:
        return (
            f"model={self.model} dataset={self.dataset} subject={self.subject} "
            f"fold={self.fold} condition={self.condition} seed={self.seed}"
        )


@dataclass(frozen=True)
class DiscoveredRun:
    """A run folder, its identity, its status and the file the identity was read from."""

    path: Path
    identity: RunIdentity
    status: str
    source: str


def _identity_from_mapping(values: dict[str, Any], source: Path) -> RunIdentity:
    missing = [field for field in IDENTITY_FIELDS if values.get(field) in (None, "")]
    if missing:
        raise BrainmisInputError(source, f"run identity lacks {', '.join(missing)}")
    try:
        fold, seed = int(values["fold"]), int(values["seed"])
    except (TypeError, ValueError):
        raise BrainmisInputError(
            source, f"fold and seed must be integers, got {values['fold']!r}, {values['seed']!r}"
        ) from None
    return RunIdentity(
        model=str(values["model"]),
        dataset=str(values["dataset"]),
        subject=str(values["subject"]),
        fold=fold,
        condition=str(values["condition"]),
        seed=seed,
    )


def read_manifest(path: Path) -> tuple[RunIdentity, str]:
    """Identity and status from a ``run_manifest.json``.

    The identity is the ``identity`` object (fields at the top level are accepted too).
    """
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BrainmisInputError(path, f"not a readable JSON run manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise BrainmisInputError(path, "a run manifest must be a JSON object")
    identity = manifest.get("identity", manifest)
    if not isinstance(identity, dict):
        raise BrainmisInputError(path, "'identity' must be an object")
    status = manifest.get("status")
    if not isinstance(status, str):
        raise BrainmisInputError(path, "run manifest has no 'status' string")
    return _identity_from_mapping(identity, path), status


def _section(config: dict[str, Any], key: str) -> Any:
    value = config.get(key)
    if isinstance(value, dict) and isinstance(value.get("init_args"), dict):
        return {**value, **value["init_args"]}
    return value


def _lookup(config: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = config
    for position, key in enumerate(keys):
        if not isinstance(value, dict):
            return None
        value = _section(value, key) if position == 0 else value.get(key)
    return value


def read_lightning_config(path: Path) -> RunIdentity:
    """Identity from a LightningCLI ``config.yaml`` (no manifest).

    ``model`` and ``dataset`` given as paths (``pretrained_path``, ``bundle_path``) are
    named by their last folder name.
    """
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise BrainmisInputError(path, f"not a readable YAML config ({error})") from None
    if not isinstance(config, dict):
        raise BrainmisInputError(path, "a LightningCLI config must be a mapping")
    values: dict[str, Any] = {}
    for field, candidates in _CONFIG_KEYS.items():
        for keys in candidates:
            value = _lookup(config, keys)
            if value not in (None, ""):
                is_path = keys[-1] in ("pretrained_path", "bundle_path", "bundle", "data_dir")
                values[field] = Path(str(value)).name if is_path else value
                break
    return _identity_from_mapping(values, path)


def _looks_like_training_output(folder: Path, names: list[str]) -> bool:
    return EVALUATION_DIR in names or any(name.startswith(EVENT_FILE_PREFIX) for name in names)


def read_run(folder: Path) -> DiscoveredRun:
    """The run in ``folder``, from its manifest or, without one, its LightningCLI config."""
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        identity, status = read_manifest(manifest)
        return DiscoveredRun(folder, identity, status, MANIFEST_NAME)
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise BrainmisInputError(folder, f"no {MANIFEST_NAME} or {CONFIG_NAME}: not a run folder")
    identity = read_lightning_config(config)
    finished = (folder / EVALUATION_DIR / "lm.json").is_file()
    return DiscoveredRun(folder, identity, "complete" if finished else "unknown", CONFIG_NAME)


def find_run_folders(root: Path) -> list[Path]:
    """Run folders at or below ``root`` (a run folder's own subfolders are not searched)."""
    found: list[Path] = []
    for current, subfolders, files in os.walk(root):
        folder = Path(current)
        is_run = MANIFEST_NAME in files or (
            CONFIG_NAME in files and _looks_like_training_output(folder, subfolders + files)
        )
        if is_run:
            found.append(folder)
            subfolders.clear()
        else:
            subfolders.sort()
    return sorted(found)


def discover_runs(roots: list[Path]) -> list[DiscoveredRun]:
    """Every run at or below each of ``roots``, each folder once, sorted by identity."""
    folders: dict[Path, None] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise BrainmisInputError(root, "run folder does not exist or is not a folder")
        below = find_run_folders(root)
        if not below:
            raise BrainmisInputError(
                root,
                f"no run folders found here or below (looked for {MANIFEST_NAME} or "
                f"{CONFIG_NAME} beside evaluation/ or TensorBoard files)",
            )
        folders.update(dict.fromkeys(folder.resolve() for folder in below))
    runs = [read_run(folder) for folder in folders]
    return sorted(runs, key=lambda run: (run.identity, str(run.path)))
