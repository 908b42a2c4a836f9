"""Per-window held-out LM losses (``brainmis.models.lm_windows``): they decompose the one
number of ``lm.json``, and a fit writes them beside it."""

import csv
import json
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from standin import StandInDataModule  # noqa: E402

from brainmis.models.lm_windows import window_lm_losses  # noqa: E402
from brainmis.models.module import EVAL_MASK_SEED, BrainMisalignmentModule  # noqa: E402
from brainmis.run_folder.layout import LM_WINDOWS_COLUMNS, LM_WINDOWS_FILE  # noqa: E402


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_window_losses_average_to_the_held_out_loss(tiny_models, family):
    module = BrainMisalignmentModule(str(tiny_models(family)), n_voxels=6, context_trs=3)
    data = StandInDataModule(module.tokenizer)
    windows = window_lm_losses(module, data.test_dataloader(), EVAL_MASK_SEED)
    assert windows.window == [int(i) for i in data.test_ids]
    # causal: every window predicts tokens; masked: short windows may have no masked token (NaN)
    assert all(n > 0 for n in windows.n_tokens) or family == "bert"
    overall = module.held_out_lm_loss(data.test_dataloader())
    assert windows.token_weighted_mean() == pytest.approx(overall, rel=1e-5)
    losses, tokens = np.array(windows.lm_loss), np.array(windows.n_tokens)
    assert np.array_equal(np.isfinite(losses), tokens > 0) and np.ptp(losses[tokens > 0]) > 0


def test_fit_writes_the_window_losses_beside_lm_json(tiny_models, tmp_path):
    L.seed_everything(7, verbose=False)
    module = BrainMisalignmentModule(str(tiny_models("gpt2")), n_voxels=6, context_trs=3)
    data = StandInDataModule(module.tokenizer)
    logger = L.pytorch.loggers.TensorBoardLogger(tmp_path / "lightning_logs", name="run")
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    evaluation = Path(trainer.log_dir) / "evaluation"
    lm_loss = json.loads((evaluation / "lm.json").read_text())["lm_loss"]
    with (evaluation / LM_WINDOWS_FILE).open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == LM_WINDOWS_COLUMNS
    assert [int(row["window"]) for row in rows] == [int(i) for i in data.test_ids]
    losses = np.array([float(row["lm_loss"]) for row in rows])
    tokens = np.array([int(row["n_tokens"]) for row in rows])
    assert (losses * tokens).sum() / tokens.sum() == pytest.approx(lm_loss, rel=1e-5)
