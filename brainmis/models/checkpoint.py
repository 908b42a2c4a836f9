"""The one way from a checkpoint of ``brainmis fit`` to a module, its epoch and its run.

``brainmis export``, ``brainmis evaluate-brain`` and ``brainmis probe`` all call
``load_checkpoint_module``, so they rebuild the same model from the same settings and report
the same epoch for the same file.

Where settings come from:

- the module's arguments: the checkpoint's ``hyper_parameters`` (what ``save_hyperparameters``
  stored when the weights were trained: ``pretrained_path``, ``n_voxels``, ``context_trs``,
  LoRA settings ...), else the ``model`` section of the run's ``config.yaml``;
  ``pretrained_path`` can be overridden when the base model folder moved;
- the data of the run (for evaluations): the ``data`` section of ``config.yaml``, found beside
  the checkpoint or in the run folder above ``checkpoints/``.

The epoch is the number of training epochs finished when the checkpoint was saved (the
project's one epoch convention, ``brainmis.run_folder.trainer.epochs_finished``; 0 = the untouched
pretrained model). Every problem is a one-line ``BrainmisInputError`` naming the file.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.layout import CONFIG_FILE
from brainmis.structured_files import read_mapping


@dataclass
class LoadedCheckpoint:
    """A rebuilt module with the checkpoint's trainable weights, and where it came from.

    Attributes:
        module: the ``BrainMisalignmentModule`` (frozen base + LoRA + head), in eval mode.
        epoch: training epochs finished when the checkpoint was saved.
        path: the checkpoint file.
        config_path: the run's ``config.yaml``, or None when there is none.
        data_args: the ``data`` section of that config (empty without one).
        model_args: the arguments the module was built with.
    """

    module: Any
    epoch: int
    path: Path
    config_path: Path | None
    data_args: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path | None:
        """The run folder (the folder of ``config.yaml``), or None."""
        return None if self.config_path is None else self.config_path.parent


def read_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint read with ``weights_only=True`` (tensors and plain values only).

    Raises ``BrainmisInputError`` naming the file when it is missing, holds pickled objects
    other than tensors (it is then not loaded at all), is not a checkpoint, or has no
    ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, "checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # no class or code: not a pickle
            raise BrainmisInputError(path, "not a readable checkpoint file") from None
        raise BrainmisInputError(
            path,
            "holds objects other than tensors (pickled classes or code); brainmis loads "
            "tensors only and will not load this file",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BrainmisInputError(path, f"not a readable checkpoint file ({reason})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise BrainmisInputError(path, "not a Lightning checkpoint (no state_dict)")
    return checkpoint


def checkpoint_epoch(checkpoint: dict[str, Any]) -> int:
    """Training epochs finished when ``checkpoint`` was saved.

    The fit loop's processed-epoch count (Lightning increments it before
    ``on_train_epoch_end``, where the project's checkpoints are saved); for a checkpoint
    without loop state, its 0-based ``epoch`` index plus one.
    """
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        return int(checkpoint.get("epoch", -1)) + 1


def find_run_config(checkpoint_path: Path) -> Path | None:
    """``config.yaml`` beside the checkpoint or in the run folder above ``checkpoints/``."""
    for folder in (checkpoint_path.parent, checkpoint_path.parent.parent):
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
    return None


def _init_args(section: Any) -> dict[str, Any]:
    """A config section as plain arguments (the ``{class_path, init_args}`` form unwrapped)."""
    if not isinstance(section, dict):
        return {}
    if isinstance(section.get("init_args"), dict):
        return dict(section["init_args"])
    return {key: value for key, value in section.items() if key != "class_path"}


def read_run_config(config_path: Path) -> dict[str, dict[str, Any]]:
    """The ``model`` and ``data`` sections of a LightningCLI ``config.yaml``.

    Raises ``BrainmisInputError`` naming the file when it is unreadable, not YAML (or uses a
    tag the safe loader refuses) or has no ``model`` section.
    """
    config = read_mapping(config_path, "run config")
    if not isinstance(config.get("model"), dict):
        raise BrainmisInputError(config_path, "no 'model' section: not a brainmis run config")
    return {"model": _init_args(config["model"]), "data": _init_args(config.get("data"))}


def _check_weights(path: Path, module: Any, state: dict[str, torch.Tensor]) -> None:
    """Every trainable weight present, none unknown, every shape as the rebuilt model's."""
    own = dict(module.named_parameters())
    trainable = [name for name, parameter in own.items() if parameter.requires_grad]
    missing = [name for name in trainable if name not in state]
    if missing:
        raise BrainmisInputError(
            path,
            f"lacks {len(missing)} trainable weights of the rebuilt model (e.g. {missing[0]}): "
            "it was made with another model or LoRA setting",
        )
    unknown = [name for name in state if name not in own]
    if unknown:
        raise BrainmisInputError(
            path, f"{len(unknown)} weights do not belong to the rebuilt model (e.g. {unknown[0]})"
        )
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise BrainmisInputError(path, f"weight {name} is not a tensor")
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise BrainmisInputError(
                path,
                f"weight {name} has shape {tuple(tensor.shape)} but the rebuilt model expects "
                f"{tuple(own[name].shape)} (another base model size, n_voxels or context_trs)",
            )


def load_checkpoint_module(
    path: str | Path, pretrained_path: str | None = None
) -> LoadedCheckpoint:
    """Rebuild the run's module from ``path`` and load its trainable weights (LoRA + head).

    Args:
        path: a ``.ckpt`` written by ``brainmis fit``.
        pretrained_path: the base model folder, when it moved since training.

    Returns:
        A ``LoadedCheckpoint``; its module is in eval mode on the CPU.
    """
    from brainmis.models.erasure import restore_erasure
    from brainmis.models.module import BrainMisalignmentModule

    path = Path(path)
    checkpoint = read_checkpoint_file(path)
    config_path = find_run_config(path)
    config = read_run_config(config_path) if config_path is not None else None
    saved = checkpoint.get("hyper_parameters")
    model_args = dict(saved) if isinstance(saved, dict) and saved else {}
    if not model_args and config is not None:
        model_args = dict(config["model"])
    if pretrained_path is not None:
        model_args["pretrained_path"] = str(pretrained_path)
    if not model_args.get("pretrained_path"):
        where = "the checkpoint's hyper-parameters or the run's config.yaml"
        raise BrainmisInputError(path, f"no model.pretrained_path in {where}")
    if model_args.get("n_voxels") is None:
        head = checkpoint["state_dict"].get("head.linear.weight")
        if not isinstance(head, torch.Tensor):
            raise BrainmisInputError(path, "cannot tell n_voxels: no head.linear.weight in it")
        model_args["n_voxels"] = int(head.shape[0])
    accepted = set(inspect.signature(BrainMisalignmentModule.__init__).parameters) - {"self"}
    model_args = {key: value for key, value in model_args.items() if key in accepted}
    # The LM-budget reference may name another run's lm.json: a fit-time input that a
    # rebuilt module does not use, so a moved or deleted reference run does not block it.
    model_args.pop("lm_reference", None)
    module = BrainMisalignmentModule(**model_args)
    _check_weights(path, module, checkpoint["state_dict"])
    module.load_state_dict(checkpoint["state_dict"], strict=False)
    restore_erasure(module, checkpoint)  # erased / inlp: the fitted projection hook
    module.eval()
    return LoadedCheckpoint(
        module=module,
        epoch=checkpoint_epoch(checkpoint),
        path=path,
        config_path=config_path,
        data_args={} if config is None else dict(config["data"]),
        model_args=model_args,
    )
