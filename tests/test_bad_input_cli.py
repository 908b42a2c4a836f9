"""Bad input to ``brainmis fit|validate|test`` and the tools' usage errors: exit 2, one stderr
line ``brainmis <cmd>: error: ...`` (naming the file where there is one), no traceback, no
usage dump, and nothing written (files already there stay byte-identical)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
from tiny_sources import HP_TRIM, write_hp, write_manifest  # noqa: E402

import brainmis.commands.fit  # noqa: E402, F401  (Lightning's log handler: the session's stderr)
from brainmis.cli import main  # noqa: E402
from brainmis.models.tiny import make_tiny_model  # noqa: E402

TEXT = " ".join(["Mia found seven red apples near the quiet river and Harry ran home."] * 20)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = tmp_path_factory.mktemp("text") / "text.txt"
    text.write_text(TEXT)
    out = tmp_path_factory.mktemp("gpt2") / "model"
    return make_tiny_model("gpt2", text, out, hidden=16, layers=1, heads=2, vocab=200)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hp")
    write_hp(root / "src", subjects=("F",))
    options = {"trim_start": HP_TRIM[0], "trim_end": HP_TRIM[1]}
    write_manifest(root / "src" / "source.yaml", {"layout": "hp", "options": options})
    assert main(["prepare", str(root / "src"), "--out", str(root / "bundle")]) == 0
    return root / "bundle"


def fit_args(model: Path, bundle: Path, runs: Path, version: str = "v1") -> list[str]:
    """The smallest fit: the tiny model on the tiny HP bundle, logging into ``runs/version``."""
    return [
        f"--model.pretrained_path={model}",
        f"--data.bundle={bundle}",
        "--data.batch_size=2",
        "--trainer.accelerator=cpu",
        "--trainer.max_steps=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={runs}",
        "--trainer.logger.class_path=lightning.pytorch.loggers.TensorBoardLogger",
        f"--trainer.logger.init_args.save_dir={runs}",
        "--trainer.logger.init_args.name=",
        f"--trainer.logger.init_args.version={version}",
    ]


def one_line_error(capsys, code: int, command: str, *words: str, alone: bool = True) -> str:
    """The error line; ``alone=False`` where the progress lines of building the data and the
    model (Lightning's INFO logging) may come before it: the error still comes last."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "usage:" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 or not alone, err
    assert sum("error" in line.lower() for line in lines) == 1, err
    line = lines[-1]
    assert line.startswith(f"brainmis {command}: error: "), line
    for word in words:
        assert word in line, line
    return line


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def complete_run_folder(folder: Path) -> Path:
    """A run folder as a finished fit leaves it: manifest (complete), config, an event file."""
    folder.mkdir(parents=True)
    manifest = {"identity": {"model": "m"}, "status": "complete", "attempts": []}
    (folder / "run_manifest.json").write_text(json.dumps(manifest))
    (folder / "config.yaml").write_text("model:\n  condition: tuned\n")
    (folder / "events.out.tfevents.1.host.1.0").write_bytes(b"\x00events")
    return folder


# --- the run folder -------------------------------------------------------------------------


def test_fit_into_a_complete_run_changes_nothing(tiny_gpt2, tiny_bundle, tmp_path, capsys):
    run = complete_run_folder(tmp_path / "runs" / "v1")
    before = snapshot(tmp_path)
    code = main(["fit", *fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")])
    one_line_error(capsys, code, "fit", "run_manifest.json", "complete run", alone=False)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["run_manifest.json", "config.yaml", "events.out.tfevents.1.host.1.0"]
    )


@pytest.mark.parametrize("command", ["validate", "test"])
def test_validate_or_test_into_a_training_run_folder_is_refused(
    command, tiny_gpt2, tiny_bundle, tmp_path, capsys
):
    complete_run_folder(tmp_path / "runs" / "v1")
    before = snapshot(tmp_path)
    code = main([command, *fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")])
    one_line_error(
        capsys, code, command, "run_manifest.json", "overwrite its config.yaml", alone=False
    )
    assert snapshot(tmp_path) == before


# --- --ckpt_path ----------------------------------------------------------------------------


class Payload:
    """Unpickling this would call ``print``: a stand-in for a hostile pickle payload."""

    def __reduce__(self):
        return (print, ("this must never be printed",))


def pickle_payload(path: Path) -> Path:
    torch.save({"state_dict": {}, "epoch": 0, "extra": Payload()}, path)
    return path


def not_a_checkpoint(path: Path) -> Path:
    path.write_text("epoch: 3\n")
    return path


def tensors_without_state_dict(path: Path) -> Path:
    torch.save({"weights": torch.zeros(2)}, path)
    return path


def missing(path: Path) -> Path:
    return path


CHECKPOINTS = [
    (pickle_payload, "holds objects other than tensors and plain values; it will not be loaded"),
    (not_a_checkpoint, "not a checkpoint"),
    (tensors_without_state_dict, "not a Lightning checkpoint (it has no state_dict)"),
    (missing, "checkpoint file not found"),
]


@pytest.mark.parametrize(
    ("make", "problem"), CHECKPOINTS, ids=[make.__name__ for make, _ in CHECKPOINTS]
)
def test_bad_ckpt_path_is_one_line(make, problem, tiny_gpt2, tiny_bundle, tmp_path, capsys):
    checkpoint = make(tmp_path / "evil.ckpt")
    args = fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")
    code = main(["fit", *args, f"--ckpt_path={checkpoint}"])
    one_line_error(capsys, code, "fit", "evil.ckpt", problem)
    assert "must never be printed" not in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_checkpoint_trained_for_other_voxels(tiny_gpt2, tiny_bundle, tmp_path, capsys):
    """LightningCLI reads the model's hyperparameters from ``--ckpt_path``: a head of another
    size than the data's voxels is refused, naming the checkpoint."""
    checkpoint = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"n_voxels": 99}}, checkpoint)
    args = fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")
    code = main(["fit", *args, f"--ckpt_path={checkpoint}"])
    line = one_line_error(capsys, code, "fit", "other.ckpt", "trained to predict 99", alone=False)
    assert "resume with the data and voxel selection it was trained on" in line
    assert not (tmp_path / "runs").exists()


# --- configs --------------------------------------------------------------------------------


def test_model_n_voxels_that_the_data_contradict(tiny_gpt2, tiny_bundle, tmp_path, capsys):
    config = tmp_path / "voxels.yaml"
    config.write_text(yaml.safe_dump({"model": {"n_voxels": 99}}))
    args = fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")
    code = main(["fit", "--config", str(config), *args])
    line = one_line_error(capsys, code, "fit", "voxels.yaml", "model.n_voxels is 99", alone=False)
    assert re.search(r"but the data give \d+ voxels", line), line
    assert not (tmp_path / "runs").exists()


def test_model_n_voxels_on_the_command_line(tiny_gpt2, tiny_bundle, tmp_path, capsys):
    args = fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")
    code = main(["fit", *args, "--model.n_voxels=99"])
    one_line_error(capsys, code, "fit", 'must be given via "data.n_voxels"', "brainmis fit --help")


def unknown_key(path: Path) -> tuple[Path, str]:
    path.write_text("model:\n  pretrained_path: m\n  lora_rank: 8\n")
    return path, "does not accept option 'model.lora_rank'"


def python_tag(path: Path) -> tuple[Path, str]:
    path.write_text("model: !!python/object/apply:os.system ['true']\n")
    return path, "not readable YAML: could not determine a constructor for the tag"


def broken_yaml(path: Path) -> tuple[Path, str]:
    path.write_text("model:\n  condition: [tuned\n")
    return path, "not readable YAML"


def list_config(path: Path) -> tuple[Path, str]:
    path.write_text("- model\n- data\n")
    return path, "a config must be a mapping"


def missing_config(path: Path) -> tuple[Path, str]:
    return path, "config file not found"


CONFIGS = [unknown_key, python_tag, broken_yaml, list_config, missing_config]


@pytest.mark.parametrize("make", CONFIGS, ids=[make.__name__ for make in CONFIGS])
@pytest.mark.parametrize("command", ["fit", "validate", "test"])
def test_bad_config_is_one_line_without_usage(make, command, tmp_path, capsys):
    config, problem = make(tmp_path / "bad.yaml")
    code = main([command, "--config", str(config), f"--trainer.default_root_dir={tmp_path}"])
    line = one_line_error(capsys, code, command, problem)
    if make is not unknown_key:
        assert "bad.yaml" in line
    else:
        assert line.endswith(f"(see brainmis {command} --help)")
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        [] if make is missing_config else ["bad.yaml"]
    )


def test_bad_value_on_the_command_line_is_one_line(tmp_path, capsys):
    code = main(["fit", "--trainer.max_epochs=many", f"--trainer.default_root_dir={tmp_path}"])
    one_line_error(capsys, code, "fit", "trainer.max_epochs", "(see brainmis fit --help)")


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    assert "--trainer.max_epochs" in capsys.readouterr().out


# --- model folders --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt2", "meta-llama/Llama-3.2-1B"])
def test_hub_name_says_nothing_is_downloaded(name, tiny_bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [f"--model.pretrained_path={name}", f"--data.bundle={tiny_bundle}"]
    code = main(["fit", *args, f"--trainer.default_root_dir={tmp_path}"])
    line = one_line_error(
        capsys, code, "fit", name, "nothing is downloaded", "save_pretrained", alone=False
    )
    assert "tokenizer folder not found" not in line
    assert list(tmp_path.iterdir()) == []


def test_model_path_that_is_a_file(tiny_bundle, tmp_path, capsys):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\0")
    args = [f"--model.pretrained_path={weights}", f"--data.bundle={tiny_bundle}"]
    code = main(["fit", *args, f"--trainer.default_root_dir={tmp_path / 'runs'}"])
    one_line_error(capsys, code, "fit", "model.safetensors", "is a file", alone=False)
    assert not (tmp_path / "runs").exists()


# --- usage errors of the tools --------------------------------------------------------------

USAGE_ERRORS = [
    (["prepare", "source"], "prepare", "--out DIR is required"),
    (["synth", "--out", "x"], "synth", "the following arguments are required: --layout"),
    (["make-tiny-model", "--out", "x"], "make-tiny-model", "required: --family"),
    (["make-tiny-model", "--family", "gpt3", "--out", "x"], "make-tiny-model", "invalid choice"),
    (["sweep", "matrix.yaml"], "sweep", "required: --out"),
    (["sweep", "matrix.yaml", "--out", "o", "--local", "--slurm"], "sweep", "not allowed with"),
    (["demo", "--pretrain-steps", "many"], "demo", "invalid int value: 'many'"),
]


@pytest.mark.parametrize(
    ("argv", "command", "problem"), USAGE_ERRORS, ids=[" ".join(a) for a, _, _ in USAGE_ERRORS]
)
def test_tool_usage_error_is_one_line(argv, command, problem, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(capsys, main(argv), command, problem)
    assert line.endswith(f"(see brainmis {command} --help)") or command == "prepare"
    assert list(tmp_path.iterdir()) == []


# --- a file where a folder is to be made ----------------------------------------------------

FOLDER_OPTIONS = [
    "--trainer.default_root_dir={blocked}",
    "--trainer.logger.init_args.save_dir={blocked}",
]


@pytest.mark.parametrize("option", FOLDER_OPTIONS, ids=["default_root_dir", "logger_save_dir"])
def test_fit_with_a_file_where_the_run_folder_goes(
    option, tiny_gpt2, tiny_bundle, tmp_path, capsys
):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    args = fit_args(tiny_gpt2, tiny_bundle, tmp_path / "runs")
    code = main(["fit", *args, option.format(blocked=blocker / "runs")])
    one_line_error(capsys, code, "fit", "blocker: is a file", "cannot be made", alone=False)
    assert blocker.read_text() == "a file\n" and sorted(tmp_path.iterdir()) == [blocker]


def test_synthetic_cache_dir_under_a_file(tiny_gpt2, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    args = [f"--model.pretrained_path={tiny_gpt2}", f"--data.cache_dir={blocker / 'cache'}"]
    code = main(["fit", *args, f"--trainer.default_root_dir={tmp_path / 'runs'}"])
    one_line_error(capsys, code, "fit", "blocker: is a file", "cache_dir", alone=False)
    assert sorted(tmp_path.iterdir()) == [blocker]


OUT_UNDER_A_FILE = [
    ["prepare", "{source}", "--out", "{out}"],
    ["synth", "--layout", "hp", "--out", "{out}"],
    ["make-tiny-model", "--family", "gpt2", "--out", "{out}"],
    ["sweep", "{matrix}", "--out", "{out}", "--slurm"],
]


@pytest.mark.parametrize("argv", OUT_UNDER_A_FILE, ids=[argv[0] for argv in OUT_UNDER_A_FILE])
def test_out_folder_under_a_file(argv, tmp_path, capsys):
    write_hp(tmp_path / "src", subjects=("F",))
    options = {"trim_start": HP_TRIM[0], "trim_end": HP_TRIM[1]}
    write_manifest(tmp_path / "src" / "source.yaml", {"layout": "hp", "options": options})
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    before = snapshot(tmp_path)
    values = {"source": tmp_path / "src", "out": blocker / "out"}
    values["matrix"] = Path(__file__).resolve().parent.parent / "configs" / "sweeps" / "demo.yaml"
    code = main([arg.format(**values) for arg in argv])
    one_line_error(capsys, code, argv[0], "blocker: is a file", "cannot be made")
    assert snapshot(tmp_path) == before


def test_unknown_command_is_one_line(capsys):
    assert main(["trian", "--config", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("brainmis: error: unknown command 'trian'")
    assert "fit, validate, test, synth, prepare" in err and "(see brainmis --help)" in err


@pytest.mark.parametrize(
    ("subjects", "problem"),
    [(["Z"], "unknown subject(s) Z; the synthetic default has F, H"), (["F", "F"], "repeat")],
)
def test_demo_subjects_are_checked_before_writing(subjects, problem, tmp_path, capsys, monkeypatch):
    import brainmis.commands.demo

    monkeypatch.setattr(brainmis.commands.demo, "synthetic_default_subjects", lambda: ["F", "H"])
    code = main(["demo", "--out", str(tmp_path / "demo"), "--subjects", *subjects])
    one_line_error(capsys, code, "demo", "--subjects", problem)
    assert not (tmp_path / "demo").exists()


def test_fit_on_a_source_folder_instead_of_a_bundle(tiny_gpt2, tmp_path, capsys):
    write_hp(tmp_path / "src", subjects=("F",))
    args = [f"--model.pretrained_path={tiny_gpt2}", f"--data.bundle={tmp_path / 'src'}"]
    code = main(["fit", *args, f"--trainer.default_root_dir={tmp_path / 'runs'}"])
    line = one_line_error(capsys, code, "fit", "src: not a brainmis bundle", alone=False)
    assert "brainmis prepare SOURCE --out DIR" in line
    assert not (tmp_path / "runs").exists()


def test_an_inline_yaml_config_is_not_taken_for_a_file(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "fit",
                "--config",
                "{seed_everything: 7}",
                "--model.pretrained_path=m",
                "--print_config",
            ]
        )
    assert exit_info.value.code in (0, None)
    assert yaml.safe_load(capsys.readouterr().out)["seed_everything"] == 7
