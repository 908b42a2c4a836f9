"""Finding run folders and reading who they are.

A run folder is a folder with a ``run_manifest.json`` (``brainmis.run_folder.manifest``), or,
failing that, a LightningCLI ``config.yaml`` beside training output (an ``evaluation/``
folder or TensorBoard event files). The identity of a run is a
``brainmis.run_folder.identity.RunIdentity``; its status is ``complete``, ``running``, ``failed``
or, for a folder without a manifest, ``complete`` when its fit-end file ``evaluation/lm.json``
exists and ``unknown`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.identity import RunIdentity
from brainmis.run_folder.layout import (
    CONFIG_FILE,
    EVALUATION_DIR,
    EVENT_FILE_PREFIX,
    LM_FILE,
    MANIFEST_FILE,
    evaluation_dir,
)
from brainmis.run_folder.manifest import read_manifest
from brainmis.structured_files import read_mapping

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


@dataclass(frozen=True)
class DiscoveredRun:
    """A run folder, its identity, its status and the file the identity was read from."""

    path: Path
    identity: RunIdentity
    status: str
    source: str


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
    config = read_mapping(path, "LightningCLI config")
    values: dict[str, Any] = {}
    for field, candidates in _CONFIG_KEYS.items():
        for keys in candidates:
            value = _lookup(config, keys)
            if value not in (None, ""):
                is_path = keys[-1] in ("pretrained_path", "bundle_path", "bundle", "data_dir")
                values[field] = Path(str(value)).name if is_path else value
                break
    return RunIdentity.from_mapping(values, path)


def _looks_like_training_output(folder: Path, names: list[str]) -> bool:
    return EVALUATION_DIR in names or any(name.startswith(EVENT_FILE_PREFIX) for name in names)


def read_run(folder: Path) -> DiscoveredRun:
    """The run in ``folder``, from its manifest or, without one, its LightningCLI config."""
    manifest_file = folder / MANIFEST_FILE
    manifest = read_manifest(manifest_file)
    if manifest is not None:
        identity = manifest.run_identity(manifest_file)
        return DiscoveredRun(folder, identity, manifest.status, MANIFEST_FILE)
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise BrainmisInputError(folder, f"no {MANIFEST_FILE} or {CONFIG_FILE}: not a run folder")
    identity = read_lightning_config(config)
    finished = (evaluation_dir(folder) / LM_FILE).is_file()
    return DiscoveredRun(folder, identity, "complete" if finished else "unknown", CONFIG_FILE)


def find_run_folders(root: Path) -> list[Path]:
    """Run folders at or below ``root`` (a run folder's own subfolders are not searched)."""
    found: list[Path] = []
    for current, subfolders, files in os.walk(root):
        folder = Path(current)
        is_run = MANIFEST_FILE in files or (
            CONFIG_FILE in files and _looks_like_training_output(folder, subfolders + files)
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
                f"no run folders found here or below (looked for {MANIFEST_FILE} or "
                f"{CONFIG_FILE} beside evaluation/ or TensorBoard files)",
            )
        folders.update(dict.fromkeys(folder.resolve() for folder in below))
    runs = [read_run(folder) for folder in folders]
    return sorted(runs, key=lambda run: (run.identity, str(run.path)))
