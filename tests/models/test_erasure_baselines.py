"""Training-free removal baselines ``erased`` (LEACE-style) and ``inlp`` (issue 15, item 3)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from brainmis.errors import BrainmisInputError  # noqa: E402
from brainmis.models.checkpoint import load_checkpoint_module  # noqa: E402
from brainmis.models.erasure import (  # noqa: E402
    ERASURE_STATE,
    group_samples,
    leace_projection,
    resolve_rank,
)
from brainmis.models.inlp import inlp_projection, project_features  # noqa: E402
from brainmis.models.module import BrainMisalignmentModule  # noqa: E402
from brainmis.ridge import ridge_cv_score  # noqa: E402


def synthetic(n=600, context_trs=3, hidden=12, voxels=4, seed=0):
    """Window features whose groups carry the targets linearly (lag-specific maps)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, voxels))
    groups = [
        z @ rng.standard_normal((voxels, hidden)) + rng.standard_normal((n, hidden))
        for _ in range(context_trs)
    ]
    features = np.concatenate(groups, axis=1) + 2.0  # a non-zero mean
    runs = np.repeat(np.arange(4), n // 4)
    return features, z, runs


def held_out_r(features, z, runs):
    test = runs == 0
    r, _ = ridge_cv_score(
        torch.from_numpy(features[~test]), torch.from_numpy(z[~test]),
        torch.from_numpy(features[test]), torch.from_numpy(z[test]), runs[~test],
    )  # fmt: skip
    return float(r.mean())


def erase(features, z, runs, rank, context_trs=3):
    train = runs != 0
    x, cross = group_samples(features[train], z[train], context_trs)
    projection, mean, erased = leace_projection(x, cross, rank)
    n = len(features)
    groups = features.reshape(n, context_trs, -1)
    out = mean + (groups - mean) @ projection.T
    return out.reshape(n, -1), erased


def test_full_rank_erasure_removes_linear_predictability_and_rank_0_keeps_it():
    features, z, runs = synthetic()
    before = held_out_r(features, z, runs)
    assert before > 0.5
    kept, rank0 = erase(features, z, runs, rank=0)
    assert rank0 == 0 and held_out_r(kept, z, runs) == pytest.approx(before, abs=1e-9)
    erased, full = erase(features, z, runs, rank=None)
    assert full == 3 * 4  # C lags x V voxels, all in range
    assert abs(held_out_r(erased, z, runs)) < 0.05
    # training covariance with every voxel, at every lag, is zero
    train = runs != 0
    _, cross = group_samples(erased[train], z[train], 3)
    assert max(np.abs(c).max() for c in cross) < 1e-8


def test_bad_rank_is_one_line():
    assert resolve_rank("full") is None and resolve_rank(3) == 3
    with pytest.raises(BrainmisInputError, match="erasure_rank"):
        resolve_rank(-1)


def test_inlp_stops_at_the_target():
    features, z, runs = synthetic(hidden=24)  # the targets span 12 of the 24 directions
    train = runs != 0
    logged = []
    projection, history = inlp_projection(
        features[train] - features[train].mean(0), z[train], runs[train], 3,
        rank_per_step=2, target_r=0.05, max_steps=20, log=lambda s, r: logged.append((s, r)),
    )  # fmt: skip
    assert history[0] > 0.5 and history[-1] < 0.05 and all(h >= 0.05 for h in history[:-1])
    assert [s for s, _ in logged] == list(range(len(history)))
    assert np.allclose(projection @ projection, projection, atol=1e-8)  # a projection
    assert 2 * (len(history) - 1) == 24 - round(np.trace(projection)) < 24  # 2 per step
    erased = project_features(features, projection, 3)
    assert held_out_r(erased, z, runs) < 0.2  # greedy: less complete than LEACE (~0.12 here)


def module_with_projection(folder, layer=1):
    module = BrainMisalignmentModule(
        str(folder), n_voxels=4, context_trs=3, condition="erased", feature_layer=layer
    )
    module.eval()
    hidden = module.backbone.config.hidden_size
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(hidden, 3, generator=generator))
    projection = torch.eye(hidden) - q @ q.T
    module.erasure.set(projection, torch.randn(hidden, generator=generator), {"method": "test"})
    return module


@pytest.mark.parametrize("layer", [1, 2])  # inside the body, and the last (after the final norm)
def test_hook_changes_hidden_states_at_and_after_the_layer_only(tiny_models, layer):
    module = module_with_projection(tiny_models("gpt2"), layer=layer)
    ids = torch.randint(0, 200, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        plain = module.backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        module.erasure.install(module.backbone, module.erasure_layer)
        hooked = module.backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    for index in range(layer):
        torch.testing.assert_close(hooked.hidden_states[index], plain.hidden_states[index])
    torch.testing.assert_close(
        hooked.hidden_states[layer], module.erasure.apply(plain.hidden_states[layer])
    )
    assert not torch.allclose(hooked.logits, plain.logits)


def test_checkpoint_round_trip_restores_the_projection(tiny_models, tmp_path):
    module = module_with_projection(tiny_models("gpt2"), layer=1)
    module.erasure.install(module.backbone, module.erasure_layer)
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint[ERASURE_STATE]["layer"] == 1
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint, path)
    loaded = load_checkpoint_module(path).module
    torch.testing.assert_close(loaded.erasure.matrix, module.erasure.matrix)
    ids = torch.randint(0, 200, (2, 9))
    with torch.no_grad():
        a = module.backbone(input_ids=ids, output_hidden_states=True).hidden_states[1]
        b = loaded.backbone(input_ids=ids, output_hidden_states=True).hidden_states[1]
    torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_fit_erased_demo_config_writes_the_evaluation_files(tmp_path):
    from brainmis.commands.demo import fit_args
    from brainmis.commands.fit import run_lightning_cli
    from brainmis.models.tiny import make_tiny_model

    model = make_tiny_model("gpt2", out=tmp_path / "tiny", pretrain_steps=20)
    cli = run_lightning_cli(
        fit_args("erased", "F", model, tmp_path, ["--trainer.max_epochs=1"])
    )
    folder = Path(cli.trainer.log_dir) / "evaluation"
    assert json.loads((folder / "lm.json").read_text())["epoch"] == 1
    alignment = json.loads((folder / "brain_alignment.json").read_text())
    assert np.isfinite(alignment["mean"])  # the r itself: docs/training.md, "Erasure baselines"
    # full rank removes the whole range here: the layer's states are the training mean
    assert cli.model.erasure.info["rank"] >= 63 and float(cli.model.erasure.matrix.abs().max()) == 0
    assert (folder / "probing.csv").is_file()
    assert (Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt").is_file()
    # compare lists it like any condition
    from brainmis.commands.compare import compare_runs

    result = compare_runs([Path(cli.trainer.log_dir)], tmp_path / "comparison")
    assert any(row.condition == "erased" for row in result.comparison.condition_summaries)
    assert "erased" in result.summary
