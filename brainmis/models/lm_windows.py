"""Per-window held-out LM losses: the distribution behind ``lm.json``'s one number.

``window_lm_losses(module, dataloader)`` runs the module's language model over a dataloader
(in practice the test run's windows, at fit end) and returns, per window, its index in the
datamodule's window table (``sample_ids``), its mean LM loss in nats per predicted token and
the number of predicted tokens. The token-weighted mean over the windows is the loss that
``BrainMisalignmentModule.held_out_lm_loss`` gives for the same loader (same fixed BERT masks:
the mask generator is seeded with the module's ``EVAL_MASK_SEED`` and drawn batch by batch in the same
order), up to float rounding.

- causal LMs: per window, the mean cross-entropy of next-token prediction over its real
  tokens (labels = input ids, padding ignored, shifted by one as Hugging Face does);
- masked LMs: the window's masked positions only (the whole model on the masked copy, whose
  logits at those positions are the masked-LM head's on the body's hidden states). A window
  without a masked token has no loss (NaN, 0 tokens).

``write_lm_windows(folder, windows)`` writes ``evaluation/lm_windows.csv``
(``brainmis.run_folder.layout.LM_WINDOWS_FILE``, columns ``LM_WINDOWS_COLUMNS``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from brainmis.models.masking import IGNORE_INDEX, mask_tokens
from brainmis.run_folder.layout import LM_WINDOWS_COLUMNS, LM_WINDOWS_FILE


@dataclass(frozen=True)
class WindowLosses:
    """``window (W,)`` window-table indices, ``lm_loss (W,)`` nats per predicted token,
    ``n_tokens (W,)`` predicted tokens per window."""

    window: list[int]
    lm_loss: list[float]
    n_tokens: list[int]

    def token_weighted_mean(self) -> float:
        """The mean over every predicted token of every window (what ``lm.json`` records)."""
        count = sum(self.n_tokens)
        total = sum(loss * n for loss, n in zip(self.lm_loss, self.n_tokens, strict=True) if n > 0)
        return total / count if count else math.nan


def _per_row_mean(losses: torch.Tensor, rows: torch.Tensor, n_rows: int) -> tuple:
    """Sum and count of ``losses (N,)`` per row index ``rows (N,)`` -> ``(B,)``, ``(B,)``."""
    sums = torch.zeros(n_rows, dtype=torch.float64, device=losses.device)
    counts = torch.zeros(n_rows, dtype=torch.float64, device=losses.device)
    sums.index_add_(0, rows, losses.double())
    counts.index_add_(0, rows, torch.ones_like(losses, dtype=torch.float64))
    return sums, counts


def _causal(module: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    logits = module.backbone(input_ids=input_ids, attention_mask=attention_mask).logits
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)[:, 1:]
    logits = logits[:, :-1].float()
    chosen = labels != IGNORE_INDEX
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)
    losses = torch.nn.functional.cross_entropy(logits[chosen], labels[chosen], reduction="none")
    return _per_row_mean(losses, rows[chosen], labels.shape[0])


def _masked(
    module: Any, batch: dict[str, torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    masked_ids, labels = mask_tokens(
        input_ids,
        maskable=batch["group_ids"] >= 0,
        mask_token_id=module.tokenizer.mask_token_id,
        vocab_size=len(module.tokenizer),
        probability=module.hparams.mlm_probability,
        generator=generator,
    )
    chosen = labels != IGNORE_INDEX
    # the whole masked LM (body and head) on the masked copy: the logits of the training
    # loss's body-then-head path, computed for every position and then chosen
    logits = module.backbone(input_ids=masked_ids, attention_mask=attention_mask).logits[chosen]
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(labels)
    losses = torch.nn.functional.cross_entropy(logits.float(), labels[chosen], reduction="none")
    return _per_row_mean(losses, rows[chosen], labels.shape[0])


def objective_of(module: Any) -> str:
    """``masked`` or ``causal``: the module's ``objective``; a module without one (older
    code) is masked when its tokenizer has a mask token."""
    objective = getattr(module, "objective", None)
    if objective in ("masked", "causal"):
        return objective
    return "masked" if getattr(module.tokenizer, "mask_token_id", None) is not None else "causal"


@torch.no_grad()
def window_lm_losses(module: Any, dataloader: Any, mask_seed: int) -> WindowLosses:
    """Per-window LM loss of ``module`` (a ``BrainMisalignmentModule``) over ``dataloader``
    (batches of the datamodule contract, with ``sample_ids``), in eval mode; BERT masks from a
    generator seeded with ``mask_seed``."""
    was_training = module.training
    module.eval()
    generator = torch.Generator(device=module.device).manual_seed(mask_seed)
    windows: list[int] = []
    means: list[float] = []
    counts: list[int] = []
    try:
        for batch in dataloader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            if objective_of(module) == "masked":
                sums, n = _masked(module, batch, generator)
            else:
                sums, n = _causal(module, batch)
            windows += [int(index) for index in batch["sample_ids"].tolist()]
            means += [float(s / c) if c > 0 else math.nan for s, c in zip(sums, n, strict=True)]
            counts += [int(c) for c in n.tolist()]
    finally:
        module.train(was_training)
    return WindowLosses(windows, means, counts)


def write_lm_windows(folder: Path, windows: WindowLosses) -> Path:
    """Write ``folder/lm_windows.csv`` (one row per window, ``LM_WINDOWS_COLUMNS``)."""
    path = Path(folder) / LM_WINDOWS_FILE
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LM_WINDOWS_COLUMNS)
        for window, loss, n in zip(windows.window, windows.lm_loss, windows.n_tokens, strict=True):
            writer.writerow([window, "nan" if math.isnan(loss) else f"{loss:.6f}", n])
    return path
