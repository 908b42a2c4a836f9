"""``brainmis sweep MATRIX.yaml --out DIR [--dry-run | --local | --slurm [--submit]]``.

Expands an experiment matrix (``brainmis.launch.sweep_matrix``) into one config per run and then

- ``--dry-run``: prints the runs (and their status when ``DIR`` holds them); writes nothing;
- ``--local``: trains them one after another here (``brainmis fit``), resuming a run from its
  ``checkpoints/last.ckpt`` when an earlier attempt left one;
- ``--slurm``: writes ``DIR/sweep.sbatch``, a job array over the runs not yet complete with
  the matrix's concurrency limit (``--array=...%K``); ``--submit`` also runs ``sbatch``.

``DIR`` layout: ``sweep.json`` (the plan), ``runs.tsv`` (the array's task table),
``configs/<run_id>.yaml`` (each run's overrides, given to ``brainmis fit`` after the base
config), ``runs/<run_id>/`` (the run folders, each with its ``run_manifest.json``),
``logs/``. Runs whose manifest says ``complete`` are skipped. A ``DIR`` holding anything else,
or a different sweep, is refused; nothing is overwritten silently. Arguments after ``--`` go to
every ``brainmis fit`` (e.g. ``-- --trainer.max_epochs=1``).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from brainmis.errors import BrainmisInputError, refuse_file_in_the_way
from brainmis.launch.sweep_matrix import Matrix, RunSpec, compose_config
from brainmis.run_folder.layout import last_checkpoint
from brainmis.run_folder.manifest import read_manifest

PLAN_NAME = "sweep.json"
TABLE_NAME = "runs.tsv"
SCRIPT_NAME = "sweep.sbatch"
PLAN_FORMAT = 1


@dataclass(frozen=True)
class PlannedRun:
    """A run of the sweep with its files: index in the array, configs, run folder."""

    index: int
    spec: RunSpec
    run_config: Path
    run_dir: Path

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    def status(self) -> str:
        manifest = read_manifest(self.run_dir)
        return "pending" if manifest is None else manifest.status

    def fit_command(self, fit_args: list[str]) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "brainmis.cli",
            "fit",
            "--config",
            str(self.spec.base_config),
            "--config",
            str(self.run_config),
        ]
        last = last_checkpoint(self.run_dir)
        if last.is_file():
            command.append(f"--ckpt_path={last}")
        return [*command, *fit_args]


def run_overrides(spec: RunSpec, run_dir: Path, runs_root: Path) -> dict[str, Any]:
    """The run's config on top of its base config: matrix overrides, run folder, callbacks.

    The run folder is both ``trainer.default_root_dir`` (where hpc checkpoints go) and the
    TensorBoard log dir (``save_dir=runs_root``, ``name=""``, ``version=run_id``), so it is the
    same on every attempt. ``trainer.callbacks+`` appends to the base config's callbacks.
    """
    config = compose_config({}, spec.overrides)
    trainer = config.setdefault("trainer", {})
    trainer["default_root_dir"] = str(run_dir)
    trainer["logger"] = {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": str(runs_root), "name": "", "version": spec.run_id},
    }
    trainer["callbacks+"] = [
        {
            "class_path": "brainmis.launch.manifest.RunManifestCallback",
            "init_args": {"identity": spec.identity.as_dict(), "run_id": spec.run_id},
        },
        {"class_path": "brainmis.launch.requeue.SlurmRequeueCallback"},
    ]
    return config


def plan_runs(matrix: Matrix, out: Path) -> list[PlannedRun]:
    out = out.resolve()
    return [
        PlannedRun(
            index=index,
            spec=spec,
            run_config=out / "configs" / f"{spec.run_id}.yaml",
            run_dir=out / "runs" / spec.run_id,
        )
        for index, spec in enumerate(matrix.runs())
    ]


def config_text(run: PlannedRun, out: Path, matrix: Matrix) -> str:
    header = (
        f"# brainmis sweep {matrix.name}: run {run.run_id}\n"
        f"# use as: brainmis fit --config {run.spec.base_config} --config {run.run_config}\n"
    )
    body = run_overrides(run.spec, run.run_dir, out.resolve() / "runs")
    return header + yaml.safe_dump(body, sort_keys=False)


def plan_record(matrix: Matrix, runs: list[PlannedRun], workdir: Path, fit_args: list[str]) -> dict:
    return {
        "format": PLAN_FORMAT,
        "name": matrix.name,
        "matrix": str(matrix.path),
        "workdir": str(workdir),
        "fit_args": fit_args,
        "runs": [
            {
                "index": run.index,
                "run_id": run.run_id,
                "identity": run.spec.identity.as_dict(),
                "base_config": str(run.spec.base_config),
                "run_config": str(run.run_config),
                "run_dir": str(run.run_dir),
            }
            for run in runs
        ],
    }


def table_text(runs: list[PlannedRun]) -> str:
    rows = ["index\trun_id\tbase_config\trun_config\trun_dir"]
    for run in runs:
        fields = [str(run.index), run.run_id, str(run.spec.base_config)]
        fields += [str(run.run_config), str(run.run_dir)]
        if any("\t" in field or "\n" in field for field in fields):
            raise BrainmisInputError(fields[2], "paths with tabs or newlines cannot go in runs.tsv")
        rows.append("\t".join(fields))
    return "\n".join(rows) + "\n"


def prepare_out(out: Path, files: dict[Path, str]) -> None:
    """Write the sweep's files into ``out``, refusing anything that would change what is there.

    ``out`` may be new, empty, or hold this very sweep (same plan and configs: the files are
    left as they are). Every check happens before the first write.
    """
    if out.exists() and not out.is_dir():
        raise BrainmisInputError(out, "--out exists and is not a folder")
    refuse_file_in_the_way(out, "sweep folder")
    if out.is_dir() and any(out.iterdir()):
        plan = out / PLAN_NAME
        if not plan.is_file():
            raise BrainmisInputError(
                out, "--out is not empty and holds no sweep.json; choose a new or empty folder"
            )
        for path, text in files.items():
            if path.exists() and path.read_text() != text:
                raise BrainmisInputError(
                    path,
                    "differs from what this sweep would write (another matrix, other settings, "
                    "or another working directory); use a new --out",
                )
    for path, text in files.items():
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def print_matrix(matrix: Matrix, runs: list[PlannedRun], out: Path | None) -> None:
    header = f"{'#':>4}  {'run_id':<48} {'status':<9} base config"
    print(header)
    counts: dict[str, int] = {}
    for run in runs:
        status = run.status() if out is not None else "-"
        counts[status] = counts.get(status, 0) + 1
        print(f"{run.index:>4}  {run.run_id:<48} {status:<9} {run.spec.base_config}")
    subjects = sum(len(d.subjects) * len(d.folds) for d in matrix.datasets.values())
    print(
        f"{len(runs)} runs = {len(matrix.models)} models x {len(matrix.conditions)} conditions"
        f" x {subjects} (dataset, subject, fold) x {len(matrix.seeds)} seeds"
    )
    if out is not None:
        print("status: " + ", ".join(f"{name} {count}" for name, count in sorted(counts.items())))


def run_local(runs: list[PlannedRun], fit_args: list[str], workdir: Path, logs: Path) -> int:
    """Train every run that is not complete, one after another; 1 if any fails."""
    failed = []
    for run in runs:
        status = run.status()
        if status == "complete":
            print(f"[{run.index}] {run.run_id}: complete, skipped")
            continue
        command = run.fit_command(fit_args)
        log_path = logs / f"{run.run_id}.log"
        print(f"[{run.index}] {run.run_id}: training (log {log_path})", flush=True)
        with log_path.open("a") as log:
            result = subprocess.run(
                command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        status = run.status()
        if result.returncode != 0 or status != "complete":
            failed.append(run.run_id)
            print(f"[{run.index}] {run.run_id}: FAILED (exit {result.returncode}, {status})")
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(runs)} runs complete")
    return 0
