"""SLURM helpers: who am I (job, array task, restart), a run version that survives requeues,
array specs, the array script of a sweep, and ``sbatch`` submission.

``python -m brainmis.launch.slurm version`` prints the stable version of the current job;
``scripts/slurm/fit.sbatch`` uses it to name the run folder, so a requeued job writes into
the folder of its first attempt and Lightning finds its ``hpc_ckpt_*.ckpt`` there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from brainmis.errors import BrainmisInputError
from brainmis.run_folder.layout import MANIFEST_FILE


@dataclass(frozen=True)
class SlurmJob:
    """The SLURM job this process runs in, read from the ``SLURM_*`` environment.

    ``array_job_id``/``array_task_id`` are ``None`` outside job arrays; ``restart_count`` is
    0 on the first attempt and counts requeues.
    """

    job_id: str
    array_job_id: str | None = None
    array_task_id: str | None = None
    restart_count: int = 0
    num_nodes: int = 1
    num_tasks: int = 1
    node_list: str | None = None
    job_name: str | None = None

    @property
    def requeue_id(self) -> str:
        """The id ``scontrol requeue`` takes: ``ARRAYJOB_TASK`` in an array, else the job id."""
        if self.array_job_id is not None and self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        return self.job_id

    def as_dict(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "array_job_id": self.array_job_id,
            "array_task_id": self.array_task_id,
            "restart_count": self.restart_count,
            "num_nodes": self.num_nodes,
            "num_tasks": self.num_tasks,
            "node_list": self.node_list,
            "job_name": self.job_name,
        }


def slurm_job_from_env(env: Mapping[str, str] | None = None) -> SlurmJob | None:
    """The current SLURM job, or ``None`` when not inside one (no ``SLURM_JOB_ID``)."""
    env = os.environ if env is None else env
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return None
    return SlurmJob(
        job_id=job_id,
        array_job_id=env.get("SLURM_ARRAY_JOB_ID") or None,
        array_task_id=env.get("SLURM_ARRAY_TASK_ID") or None,
        restart_count=int(env.get("SLURM_RESTART_COUNT") or 0),
        num_nodes=int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1),
        num_tasks=int(env.get("SLURM_NTASKS") or 1),
        node_list=env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or None,
        job_name=env.get("SLURM_JOB_NAME") or None,
    )


def stable_run_version(env: Mapping[str, str] | None = None) -> str | None:
    """A log version that stays the same across requeues of one job (or array task).

    ``slurm-<jobid>`` for a plain job, ``slurm-<arrayjobid>_<taskid>`` for an array task;
    ``None`` outside SLURM. SLURM keeps the job id when it requeues a job, so every attempt
    maps to the same folder.
    """
    job = slurm_job_from_env(env)
    return None if job is None else f"slurm-{job.requeue_id}"


def array_spec(indices: Sequence[int], max_concurrent: int | None = None) -> str:
    """``--array`` value for these task indices: ranges compressed, ``%K`` concurrency limit.

    >>> array_spec([0, 1, 2, 5, 7, 8], 2)
    '0-2,5,7-8%2'
    """
    values = sorted(set(int(i) for i in indices))
    if not values:
        raise ValueError("an array needs at least one task index")
    if values[0] < 0:
        raise ValueError(f"array task indices must be >= 0, got {values[0]}")
    parts: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    spec = ",".join(parts)
    if max_concurrent is not None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        spec += f"%{max_concurrent}"
    return spec


@dataclass
class SlurmResources:
    """What each task of a sweep asks SLURM for (one run = one job or array task).

    ``devices`` becomes ``--ntasks-per-node`` (one process per device, Lightning DDP) and
    ``trainer.devices``; ``nodes`` becomes ``--nodes`` and ``trainer.num_nodes``.
    ``gpus_per_node = 0`` asks for no GPU (CPU training).
    """

    nodes: int = 1
    devices: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    time: str = "24:00:00"
    partition: str | None = None
    mem: str | None = None
    max_concurrent: int = 8
    signal_seconds: int = 90
    extra_sbatch: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)

    def sbatch_lines(self) -> list[str]:
        lines = [
            f"--nodes={self.nodes}",
            f"--ntasks-per-node={self.devices}",
            f"--cpus-per-task={self.cpus_per_task}",
            f"--time={self.time}",
            f"--signal=SIGUSR1@{self.signal_seconds}",
            "--requeue",
            "--open-mode=append",
        ]
        if self.gpus_per_node > 0:
            lines.append(f"--gpus-per-node={self.gpus_per_node}")
        if self.partition:
            lines.append(f"--partition={self.partition}")
        if self.mem:
            lines.append(f"--mem={self.mem}")
        lines += list(self.extra_sbatch)
        return [f"#SBATCH {line}" for line in lines]


def array_script(
    *,
    job_name: str,
    task_table: Path,
    workdir: Path,
    log_dir: Path,
    indices: Sequence[int],
    resources: SlurmResources,
    fit_args: Sequence[str] = (),
) -> str:
    """The text of an sbatch array script that runs ``brainmis fit`` for one run per task.

    ``task_table`` is a TSV with a header and the columns ``index``, ``run_id``,
    ``base_config``, ``run_config``, ``run_dir``; task ``i`` trains with
    ``--config base_config --config run_config`` of the row whose index is ``i``, plus
    ``fit_args``. A task whose run folder already holds a complete ``run_manifest.json`` exits
    at once (resubmissions skip finished runs). Requeued tasks (``--signal=SIGUSR1@N`` and
    ``--requeue``) come back into the same run folder and resume from Lightning's
    ``hpc_ckpt_*.ckpt`` there.
    """
    quoted_table = shlex.quote(str(task_table))
    setup_lines = list(resources.setup) or ["# (no environment setup given in the matrix)"]
    extra = "".join(f" {shlex.quote(arg)}" for arg in fit_args)
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --array={array_spec(indices, resources.max_concurrent)}",
        f"#SBATCH --output={log_dir}/%A_%a.out",
        *resources.sbatch_lines(),
        "# Written by `brainmis sweep --slurm`; one array task per run of the matrix.",
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        *setup_lines,
        f"row=\"$(awk -F'\\t' -v i=\"$SLURM_ARRAY_TASK_ID\" 'NR > 1 && $1 == i' {quoted_table})\"",
        'if [[ -z "$row" ]]; then echo "no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2; fi',
        "IFS=$'\\t' read -r _ run_id base_config run_config run_dir <<<\"$row\"",
        f'if grep -qs \'"status": "complete"\' "$run_dir/{MANIFEST_FILE}"; then',
        '    echo "run $run_id is complete; nothing to do"; exit 0',
        "fi",
        'echo "run $run_id (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname)"',
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        'srun --kill-on-bad-exit=1 brainmis fit --config "$base_config" --config "$run_config" \\',
        '    --trainer.num_nodes="$SLURM_JOB_NUM_NODES" --trainer.devices="$SLURM_NTASKS_PER_NODE"'
        + extra,
        "",
    ]
    return "\n".join(lines)


def submit(script: Path, sbatch_args: Sequence[str] = ()) -> str:
    """Submit ``script`` with ``sbatch --parsable``; returns the job id (array job id)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise BrainmisInputError(script, "cannot submit: `sbatch` not found on PATH")
    result = subprocess.run(
        [sbatch, "--parsable", *sbatch_args, str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise BrainmisInputError(script, f"sbatch failed: {message[-1] if message else '?'}")
    return result.stdout.strip().split(";")[0]


def main(argv: list[str] | None = None) -> int:
    """``python -m brainmis.launch.slurm version``: print the stable run version."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv != ["version"]:
        print("usage: python -m brainmis.launch.slurm version", file=sys.stderr)
        return 2
    version = stable_run_version()
    if version is None:
        print("not inside a SLURM job (SLURM_JOB_ID is not set)", file=sys.stderr)
        return 1
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
