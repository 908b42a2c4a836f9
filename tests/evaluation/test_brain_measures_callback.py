"""``BrainAlignmentCallback(metrics=..., layers=...)``: the measure files during a fit."""

from __future__ import annotations

import json

import pytest
from brain_fixtures import datamodule_arguments

from brainmis.errors import BrainmisInputError


@pytest.mark.slow  # a real (one-batch) fit: ~15-50 s on 2 shared cores
def test_callback_writes_similarity_and_layer_profile(tmp_path, tiny_gpt2_path, brain_bundle):
    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import CSVLogger

    from brainmis.data.datamodule import BrainDataModule
    from brainmis.evaluation.brain.callback import BrainAlignmentCallback
    from brainmis.models.module import BrainMisalignmentModule

    datamodule = BrainDataModule(**datamodule_arguments(brain_bundle, tiny_gpt2_path))
    module = BrainMisalignmentModule(
        pretrained_path=str(tiny_gpt2_path),
        n_voxels=datamodule.n_voxels,
        condition="misaligned",
        context_trs=datamodule.context_trs,
    )
    callback = BrainAlignmentCallback(
        every_n_epochs=0,
        alphas=[1.0, 100.0],
        at_fit_start=False,
        metrics=["cka", "rsa"],
        layers="all",
    )
    logger = CSVLogger(tmp_path, name="run")
    trainer = Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=logger,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule)
    evaluation = tmp_path / "run" / "version_0" / "evaluation"
    alignment = json.loads((evaluation / "brain_alignment.json").read_text())
    similarity = json.loads((evaluation / "brain_similarity.json").read_text())["epochs"]["1"]
    assert set(similarity["metrics"]) == {"rsa", "cka"} and similarity["layer"] == 2
    layers = json.loads((evaluation / "brain_layers.json").read_text())["epochs"]["1"]
    assert sorted(layers["layers"]) == ["0", "1", "2"]
    assert layers["layers"]["2"]["ridge_mean"] == pytest.approx(alignment["mean"], abs=1e-9)
    assert "procrustes" not in layers["layers"]["0"]
    logged = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "brain_similarity/cka" in logged and "brain_layers/0/ridge_mean" in logged


def test_callback_refuses_unknown_metrics_and_layer_specs():
    from brainmis.evaluation.brain.callback import BrainAlignmentCallback

    with pytest.raises(BrainmisInputError, match="metrics: got svcca"):
        BrainAlignmentCallback(metrics=["ridge", "svcca"])
    with pytest.raises(BrainmisInputError, match="layers last: expected 'all'"):
        BrainAlignmentCallback(layers="last")
