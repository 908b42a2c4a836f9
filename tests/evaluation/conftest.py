"""Session fixtures of the brain-evaluation tests: a tiny model, a synthetic bundle and one
short fit with the BrainAlignmentCallback (built once, in temp folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
from brain_fixtures import build_bundle, build_tiny_gpt2, datamodule_arguments


@pytest.fixture(scope="session")
def tiny_gpt2_path(tmp_path_factory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("brain-model") / "gpt2")


@pytest.fixture(scope="session")
def brain_bundle(tmp_path_factory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("brain-cache"))


@pytest.fixture(scope="session")
def fitted_run(tmp_path_factory, tiny_gpt2_path, brain_bundle):
    """One epoch (3 steps) of ``preserving`` training (shuffled training targets) with the
    callback; returns ``(log_dir, callback, datamodule)``."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from brainmis.data.datamodule import BrainDataModule
    from brainmis.evaluation.brain.callback import BrainAlignmentCallback
    from brainmis.models.module import BrainMisalignmentModule

    root = tmp_path_factory.mktemp("brain-fit")
    datamodule = BrainDataModule(
        **datamodule_arguments(brain_bundle, tiny_gpt2_path), shuffle_targets=True
    )
    module = BrainMisalignmentModule(
        pretrained_path=str(tiny_gpt2_path),
        n_voxels=datamodule.n_voxels,
        condition="preserving",
        context_trs=datamodule.context_trs,
        lr=1e-2,
    )
    callback = BrainAlignmentCallback(every_n_epochs=1, alphas=[1.0, 100.0, 1e4])
    tensorboard = TensorBoardLogger(root, name="run")
    trainer = Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        logger=[tensorboard, CSVLogger(root, name="csv")],
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=root,
    )
    trainer.fit(module, datamodule=datamodule)
    return Path(trainer.log_dir), callback, datamodule
