"""Checks ``brainmis fit|validate|test`` makes before the trainer writes anything.

Lightning writes into the run folder as soon as a fit starts (the TensorBoard event file, the
saved ``config.yaml``), before any callback's ``setup`` and before it reads ``--ckpt_path``.
So everything that can refuse a run is checked here, between building the classes and
starting the trainer:

- usage errors of the parser are one line (``LightningUsageError``, turned into a
  ``BrainmisInputError`` by ``brainmis.commands.fit``), not the whole usage;
- every ``--config`` file must exist and be readable YAML;
- a fit into a folder whose run manifest says ``complete`` is refused (unless the
  ``RunManifestCallback`` allows it); ``validate``/``test`` into a training run's folder too,
  since they would overwrite its ``config.yaml``;
- ``--ckpt_path`` must be a checkpoint holding only tensors and plain values;
- ``model.n_voxels``, when a config or the ``--ckpt_path`` checkpoint sets it, must equal
  what the data give.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch
import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser

from brainmis.errors import BrainmisInputError, refuse_file_in_the_way
from brainmis.launch.manifest import RunManifestCallback
from brainmis.run_folder.layout import CONFIG_FILE, MANIFEST_FILE
from brainmis.run_folder.manifest import read_manifest
from brainmis.run_folder.trainer import run_folder

CONFIG_FLAGS = ("--config", "-c")
# ``--ckpt_path`` values Lightning resolves itself (to a file it found or wrote)
NAMED_CHECKPOINTS = ("last", "hpc", "best")


class LightningUsageError(Exception):
    """A usage error of the LightningCLI parser; ``str(error)`` is jsonargparse's message.

    Deliberately not a ``ValueError``/``TypeError``/``KeyError``: jsonargparse catches those
    internally, and this must reach ``brainmis.commands.fit`` unchanged.
    """


class OneLineErrorParser(LightningArgumentParser):
    """LightningCLI's parser, raising ``LightningUsageError`` instead of printing the usage.

    Parsers built for nested values (``exit_on_error=False``) keep jsonargparse's behaviour,
    and so does its debug mode (``JSONARGPARSE_DEBUG``).
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG", "").lower() == "true":
            super().error(message, ex)
        raise LightningUsageError(" ".join(str(message).split())) from None


def usage_error(error: LightningUsageError, subcommand: str) -> BrainmisInputError:
    """The one-line error of a parser usage error, pointing at the subcommand's ``--help``."""
    return BrainmisInputError(None, f"{error} (see brainmis {subcommand} --help)")


def config_files(args: Sequence[str]) -> list[Path]:
    """The files given with ``--config``/``-c`` in ``args`` (both ``--config X`` and
    ``--config=X`` forms)."""
    files = []
    for index, arg in enumerate(args):
        if arg in CONFIG_FLAGS and index + 1 < len(args):
            files.append(Path(args[index + 1]))
        elif arg.startswith("--config="):
            files.append(Path(arg.removeprefix("--config=")))
    return files


def check_config_files(args: Sequence[str]) -> None:
    """Every ``--config`` file exists and is readable YAML (a mapping of keys). A value that
    is YAML itself (``--config '{trainer: {max_epochs: 1}}'``) is left to jsonargparse."""
    for path in config_files(args):
        if not path.is_file() and any(mark in str(path) for mark in ":{\n"):
            continue
        if not path.is_file():
            raise BrainmisInputError(path, "config file not found")
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            problem = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
            if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
                mark = error.problem_mark
                problem = f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"
            raise BrainmisInputError(path, f"not readable YAML: {problem}") from None
        if content is not None and not isinstance(content, dict):
            raise BrainmisInputError(path, "a config must be a mapping of keys to values")


def config_file_setting(files: Sequence[Any], section: str, key: str) -> Path | None:
    """The last of the config ``files`` that sets ``section.key`` (None if none does)."""
    found = None
    for file in files or []:
        path = Path(str(file))
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        values = content.get(section) if isinstance(content, dict) else None
        if isinstance(values, dict) and key in values:
            found = path
    return found


def check_linked_n_voxels(
    requested: Any, actual: int, config_file: Path | None, checkpoint: Any = None
) -> None:
    """Refuse a ``model.n_voxels`` that disagrees with the data's voxel count: set in a config
    (``config_file`` when known) or, when ``checkpoint`` is given, read from the hyperparameters
    of the ``--ckpt_path`` checkpoint (LightningCLI merges them into the model's config)."""
    if requested is None or int(requested) == int(actual):
        return
    if checkpoint is not None:
        raise BrainmisInputError(
            checkpoint,
            f"the checkpoint was trained to predict {requested} voxels but the data give "
            f"{actual}; resume with the data and voxel selection it was trained on",
        )
    raise BrainmisInputError(
        config_file,
        f"model.n_voxels is {requested} but the data give {actual} voxels (data.n_voxels, "
        "decided by voxel selection); remove model.n_voxels from the config, the data set it",
    )


def refuse_used_run_folder(trainer: Trainer, subcommand: str) -> None:
    """A fit must not train into a complete run; validate/test must not log into a training
    run's folder (their saved config would replace the fit's ``config.yaml``); and a file
    must not stand where the run folder is to be made."""
    refuse_file_in_the_way(trainer.default_root_dir, "trainer.default_root_dir folder")
    folder = refuse_file_in_the_way(run_folder(trainer), "run folder")
    if subcommand == "fit":
        for callback in trainer.callbacks:
            if isinstance(callback, RunManifestCallback):
                callback.refuse_complete(folder)
        return
    if read_manifest(folder) is not None:
        raise BrainmisInputError(
            folder / MANIFEST_FILE,
            f"this folder holds a training run; {subcommand} would overwrite its {CONFIG_FILE} "
            "and logs; log into another folder (another trainer.logger version or save_dir)",
        )


def check_resume_checkpoint(ckpt_path: Any) -> None:
    """``--ckpt_path`` names a Lightning checkpoint that loads with ``weights_only=True``
    (LightningCLI itself reads its hyperparameters that way, whatever ``--weights_only`` says).

    Named checkpoints (``last``, ``hpc``, ``best``), URLs and folders (sharded checkpoints)
    are left to Lightning. The tensors are memory-mapped, not read.
    """
    if ckpt_path is None or str(ckpt_path) in NAMED_CHECKPOINTS or "://" in str(ckpt_path):
        return
    path = Path(str(ckpt_path))
    if not path.exists():
        raise BrainmisInputError(path, "checkpoint file not found (--ckpt_path)")
    if path.is_dir():
        return
    if not zipfile.is_zipfile(path):
        raise BrainmisInputError(
            path, "not a checkpoint: Lightning checkpoints are zip archives written by torch.save"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise BrainmisInputError(
            path,
            "the checkpoint holds objects other than tensors and plain values; it will not be "
            "loaded (unpickling them could run code)",
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise BrainmisInputError(path, f"not a readable checkpoint: {first_line}") from None
    if not isinstance(content, dict) or "state_dict" not in content:
        raise BrainmisInputError(path, "not a Lightning checkpoint (it has no state_dict)")
