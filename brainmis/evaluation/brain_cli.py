"""``brainmis evaluate-brain``: brain alignment of a checkpoint, an exported or a pretrained model.

    brainmis evaluate-brain --ckpt RUN/checkpoints/last.ckpt --out results/run_eval
    brainmis evaluate-brain --model checkpoints/hf/tiny --data-bundle BUNDLE --subject F \
        --fold 0 --out results/pretrained

With ``--ckpt``, the model and the data settings are rebuilt from the run's ``config.yaml``
(default: ``<ckpt folder>/../config.yaml``, as LightningCLI writes it) and the checkpoint's
trainable weights (LoRA + head) are loaded on top of the frozen base; ``--data-bundle``,
``--subject``, ``--fold`` override the run's data. With ``--model``, a plain Hugging Face
folder (the pretrained model, or an ``brainmis export`` output) is read as it is.

The model's arguments come from the checkpoint's hyper-parameters (else the config), so
``--config`` may be left out when ``--data-bundle`` is given and no config is found.

The evaluation is the one of ``BrainAlignmentCallback`` (``brainmis.evaluation.
model_alignment``): same features, same ridge, same held-out run, so the numbers agree for
the same weights. Writes into ``--out`` (must be new or empty): ``brain_alignment.json``,
``brain_r_epoch{E}.npy`` (E = training epochs finished at the checkpoint, 0 for ``--model``),
``brain_r_epoch{E}.nii.gz`` when the subject has voxel coordinates, and ``inputs.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.evaluation.model_alignment import (
    align_features,
    model_window_features,
    write_alignment_files,
)

PRETRAINED_EPOCH = 0
DATA_OVERRIDES = ("bundle", "subject", "fold", "context_trs", "batch_size")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainmis evaluate-brain",
        description="Cross-validated voxelwise ridge brain alignment of a model.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="checkpoint of a brainmis fit (trainable weights)")
    source.add_argument("--model", help="local Hugging Face model folder")
    parser.add_argument("--config", help="the run's config.yaml (default: beside checkpoints/)")
    parser.add_argument("--data-bundle", dest="bundle", help="prepared bundle folder")
    parser.add_argument("--subject", help="subject name (default: the run's, or the first)")
    parser.add_argument("--fold", type=int, help="held-out run index (default: the run's, or 0)")
    parser.add_argument("--context-trs", type=int, help="TR groups per window (default 5)")
    parser.add_argument("--layer", type=int, help="hidden-state index (default: the run's, -1)")
    parser.add_argument("--batch-size", type=int, help="windows per batch")
    parser.add_argument("--alphas", type=float, nargs="+", help="ridge penalty grid")
    parser.add_argument("--leakage", action="store_true", help="also run the MLP leakage check")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", required=True, help="output folder (new or empty)")
    return parser


def read_run_config(config_path: Path) -> dict[str, Any]:
    """The ``model`` and ``data`` sections of a LightningCLI ``config.yaml``."""
    if not config_path.is_file():
        raise BrainmisInputError(
            config_path, "run config not found; pass the run's config.yaml with --config"
        )
    try:
        config = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as error:
        raise BrainmisInputError(config_path, f"not valid YAML ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise BrainmisInputError(config_path, "no 'model' section: not a brainmis run config")
    model, data = config["model"], config.get("data") or {}
    for section in (model, data):  # subclass form: {class_path, init_args}
        if "init_args" in section:
            section.update(section.pop("init_args") or {})
            section.pop("class_path", None)
    return {"model": model, "data": data}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A Lightning checkpoint read with ``weights_only=True``."""
    if not path.is_file():
        raise BrainmisInputError(path, "checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's input
        raise BrainmisInputError(path, f"cannot read checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise BrainmisInputError(path, "not a Lightning checkpoint (no state_dict)")
    return checkpoint


def finished_epochs(checkpoint: dict[str, Any]) -> int:
    """Training epochs finished when the checkpoint was saved (the callback's epoch label):
    the fit loop's processed-epoch count, else the checkpoint's 0-based ``epoch`` index."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        return int(checkpoint.get("epoch", PRETRAINED_EPOCH))


def build_datamodule(data_args: dict[str, Any], tokenizer_path: str) -> Any:
    """The datamodule of the evaluation: true targets (never shuffled), set up."""
    from brainmis.data.datamodule import BrainDataModule

    known = set(inspect.signature(BrainDataModule.__init__).parameters) - {"self"}
    arguments = {key: value for key, value in data_args.items() if key in known}
    arguments.update(tokenizer_path=tokenizer_path, shuffle_targets=False)
    datamodule = BrainDataModule(**arguments)
    datamodule.setup("test")
    return datamodule


def model_from_checkpoint(
    checkpoint_path: Path, checkpoint: dict[str, Any], model_args: dict[str, Any], datamodule: Any
) -> Any:
    """Rebuild the run's module (frozen base + LoRA + head) and load the trainable weights."""
    from brainmis.models.module import BrainMisalignmentModule

    known = set(inspect.signature(BrainMisalignmentModule.__init__).parameters) - {"self"}
    arguments = {key: value for key, value in model_args.items() if key in known}
    arguments.update(n_voxels=datamodule.n_voxels, context_trs=datamodule.context_trs)
    module = BrainMisalignmentModule(**arguments)
    try:
        module.on_load_checkpoint(checkpoint)  # names missing trainable weights
    except BrainmisInputError as error:
        raise BrainmisInputError(checkpoint_path, error.problem) from None
    try:
        result = module.load_state_dict(checkpoint["state_dict"], strict=False)
    except RuntimeError as error:  # shape mismatch, e.g. other voxels or context_trs
        problem = str(error).splitlines()[-1].strip()
        raise BrainmisInputError(
            checkpoint_path, f"weights do not fit the rebuilt model ({problem})"
        ) from None
    if result.unexpected_keys:
        raise BrainmisInputError(
            checkpoint_path,
            f"{len(result.unexpected_keys)} weights do not fit the run's model "
            f"(e.g. {result.unexpected_keys[0]})",
        )
    return module


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = refuse_non_empty_dir(args.out)
    overrides = {
        key: getattr(args, key) for key in DATA_OVERRIDES if getattr(args, key) is not None
    }
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    inputs: dict[str, Any] = {"device": str(device)}

    if args.ckpt:
        checkpoint_path = Path(args.ckpt)
        checkpoint = load_checkpoint(checkpoint_path)
        config_path = (
            Path(args.config) if args.config else checkpoint_path.parent.parent / "config.yaml"
        )
        if config_path.is_file() or args.config or "bundle" not in overrides:
            run_config = read_run_config(config_path)
            inputs["config"] = str(config_path)
        else:  # no run config: the checkpoint's hyper-parameters and the given bundle
            run_config = {"model": {}, "data": {}}
        model_args = dict(checkpoint.get("hyper_parameters") or run_config["model"])
        if "pretrained_path" not in model_args:
            raise BrainmisInputError(
                checkpoint_path, "no model.pretrained_path in it or the config"
            )
        data_args = {**run_config["data"], **overrides}
        datamodule = build_datamodule(data_args, str(model_args["pretrained_path"]))
        module = model_from_checkpoint(checkpoint_path, checkpoint, model_args, datamodule)
        model = module.backbone
        layer = module.feature_layer if args.layer is None else args.layer
        epoch = finished_epochs(checkpoint)
        inputs["ckpt"] = str(checkpoint_path)
    else:
        from brainmis.models.backbone import load_backbone

        if "bundle" not in overrides:
            raise BrainmisInputError(None, "--model needs --data-bundle (the prepared data)")
        model = load_backbone(args.model).model
        datamodule = build_datamodule(overrides, args.model)
        layer, epoch = (-1 if args.layer is None else args.layer), PRETRAINED_EPOCH
        inputs.update(model=str(args.model))

    model.to(device)
    features = model_window_features(model, datamodule, layer=layer, device=device)
    alphas = None if args.alphas is None else np.asarray(args.alphas, dtype=np.float64)
    alignment = align_features(
        features, datamodule, epoch, alphas=alphas, leakage=args.leakage, device=device
    )
    inputs.update(
        bundle=str(datamodule.bundle_path),
        subject=datamodule.subject.name,
        fold=int(datamodule.test_run),
        layer=layer,
        n_windows=int(len(datamodule.window_runs)),
    )
    written = write_alignment_files(
        out, alignment, subject=datamodule.subject, selected_voxels=datamodule.selected_voxels
    )
    (out / "inputs.json").write_text(json.dumps(inputs, indent=2) + "\n")
    print(
        f"brain alignment: mean r {alignment.ridge.mean:.4f}, median {alignment.ridge.median:.4f}"
        + (
            ""
            if alignment.ridge.nc_normalized is None
            else f", noise-ceiling normalised {alignment.ridge.nc_normalized:.4f}"
        )
        + f" over {alignment.ridge.n_voxels} voxels; wrote {len(written) + 1} files to {out}"
    )
    return 0
