"""End to end on the real stack: a local one-node SLURM cluster (Debian slurm-wlm + munge,
started by ``scripts/slurm/start_local_cluster.sh``), the demo configs, a tiny GPT-2.

- ``fit.sbatch`` with 2 tasks (CPU DDP, gloo) trains to completion;
- SIGUSR1 mid-training -> hpc checkpoint -> requeue -> resume -> same final metrics;
- ``brainmis sweep --slurm --submit`` of 2 conditions x 2 subjects runs every array task;
- without SLURM: SIGKILL mid-epoch, restart from the last checkpoint, same final weights.

Each test starts and stops only its own processes and jobs (by PID / job id).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from launch_helpers import PAUSE_MARKER_VARIABLE, STEP_SECONDS_VARIABLE

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "slurm"
SLURM_BINARIES = ("slurmctld", "slurmd", "sbatch", "munged", "mungekey")


def _have(binary: str) -> bool:
    return shutil.which(binary) is not None or Path("/usr/sbin", binary).exists()


missing_slurm = [name for name in SLURM_BINARIES if not _have(name)]
needs_slurm = pytest.mark.skipif(
    bool(missing_slurm),
    reason=f"SLURM/munge binaries not installed ({', '.join(missing_slurm)}); "
    "install Debian's slurm-wlm and munge to run the cluster tests",
)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running one-node cluster; started (and afterwards stopped) here unless one already
    runs in ``BRAINMIS_SLURM_DIR``. Yields the environment for the SLURM commands."""
    state_dir = os.environ.get("BRAINMIS_SLURM_DIR", "/tmp/brainmis-slurm")
    pid_file = Path(state_dir) / "run" / "slurmctld.pid"
    already_running = pid_file.is_file() and _pid_alive(int(pid_file.read_text() or 0))
    env = {**os.environ, "BRAINMIS_SLURM_DIR": state_dir, "PATH": _path_with_sbin()}
    result = subprocess.run(
        ["bash", str(SCRIPTS / "start_local_cluster.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    env["SLURM_CONF"] = str(Path(state_dir) / "slurm.conf")
    yield env
    if not already_running:
        subprocess.run(["bash", str(SCRIPTS / "stop_local_cluster.sh")], env=env, timeout=120)


def _path_with_sbin() -> str:
    return f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from brainmis.models.tiny import make_tiny_model

    return make_tiny_model("gpt2", out=tmp_path_factory.mktemp("models") / "tiny-gpt2",
                           pretrain_steps=10)  # fmt: skip


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic-cache")


# The demo trainer's evaluation callbacks (ridge brain alignment, probing) are not what the
# resume tests check and take minutes on 2 shared cores: drop them. The CLI adds the run
# manifest and SLURM requeue callbacks to every fit again (``BrainmisCLI.instantiate_trainer``).
WITHOUT_EVALUATION_CALLBACKS = "--trainer.callbacks=[]"


def demo_args(model: Path, cache: Path, epochs: int, batches: int) -> list[str]:
    """A short demo fit: ``epochs`` epochs of ``batches`` batches, checkpoint every epoch."""
    return [
        f"--model.pretrained_path={model}",
        f"--data.cache_dir={cache}",
        f"--trainer.max_epochs={epochs}",
        f"--trainer.limit_train_batches={batches}",
        "--trainer.limit_val_batches=2",
        "--trainer.log_every_n_steps=1",
        "--trainer.num_sanity_val_steps=0",
    ]


# --- SLURM job helpers -----------------------------------------------------------------------


def sbatch(env: dict[str, str], args: list[str]) -> str:
    result = subprocess.run(
        ["sbatch", "--parsable", *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def job_states(env: dict[str, str], job_id: str) -> list[tuple[str, str]]:
    """(state, reason) of the job or of each of its array tasks; [] once all have left."""
    result = subprocess.run(
        ["squeue", "--noheader", "--array", f"--jobs={job_id}", "--format=%T|%r"],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return [tuple(line.split("|", 1)) for line in lines]  # type: ignore[misc]


def release_requeued(env: dict[str, str], job_id: str) -> None:
    """A requeued job waits ~2 minutes (BeginTime) before SLURM starts it again; start now."""
    for state, reason in job_states(env, job_id):
        if state == "PENDING" and reason == "BeginTime":
            subprocess.run(
                ["scontrol", "update", f"jobid={job_id}", "StartTime=now"],
                env=env,
                capture_output=True,
            )


def wait_for_job(env: dict[str, str], job_id: str, timeout: float = 540.0) -> None:
    deadline = time.monotonic() + timeout
    while job_states(env, job_id):
        release_requeued(env, job_id)
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job_id], env=env)
            pytest.fail(f"job {job_id} did not finish in {timeout} s")
        time.sleep(2)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(1)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def trainable_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def same_weights(a: Path, b: Path) -> bool:
    first, second = trainable_weights(a), trainable_weights(b)
    assert first.keys() == second.keys() and first
    return all(torch.equal(value, second[name]) for name, value in first.items())


def require_same_final_state(run_dir: Path, reference_dir: Path, epochs: int) -> None:
    """Bit-identical final trainable weights and held-out LM loss. Holds because the resumed
    attempt restarts from an end-of-epoch checkpoint and every epoch's batch order and RNG are
    seeded from (seed, epoch, rank) (``BrainMisalignmentModule``; under DDP Lightning's
    ``DistributedSampler.set_epoch``)."""
    assert same_weights(
        last_epoch_checkpoint(run_dir, epochs), last_epoch_checkpoint(reference_dir, epochs)
    )
    lm, reference_lm = (read_json(d / "evaluation" / "lm.json") for d in (run_dir, reference_dir))
    assert lm == reference_lm


def last_epoch_checkpoint(run_dir: Path, epochs: int) -> Path:
    found = sorted(run_dir.glob(f"**/checkpoints/epoch={epochs - 1}-*.ckpt"))
    assert found, f"no final checkpoint under {run_dir}"
    return found[-1]


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.slurm
@needs_slurm
def test_fit_sbatch_two_task_cpu_ddp(
    slurm_cluster: dict[str, str], tiny_gpt2: Path, synthetic_cache: Path, tmp_path: Path
) -> None:
    env = {**slurm_cluster, "BRAINMIS_RUN_ROOT": str(tmp_path / "runs")}
    job = sbatch(
        env,
        [
            "--ntasks-per-node=2",
            "--cpus-per-task=1",
            f"--output={tmp_path}/slurm-%j.out",
            str(SCRIPTS / "fit.sbatch"),
            "configs/demo/tuned.yaml",
            "--trainer.strategy=ddp",
            *demo_args(tiny_gpt2, synthetic_cache, epochs=1, batches=3),
        ],
    )
    wait_for_job(env, job)
    log = (tmp_path / f"slurm-{job}.out").read_text()
    run_dir = tmp_path / "runs" / "tuned" / f"slurm-{job}"
    manifest_path = run_dir / "run_manifest.json"
    assert manifest_path.is_file(), log[-3000:]
    manifest = read_json(manifest_path)
    assert manifest["status"] == "complete", log[-3000:]
    assert manifest["config"]["trainer"]["world_size"] == 2
    assert manifest["config"]["trainer"]["strategy"] == "DDPStrategy"
    assert manifest["slurm"]["job_id"] == job and manifest["slurm"]["num_tasks"] == 2
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert list(run_dir.glob("checkpoints/*.ckpt"))


@pytest.mark.slow
@pytest.mark.slurm
@needs_slurm
@pytest.mark.parametrize("tasks", [1, 2], ids=["one-task", "two-task-ddp"])
def test_sigusr1_requeues_and_resumes_to_the_same_result(
    slurm_cluster: dict[str, str],
    tiny_gpt2: Path,
    synthetic_cache: Path,
    tmp_path: Path,
    tasks: int,
) -> None:
    """One task (the module seeds the RandomSampler per epoch) and two DDP tasks on CPU/gloo
    (Lightning's DistributedSampler, ``set_epoch`` per epoch). The two-task jobs fill the
    2-CPU node, so the interrupted job starts after the reference one."""
    epochs, batches = 3, 4
    env = {**slurm_cluster, "BRAINMIS_RUN_ROOT": str(tmp_path / "runs")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), *filter(None, [env.get("PYTHONPATH")])]
    )
    common = [
        f"--ntasks-per-node={tasks}",
        "--cpus-per-task=1",
        f"--output={tmp_path}/slurm-%j.out",
        str(SCRIPTS / "fit.sbatch"),
        "configs/demo/tuned.yaml",
        *(["--trainer.strategy=ddp"] if tasks > 1 else []),
        *demo_args(tiny_gpt2, synthetic_cache, epochs=epochs, batches=batches),
        WITHOUT_EVALUATION_CALLBACKS,
        # slows only the job whose environment sets BRAINMIS_TEST_STEP_SECONDS (the victim),
        # so the signal lands mid-training on any machine speed
        "--trainer.callbacks+=launch_helpers.SlowSteps",
    ]
    reference_job = sbatch(env, common)
    job = sbatch({**env, STEP_SECONDS_VARIABLE: "2"}, common)
    run_dir = tmp_path / "runs" / "tuned" / f"slurm-{job}"
    # mid-training: after the first epoch's checkpoint, before the end
    wait_for(lambda: bool(list(run_dir.glob("checkpoints/epoch=*.ckpt"))), 540, "an epoch end")
    assert not list(run_dir.glob(f"checkpoints/epoch={epochs - 1}-*.ckpt")), "too late"
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    wait_for_job(env, job)
    wait_for_job(env, reference_job)
    log = (tmp_path / f"slurm-{job}.out").read_text()
    assert list(run_dir.glob("hpc_ckpt_*.ckpt")), log[-3000:]
    manifest = read_json(run_dir / "run_manifest.json")
    assert manifest["status"] == "complete", log[-3000:]
    assert manifest["slurm"]["restart_count"] >= 1
    assert len(manifest["attempts"]) >= 2
    assert manifest["config"]["trainer"]["world_size"] == tasks
    reference_dir = tmp_path / "runs" / "tuned" / f"slurm-{reference_job}"
    assert read_json(reference_dir / "run_manifest.json")["status"] == "complete"
    # the same final metrics and weights as the uninterrupted job
    require_same_final_state(run_dir, reference_dir, epochs)


@pytest.mark.slow
@pytest.mark.slurm
@needs_slurm
def test_sweep_slurm_submit_runs_every_array_task(
    slurm_cluster: dict[str, str], tiny_gpt2: Path, synthetic_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    fit_args = demo_args(tiny_gpt2, synthetic_cache, epochs=1, batches=2)
    fit_args += ["--probing.tasks=[negation]", "--probing.max_items=30"]  # probing, but short
    command = [sys.executable, "-m", "brainmis.cli", "sweep", "configs/sweeps/demo.yaml"]
    result = subprocess.run(
        [*command, "--out", str(out), "--slurm", "--submit", "--", *fit_args],
        cwd=REPO,
        env=slurm_cluster,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    job = result.stdout.strip().splitlines()[-1].split()[-1]
    assert "#SBATCH --array=0-3%2" in (out / "sweep.sbatch").read_text()
    wait_for_job(slurm_cluster, job)
    for run_dir in sorted((out / "runs").iterdir()):
        manifest = read_json(run_dir / "run_manifest.json")
        assert manifest["status"] == "complete", (out / "logs").glob("*")
        assert manifest["identity"]["model"] == "tiny"
    identities = {
        (m["identity"]["condition"], m["identity"]["subject"])
        for m in (read_json(p) for p in out.glob("runs/*/run_manifest.json"))
    }
    assert identities == {(c, s) for c in ("misaligned", "preserving") for s in ("F", "H")}
    # a second submission finds nothing left to do
    again = subprocess.run(
        [*command, "--out", str(out), "--slurm", "--submit", "--", *fit_args],
        cwd=REPO,
        env=slurm_cluster,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "nothing to submit" in again.stdout
    # the real fits feed the comparison: every run, its values, the subjects paired
    report = subprocess.run(
        [sys.executable, "-m", "brainmis.cli", "compare", str(out / "runs"), "--out",
         str(tmp_path / "compare")],
        cwd=REPO, env=slurm_cluster, capture_output=True, text=True,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    runs_csv = tmp_path / "compare" / "runs.csv"
    assert runs_csv.is_file(), report.stdout[-3000:]
    with runs_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["condition"], row["subject"]) for row in rows} == identities and len(rows) == 4
    for row in rows:
        run_dir = Path(row["path"])
        identity = read_json(run_dir / "run_manifest.json")["identity"]
        assert (row["model"], row["condition"], row["subject"]) == (
            identity["model"], identity["condition"], identity["subject"]
        )  # fmt: skip
        lm = read_json(run_dir / "evaluation" / "lm.json")["lm_loss"]
        brain = read_json(run_dir / "evaluation" / "brain_alignment.json")["mean"]
        assert float(row["lm_loss"]) == pytest.approx(lm)
        assert float(row["brain_alignment"]) == pytest.approx(brain)
        assert 0.0 <= float(row["probing_score"]) <= 1.0
        assert row["lm_epoch"] == row["brain_epoch"] == row["probing_epoch"] == "1"
    with (tmp_path / "compare" / "paired_tests.csv").open(newline="") as handle:
        paired = {
            (r["metric"], r["condition_a"], r["condition_b"]): r for r in csv.DictReader(handle)
        }
    for metric in ("lm_loss", "brain_alignment", "probing_score"):
        assert int(paired[(metric, "preserving", "misaligned")]["n_pairs"]) == 2, metric
    assert (tmp_path / "compare" / "report.html").is_file()


@pytest.mark.slow
def test_sigkill_mid_epoch_then_restart_gives_the_same_weights(
    tiny_gpt2: Path, synthetic_cache: Path, tmp_path: Path
) -> None:
    """No SLURM: kill -9 a fit in the middle of its third epoch, rerun the sweep (which
    resumes from ``checkpoints/last.ckpt``, the end of the second epoch), compare with a fit
    that was never interrupted. The victim's first attempt holds still after batch 2 of epoch
    2 (``launch_helpers.PauseMidEpoch``) so the kill lands mid-epoch on any machine speed."""
    epochs, batches = 3, 6
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), *filter(None, [env.get("PYTHONPATH")])]
    )
    matrix = tmp_path / "one.yaml"
    matrix.write_text(
        f"name: one\nconfig: {REPO}/configs/demo/{{condition}}.yaml\nmodels: [tiny]\n"
        "datasets: {synthetic: {subjects: [F], folds: [0]}}\nconditions: [tuned]\n"
    )
    fit_args = [
        *demo_args(tiny_gpt2, synthetic_cache, epochs=epochs, batches=batches),
        WITHOUT_EVALUATION_CALLBACKS,  # also drops the sweep's manifest callback: re-added
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.save_last=true",
        "--trainer.callbacks.save_top_k=-1",
        # pauses only where BRAINMIS_TEST_PAUSE_MARKER is set: the victim's first attempt
        "--trainer.callbacks+=launch_helpers.PauseMidEpoch",
        f"--trainer.callbacks.epoch={epochs - 1}",
        "--trainer.callbacks.batch=2",
    ]
    marker = tmp_path / "paused-mid-epoch"

    def sweep(out: Path, log: str, pause: bool = False) -> subprocess.Popen:
        run_env = {**env, PAUSE_MARKER_VARIABLE: str(marker)} if pause else env
        with open(tmp_path / log, "w") as output:  # a file: a pipe nobody reads can fill up
            return subprocess.Popen(
                [sys.executable, "-m", "brainmis.cli", "sweep", str(matrix), "--out", str(out),
                 "--local", "--", *fit_args],
                cwd=REPO, env=run_env, stdout=output, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip

    reference = sweep(tmp_path / "reference", "reference.log")
    killed_out = tmp_path / "killed"
    victim = sweep(killed_out, "victim.log", pause=True)
    run_dir = killed_out / "runs" / "tiny-synthetic-tuned-subF-fold0-seed42"
    wait_for(marker.is_file, 540, "the victim to reach the middle of its last epoch")
    fit_process = _child_fit_pid(victim.pid)
    os.kill(fit_process, signal.SIGKILL)  # the `brainmis fit` started by this sweep only
    victim.wait(timeout=120)
    assert not list(run_dir.glob(f"checkpoints/epoch={epochs - 1}-*.ckpt"))
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # killed mid-epoch, so last.ckpt is the end of the epoch before: the restart trains the
    # interrupted epoch again from its start, with that epoch's seeded order and RNG
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == epochs - 2
    assert read_json(run_dir / "run_manifest.json")["status"] == "running"

    restarted = sweep(killed_out, "restarted.log")
    assert restarted.wait(timeout=600) == 0, (tmp_path / "restarted.log").read_text()[-3000:]
    assert reference.wait(timeout=600) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    manifest = read_json(run_dir / "run_manifest.json")
    assert manifest["status"] == "complete" and len(manifest["attempts"]) == 2
    fit_log = (killed_out / "logs" / f"{run_dir.name}.log").read_text()  # both attempts
    assert f"Restoring states from the checkpoint path at {last}" in fit_log
    reference_dir = tmp_path / "reference" / "runs" / run_dir.name
    require_same_final_state(run_dir, reference_dir, epochs)


def _child_fit_pid(parent: int) -> int:
    """PID of the `brainmis fit` process that the sweep process ``parent`` started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(fields[1]) == parent and b"fit" in command:
                return int(entry.name)
        time.sleep(0.5)
    pytest.fail(f"no `brainmis fit` child of process {parent}")
