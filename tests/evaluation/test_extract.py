"""Feature extraction: same features as the shared pooling, eval mode, modes restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brain_fixtures import datamodule_arguments

from brainmis.data.datamodule import BrainDataModule
from brainmis.evaluation.extract import (
    extract_layer_window_features,
    extract_window_features,
    features_in_table_order,
    hidden_state_count,
)
from brainmis.models.backbone import load_backbone
from brainmis.models.features import window_features


@pytest.fixture(scope="module")
def model_and_data(tiny_gpt2_path, brain_bundle):
    model_path = tiny_gpt2_path
    datamodule = BrainDataModule(**datamodule_arguments(brain_bundle, model_path))
    datamodule.setup("fit")
    return load_backbone(model_path).model, datamodule


def test_features_match_window_features_in_eval_mode(model_and_data):
    model, datamodule = model_and_data
    model.train()
    model.transformer.h[0].eval()  # a submodule in its own mode must get it back
    loader = datamodule.full_dataloader()
    features, sample_ids = extract_window_features(model, loader, datamodule.context_trs)
    assert model.training and not model.transformer.h[0].training
    assert model.transformer.h[1].training
    hidden = model.config.hidden_size
    assert features.shape == (len(datamodule.window_runs), datamodule.context_trs * hidden)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(np.sort(sample_ids), np.arange(len(datamodule.window_runs)))

    batch = next(iter(loader))
    model.eval()
    with torch.no_grad():
        expected = window_features(
            model,
            batch["input_ids"],
            batch["attention_mask"],
            batch["group_ids"],
            datamodule.context_trs,
        )
    model.train()
    n = len(batch["sample_ids"])
    np.testing.assert_allclose(features[:n], expected.numpy(), rtol=1e-5, atol=1e-6)
    # dropout is active in train mode: extraction must not depend on the caller's mode
    again, _ = extract_window_features(model, loader, datamodule.context_trs)
    np.testing.assert_array_equal(features, again)


def test_other_layers_differ(model_and_data):
    model, datamodule = model_and_data
    loader = datamodule.full_dataloader()
    last, _ = extract_window_features(model, loader, datamodule.context_trs, layer=-1)
    embeddings, _ = extract_window_features(model, loader, datamodule.context_trs, layer=0)
    assert last.shape == embeddings.shape and not np.allclose(last, embeddings)


def test_table_order():
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    ordered = features_in_table_order(features, np.array([2, 0, 1]), 3)
    np.testing.assert_array_equal(ordered, [[2, 3], [4, 5], [0, 1]])
    with pytest.raises(ValueError, match="exactly once"):
        features_in_table_order(features, np.array([0, 0, 1]), 3)


def test_all_layers_from_one_forward_match_single_layer_extraction(model_and_data):
    model, datamodule = model_and_data
    loader = datamodule.full_dataloader()
    count = hidden_state_count(model)
    assert count == model.config.num_hidden_layers + 1 == 3
    by_layer, sample_ids = extract_layer_window_features(
        model, loader, datamodule.context_trs, layers=range(count)
    )
    assert sorted(by_layer) == [0, 1, 2]
    for layer, features in by_layer.items():
        single, single_ids = extract_window_features(
            model, loader, datamodule.context_trs, layer=layer
        )
        np.testing.assert_array_equal(sample_ids, single_ids)
        np.testing.assert_allclose(features, single, rtol=1e-5, atol=1e-6)
