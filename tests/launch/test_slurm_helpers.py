"""SLURM helpers: job identity from the environment, stable versions, array specs/scripts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from brainmis.launch.slurm import (
    SlurmResources,
    array_script,
    array_spec,
    slurm_job_from_env,
    stable_run_version,
)


def test_no_slurm_outside_a_job() -> None:
    assert slurm_job_from_env({}) is None
    assert stable_run_version({"HOME": "/root"}) is None


def test_plain_job_version_is_stable_across_requeues() -> None:
    first = {"SLURM_JOB_ID": "812", "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "1"}
    requeued = {**first, "SLURM_RESTART_COUNT": "3"}
    assert stable_run_version(first) == stable_run_version(requeued) == "slurm-812"
    job = slurm_job_from_env(requeued)
    assert job is not None
    assert (job.restart_count, job.num_tasks, job.requeue_id) == (3, 2, "812")


def test_array_task_version_names_array_and_task() -> None:
    env = {"SLURM_JOB_ID": "905", "SLURM_ARRAY_JOB_ID": "900", "SLURM_ARRAY_TASK_ID": "5"}
    assert stable_run_version(env) == "slurm-900_5"
    job = slurm_job_from_env(env)
    assert job is not None and job.requeue_id == "900_5"


@pytest.mark.parametrize(
    ("indices", "limit", "expected"),
    [
        ([0, 1, 2, 3], 2, "0-3%2"),
        ([5], None, "5"),
        ([7, 0, 1, 3, 4, 9], 4, "0-1,3-4,7,9%4"),
    ],
)
def test_array_spec(indices: list[int], limit: int | None, expected: str) -> None:
    assert array_spec(indices, limit) == expected


def test_array_spec_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        array_spec([])
    with pytest.raises(ValueError):
        array_spec([0, 1], 0)


def test_array_script_is_valid_bash_with_limit_and_requeue(tmp_path: Path) -> None:
    text = array_script(
        job_name="brainmis-demo",
        task_table=tmp_path / "runs.tsv",
        workdir=tmp_path,
        log_dir=tmp_path / "logs",
        indices=[0, 1, 3],
        resources=SlurmResources(devices=2, nodes=2, gpus_per_node=2, max_concurrent=3),
        fit_args=["--trainer.max_steps=3"],
    )
    for line in (
        "#SBATCH --array=0-1,3%3",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=2",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --signal=SIGUSR1@90",
        "#SBATCH --requeue",
    ):
        assert line in text.splitlines()
    assert "srun --kill-on-bad-exit=1 brainmis fit" in text
    assert text.rstrip().endswith("--trainer.max_steps=3")
    script = tmp_path / "array.sbatch"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0


def test_array_script_picks_the_row_of_the_task(tmp_path: Path) -> None:
    """Run the script's row lookup with a stand-in `srun` that prints its arguments."""
    table = tmp_path / "runs.tsv"
    table.write_text(
        "index\trun_id\tbase_config\trun_config\trun_dir\n"
        f"0\trun-a\t/b/a.yaml\t/c/a.yaml\t{tmp_path}/a\n"
        f"1\trun-b\t/b/b.yaml\t/c/b.yaml\t{tmp_path}/b\n"
    )
    (tmp_path / "b").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_srun = bin_dir / "srun"
    fake_srun.write_text('#!/bin/bash\necho "srun $*"\n')
    fake_srun.chmod(0o755)
    script = tmp_path / "array.sbatch"
    script.write_text(
        array_script(
            job_name="t",
            task_table=table,
            workdir=tmp_path,
            log_dir=tmp_path,
            indices=[0, 1],
            resources=SlurmResources(),
        )
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NTASKS_PER_NODE": "1",
    }
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--config /b/b.yaml --config /c/b.yaml" in result.stdout
    (tmp_path / "b" / "run_manifest.json").write_text('{\n  "status": "complete"\n}\n')
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "complete; nothing to do" in result.stdout
    assert "srun" not in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_shipped_shell_scripts_parse() -> None:
    root = Path(__file__).resolve().parents[2] / "scripts" / "slurm"
    for name in ("fit.sbatch", "start_local_cluster.sh", "stop_local_cluster.sh"):
        assert subprocess.run(["bash", "-n", str(root / name)], check=False).returncode == 0
