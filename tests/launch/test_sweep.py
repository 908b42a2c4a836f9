"""`brainmis sweep` without training: dry run, files of a sweep, array script, refusals,
skipping complete runs. (Training through the sweep: test_end_to_end.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brainmis.cli import main as brainmis
from brainmis.run_folder.manifest import RunManifest, write_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    """2 conditions x 2 subjects x 1 fold on two small base configs."""
    for condition in ("tuned", "misaligned"):
        (tmp_path / f"base_{condition}.yaml").write_text(
            f"model:\n  condition: {condition}\n  lr: 0.001\ntrainer:\n  max_epochs: 2\n"
        )
    path = tmp_path / "matrix.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "small",
                "config": "base_{condition}.yaml",
                "models": ["tiny"],
                "datasets": {"syn": {"subjects": ["F", "H"], "folds": [0]}},
                "conditions": ["tuned", "misaligned"],
                "seeds": [42],
                "slurm": {"max_concurrent": 2, "cpus_per_task": 1, "time": "00:10:00"},
            },
            sort_keys=False,
        )
    )
    return path


def run_ids() -> list[str]:
    return [
        f"tiny-syn-{condition}-sub{subject}-fold0-seed42"
        for condition in ("tuned", "misaligned")
        for subject in ("F", "H")
    ]


def test_dry_run_prints_the_matrix_and_writes_nothing(
    matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    for run_id in run_ids():
        assert run_id in printed
    assert "4 runs = 1 models x 2 conditions x 2 (dataset, subject, fold) x 1 seeds" in printed
    assert not out.exists()


def test_dry_run_of_the_paper_matrix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    paper = REPO / "configs" / "sweeps" / "paper.yaml"
    assert brainmis(["sweep", str(paper), "--out", str(tmp_path / "p"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "504 runs = 3 models x 3 conditions x 56 (dataset, subject, fold) x 1 seeds" in printed
    assert "llama-moth-tuned-sub06-fold3-seed42" in printed


def test_slurm_writes_configs_table_and_array_script(matrix: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm", "--", "--x=1"]) == 0
    script = (out / "sweep.sbatch").read_text()
    assert "#SBATCH --array=0-3%2" in script
    assert "#SBATCH --signal=SIGUSR1@90" in script and "#SBATCH --requeue" in script
    assert script.rstrip().endswith("--x=1")
    rows = (out / "runs.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["index", "run_id", "base_config", "run_config", "run_dir"]
    assert [row.split("\t")[1] for row in rows[1:]] == run_ids()
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["name"] == "small" and len(plan["runs"]) == 4 and plan["fit_args"] == ["--x=1"]

    run_id = run_ids()[3]  # misaligned, subject H
    config = yaml.safe_load((out / "configs" / f"{run_id}.yaml").read_text())
    run_dir = str((out / "runs" / run_id).resolve())
    assert config["model"] == {"condition": "misaligned"}
    assert config["data"] == {"subject": "H", "fold": 0}
    assert config["seed_everything"] == 42
    assert config["trainer"]["default_root_dir"] == run_dir
    logger = config["trainer"]["logger"]["init_args"]
    assert (logger["name"], logger["version"]) == ("", run_id)
    callbacks = config["trainer"]["callbacks+"]
    assert callbacks[0]["class_path"] == "brainmis.launch.manifest.RunManifestCallback"
    assert callbacks[0]["init_args"]["identity"] == {
        "model": "tiny",
        "dataset": "syn",
        "subject": "H",
        "fold": 0,
        "condition": "misaligned",
        "seed": 42,
    }
    assert callbacks[1]["class_path"] == "brainmis.launch.requeue.SlurmRequeueCallback"


def test_complete_runs_are_left_out_of_the_array(matrix: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm"]) == 0
    for run_id in run_ids()[:2]:
        write_manifest(RunManifest(identity={}, status="complete"), out / "runs" / run_id)
    write_manifest(RunManifest(identity={}, status="failed"), out / "runs" / run_ids()[2])
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm"]) == 0
    assert "#SBATCH --array=2-3%2" in (out / "sweep.sbatch").read_text()
    for run_id in run_ids()[2:]:
        write_manifest(RunManifest(identity={}, status="complete"), out / "runs" / run_id)
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm", "--submit"]) == 0


def test_dry_run_shows_status_of_an_existing_sweep(
    matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm"]) == 0
    write_manifest(RunManifest(identity={}, status="complete"), out / "runs" / run_ids()[0])
    capsys.readouterr()
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--dry-run"]) == 0
    assert "status: complete 1, pending 3" in capsys.readouterr().out


def test_foreign_or_different_out_folder_is_refused(
    matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert brainmis(["sweep", str(matrix), "--out", str(foreign), "--slurm"]) == 2
    assert "holds no sweep.json" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    out = tmp_path / "out"
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm"]) == 0
    before = {p: p.read_text() for p in out.rglob("*") if p.is_file()}
    # same folder, other settings: refused, nothing changed
    assert brainmis(["sweep", str(matrix), "--out", str(out), "--slurm", "--", "--y=2"]) == 2
    assert "differs from what this sweep would write" in capsys.readouterr().err
    assert {p: p.read_text() for p in out.rglob("*") if p.is_file()} == before


def test_bad_matrix_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nconfig: missing_{condition}.yaml\nmodels: [m]\n"
                   "datasets: {d: {subjects: [A], folds: [0]}}\nconditions: [tuned]\n")  # fmt: skip
    assert brainmis(["sweep", str(bad), "--out", str(tmp_path / "o"), "--local"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "base config not found" in error
    assert not (tmp_path / "o").exists()


def test_submit_needs_slurm(
    matrix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        brainmis(["sweep", str(matrix), "--out", str(tmp_path / "o"), "--local", "--submit"]) == 2
    )
    error = capsys.readouterr().err
    assert (
        error == "brainmis sweep: error: --submit goes with --slurm (see brainmis sweep --help)\n"
    )
    assert not (tmp_path / "o").exists()
