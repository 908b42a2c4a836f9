"""``brainmis sweep MATRIX.yaml --out DIR``: an experiment matrix as a printed plan, local runs or
a SLURM job array (the planning is ``brainmis.launch.sweep``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.launch.slurm import array_script, submit
from brainmis.launch.sweep import (
    PLAN_NAME,
    SCRIPT_NAME,
    TABLE_NAME,
    config_text,
    plan_record,
    plan_runs,
    prepare_out,
    print_matrix,
    run_local,
    table_text,
)
from brainmis.launch.sweep_matrix import load_matrix


def build_parser() -> ToolArgumentParser:
    parser = ToolArgumentParser(
        prog="brainmis sweep",
        description="Expand an experiment matrix into runs; print, run locally or on SLURM.",
        epilog="Arguments after `--` are passed to every `brainmis fit`.",
    )
    parser.add_argument("matrix", type=Path, help="matrix YAML (see configs/sweeps/)")
    parser.add_argument("--out", type=Path, required=True, help="sweep folder")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="print the runs, write nothing")
    mode.add_argument("--local", action="store_true", help="train the runs here, in order")
    mode.add_argument("--slurm", action="store_true", help="write a SLURM array script")
    parser.add_argument("--submit", action="store_true", help="with --slurm: also sbatch it")
    return parser


def main(argv: list[str]) -> int:
    argv = list(argv)
    fit_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, fit_args = argv[:split], argv[split + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.submit and not args.slurm:
        parser.error("--submit goes with --slurm")
    matrix = load_matrix(args.matrix)
    matrix.check_configs_exist()
    out = args.out.resolve()
    runs = plan_runs(matrix, out)
    if args.dry_run:
        print_matrix(matrix, runs, out if (out / PLAN_NAME).is_file() else None)
        return 0

    workdir = Path(os.getcwd()).resolve()
    files = {out / PLAN_NAME: json.dumps(plan_record(matrix, runs, workdir, fit_args), indent=2)}
    files[out / TABLE_NAME] = table_text(runs)
    for run in runs:
        files[run.run_config] = config_text(run, out, matrix)
    prepare_out(out, files)
    (out / "logs").mkdir(exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)

    if args.local:
        return run_local(runs, fit_args, workdir, out / "logs")

    pending = [run for run in runs if run.status() != "complete"]
    if not pending:
        print(f"all {len(runs)} runs are complete; nothing to submit")
        return 0
    script = out / SCRIPT_NAME
    script.write_text(
        array_script(
            job_name=f"brainmis-{matrix.name}",
            task_table=out / TABLE_NAME,
            workdir=workdir,
            log_dir=out / "logs",
            indices=[run.index for run in pending],
            resources=matrix.slurm,
            fit_args=fit_args,
        )
    )
    print(
        f"wrote {script}: {len(pending)} of {len(runs)} runs as a job array "
        f"(at most {matrix.slurm.max_concurrent} at once)"
    )
    if not args.submit:
        print(f"submit with: sbatch {script}")
        return 0
    job_id = submit(script)
    with (out / "submissions.tsv").open("a") as record:
        record.write(f"{job_id}\t{len(pending)}\n")
    print(f"submitted array job {job_id}")
    return 0
