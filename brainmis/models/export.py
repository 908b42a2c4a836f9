"""``brainmis export CKPT --out DIR``: a checkpoint as a plain Hugging Face model folder.

The checkpoint holds LoRA + head only; the module is rebuilt by
``brainmis.models.checkpoint.load_checkpoint_module`` (base from the folder named in its
hyper-parameters, or ``--pretrained-path``). LoRA is merged into the base weights, and the
folder gets ``save_pretrained`` model + tokenizer (loadable by ``AutoModel.from_pretrained``),
``brain_head.safetensors`` (``weight (n_voxels, context_trs*hidden)``, ``bias (n_voxels,)``)
and ``brainmis_export.json`` describing how the head reads the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from brainmis.models.erasure import ERASURE_FILE

from brainmis.errors import refuse_non_empty_dir
from brainmis.models.checkpoint import load_checkpoint_module

HEAD_FILE = "brain_head.safetensors"
INFO_FILE = "brainmis_export.json"


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, pretrained_path: str | None = None
) -> Path:
    """Write the merged model folder described in the module docstring; returns ``out``."""
    out = refuse_non_empty_dir(out)
    module = load_checkpoint_module(checkpoint, pretrained_path).module
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
        "objective": module.objective,
        "condition": module.condition,
        "context_trs": module.context_trs,
        "feature_layer": module.feature_layer,
        "n_voxels": int(head.out_features),
        "head_in_features": int(head.in_features),
        "head_file": HEAD_FILE,
        "features": "brainmis.models.features.window_features(model, ..., layer=feature_layer)",
    }
    if module.erasure.fitted:  # erased / inlp: a plain HF load does NOT apply this projection
        torch.save(module.erasure.state(module.erasure_layer), out / ERASURE_FILE)
        info["erasure_file"] = ERASURE_FILE
        info["erasure"] = "x' = mean + (x - mean) @ matrix.T on hidden_states[layer]; not applied by from_pretrained"
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return out
