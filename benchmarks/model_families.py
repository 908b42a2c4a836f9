"""Every tiny model family through the whole path: build, LoRA, a short fit, export, reload.

    python benchmarks/model_families.py [--families F ...] [--work-dir DIR] [--steps N]

For each family (default: all of ``brainmis.models.tiny.TINY_FAMILIES``):

1. a tiny model (64 wide, 2 layers, 2 heads, a 1000-token tokenizer trained on the synthetic
   narrative, no pre-training) written by ``make_tiny_model``;
2. the module (condition ``tuned``, the LoRA defaults) on the synthetic default (first
   subject, context 5 TRs, batch 16), CPU, float32: ``--steps`` optimizer steps (3);
3. the checkpoint exported (``brainmis.models.export``, LoRA merged) and loaded back with
   ``AutoModelForMaskedLM`` / ``AutoModelForCausalLM``: its window features must equal the
   adapted model's (max abs difference <= 1e-4).

Prints the markdown table of docs/models.md (family, objective, the LoRA targets found, LoRA
parameters, the LM loss at the first and last step, the export check) and exits 1 if any
family failed a step (its row says which).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import lightning as L  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from brainmis.data.datamodule import BrainDataModule  # noqa: E402
from brainmis.models.backbone import AUTO_CLASSES  # noqa: E402
from brainmis.models.export import export_checkpoint  # noqa: E402
from brainmis.models.features import window_features  # noqa: E402
from brainmis.models.lora import adapted_module_names  # noqa: E402
from brainmis.models.module import BrainMisalignmentModule  # noqa: E402
from brainmis.models.tiny import TINY_FAMILIES, make_tiny_model  # noqa: E402

COLUMNS = (
    "family",
    "objective",
    "LoRA targets found",
    "LoRA parameters",
    "LM loss step 1 -> N",
    "export reload",
    "seconds",
)
EXPORT_TOLERANCE = 1e-4


class LossTrace(L.Callback):
    """The logged ``train/lm_loss`` after every training step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(trainer.callback_metrics["train/lm_loss"]))


def export_difference(module: BrainMisalignmentModule, checkpoint: Path, out: Path, batch) -> float:
    """Max abs difference of window features: exported + reloaded model vs the adapted one."""
    export_checkpoint(checkpoint, out)
    reloaded = AUTO_CLASSES[module.objective].from_pretrained(out).eval()
    module.eval()
    args = (batch["input_ids"], batch["attention_mask"], batch["group_ids"], module.context_trs)
    with torch.no_grad():
        merged = window_features(reloaded, *args, layer=module.feature_layer)
        adapted = window_features(module.backbone, *args, layer=module.feature_layer)
    return float((merged - adapted).abs().max())


def family_row(family: str, work_dir: Path, steps: int, cache_dir: Path) -> dict[str, str]:
    """One table row: build, fit ``steps`` steps, export and reload a tiny ``family`` model."""
    started = time.perf_counter()
    row = {"family": family}
    model = make_tiny_model(family, out=work_dir / family / "model", hidden=64, vocab=1000)
    data = BrainDataModule(cache_dir=str(cache_dir), tokenizer_path=str(model), num_workers=0)
    L.seed_everything(0, verbose=False)
    module = BrainMisalignmentModule(
        str(model), n_voxels=data.n_voxels, condition="tuned", context_trs=data.context_trs
    )
    row["objective"] = module.objective
    row["LoRA targets found"] = ", ".join(adapted_module_names(module.backbone))
    lora = sum(p.numel() for n, p in module.backbone.named_parameters() if p.requires_grad)
    row["LoRA parameters"] = f"{lora:,}"
    trace = LossTrace()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[trace],
        default_root_dir=work_dir / family,
    )
    trainer.fit(module, datamodule=data)
    row["LM loss step 1 -> N"] = f"{trace.losses[0]:.3f} -> {trace.losses[-1]:.3f}"
    checkpoint = work_dir / family / "last.ckpt"
    trainer.save_checkpoint(checkpoint)
    batch = next(iter(data.val_dataloader()))
    difference = export_difference(module, checkpoint, work_dir / family / "export", batch)
    ok = difference <= EXPORT_TOLERANCE
    row["export reload"] = f"{'OK' if ok else 'FAILED'} ({difference:.0e})"
    row["seconds"] = f"{time.perf_counter() - started:.0f}"
    return row


def markdown_table(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.get(c, "") for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(TINY_FAMILIES), choices=TINY_FAMILIES)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    transformers.logging.set_verbosity_error()
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="brainmis-families-"))
    rows = []
    for family in args.families:
        try:
            rows.append(family_row(family, work_dir, args.steps, work_dir / "cache"))
        except Exception as error:  # a failed family is a row; the others still run
            reason = " ".join(str(error).split())[:160]
            rows.append({"family": family, "export reload": f"FAILED: {reason}"})
        print(f"  {family}: {rows[-1]['export reload']}", file=sys.stderr, flush=True)
    print(
        f"tiny models: 64 wide, 2 layers; {args.steps} steps of condition tuned on the synthetic"
        f" default; torch {torch.__version__}, transformers {transformers.__version__}"
    )
    print(markdown_table(rows))
    failed = [row["family"] for row in rows if not row["export reload"].startswith("OK")]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
