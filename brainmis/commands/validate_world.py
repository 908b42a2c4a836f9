"""``brainmis validate-world``: does the pipeline find a planted effect, and only that one?

    brainmis validate-world --world probed|unprobed|semantic [--subjects 8] [--out DIR]
                            [--conditions ...] [--tasks ...] [-- FIT OPTIONS]

Synthesises a ground-truth world (``brainmis.data.synthetic.worlds``, Harry-Potter layout,
``--subjects`` subjects) and prepares it, makes a tiny GPT-2 (tokenizer trained on the
narrative, LM-pretrained) and probes it once (``pretrained_probing/``: does it encode the
probed properties?), fits every condition for every subject with the demo configs, runs
``brainmis compare`` with the world's task groups, and prints the verdict table
(``brainmis.analysis.world_verdict``): each expectation, the measured effect, its p-value and
PASS/FAIL. Writes ``comparison/`` (the usual report) and ``verdict.json``. ``validate`` itself
is Lightning's subcommand (``brainmis validate --config ...``), hence the name.

Contrasts are tested one-sided in the expected direction (preserving > misaligned, tuned >
preserving) on ``probed`` and ``semantic``; two-sided on ``unprobed``, whose probing
expectation is "no difference". Exit status 0 when every expectation passes, 1 otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from brainmis.cli_parser import ToolArgumentParser
from brainmis.commands.demo import (
    CONDITIONS,
    demo_config,
    first_free_folder,
    fit_args,
    quiet_libraries,
    run_summary,
)
from brainmis.data.synthetic.worlds import DEFAULT_FEATURES, WORLDS
from brainmis.errors import BrainmisInputError, refuse_non_empty_dir

MIN_SUBJECTS = 2
DIRECTIONAL_WORLDS = ("probed", "semantic")


def build_parser() -> ToolArgumentParser:
    parser = ToolArgumentParser(
        prog="brainmis validate-world", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--world", required=True, choices=WORLDS, help="the world to validate on")
    parser.add_argument("--out", type=Path, default=None, help="new or empty folder")
    parser.add_argument(
        "--subjects", type=int, default=8, help="synthetic subjects (default 8; >= 6 for power)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic world")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument(
        "--tasks", nargs="+", default=None, help="probing tasks (default: the built-in suite)"
    )
    parser.add_argument("--pretrain-steps", type=int, default=300, help="LM steps of the model")
    parser.add_argument("--verbose", action="store_true", help="keep library warnings and banners")
    parser.add_argument("fit_overrides", nargs="*", help="extra `brainmis fit` options after `--`")
    return parser


def _check(args) -> None:
    if args.subjects < MIN_SUBJECTS:
        raise BrainmisInputError(None, f"--subjects must be at least {MIN_SUBJECTS}")
    if not {"misaligned", "preserving"} <= set(args.conditions):
        raise BrainmisInputError(None, "--conditions must include misaligned and preserving")
    if args.pretrain_steps < 0:
        raise BrainmisInputError(None, f"--pretrain-steps must be >= 0, got {args.pretrain_steps}")
    for condition in args.conditions:
        demo_config(condition)
    if args.tasks is not None:
        from brainmis.evaluation.probing.builtin.suite import builtin_spec

        for task in args.tasks:
            builtin_spec(task)


def _eta(done: int, total: int, elapsed: float) -> str:
    if done == 0:
        return "?"
    return f"{elapsed / done * (total - done) / 60:.1f} min"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    default_out = Path(f"runs/validate-{args.world}")
    out = refuse_non_empty_dir(args.out) if args.out else first_free_folder(default_out)

    from brainmis.analysis.comparison import ComparisonOptions
    from brainmis.analysis.task_groups import read_task_groups
    from brainmis.analysis.world_verdict import judge, verdict_table
    from brainmis.commands.compare import compare_runs
    from brainmis.commands.fit import run_lightning_cli
    from brainmis.commands.prepare import main as prepare_main
    from brainmis.commands.probe import main as probe_main
    from brainmis.data.synthetic import generate_synthetic
    from brainmis.models.tiny import make_tiny_model

    if not args.verbose:
        quiet_libraries()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    print(f"brainmis validate-world: world {args.world}, {args.subjects} subjects, into {out}")
    dataset = generate_synthetic(
        "hp",
        out / "dataset",
        n_subjects=args.subjects,
        seed=args.seed,
        world=args.world,
        n_features=DEFAULT_FEATURES[args.world],
    )
    truth_file = dataset / "ground_truth" / "truth.json"
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    print(f"  world {args.world}: brain driven by {', '.join(truth['categories'])}")
    targeted = sorted(truth["probing_task_groups"]["tasks"])
    print(f"  targeted probing tasks: {', '.join(targeted) or 'none'}")
    prepare_main([str(dataset), "--out", str(out / "bundle")])
    model = make_tiny_model("gpt2", out=out / "tiny-gpt2", pretrain_steps=args.pretrain_steps)
    print(f"  tiny GPT-2: {model}; probing it before any brain training ...", flush=True)
    task_args = ["--tasks", *args.tasks] if args.tasks else []
    probe_main(["--model", str(model), "--builtin", "--max-items", "400", *task_args,
                "--out", str(out / "pretrained_probing")])  # fmt: skip
    subjects = truth["subjects"]
    probing_tasks = [f"--probing.tasks=[{','.join(args.tasks)}]"] if args.tasks else []
    extra = ["--data.bundle", str(out / "bundle"), *probing_tasks, *args.fit_overrides]
    total, done, fits_started = len(subjects) * len(args.conditions), 0, time.perf_counter()
    for subject in subjects:
        for condition in args.conditions:
            print(
                f"  fit {done + 1}/{total} {condition:<11} subject {subject} ...",
                end=" ",
                flush=True,
            )
            fit_started = time.perf_counter()
            cli = run_lightning_cli(fit_args(condition, subject, model, out, extra))
            done += 1
            elapsed = time.perf_counter() - fits_started
            print(
                f"{run_summary(Path(cli.trainer.log_dir))} ({time.perf_counter() - fit_started:.0f}"
                f" s; left: about {_eta(done, total, elapsed)})",
                flush=True,
            )
    alternative = "greater" if args.world in DIRECTIONAL_WORLDS else "two-sided"
    options = ComparisonOptions(alternative=alternative, task_groups=read_task_groups(truth_file))
    result = compare_runs([out / "lightning_logs"], out / "comparison", options=options)
    print(result.summary)
    checks = judge(result.comparison, args.world)
    print(f"\nverdict for world {args.world} ({len(subjects)} subjects; tests: {alternative}):")
    print(verdict_table(checks))
    passed = all(check.passed for check in checks)
    verdict = {
        "world": args.world,
        "subjects": subjects,
        "conditions": args.conditions,
        "alternative": alternative,
        "targeted_tasks": targeted,
        "passed": passed,
        "expectations": [check.to_json() for check in checks],
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "verdict.json").write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
    print(
        f"{'PASS' if passed else 'FAIL'}: world {args.world} in "
        f"{(time.perf_counter() - started) / 60:.1f} min; report {out / 'comparison' / 'report.html'}"
        f", verdict {out / 'verdict.json'}"
    )
    return 0 if passed else 1
