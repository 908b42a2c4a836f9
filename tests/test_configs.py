"""Every shipped config parses and instantiates (tiny model and synthetic data substituted),
and the demo configs run through the `brainmis` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brainmis.cli import main as brainmis_main
from brainmis.commands.fit import BrainmisCLI
from brainmis.data.datamodule import BrainDataModule
from brainmis.models.module import BrainMisalignmentModule

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
PAPER_CONFIGS = sorted(
    f"{model}_{dataset}_{condition}.yaml"
    for model in ("bert", "gpt2", "llama")
    for dataset in ("hp", "moth")
    for condition in ("misaligned", "preserving", "tuned")
)
DEMO_CONFIGS = sorted(p.name for p in (CONFIGS / "demo").glob("*.yaml"))


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic-cache")


def test_all_paper_configs_are_shipped():
    assert len(PAPER_CONFIGS) == 18
    for name in PAPER_CONFIGS:
        assert (CONFIGS / name).is_file(), name
    assert {"misaligned", "preserving", "tuned", "lm_only"} <= {Path(n).stem for n in DEMO_CONFIGS}


@pytest.mark.parametrize("name", PAPER_CONFIGS + [f"demo/{n}" for n in DEMO_CONFIGS])
def test_config_parses_with_its_settings(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # --print_config prints and exits
        brainmis_main(["fit", "--config", str(CONFIGS / name), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    condition = Path(name).stem.split("_")[-1] if "demo" not in name else Path(name).stem
    assert printed["model"]["condition"] == condition
    assert printed["seed_everything"] == 42
    if "demo" not in name:
        family, dataset = Path(name).stem.split("_")[:2]
        assert family.replace("llama", "llama-3.2") in printed["model"]["pretrained_path"]
        assert printed["data"]["bundle"] == f"data/bundles/{dataset}"
        assert printed["trainer"]["precision"] == "bf16-mixed"
        assert printed["trainer"]["max_epochs"] == 5
        assert printed["data"]["batch_size"] == 16
        model = printed["model"]
        assert (model["lora_r"], model["lora_alpha"], model["lora_dropout"]) == (8, 8, 0.0)
        assert (model["lr"], model["weight_decay"], model["w_lm"], model["w_ba"]) == (
            5e-4,
            0.0,
            0.1,
            10.0,
        )


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_config_instantiates_with_tiny_model_and_synthetic_data(
    name, tiny_models, synthetic_cache, tmp_path
):
    family = name.split("_")[0]
    cli = BrainmisCLI(
        BrainMisalignmentModule,
        BrainDataModule,
        run=False,
        seed_everything_default=42,
        args=[
            "--config",
            str(CONFIGS / name),
            f"--model.pretrained_path={tiny_models[family]}",
            "--data.bundle=null",
            f"--data.cache_dir={synthetic_cache}",
            "--data.num_workers=0",
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.precision=32-true",
            f"--trainer.default_root_dir={tmp_path}",
        ],
    )
    assert cli.model.hparams.n_voxels == cli.datamodule.n_voxels > 0
    assert cli.model.family == family
    assert cli.model.condition == name.split("_")[-1].removesuffix(".yaml")
    assert cli.datamodule.hparams.shuffle_targets is (cli.model.condition == "preserving")
    assert cli.datamodule.hparams.tokenizer_path == str(tiny_models[family])
    assert cli.trainer.logger.name == Path(name).stem


@pytest.mark.parametrize(
    "condition", ["misaligned", "preserving", "tuned", "lm_only", "noise_adversary"]
)
def test_demo_config_runs_through_brainmis_cli(condition, tiny_models, synthetic_cache, tmp_path):
    """One training step of the demo config (probing narrowed to one task: the full built-in
    suite is tested in tests/evaluation/probing); the run manifest says what ran."""
    code = brainmis_main(
        [
            "fit",
            "--config",
            str(CONFIGS / "demo" / f"{condition}.yaml"),
            f"--model.pretrained_path={tiny_models['gpt2']}",
            f"--data.cache_dir={synthetic_cache}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.fast_dev_run=1",
            "--probing.tasks=[negation]",
            "--probing.max_items=30",
        ]
    )
    assert code == 0
    manifest = json.loads((tmp_path / "run_manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["identity"]["condition"] == manifest["config"]["model"]["condition"]
    assert manifest["identity"]["condition"] == condition
    assert manifest["identity"]["dataset"] == "synthetic-hp"  # the demo's synthetic default
    assert manifest["config"]["data"]["shuffle_targets"] is (condition == "preserving")
    assert manifest["config"]["data"]["noise_targets"] is (condition == "noise_adversary")
    trainer = manifest["config"]["trainer"]
    assert (trainer["accelerator"], trainer["precision"]) == ("CPUAccelerator", "32-true")
    assert trainer["max_steps"] == 1  # fast_dev_run


def test_input_error_inside_lightning_cli_is_one_line_exit_2(tmp_path, capsys):
    code = brainmis_main(
        [
            "fit",
            "--config",
            str(CONFIGS / "demo" / "tuned.yaml"),
            f"--model.pretrained_path={tmp_path / 'missing-model'}",
            f"--data.bundle={tmp_path / 'missing-bundle'}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "missing-" in err and "Traceback" not in err
    assert not (tmp_path / "lightning_logs").exists()
