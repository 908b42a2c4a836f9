"""``brainmis export CKPT --out DIR``: a checkpoint as a plain Hugging Face model folder.

The checkpoint holds LoRA + head only; the base comes from the folder named in its
hyperparameters (or ``--pretrained-path``). LoRA is merged into the base weights, and the
folder gets ``save_pretrained`` model + tokenizer (loadable by ``AutoModel.from_pretrained``),
``brain_head.safetensors`` (``weight (n_voxels, context_trs*hidden)``, ``bias (n_voxels,)``)
and ``brainmis_export.json`` describing how the head reads the model.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.models.module import BrainMisalignmentModule

HEAD_FILE = "brain_head.safetensors"
INFO_FILE = "brainmis_export.json"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint of ``BrainMisalignmentModule`` (tensors only, no pickle code)."""
    path = Path(path)
    if not path.is_file():
        raise BrainmisInputError(path, "checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a user input problem
        raise BrainmisInputError(path, f"not a readable checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise BrainmisInputError(path, "not a Lightning checkpoint (no state_dict)")
    if "hyper_parameters" not in checkpoint or "pretrained_path" not in checkpoint.get(
        "hyper_parameters", {}
    ):
        raise BrainmisInputError(path, "checkpoint has no BrainMisalignmentModule hyperparameters")
    return checkpoint


def module_from_checkpoint(
    path: str | Path, pretrained_path: str | None = None
) -> BrainMisalignmentModule:
    """Rebuild the module (base from its folder) and load the checkpoint's trainable weights."""
    checkpoint = read_checkpoint(path)
    accepted = inspect.signature(BrainMisalignmentModule.__init__).parameters
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in accepted}
    if pretrained_path is not None:
        hparams["pretrained_path"] = pretrained_path
    module = BrainMisalignmentModule(**hparams)
    expected = set(module.trainable_state_keys())
    missing = sorted(expected - set(checkpoint["state_dict"]))
    if missing:
        raise BrainmisInputError(
            path, f"checkpoint lacks {len(missing)} trainable weights, e.g. {missing[0]}"
        )
    module.load_state_dict(checkpoint["state_dict"], strict=False)
    return module


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, pretrained_path: str | None = None
) -> Path:
    """Write the merged model folder described in the module docstring; returns ``out``."""
    out = refuse_non_empty_dir(out)
    module = module_from_checkpoint(checkpoint, pretrained_path)
    merged = module.backbone.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    module.tokenizer.save_pretrained(out)
    head = module.head.linear
    save_file(
        {"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
        str(out / HEAD_FILE),
    )
    info = {
        "source_checkpoint": str(Path(checkpoint).resolve()),
        "family": module.family,
        "condition": module.condition,
        "context_trs": module.context_trs,
        "feature_layer": module.feature_layer,
        "n_voxels": int(head.out_features),
        "head_in_features": int(head.in_features),
        "head_file": HEAD_FILE,
        "features": "brainmis.models.features.window_features(model, ..., layer=feature_layer)",
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="brainmis export",
        description="Merge LoRA from a checkpoint into a Hugging Face model folder (+ head).",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by `brainmis fit`")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument(
        "--pretrained-path", default=None, help="base model folder, if it moved since training"
    )
    args = parser.parse_args(argv)
    out = export_checkpoint(args.checkpoint, args.out, args.pretrained_path)
    print(f"wrote merged model, tokenizer and brain head to {out}")
    return 0
