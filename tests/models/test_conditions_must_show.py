"""THE must-show result on the synthetic ground truth (DESIGN.md section 1, issue 3).

A tiny GPT-2 pre-trained on the narrative is fine-tuned under each condition with the
module's defaults (w_lm 0.1, w_ba 10, GRL lambda 0.05 with the DANN ramp, head lr 5e-3),
fixed seeds, 4 epochs on the synthetic default. Brain alignment is the project's own
evaluation (``brainmis.evaluation.brain.alignment``, as the callback and ``evaluate-brain``
run it): a FRESH cross-validated ridge on the frozen features of the training runs against
the true responses, scored on the held-out run; never the training head's r.
"""

from __future__ import annotations

import lightning as L
import pytest

from brainmis.data.datamodule import BrainDataModule
from brainmis.evaluation.brain.alignment import (
    AlignmentData,
    align_features,
    model_window_features,
)
from brainmis.models.module import BrainMisalignmentModule
from brainmis.models.tiny import make_tiny_model

EPOCHS = 4
PRETRAIN_STEPS = 200


def fresh_brain_alignment(module: BrainMisalignmentModule, data: BrainDataModule) -> float:
    """Mean held-out r of the fresh ridge on the frozen features (true targets)."""
    module.eval()
    record = AlignmentData.from_datamodule(data)
    features = model_window_features(module.backbone, record, layer=module.feature_layer)
    return align_features(features, record, epoch=EPOCHS).ridge.mean


def train_condition(model_dir, cache_dir, root, condition):
    L.seed_everything(42, verbose=False)
    data = BrainDataModule(
        cache_dir=str(cache_dir),
        tokenizer_path=str(model_dir),
        shuffle_targets=condition == "preserving",
    )
    module = BrainMisalignmentModule(
        str(model_dir), n_voxels=data.n_voxels, condition=condition, context_trs=data.context_trs
    )
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        gradient_clip_val=1.0,
        default_root_dir=root,
    )
    trainer.fit(module, datamodule=data)
    data.setup()
    return fresh_brain_alignment(module, data), module.held_out_lm_loss(data.test_dataloader())


@pytest.mark.slow
def test_tuned_above_preserving_above_misaligned_at_equal_lm_loss(tmp_path):
    model_dir = make_tiny_model("gpt2", out=tmp_path / "tiny-gpt2", pretrain_steps=PRETRAIN_STEPS)
    results = {
        condition: train_condition(model_dir, tmp_path / "cache", tmp_path, condition)
        for condition in ("preserving", "misaligned", "tuned")
    }
    print({c: {"brain_r": round(r, 4), "lm_loss": round(lm, 4)} for c, (r, lm) in results.items()})
    (ba_pres, lm_pres), (ba_mis, lm_mis), (ba_tuned, _) = (
        results["preserving"],
        results["misaligned"],
        results["tuned"],
    )
    assert ba_tuned > ba_pres
    assert ba_mis < ba_pres
    assert abs(lm_mis - lm_pres) <= 0.05 * lm_pres
