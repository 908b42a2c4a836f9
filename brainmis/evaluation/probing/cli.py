"""``brainmis probe``: Holmes-style probing of a trained checkpoint or a pretrained model.

    brainmis probe (--ckpt CKPT | --model HF_FOLDER) (--builtin | --holmes DIR)
                   [--tasks T ...] --out DIR

Writes ``DIR/probing.csv`` (the run folder's long format: ``run,epoch,task,subfield,seed,
metric,score``) and ``DIR/probing_summary.json`` (mean per task and per subfield). ``--out``
must be new or empty; every input is checked before anything is written.

A checkpoint holds only the trainable weights (LoRA + head) of a
``BrainMisalignmentModule``: the module is rebuilt from the ``config.yaml`` of its run folder
(``<run>/checkpoints/x.ckpt`` -> ``<run>/config.yaml``) and the weights loaded on top.
Epoch in the CSV: the checkpoint's epoch, or -1 for a pretrained model.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

import torch
import yaml

from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.evaluation.probing.builtin.suite import default_cache_dir, load_builtin_suite
from brainmis.evaluation.probing.holmes_reader import read_holmes_folder
from brainmis.evaluation.probing.probe import ProbeProtocol
from brainmis.evaluation.probing.results_file import PROBING_CSV, append_probing_csv
from brainmis.evaluation.probing.runner import (
    CONTROLS,
    headline_metric,
    probe_tasks,
    subfield_means,
    task_means,
)

SUMMARY_JSON = "probing_summary.json"
HEAD_WEIGHT_KEY = "head.linear.weight"


def run_config_of(ckpt: Path) -> Path:
    """The LightningCLI ``config.yaml`` of the run a checkpoint belongs to."""
    for folder in (ckpt.parent, ckpt.parent.parent):
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    raise BrainmisInputError(ckpt, "no config.yaml in its folder or the run folder above it")


def load_checkpoint_model(ckpt: str | Path):
    """``(module, epoch)``: the module rebuilt from the run's config with the checkpoint's
    trainable weights loaded (``strict=False``: the frozen base comes from the model folder)."""
    from brainmis.models.module import BrainMisalignmentModule

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise BrainmisInputError(ckpt, "checkpoint file not found")
    config_path = run_config_of(ckpt)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    model_args = dict(config.get("model") or {})
    model_args = dict(model_args.get("init_args", model_args))
    try:
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is a user input problem
        raise BrainmisInputError(
            ckpt, f"not a readable checkpoint ({type(error).__name__})"
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise BrainmisInputError(ckpt, "no state_dict in this checkpoint")
    if model_args.get("n_voxels") is None:
        if HEAD_WEIGHT_KEY not in state:
            raise BrainmisInputError(ckpt, f"cannot tell n_voxels: no {HEAD_WEIGHT_KEY} weights")
        model_args["n_voxels"] = int(state[HEAD_WEIGHT_KEY].shape[0])
    if "pretrained_path" not in model_args:
        raise BrainmisInputError(config_path, "model.pretrained_path is missing")
    accepted = set(inspect.signature(BrainMisalignmentModule.__init__).parameters) - {"self"}
    module = BrainMisalignmentModule(**{k: v for k, v in model_args.items() if k in accepted})
    module.on_load_checkpoint(checkpoint)
    module.load_state_dict(state, strict=False)
    module.eval()
    return module, int(checkpoint.get("epoch", -1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainmis probe", description="Holmes-style probing of a checkpoint or a model."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", type=Path, help="checkpoint of a brainmis run")
    source.add_argument("--model", type=Path, help="local Hugging Face model folder")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--builtin", action="store_true", help="the built-in offline suite")
    data.add_argument("--holmes", type=Path, help="a Holmes or FlashHolmes data folder")
    parser.add_argument("--tasks", nargs="+", help="only these task names")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument("--layer", type=int, default=None,
                        help="hidden-state layer (default: the run's feature_layer, else -1)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-items", type=int, default=None, help="cap train items per task")
    parser.add_argument("--controls", nargs="*", default=[], choices=CONTROLS)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"where the built-in suite is generated (default {default_cache_dir()})")  # fmt: skip
    parser.add_argument("--suite-seed", type=int, default=0)
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if any)"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = refuse_non_empty_dir(args.out)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.holmes is not None:
        tasks = read_holmes_folder(args.holmes, args.tasks)
    else:
        tasks = load_builtin_suite(args.cache_dir, args.suite_seed, args.tasks)
    tasks = [task.capped(args.max_items) for task in tasks]
    if args.ckpt is not None:
        module, epoch = load_checkpoint_model(args.ckpt)
        model, tokenizer = module.backbone, module.tokenizer
        layer = module.feature_layer if args.layer is None else args.layer
        run = str(args.ckpt)
    else:
        from brainmis.models.backbone import load_backbone

        loaded = load_backbone(args.model)
        model, tokenizer, epoch = loaded.model, loaded.tokenizer, -1
        layer = -1 if args.layer is None else args.layer
        run = str(args.model)
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if isinstance(n_layers, int) and not -(n_layers + 1) <= layer <= n_layers:
        raise BrainmisInputError(None, f"--layer {layer} outside the model's 0..{n_layers}")
    model.to(device)
    protocol = ProbeProtocol(seeds=tuple(args.seeds))
    scores = probe_tasks(model, tokenizer, tasks, protocol, layer, tuple(args.controls))
    per_task = task_means(scores, {task.name: headline_metric(task) for task in tasks})
    per_subfield = subfield_means(per_task, {task.name: task.subfield for task in tasks})
    out.mkdir(parents=True, exist_ok=True)
    append_probing_csv(out / PROBING_CSV, run, epoch, scores)
    summary = {
        "run": run,
        "epoch": epoch,
        "layer": layer,
        "seeds": list(args.seeds),
        "controls": list(args.controls),
        "source": str(args.holmes) if args.holmes is not None else "builtin",
        "tasks": {
            task.name: {
                "subfield": task.subfield,
                "task_type": task.task_type.value,
                "metric": headline_metric(task),
                "score": per_task.get(task.name),
                "n_train": len(task.split("train")),
                "n_test": len(task.split("test")),
            }
            for task in tasks
        },
        "subfields": per_subfield,
        "mean": sum(per_subfield.values()) / len(per_subfield) if per_subfield else None,
    }
    (out / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"probed {len(tasks)} tasks x {len(args.seeds)} seeds; wrote {out / PROBING_CSV}")
    for name, value in per_subfield.items():
        print(f"  {name:<12} {value:.3f}")
    return 0
