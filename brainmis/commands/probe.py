"""``brainmis probe``: Holmes-style probing of a trained checkpoint or a pretrained model.

    brainmis probe --ckpt RUN/checkpoints/last.ckpt (--builtin | --holmes DIR)   # into RUN/evaluation/
    brainmis probe (--ckpt CKPT | --model HF_FOLDER) (--builtin | --holmes DIR) \
                   [--tasks T ...] --out DIR

Writes ``probing.csv`` (the run folder's long format: ``run,epoch,task,subfield,seed,metric,
score``) and a summary (mean per task and per subfield):

- ``--ckpt`` without ``--out``: into the run's ``evaluation/`` (where ``brainmis compare``
  finds it): rows appended to ``probing.csv``, which must not yet hold the checkpoint's
  epoch, and ``probing_summary_epoch{E}.json``;
- otherwise ``--out`` (new or empty): ``probing.csv`` and ``probing_summary.json``.

The checkpoint is rebuilt by ``brainmis.models.checkpoint`` (its own hyper-parameters, so
any ``context_trs`` or ``n_voxels`` loads). Every input, the checkpoint first, is checked
before anything is written (the built-in suite's cache included). Epoch in the CSV: training
epochs finished at the checkpoint, 0 for a pretrained model (``--model``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from brainmis.cli_parser import ToolArgumentParser
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.evaluation.probing.builtin.suite import default_cache_dir, load_builtin_suite
from brainmis.evaluation.probing.holmes_reader import read_holmes_folder
from brainmis.evaluation.probing.probe import ProbeProtocol
from brainmis.evaluation.probing.results_file import append_probing_csv, read_probing_csv
from brainmis.evaluation.probing.runner import (
    CONTROLS,
    headline_metric,
    probe_tasks,
    subfield_means,
    task_means,
)
from brainmis.run_folder.layout import (
    CONFIG_FILE,
    PROBING_FILE,
    PROBING_SUMMARY_FILE,
    evaluation_dir,
    probing_summary_file,
)
from brainmis.run_folder.trainer import PRETRAINED_EPOCH


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
        prog="brainmis probe", description="Holmes-style probing of a checkpoint or a model."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", type=Path, help="checkpoint of a brainmis run")
    source.add_argument("--model", type=Path, help="local Hugging Face model folder")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--builtin", action="store_true", help="the built-in offline suite")
    data.add_argument("--holmes", type=Path, help="a Holmes or FlashHolmes data folder")
    parser.add_argument("--tasks", nargs="+", help="only these task names")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="new or empty output folder; default with --ckpt: the run's evaluation/",
    )
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


def run_evaluation_folder(
    ckpt: Path, run_dir: Path | None, epoch: int, layer_changed: bool
) -> Path:
    """The run's ``evaluation/`` folder, when probing the checkpoint can be added there."""
    if run_dir is None:
        raise BrainmisInputError(
            ckpt, f"not inside a run folder with {CONFIG_FILE}: pass --out DIR"
        )
    if layer_changed:
        raise BrainmisInputError(
            None,
            "--layer changes what is probed, so the result is not the run's own: pass --out DIR",
        )
    folder = evaluation_dir(run_dir)
    csv_path = folder / PROBING_FILE
    if csv_path.is_file() and any(
        row.get("epoch") == str(epoch) for row in read_probing_csv(csv_path)
    ):
        raise BrainmisInputError(
            csv_path,
            f"already holds probing results of epoch {epoch}; pass --out DIR to probe again "
            "elsewhere",
        )
    return folder


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = None if args.out is None else refuse_non_empty_dir(args.out)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    holmes_tasks = None if args.holmes is None else read_holmes_folder(args.holmes, args.tasks)
    if args.ckpt is not None:
        from brainmis.models.checkpoint import load_checkpoint_module

        loaded = load_checkpoint_module(args.ckpt)
        module, epoch = loaded.module, loaded.epoch
        model, tokenizer = module.backbone, module.tokenizer
        layer = module.feature_layer if args.layer is None else args.layer
        run = str(args.ckpt)
        if out is None:
            layer_changed = layer != module.feature_layer
            out = run_evaluation_folder(args.ckpt, loaded.run_dir, epoch, layer_changed)
            summary_path = out / probing_summary_file(epoch)
        else:
            summary_path = out / PROBING_SUMMARY_FILE
    else:
        from brainmis.models.backbone import load_backbone

        if out is None:
            raise BrainmisInputError(None, "--model needs --out DIR (there is no run folder)")
        loaded_backbone = load_backbone(args.model)
        model, tokenizer = loaded_backbone.model, loaded_backbone.tokenizer
        epoch = PRETRAINED_EPOCH
        layer = -1 if args.layer is None else args.layer
        run = str(args.model)
        summary_path = out / PROBING_SUMMARY_FILE
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if isinstance(n_layers, int) and not -(n_layers + 1) <= layer <= n_layers:
        raise BrainmisInputError(None, f"--layer {layer} outside the model's 0..{n_layers}")
    if holmes_tasks is not None:
        tasks = holmes_tasks
    else:  # generated into its cache only now, once every other input has been checked
        tasks = load_builtin_suite(args.cache_dir, args.suite_seed, args.tasks)
    tasks = [task.capped(args.max_items) for task in tasks]
    model.to(device)
    protocol = ProbeProtocol(seeds=tuple(args.seeds))
    scores = probe_tasks(model, tokenizer, tasks, protocol, layer, tuple(args.controls))
    per_task = task_means(scores, {task.name: headline_metric(task) for task in tasks})
    per_subfield = subfield_means(per_task, {task.name: task.subfield for task in tasks})
    out.mkdir(parents=True, exist_ok=True)
    append_probing_csv(out / PROBING_FILE, run, epoch, scores)
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
        "mean_of_subfields": (
            sum(per_subfield.values()) / len(per_subfield) if per_subfield else None
        ),
        "mean_of_tasks": (sum(per_task.values()) / len(per_task) if per_task else None),
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"probed {len(tasks)} tasks x {len(args.seeds)} seeds (epoch {epoch}); wrote "
        f"{out / PROBING_FILE} and {summary_path.name}"
    )
    for name, value in per_subfield.items():
        print(f"  {name:<12} {value:.3f}")
    return 0
