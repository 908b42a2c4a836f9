"""``brainmis evaluate-brain``: brain alignment of a checkpoint, an exported or a pretrained model.

    brainmis evaluate-brain --ckpt RUN/checkpoints/last.ckpt           # into RUN/evaluation/
    brainmis evaluate-brain --ckpt RUN/checkpoints/best.ckpt --layer 6 --out results/layer6
    brainmis evaluate-brain --model checkpoints/hf/tiny --data-bundle BUNDLE --subject F \
        --fold 0 --out results/pretrained

With ``--ckpt``, the module is rebuilt by ``brainmis.models.checkpoint`` (the checkpoint's
hyper-parameters, its trainable LoRA + head weights on the frozen base) and the data settings
come from the run's ``config.yaml`` (beside the checkpoint or in the run folder above
``checkpoints/``; ``--config`` names another). ``--data-bundle``, ``--subject``, ``--fold``,
``--context-trs`` override the run's data. With ``--model``, a plain Hugging Face folder (the
pretrained model, or an ``brainmis export`` output) is read as it is.

Guard: a checkpoint was trained on every run but its held-out fold, so ``--fold K`` other than
the run's is refused (exit 2) unless ``--allow-training-fold``.

Where it writes:

- ``--ckpt`` without ``--out`` and without overrides of what is evaluated (data, layer,
  penalties): into the run's ``evaluation/``, where ``brainmis compare`` finds it. The epoch
  must be new there (``brain_r_epoch{E}.npy`` absent); ``brain_alignment.json`` keeps the
  latest epoch at its top level and gains this evaluation in its ``history``.
- otherwise ``--out`` (new or empty): ``brain_alignment.json``, ``inputs.json``.

Both write ``brain_r_epoch{E}.npy`` (E = training epochs finished at the checkpoint, 0 for
``--model``) and ``brain_r_epoch{E}.nii.gz`` when the subject has voxel coordinates; with the
permutation test (on by default: ``--permutations 1000 --permutation-block 10 --fdr-q 0.05``;
``--permutations 0`` turns it off) also ``brain_p_epoch{E}.npy``, ``brain_q_epoch{E}.npy`` and
``brain_r_fdr_epoch{E}.nii.gz``, and the record's ``significance``. The
evaluation is the one of ``BrainAlignmentCallback`` (``brainmis.evaluation.brain.alignment``):
same features, same ridge, same held-out run, so the numbers agree for the same weights.

Other measures and other layers (``brainmis.evaluation.brain.measures``): ``--metrics
ridge,rsa,cka,procrustes`` adds ``brain_similarity.json`` (RSA, linear CKA, Procrustes
similarity of the evaluated layer on the held-out run; the ridge always runs), and ``--layers
all`` (or ``0,3,6``) adds ``brain_layers.json``, the ridge and the chosen measures of every
such hidden state, all layers from one forward pass. Into a run's ``evaluation/`` they join
the files' earlier epochs.
"""

from __future__ import annotations

import argparse
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brainmis.cli_parser import ToolArgumentParser
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir
from brainmis.evaluation.brain.alignment import (
    AlignmentData,
    add_to_run_evaluation,
    align_features,
    model_window_features,
    write_alignment_files,
)
from brainmis.evaluation.brain.measures import (
    layer_profile_record,
    model_layer_window_features,
    resolve_layers,
    similarity_record,
    write_measure_files,
)
from brainmis.evaluation.brain.significance import (
    DEFAULT_BLOCK_TRS,
    DEFAULT_FDR_Q,
    DEFAULT_PERMUTATIONS,
    PermutationTestOptions,
    permutation_test_options,
)
from brainmis.evaluation.brain.similarity import SIMILARITY_METRICS, parse_metrics
from brainmis.evaluation.extract import hidden_state_count
from brainmis.run_folder.layout import CONFIG_FILE, INPUTS_FILE, brain_r_file, evaluation_dir
from brainmis.run_folder.trainer import PRETRAINED_EPOCH

if TYPE_CHECKING:
    from brainmis.data.datamodule import BrainDataModule

DATA_OVERRIDES = ("bundle", "subject", "fold", "context_trs", "batch_size")
# Options that change what is evaluated: with any of them the result is not the run's own.
EVALUATION_OVERRIDES = ("bundle", "subject", "fold", "context_trs", "layer", "alphas")


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
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
    parser.add_argument(
        "--allow-training-fold",
        action="store_true",
        help="allow a --fold the checkpoint was trained on (scores training data)",
    )
    parser.add_argument(
        "--out", help="output folder (new or empty); default with --ckpt: the run's evaluation/"
    )
    add_significance_arguments(parser)
    add_measure_arguments(parser)
    return parser


def add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """``--metrics`` and ``--layers``: alignment measured other ways and at other layers."""
    parser.add_argument(
        "--metrics",
        default="ridge",
        help="comma list from ridge,rsa,cka,procrustes (default ridge; the ridge always runs, "
        "the others add brain_similarity.json)",
    )
    parser.add_argument(
        "--layers",
        help="'all' or a comma list of hidden-state indices (0 = embeddings): a per-layer "
        "ridge (and the chosen metrics) in brain_layers.json",
    )


def measured_features(
    model: Any, data: AlignmentData, layer: int, layers: tuple[int, ...], device: torch.device
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Features of ``layer`` and, when ``layers`` are asked for, of each of them, from one
    forward pass: ``((N, F), {layer: (N, F)})``."""
    if not layers:
        return model_window_features(model, data, layer=layer, device=device), {}
    count = hidden_state_count(model)
    by_layer = model_layer_window_features(model, data, (*layers, layer % count), device)
    features = by_layer[layer % count]
    return features, {index: by_layer[index] for index in layers}


def write_measures(
    folder: Path,
    features: np.ndarray,
    features_by_layer: dict[int, np.ndarray],
    data: AlignmentData,
    target: Evaluated,
    metrics: tuple[str, ...],
    alphas: np.ndarray | None,
    device: torch.device,
) -> list[Path]:
    """``brain_similarity.json`` (metrics beyond the ridge) and ``brain_layers.json`` (layers)
    into ``folder``; prints one line per file. Returns the written paths."""
    similarity = None
    if any(name in SIMILARITY_METRICS for name in metrics):
        count = hidden_state_count(target.model)
        similarity = similarity_record(
            features, data, target.epoch, target.layer % count, metrics, device=device
        )
        scores = ", ".join(
            f"{name} {score['all']:.4f}" if score["all"] is not None else f"{name} n/a"
            for name, score in similarity["metrics"].items()
        )
        print(f"brain similarity (epoch {target.epoch}, held-out run): {scores}")
    layers = None
    if features_by_layer:
        layers = layer_profile_record(
            features_by_layer,
            data,
            target.epoch,
            hidden_state_count(target.model),
            metrics=metrics,
            alphas=alphas,
            device=device,
        )
        profile = ", ".join(
            f"{layer}: {entry['ridge_mean']:.4f}" for layer, entry in layers["layers"].items()
        )
        print(f"layer profile (epoch {target.epoch}), ridge mean r per layer: {profile}")
    return write_measure_files(folder, similarity=similarity, layers=layers)


def add_significance_arguments(parser: argparse.ArgumentParser) -> None:
    """``--permutations``, ``--permutation-block``, ``--fdr-q``: the per-voxel permutation
    test of the held-out r (``brainmis.evaluation.brain.significance``)."""
    parser.add_argument(
        "--permutations",
        type=int,
        default=DEFAULT_PERMUTATIONS,
        help=f"block permutations per voxel's r (default {DEFAULT_PERMUTATIONS}; 0: no test)",
    )
    parser.add_argument(
        "--permutation-block",
        type=int,
        default=DEFAULT_BLOCK_TRS,
        help=f"TRs per permuted block of the test run (default {DEFAULT_BLOCK_TRS})",
    )
    parser.add_argument(
        "--fdr-q",
        type=float,
        default=DEFAULT_FDR_Q,
        help=f"Benjamini-Hochberg false discovery rate (default {DEFAULT_FDR_Q})",
    )


def significance_options(args: argparse.Namespace) -> PermutationTestOptions | None:
    """The checked permutation-test options of the command line (None: ``--permutations 0``)."""
    return permutation_test_options(args.permutations, args.permutation_block, args.fdr_q)


def build_datamodule(data_args: dict[str, Any], tokenizer_path: str) -> BrainDataModule:
    """The datamodule of the evaluation: true targets (never shuffled), set up."""
    from brainmis.data.datamodule import BrainDataModule

    known = set(inspect.signature(BrainDataModule.__init__).parameters) - {"self"}
    arguments = {key: value for key, value in data_args.items() if key in known}
    arguments.update(tokenizer_path=tokenizer_path, shuffle_targets=False)
    datamodule = BrainDataModule(**arguments)
    datamodule.setup("test")
    return datamodule


@dataclass
class Evaluated:
    """What is evaluated and where its files go.

    Attributes:
        model: the backbone whose hidden states are the features.
        layer: hidden-state index read.
        epoch: training epochs finished (0 for a pretrained model).
        data_args: the datamodule's arguments.
        tokenizer_path: the model's folder (its tokenizer).
        run_evaluation: the run's ``evaluation/`` folder when writing there, else None.
        inputs: what was read, for the record.
    """

    model: Any
    layer: int
    epoch: int
    data_args: dict[str, Any]
    tokenizer_path: str
    run_evaluation: Path | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


def refuse_training_fold(ckpt: Path, trained_fold: Any, fold: int | None, allowed: bool) -> None:
    """A checkpoint saw every run but its held-out fold in training: refuse another fold."""
    if fold is None or allowed:
        return
    if trained_fold is None:
        raise BrainmisInputError(
            ckpt,
            f"--fold {fold}: the run's config.yaml is not there, so the fold it held out is "
            "unknown; pass --config RUN/config.yaml, or --allow-training-fold to evaluate anyway",
        )
    if int(trained_fold) != int(fold):
        raise BrainmisInputError(
            ckpt,
            f"--fold {fold}: this checkpoint held out fold {trained_fold} and was trained on "
            f"run {fold}; scoring it there measures fit to training data (pass "
            "--allow-training-fold to do it anyway)",
        )


def from_checkpoint(args: argparse.Namespace, overrides: dict[str, Any]) -> Evaluated:
    """The run's module and data settings, the fold guard, and the run's evaluation folder."""
    from brainmis.models.checkpoint import load_checkpoint_module, read_run_config

    checkpoint_path = Path(args.ckpt)
    loaded = load_checkpoint_module(checkpoint_path)
    config_path = Path(args.config) if args.config else loaded.config_path
    if args.config:
        if not config_path.is_file():
            raise BrainmisInputError(config_path, "run config not found")
        run_data = read_run_config(config_path)["data"]
    else:
        run_data = loaded.data_args
    if config_path is None and "bundle" not in overrides:
        raise BrainmisInputError(
            checkpoint_path,
            "no config.yaml beside it or in the run folder above it; pass the run's config "
            "with --config, or the data with --data-bundle",
        )
    trained_fold = run_data.get("fold", 0) if config_path is not None else None
    refuse_training_fold(
        checkpoint_path, trained_fold, overrides.get("fold"), args.allow_training_fold
    )
    module = loaded.module
    own = {**run_data, "layer": module.feature_layer}
    changed = [
        f"--{name.replace('_', '-')}"
        for name in EVALUATION_OVERRIDES
        if (value := overrides.get(name, getattr(args, name, None))) is not None
        and (name == "alphas" or value != own.get(name))
    ]
    run_evaluation = None
    if args.out is None:
        if loaded.run_dir is None:
            raise BrainmisInputError(
                checkpoint_path, f"not inside a run folder with {CONFIG_FILE}: pass --out DIR"
            )
        if changed:
            raise BrainmisInputError(
                None,
                f"{', '.join(changed)} change what is evaluated, so the result is not the run's "
                "own: pass --out DIR",
            )
        run_evaluation = evaluation_dir(loaded.run_dir)
    return Evaluated(
        model=module.backbone,
        layer=module.feature_layer if args.layer is None else args.layer,
        epoch=loaded.epoch,
        data_args={**run_data, **overrides},
        tokenizer_path=str(loaded.model_args["pretrained_path"]),
        run_evaluation=run_evaluation,
        inputs={
            "ckpt": str(checkpoint_path),
            "config": None if config_path is None else str(config_path),
        },
    )


def from_model_folder(args: argparse.Namespace, overrides: dict[str, Any]) -> Evaluated:
    """A plain Hugging Face folder, evaluated as the pretrained model (epoch 0)."""
    from brainmis.models.backbone import load_backbone

    if "bundle" not in overrides:
        raise BrainmisInputError(None, "--model needs --data-bundle (the prepared data)")
    if args.out is None:
        raise BrainmisInputError(None, "--model needs --out DIR (there is no run folder)")
    return Evaluated(
        model=load_backbone(args.model).model,
        layer=-1 if args.layer is None else args.layer,
        epoch=PRETRAINED_EPOCH,
        data_args=dict(overrides),
        tokenizer_path=str(args.model),
        inputs={"model": str(args.model)},
    )


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    significance = significance_options(args)
    out = None if args.out is None else refuse_non_empty_dir(args.out)
    overrides = {
        key: getattr(args, key) for key in DATA_OVERRIDES if getattr(args, key) is not None
    }
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    target = from_checkpoint(args, overrides) if args.ckpt else from_model_folder(args, overrides)
    if target.run_evaluation is not None:
        existing = target.run_evaluation / brain_r_file(target.epoch)
        if existing.exists():
            raise BrainmisInputError(
                existing,
                f"the run already holds the brain alignment of epoch {target.epoch}; pass "
                "--out DIR to evaluate it again elsewhere",
            )
    metrics = parse_metrics(args.metrics)
    layers = resolve_layers(args.layers, hidden_state_count(target.model))
    datamodule = build_datamodule(target.data_args, target.tokenizer_path)
    data = AlignmentData.from_datamodule(datamodule)
    target.model.to(device)
    features, features_by_layer = measured_features(
        target.model, data, target.layer, layers, device
    )
    alphas = None if args.alphas is None else np.asarray(args.alphas, dtype=np.float64)
    alignment = align_features(
        features,
        data,
        target.epoch,
        alphas=alphas,
        leakage=args.leakage,
        device=device,
        significance=significance,
    )
    inputs = {
        **target.inputs,
        "device": str(device),
        "bundle": str(datamodule.bundle_path),
        "subject": datamodule.subject.name,
        "fold": int(datamodule.test_run),
        "layer": target.layer,
        "n_windows": int(len(datamodule.window_runs)),
    }
    if target.run_evaluation is not None:
        folder = target.run_evaluation
        written = add_to_run_evaluation(
            folder, alignment, data.subject, data.selected_voxels, data.voxel_selection, inputs
        )
    else:
        folder = out
        written = write_alignment_files(
            out,
            alignment,
            subject=data.subject,
            selected_voxels=data.selected_voxels,
            voxel_selection=data.voxel_selection,
        )
        (out / INPUTS_FILE).write_text(json.dumps(inputs, indent=2) + "\n")
        written.append(out / INPUTS_FILE)
    written += write_measures(
        folder, features, features_by_layer, data, target, metrics, alphas, device
    )
    ridge = alignment.ridge
    normalised = (
        ""
        if ridge.nc_normalized is None
        else f", noise-ceiling normalised {ridge.nc_normalized:.4f}"
    )
    tested = ridge.significance
    significant = (
        ""
        if tested is None
        else f", {tested.n_significant} significant (q <= {tested.options.fdr_q:g}, "
        f"{tested.options.permutations} block permutations)"
    )
    print(
        f"brain alignment (epoch {alignment.epoch}): mean r {ridge.mean:.4f}, median "
        f"{ridge.median:.4f}{normalised}{significant} over {ridge.n_voxels} voxels; wrote "
        f"{len(written)} files to {folder}"
    )
    return 0
