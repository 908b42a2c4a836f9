import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
from standin import StandInDataModule  # noqa: E402

from brainmis.models.module import BrainMisalignmentModule  # noqa: E402


def test_ddp_two_cpu_processes_with_gloo(tiny_models, tmp_path):
    """Two gloo processes (forked: a pickled transformers 5 model loses its
    output_hidden_states recording hooks under ddp_spawn) train, sync the torchmetrics Pearson state and save one checkpoint
    of trainable weights; the parent gets the trained weights back."""
    L.seed_everything(3, verbose=False)
    module = BrainMisalignmentModule(
        str(tiny_models("gpt2")), n_voxels=6, context_trs=3, condition="misaligned"
    )
    before = {k: v.clone() for k, v in module.head.state_dict().items()}
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=StandInDataModule(module.tokenizer))
    assert trainer.world_size == 2
    assert torch.isfinite(trainer.callback_metrics["val/brain_r"])
    checkpoints = list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 1
    saved = torch.load(checkpoints[0], weights_only=True)["state_dict"]
    assert set(saved) == set(module.trainable_state_keys())
    assert not torch.equal(saved["head.linear.weight"], before["linear.weight"])
